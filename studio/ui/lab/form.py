"""The Lab's left column: what to train, on which folder, from which base, and how.

Everything here is made from `core.training`: the recipes (`RECIPES`: name, summary, the
base families a fine-tune accepts), the hyperparameters (`TrainConfig`'s field metadata,
the same that makes `studio train`'s flags) with the recipe's defaults (`config_for`), and
each field's one-line tip shown under it. `config()` reads the form back as a TrainConfig.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.catalog import ModelEntry
from studio.core.fields import specs
from studio.core.seeds import MAX_SEED
from studio.core.training import RECIPES, RecipeInfo, TrainConfig, config_for
from studio.runtime.context import AppContext
from studio.ui.forms import FieldForm
from studio.ui.widgets import folder_icon, section_label

#: fields shown only when the recipe's defaults name them (LoRA rank/alpha, resolution)
OPTIONAL_FIELDS = ("rank", "alpha", "resolution")
#: formats a trainer cannot fine-tune (llama.cpp weights have no gradients)
UNTRAINABLE_FORMATS = ("gguf",)
SLUG_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def applies(info: RecipeInfo, name: str) -> bool:
    """Whether a TrainConfig field means something for this recipe."""
    if name in OPTIONAL_FIELDS:
        return name in info.defaults
    if name == "trigger":
        return info.id == "lora"
    if name in ("text", "width"):
        return info.id == "sketch"
    return True


def base_models(entries: list[ModelEntry], info: RecipeInfo) -> list[ModelEntry]:
    """The catalog's models a recipe can fine-tune: of its base families (or their latent
    space, as the trainer's own check allows), in trainable formats."""
    out = []
    for e in entries:
        family = e.descriptor
        fid = e.family_id or (family.id if family is not None else "")
        latent = family.latent if family is not None else ""
        # a turbo/LCM/inpaint model shares its base's latent space and fine-tunes the same
        of_family = fid in info.base_families or bool(latent and latent in info.base_families)
        if of_family and e.role == "generate" and e.format not in UNTRAINABLE_FORMATS:
            out.append(e)
    # the user's own models first (a LoRA's default base is their SD, not the sketch)
    return sorted(out, key=lambda e: e.source == "builtin")


def default_run_name(recipe: str, data: str, taken: set[str] | None = None) -> str:
    """"gan-shapes", then "gan-shapes-2"…: the recipe and the folder's name, unique among
    the runs in the Lab folder (a new run never lands on an old one)."""
    folder = SLUG_RE.sub("-", Path(data).name if data else "").strip("-.")[:40]
    base = f"{recipe}-{folder}" if folder else recipe
    if taken is None:
        lab = paths.lab_dir()
        taken = {p.name for p in lab.iterdir()} if lab.is_dir() else set()
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    return name


class FolderField(QWidget):
    """A folder path with a Browse button; a folder (or a file in it) dropped on it is taken.

    The main window loads the recipe of a file dropped on it, but leaves a widget that
    accepts drops itself (this one) its own; a filter on the field and its two children
    catches the drops over the line edit, which would otherwise take a path as text."""

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("A folder of your images, tunes or texts (drop it here)")
        self.edit.setToolTip("The folder is only read, never changed.")
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.folder()))
        self.browse = QToolButton()
        self.browse.setIcon(folder_icon())
        self.browse.setToolTip("Choose the data folder")
        self.browse.clicked.connect(self.choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        self.setAcceptDrops(True)
        for widget in (self, self.edit, self.browse):
            widget.installEventFilter(self)

    def folder(self) -> str:
        return self.edit.text().strip()

    def set_folder(self, folder: str | Path) -> None:
        text = str(folder)
        if text != self.folder():
            self.edit.setText(text)
            self.changed.emit(text)

    def choose(self) -> None:
        start = self.folder() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", start)
        if folder:
            self.set_folder(folder)

    @staticmethod
    def dropped_folder(event: QEvent) -> Path | None:
        mime = event.mimeData()  # type: ignore[attr-defined]
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                return path if path.is_dir() else path.parent
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        if not isinstance(obj, QWidget) or not (obj is self or self.isAncestorOf(obj)):
            return False
        folder = self.dropped_folder(event)
        if folder is None:
            return False
        if not self.isEnabled():  # training: the folder stays as it is (and is no recipe)
            event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            self.set_folder(folder)
        event.acceptProposedAction()  # type: ignore[attr-defined]
        return True


def choice_box(items: dict[str, str], tip: str) -> QComboBox:
    """A combo box of `{value: label}` items whose data is the value a TrainConfig holds."""
    box = QComboBox()
    for value, label in items.items():
        box.addItem(label, value)
    box.setToolTip(tip)
    return box


class TrainForm(QWidget):
    """Recipe, data folder, base model, run name and the hyperparameters that apply."""

    source_changed = Signal()  # recipe, folder, base or resolution changed: check again

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.recipe = QComboBox()
        for info in RECIPES.values():
            self.recipe.addItem(info.name, info.id)
            self.recipe.setItemData(self.recipe.count() - 1, info.summary,
                                    Qt.ItemDataRole.ToolTipRole)
        self.summary = QLabel("")
        self.summary.setObjectName("muted")
        self.summary.setWordWrap(True)
        self.data = FolderField()
        self.base_label = section_label("Base model")
        self.base = QComboBox()
        self.base.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.base.setMinimumContentsLength(18)
        self.name = QLineEdit()
        self.name.setToolTip("The run's folder in the Lab and the trained model's name")
        self._name_edited = False
        self.name.textEdited.connect(self._on_name_edited)

        self.fields = FieldForm(TrainConfig, list(specs(TrainConfig)))  # type: ignore[arg-type]
        seed_box = self.fields["seed"]
        assert isinstance(seed_box, QSpinBox)
        seed_box.setRange(0, min(MAX_SEED, 2**31 - 1))
        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("e.g. mystyle (optional)")
        trigger_tip = "A word put before every caption; use it in a prompt to call the LoRA."
        self.trigger.setToolTip(trigger_tip)
        text_tip = ("What reads the prompt: the packaged MiniLM followed prompts better in "
                    "the measured comparison (models/sketch/README.md).")
        self.text = choice_box({"": "Frozen MiniLM (packaged)",
                                "trained": "Trained with the UNet (a small BERT)"}, text_tip)
        width_tip = ("The denoiser's size: a wide one learnt faster at first, but no better "
                     "after 10,000 steps (models/sketch/README.md).")
        self.width = choice_box(
            {"": "Standard (6 M parameters)",
             "wide": "Wide (9.5 M parameters, about 1.4× the time per step)"}, width_tip)
        extra_tips = {"trigger": trigger_tip, "text": text_tip, "width": width_tip}
        self.tips: dict[str, QLabel] = {}
        self.rows: dict[str, list[QWidget]] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        r = 0
        widgets = {**self.fields.widgets, "trigger": self.trigger, "text": self.text,
                   "width": self.width}
        labels = {**self.fields.labels, "trigger": QLabel("Trigger word"),
                  "text": QLabel("Text encoder"), "width": QLabel("UNet width")}
        for name, widget in widgets.items():
            tip_text = extra_tips.get(name) or self.fields.specs[name].tip
            tip = QLabel(tip_text)
            tip.setObjectName("muted")
            tip.setWordWrap(True)
            self.tips[name] = tip
            grid.addWidget(labels[name], r, 0)
            grid.addWidget(widget, r, 1)
            grid.addWidget(tip, r + 1, 0, 1, 2)
            grid.setRowMinimumHeight(r + 2, 6)
            self.rows[name] = [labels[name], widget, tip]
            r += 3

        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addWidget(section_label("What to train"))
        col.addWidget(self.recipe)
        col.addWidget(self.summary)
        col.addSpacing(6)
        col.addWidget(section_label("Data folder"))
        col.addWidget(self.data)
        col.addSpacing(6)
        col.addWidget(self.base_label)
        col.addWidget(self.base)
        col.addSpacing(6)
        col.addWidget(section_label("Run name"))
        col.addWidget(self.name)
        col.addSpacing(10)
        col.addWidget(section_label("Hyperparameters"))
        col.addLayout(grid)

        self.recipe.currentIndexChanged.connect(lambda _i: self._recipe_changed())
        self.data.changed.connect(self._data_changed)
        self.base.currentIndexChanged.connect(lambda _i: self.source_changed.emit())
        # what counts as too small depends on the resolution: the check is due again
        self.fields["resolution"].valueChanged.connect(lambda _v: self.source_changed.emit())
        ctx.catalog_changed.connect(lambda _entries: self.refresh_bases())
        self._recipe_changed()

    # ------------------------------------------------------------------ reading
    def info(self) -> RecipeInfo:
        return RECIPES[self.recipe.currentData()]

    def base_model(self) -> str:
        data = self.base.currentData()
        return data if isinstance(data, str) and self.info().needs_base else ""

    def config(self) -> TrainConfig:
        """The form as a TrainConfig (not validated: the caller shows what is wrong)."""
        info = self.info()
        values = {k: v for k, v in self.fields.values().items() if applies(info, k)}
        return config_for(info.id, data=self.data.folder(), name=self.name.text().strip(),
                          base=self.base_model(),
                          trigger=self.trigger.text().strip() if applies(info, "trigger")
                          else "",
                          text=self.text.currentData() if applies(info, "text") else "",
                          width=self.width.currentData() if applies(info, "width") else "",
                          **values)

    def shown_fields(self) -> list[str]:
        return [n for n, row in self.rows.items() if not row[1].isHidden()]

    # ------------------------------------------------------------------ writing
    def set_recipe(self, recipe: str) -> None:
        self.recipe.setCurrentIndex(self.recipe.findData(recipe))

    def set_config(self, config: TrainConfig, *, fresh_name: bool = False) -> None:
        """Show a run's config (Train again: `fresh_name` replaces a typed name with a new
        default one, since the run's own name is taken)."""
        if fresh_name:
            self._name_edited = False
        self.set_recipe(config.recipe)
        self.data.set_folder(config.data)
        self.fields.set_values(config)  # type: ignore[arg-type]
        self.trigger.setText(config.trigger)
        self.text.setCurrentIndex(max(0, self.text.findData(
            "" if config.text == "minilm" else config.text)))
        self.width.setCurrentIndex(max(0, self.width.findData(
            "" if config.width == "standard" else config.width)))
        if config.base:
            index = self.base.findData(config.base)
            if index < 0:
                self.base.addItem(f"{Path(config.base).name} (not found)", config.base)
                index = self.base.count() - 1
            self.base.setCurrentIndex(index)
        self.suggest_name()

    def refresh_bases(self) -> None:
        info = self.info()
        before = self.base.currentData()
        self.base.blockSignals(True)
        try:
            self.base.clear()
            for e in base_models(self.ctx.models, info):
                self.base.addItem(e.name, e.id)
                self.base.setItemData(self.base.count() - 1, f"{e.family} · {e.format}\n"
                                      f"{e.location}", Qt.ItemDataRole.ToolTipRole)
            if not self.base.count() and info.needs_base:
                families = ", ".join(info.base_families)
                self.base.addItem(f"No {families} model found: add one in Settings", "")
            index = self.base.findData(before)
            self.base.setCurrentIndex(max(0, index))
        finally:
            self.base.blockSignals(False)
        if self.base.currentData() != before:
            self.source_changed.emit()

    def suggest_name(self) -> None:
        """A fresh default name, unless the user typed one."""
        if not self._name_edited:
            self.name.setText(default_run_name(self.info().id, self.data.folder()))

    def _on_name_edited(self, text: str) -> None:
        self._name_edited = bool(text.strip())

    def _recipe_changed(self) -> None:
        info = self.info()
        self.summary.setText(info.summary)
        defaults = config_for(info.id)
        resolution = self.fields["resolution"]
        resolution.blockSignals(True)  # one source_changed for the whole recipe change
        self.fields.set_values(defaults)  # type: ignore[arg-type]
        resolution.blockSignals(False)
        for name, row in self.rows.items():
            for widget in row:
                widget.setVisible(applies(info, name))
        resolution.setSuffix(" tokens" if info.modality == "text" else " px")
        self.base_label.setVisible(info.needs_base)
        self.base.setVisible(info.needs_base)
        self.refresh_bases()
        self.suggest_name()
        self.source_changed.emit()

    def _data_changed(self, _folder: str) -> None:
        self.suggest_name()
        self.source_changed.emit()
