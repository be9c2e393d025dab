"""The Art panel's Grid section: an X/Y/Z plot or a prompt matrix of the form's request.

Up to three axes, each a request field (seed, steps, CFG, sampler, schedule, prompt S/R,
size, model, …, from `core.grid.axis_fields`) or a LoRA's weight (one "LoRA weight: NAME"
choice per LoRA the catalog lists, as the LoRA picker does), with values typed as A1111
takes them (`1-5`, `10-30 (+5)`, `1-10 [4]`, `a, b, "c, d"`); or the prompt matrix of the
prompt's `a | b | c` parts. The line under the axes says how many pictures the plot makes, or
the one sentence that is wrong. Run hands the plan to the panel, which queues it as one
job of the worker (`runtime.grids`): progress, previews and cancel are the panel's own.
`load_recipe` fills the section from a plot's recipe (a grid image dropped or opened).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.catalog import ModelEntry
from studio.core.errors import StudioError
from studio.core.fields import specs
from studio.core.grid import (
    AXIS_NAMES,
    LORA,
    PROMPT_SR,
    SIZE,
    GridPlan,
    axis_fields,
    lora_axis,
    lora_axis_name,
)
from studio.core.requests import (
    SCHEDULERS,
    SCHEDULES,
    ImageRequest,
    Request,
    check_scheduler,
)
from studio.ui.lora_picker import lora_entries

#: the fields most plots vary, first in the pickers; the others follow in form order
FIRST = ("seed", "steps", "guidance", "scheduler", "schedule", PROMPT_SR, SIZE, "model",
         "variation_seed", "variation_strength", "strength", "hires_scale", "hires_steps",
         "hires_strength", "hires_upscaler")
#: file paths are no axis worth typing
SKIPPED = ("init_image", "mask")
HINTS = {int: "1-5, 10-30 (+5) or 1-10 [4]", float: "5-9 (+0.5), 4, 7.5",
         str: "a, b, \"c, d\""}
SPECIAL_HINTS = {PROMPT_SR: "red, blue, green (the first is what the prompt says)",
                 SIZE: "512x512, 768x512", "scheduler": ", ".join(SCHEDULERS[:3]) + ", …",
                 "schedule": ", ".join(SCHEDULES[:3]) + ", …",
                 LORA: "0, 0.5, 1 or 0-1 (+0.25) (⋯ fills in 0-1 (+0.25))",
                 "model": "the models to compare (⋯ fills in every installed one)"}
DEBOUNCE_MS = 150


def schedule_fits(scheduler: str, schedule: str) -> bool:
    """Whether the sampler `scheduler` has the schedule type `schedule`."""
    try:
        check_scheduler(scheduler, schedule)
    except StudioError:
        return False
    return True


def quoted(values: Sequence[str]) -> str:
    """Values as an axis list: quoted where a comma or quote would split them."""
    def one(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if ("," in v or '"' in v) else v
    return ", ".join(one(v) for v in values)


class AxisRow:
    """One axis: which field, its values, and a ⋯ button that lists every choice."""

    def __init__(self, name: str, choices: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.field = QComboBox()
        self.field.addItem("—", "")
        for key, label in choices:
            self.field.addItem(label, key)
        self.field.setToolTip(f"The request field the {name} axis varies")
        self.values = QLineEdit()
        self.values.setToolTip("Values as A1111 takes them: lists (a, b, c), ranges (1-5), "
                               "steps (10-30 (+5)) or counts (1-10 [4])")
        self.fill = QToolButton()
        self.fill.setText("⋯")
        self.fill.setToolTip("Fill in every choice (samplers, installed models, upscalers)")

    def key(self) -> str:
        return str(self.field.currentData() or "")

    def set_loras(self, names: Sequence[str]) -> None:
        """One "LoRA weight: NAME" choice per LoRA, after the fields; the chosen one stays
        (a LoRA no longer listed keeps its choice until another is picked)."""
        current = self.key()
        self.field.blockSignals(True)
        for i in reversed(range(self.field.count())):
            key = str(self.field.itemData(i) or "")
            if key.startswith(LORA) and key != current:
                self.field.removeItem(i)
        for name in names:
            self.add_lora(name)
        self.field.blockSignals(False)

    def add_lora(self, name: str) -> None:
        key = lora_axis(name).name
        if self.field.findData(key) < 0:
            self.field.addItem(f"LoRA weight: {name}", key)

    def spec(self) -> tuple[str, str] | None:
        key = self.key()
        return (key, self.values.text()) if key else None


class GridSection(QWidget):
    """Axes, prompt matrix, batch count, how many pictures, and Run."""

    plan_changed = Signal(str)  # the summary line (tests and status)

    def __init__(self, base: Callable[[bool], Request], submit: Callable[[GridPlan], Any],
                 models: Callable[[], Sequence[ModelEntry]],
                 parent: QWidget | None = None, cls: type[Request] = ImageRequest) -> None:
        super().__init__(parent)
        self.cls = cls
        self.base = base  # base(for_run): the panel's request (for_run: with its inputs kept)
        self.submit = submit
        self.models = models
        fields = axis_fields(cls)
        table = specs(cls)
        order = [k for k in FIRST if k in fields] + [
            k for k in fields if k not in FIRST and k not in SKIPPED]
        choices = [(k, table[k].label if k in table else fields[k].label) for k in order]
        self.rows = [AxisRow(n, choices) for n in AXIS_NAMES]
        self.matrix = QCheckBox("Prompt matrix (every combination of the prompt's | parts)")
        self.matrix.setToolTip("A1111's prompt matrix: 'a cat | in the snow | at night' "
                               "renders the cat with each combination of the other parts")
        self.count = QSpinBox()
        self.count.setRange(1, 1000)
        self.count.setToolTip("Batch count: each cell this many times, seeds a batch apart")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("muted")
        self.run_button = QPushButton("Run grid")
        self.run_button.setToolTip("Render every cell (each saved with its recipe) and the "
                                   "labelled grid image")
        grid = QGridLayout()
        grid.setContentsMargins(14, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setColumnStretch(2, 1)
        for r, row in enumerate(self.rows):
            grid.addWidget(QLabel(row.name), r, 0)
            grid.addWidget(row.field, r, 1)
            grid.addWidget(row.values, r, 2)
            grid.addWidget(row.fill, r, 3)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Batch count"))
        bottom.addWidget(self.count)
        bottom.addStretch(1)
        bottom.addWidget(self.run_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addLayout(grid)
        col.addWidget(self.matrix)
        col.addWidget(self.summary)
        col.addLayout(bottom)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        for row in self.rows:
            row.field.currentIndexChanged.connect(lambda _i, r=row: self._field_chosen(r))
            row.values.textChanged.connect(self.changed)
            row.fill.clicked.connect(lambda _on=False, r=row: self.fill_choices(r))
            self._field_chosen(row)
        self.refresh_loras()
        self.matrix.toggled.connect(self._matrix_toggled)
        self.count.valueChanged.connect(self.changed)
        self.run_button.clicked.connect(self.run)
        self.refresh()

    # ------------------------------------------------------------------ editing
    def refresh_loras(self, entries: Sequence[ModelEntry] | None = None) -> None:
        """List the catalog's LoRAs as weight axes (the catalog changed, or at start)."""
        if "loras" not in specs(self.cls):
            return
        names = [e.name for e in lora_entries(self.models() if entries is None else entries)]
        for row in self.rows:
            row.set_loras(names)

    def set_axis(self, which: str, field: str, values: str) -> None:
        """Choose an axis's field and values ("X", "steps", "2, 4", or "" for none)."""
        row = self.rows[AXIS_NAMES.index(which.upper())]
        lora = lora_axis_name(field)
        if lora and "loras" in specs(self.cls):  # a plot's LoRA, listed or not
            field = lora_axis(lora).name
            row.add_lora(lora)
        row.field.setCurrentIndex(max(0, row.field.findData(field)))
        row.values.setText(values)
        self.refresh()

    def load_recipe(self, recipe: Mapping[str, Any]) -> None:
        """Fill the axes, the prompt matrix box and the batch count from a plot's recipe
        (`GridPlan.recipe()`); the base request is the panel's to fill. An axis field
        this form has no choice for stays unchosen, and the summary line says so."""
        matrix = bool(recipe.get("prompt_matrix"))
        self.matrix.setChecked(matrix)
        given = {str(e.get("axis", "")).upper(): e for e in recipe.get("axes") or []
                 if isinstance(e, Mapping)}
        for which in AXIS_NAMES:
            entry = given.get(which) if not matrix else None
            if entry is None:
                self.set_axis(which, "", "")
            else:
                self.set_axis(which, str(entry.get("field", "")), str(entry.get("values", "")))
        count = recipe.get("count", 1)
        self.count.setValue(count if isinstance(count, int) and count >= 1 else 1)
        self.refresh()

    def _field_chosen(self, row: AxisRow) -> None:
        key = row.key()
        af = axis_fields(self.cls).get(key)
        row.values.setEnabled(bool(key))
        lora = key.startswith(LORA)
        row.fill.setEnabled(lora or key in ("scheduler", "schedule", "model", "hires_upscaler",
                                            "inpaint_area"))
        hint = SPECIAL_HINTS.get(LORA if lora else key) or (HINTS.get(af.type, "") if af else "")
        row.values.setPlaceholderText(hint if key else "")
        self.changed()

    def fill_choices(self, row: AxisRow) -> None:
        """Every value the field can take: samplers, installed image models, upscalers."""
        key = row.key()
        values: list[str] = []
        if key.startswith(LORA):
            row.values.setText("0-1 (+0.25)")
            return
        if key == "scheduler":
            values = list(SCHEDULERS)
        elif key == "schedule":  # the schedules the form's sampler has
            scheduler = str(getattr(self.base(False), "scheduler", ""))
            values = [s for s in SCHEDULES if schedule_fits(scheduler, s)]
        elif key == "model":
            values = [e.id for e in self.models() if e.descriptor is not None
                      and e.descriptor.serves(self.cls.kind)]
        elif key == "hires_upscaler":
            from studio.core.requests import BUILTIN_UPSCALERS
            from studio.ui.hires_section import upscaler_models

            values = [*BUILTIN_UPSCALERS, *(e.id for e in upscaler_models(self.models()))]
        elif key == "inpaint_area":
            from studio.core.requests import INPAINT_AREAS

            values = list(INPAINT_AREAS)
        if values:
            row.values.setText(quoted(values))

    def _matrix_toggled(self, on: bool) -> None:
        for row in self.rows:
            for w in (row.field, row.values, row.fill):
                w.setEnabled(not on)
        if not on:
            for row in self.rows:
                self._field_chosen(row)
        self.changed()

    def changed(self, *_args: object) -> None:
        """Something the plan depends on changed: recount shortly (typing stays smooth)."""
        self._timer.start()

    # ------------------------------------------------------------------ the plan
    def plan(self, for_run: bool = False) -> GridPlan:
        """The plot of the form's request; StudioError with one sentence when it is wrong."""
        base = self.base(for_run)
        if self.matrix.isChecked():
            return GridPlan.prompt_matrix(base, count=self.count.value())
        x, y, z = (row.spec() for row in self.rows)
        return GridPlan.from_axes(base, x, y, z, count=self.count.value())

    def refresh(self) -> str:
        """Recount the pictures (or say what is wrong) on the summary line."""
        self._timer.stop()
        ok = True
        try:
            plan = self.plan()
        except StudioError as exc:
            text, ok = str(exc), False
        except ValueError as exc:
            text, ok = str(exc).split("\n")[0], False
        else:
            text = describe_plan(plan)
        self.summary.setText(text)
        self.summary.setObjectName("muted" if ok else "error")
        self.summary.setStyleSheet("" if ok else "color: #d9534f;")
        self.run_button.setEnabled(ok)
        self.plan_changed.emit(text)
        return text

    def run(self) -> Any:
        """Build the plan (with the canvas's inputs kept) and hand it to the panel."""
        try:
            plan = self.plan(for_run=True)
        except (StudioError, ValueError) as exc:
            self.summary.setText(str(exc).split("\n")[0])
            return None
        return self.submit(plan)


def describe_plan(plan: GridPlan) -> str:
    """'X Steps (2) × Y CFG (3) = 6 pictures, and the grid image'."""
    parts = []
    for name, axis in zip(AXIS_NAMES, plan.axes, strict=True):
        if axis is not None:
            label = "prompt parts" if plan.matrix else axis.name
            parts.append(f"{name} {label} ({len(axis)})")
    n = len(plan.cells)
    copies = f" ({plan.count} of each)" if plan.count > 1 else ""
    head = "Prompt matrix: " if plan.matrix else ""
    return (f"{head}{' × '.join(parts)} = {n} picture{'s' if n != 1 else ''}{copies}, "
            "and the grid image.")
