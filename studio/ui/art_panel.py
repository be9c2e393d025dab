"""The Art panel: prompt → image, with live previews, a results strip and the recipe at hand.

It builds an ImageRequest from the form and submits it to ctx.jobs; everything it
shows arrives through the job queue's signals, filtered by the ids it submitted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtGui import QShortcut as _QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import MAX_BATCH, MAX_SIDE, SCHEDULERS, ImageRequest, Request
from studio.core.results import Preview, Result
from studio.runtime.tasks import run_in_pool
from studio.runtime.tracker import JobTracker
from studio.ui.images import contact_sheet, qimage_from_array
from studio.ui.widgets import (
    CollapsibleSection,
    ImageView,
    MessageLabel,
    ModelPicker,
    ProgressRow,
    SeedField,
    copy_icon,
    folder_icon,
    guarded,
    section_label,
)

#: (label, width, height); "Custom" is added after these
SIZE_PRESETS: tuple[tuple[str, int, int], ...] = (
    ("512 × 512  square", 512, 512),
    ("768 × 768  square", 768, 768),
    ("1024 × 1024  square", 1024, 1024),
    ("512 × 768  portrait", 512, 768),
    ("768 × 512  landscape", 768, 512),
    ("640 × 960  portrait", 640, 960),
    ("960 × 640  landscape", 960, 640),
    ("832 × 1216  portrait (XL)", 832, 1216),
    ("1216 × 832  landscape (XL)", 1216, 832),
    ("256 × 256  draft", 256, 256),
)
CUSTOM = "Custom"
THUMB = 72


@dataclass
class ResultItem:
    """One picture in the results strip (or the whole batch as a sheet)."""

    image: QImage
    request: Request
    path: Path | None = None
    seed: int = -1
    paths: list[Path] = field(default_factory=list)


class _PromptEdit(QPlainTextEdit):
    """A multi-line prompt box; Tab moves focus on instead of typing a tab."""

    def __init__(self, placeholder: str, lines: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        fm = self.fontMetrics()
        self.setMinimumHeight(fm.lineSpacing() * lines + 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, self.minimumHeight())


class ResultsStrip(QListWidget):
    """The batch's thumbnails in a row; says what it is for while empty."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.count() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.viewport().rect(), int(Qt.AlignmentFlag.AlignCenter),
                       "Each picture of a batch lands here: click one to view it.")


class FormScroll(QScrollArea):
    """A vertical-only scroll area that is never narrower than the form inside it."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 300
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(width + bar + 2 * self.frameWidth(), 200)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = self.minimumSizeHint()
        return QSize(max(hint.width(), 380), 600)


class ArtPanel(QWidget):
    """Text-to-image: the form on the left, the canvas and results on the right."""

    generated = Signal(list)  # [Path] of the last finished job (for whoever cares)
    submitted = Signal(int)  # the id of a job this panel queued

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs = JobTracker(ctx.jobs, self)  # this panel's jobs and their signals
        self._started_at = 0.0
        self._results: list[ResultItem] = []
        self._build()
        self._connect()
        self._update_size_preset()
        self._update_buttons()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model = ModelPicker(self.ctx, "image")
        self.model.setToolTip("The image model to use")
        self.prompt = _PromptEdit("Describe the picture… (Ctrl+Enter generates)", 5)
        self.negative = _PromptEdit("What to avoid (optional)", 2)

        self.size_preset = QComboBox()
        for label, w, h in SIZE_PRESETS:
            self.size_preset.addItem(label, f"{w}x{h}")
        self.size_preset.addItem(CUSTOM, None)
        self.width_box = self._side_box("Width in pixels (a multiple of 8)")
        self.height_box = self._side_box("Height in pixels (a multiple of 8)")
        swap = QToolButton()
        swap.setText("⇄")
        swap.setToolTip("Swap width and height")
        swap.clicked.connect(self._swap_sides)
        self.swap_button = swap

        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(20)
        self.steps.setToolTip("Denoising steps: more is slower and usually finer")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.guidance.setValue(7.0)
        self.guidance.setToolTip("CFG scale: how closely to follow the prompt")
        self.scheduler = QComboBox()
        self.scheduler.addItems(list(SCHEDULERS))
        self.scheduler.setCurrentText("Euler a")
        self.scheduler.setToolTip("The sampler (scheduler) that walks from noise to picture")
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setToolTip("How many pictures one click makes")
        self.seed = SeedField()

        # variation: a second seed blended into the first
        self.variation_seed = SeedField(allow_reuse=False)
        self.variation_strength = QDoubleSpinBox()
        self.variation_strength.setRange(0.0, 1.0)
        self.variation_strength.setSingleStep(0.05)
        self.variation_strength.setDecimals(2)
        self.variation_slider = QSlider(Qt.Orientation.Horizontal)
        self.variation_slider.setRange(0, 100)
        self.variation_slider.valueChanged.connect(
            lambda v: self.variation_strength.setValue(v / 100))
        self.variation_strength.valueChanged.connect(
            lambda v: self.variation_slider.setValue(round(v * 100)))
        var_body = QWidget()
        var_form = QFormLayout(var_body)
        var_form.setContentsMargins(14, 0, 0, 0)
        var_form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        var_form.addRow("Seed", self.variation_seed)
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.variation_slider, 1)
        strength_row.addWidget(self.variation_strength)
        var_form.addRow("Strength", strength_row)
        hint = QLabel("Blends a second seed's noise in: small strengths give close variations "
                      "of the same picture.")
        hint.setWordWrap(True)
        hint.setObjectName("muted")
        var_form.addRow(hint)
        self.variation = CollapsibleSection("Variation", var_body)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Generate (Ctrl+Enter). Clicking again queues more.")
        self.generate_button.setMinimumHeight(36)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this panel's running and waiting jobs (Esc)")
        self.cancel_button.setMinimumHeight(36)
        self.message = MessageLabel()

        # the form column ------------------------------------------------------
        form = QWidget()
        form.setObjectName("formColumn")
        col = QVBoxLayout(form)
        col.setContentsMargins(16, 14, 16, 14)
        col.setSpacing(6)
        col.addWidget(section_label("Model"))
        col.addWidget(self.model)
        col.addSpacing(8)
        col.addWidget(section_label("Prompt"))
        col.addWidget(self.prompt, 3)
        col.addSpacing(4)
        col.addWidget(section_label("Negative prompt"))
        col.addWidget(self.negative, 1)
        col.addSpacing(8)
        col.addWidget(section_label("Settings"))
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        size_row = QHBoxLayout()
        size_row.setSpacing(6)
        size_row.addWidget(self.width_box, 1)
        times = QLabel("×")
        times.setObjectName("muted")
        size_row.addWidget(times)
        size_row.addWidget(self.height_box, 1)
        size_row.addWidget(swap)
        self._label_for = {}
        rows = [
            ("Size", self.size_preset, None, None),
            ("", size_row, None, None),
            ("Steps", self.steps, "CFG", self.guidance),
            ("Sampler", self.scheduler, "Batch", self.batch),
            ("Seed", self.seed, None, None),
        ]
        for r, (l1, w1, l2, w2) in enumerate(rows):
            lab = QLabel(l1)
            grid.addWidget(lab, r, 0)
            self._label_for[l1] = lab
            span = 1 if w2 is not None else 3
            if isinstance(w1, QWidget):
                grid.addWidget(w1, r, 1, 1, span)
            else:
                grid.addLayout(w1, r, 1, 1, span)
            if w2 is not None:
                lab2 = QLabel(l2)
                self._label_for[l2] = lab2
                grid.addWidget(lab2, r, 2)
                grid.addWidget(w2, r, 3)
        col.addLayout(grid)
        col.addSpacing(6)
        col.addWidget(self.variation)
        self.model_hint = QLabel("")
        self.model_hint.setObjectName("muted")
        self.model_hint.setWordWrap(True)
        self.model_hint.hide()
        col.insertWidget(2, self.model_hint)

        scroll = FormScroll()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # Generate stays in sight however short the window: pinned under the fields
        actions = QWidget()
        actions.setObjectName("formColumn")
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.generate_button, 3)
        buttons.addWidget(self.cancel_button, 1)
        act_col = QVBoxLayout(actions)
        act_col.setContentsMargins(16, 8, 16, 14)
        act_col.setSpacing(6)
        act_col.addLayout(buttons)
        act_col.addWidget(self.message)
        left = QWidget()
        left_col = QVBoxLayout(left)
        left_col.setContentsMargins(0, 0, 0, 0)
        left_col.setSpacing(0)
        left_col.addWidget(scroll, 1)
        left_col.addWidget(actions)

        # the canvas column ----------------------------------------------------
        self.view = ImageView("Your picture appears here.\nWrite a prompt and press Generate.")
        self.progress = ProgressRow()
        self.strip = ResultsStrip()
        self.strip.setObjectName("resultsStrip")
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(THUMB, THUMB))
        self.strip.setSpacing(4)
        self.strip.setFixedHeight(THUMB + 44)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.strip.setToolTip("This batch: click a picture to view it")
        self.open_folder_button = QPushButton(folder_icon(), "Open folder")
        self.open_folder_button.setToolTip("Show the output folder in your file manager")
        self.copy_recipe_button = QPushButton(copy_icon(), "Copy recipe")
        self.copy_recipe_button.setToolTip(
            "Copy the settings as A1111-style text (paste into Studio, A1111 or a forum post)")
        side = QVBoxLayout()
        side.setSpacing(6)
        side.addWidget(self.open_folder_button)
        side.addWidget(self.copy_recipe_button)
        side.addStretch(1)
        bottom = QHBoxLayout()
        bottom.setSpacing(10)
        bottom.addWidget(self.strip, 1)
        bottom.addLayout(side)

        canvas = QWidget()
        canvas.setObjectName("canvasColumn")
        right = QVBoxLayout(canvas)
        right.setContentsMargins(14, 14, 16, 14)
        right.setSpacing(10)
        right.addWidget(self.view, 1)
        right.addWidget(self.progress)
        right.addLayout(bottom)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(canvas)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 820])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

    def _side_box(self, tip: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(64, MAX_SIDE)
        box.setSingleStep(8)
        box.setValue(512)
        box.setSuffix(" px")
        box.setToolTip(tip)
        box.setKeyboardTracking(False)
        return box

    def _connect(self) -> None:
        jobs = self.jobs
        jobs.started.connect(self._on_started)
        jobs.status.connect(lambda _id, text: self.progress.set_status(text))
        jobs.progress.connect(lambda _id, progress: self.progress.set_progress(progress))
        jobs.preview.connect(self._on_preview)
        jobs.finished.connect(self._on_finished)
        jobs.failed.connect(self._on_failed)
        jobs.cancelled.connect(self._on_cancelled)
        jobs.changed.connect(self._update_buttons)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.size_preset.activated.connect(self._preset_chosen)
        self.width_box.valueChanged.connect(self._update_size_preset)
        self.height_box.valueChanged.connect(self._update_size_preset)
        self.strip.currentRowChanged.connect(self._show_result)
        self.strip.itemClicked.connect(lambda item: self._show_result(self.strip.row(item)))
        self.open_folder_button.clicked.connect(self.open_folder)
        self.copy_recipe_button.clicked.connect(self.copy_recipe)
        self.model.model_changed.connect(self._model_changed)
        self._model_changed(self.model.current_model())
        ctx_shortcut = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = _QShortcut(QKeySequence(keys), self)
            sc.setContext(ctx_shortcut)
            sc.activated.connect(self.generate)
        esc = _QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.setContext(ctx_shortcut)
        esc.activated.connect(self.cancel)

    # ------------------------------------------------------------------ the form
    def request(self) -> ImageRequest:
        """The form as a request (not yet validated: submit() does that)."""
        return ImageRequest(
            model=self.model.current_model(),
            prompt=self.prompt.toPlainText().strip(),
            negative=self.negative.toPlainText().strip(),
            seed=self.seed.value(),
            steps=self.steps.value(),
            guidance=round(self.guidance.value(), 2),
            width=self.width_box.value(),
            height=self.height_box.value(),
            scheduler=self.scheduler.currentText(),
            batch_size=self.batch.value(),
            variation_seed=self.variation_seed.value(),
            variation_strength=round(self.variation_strength.value(), 3),
        )

    def apply_request(self, request: Request) -> None:
        """Fill the form from a request (a recipe, the gallery, a dropped file)."""
        if not isinstance(request, ImageRequest):
            self.message.show_error(f"That recipe is for {request.kind or 'another'} "
                                    "generation, not for pictures.")
            return
        if request.model:
            self.model.set_model(request.model)
        self.prompt.setPlainText(request.prompt)
        self.negative.setPlainText(request.negative)
        self.seed.set_value(request.seed)
        self.steps.setValue(request.steps)
        self.guidance.setValue(request.guidance)
        self.width_box.setValue(request.width)
        self.height_box.setValue(request.height)
        if request.scheduler in SCHEDULERS:
            self.scheduler.setCurrentText(request.scheduler)
        self.batch.setValue(request.batch_size)
        self.variation_seed.set_value(
            request.variation_seed if request.variation_strength > 0 else -1)
        self.variation_strength.setValue(request.variation_strength)
        self.variation.set_expanded(request.variation_strength > 0)
        self._update_size_preset()
        self.message.show_info("Settings loaded from the recipe.")

    def set_prompt(self, text: str) -> None:
        """Put a prompt in the box (from the Text panel's "Send to Art")."""
        self.prompt.setPlainText(text)
        self.prompt.setFocus()

    def _preset_chosen(self, index: int) -> None:
        size = self.size_preset.itemData(index)
        if size:
            w, h = (int(v) for v in size.split("x"))
            for box, v in ((self.width_box, w), (self.height_box, h)):
                box.blockSignals(True)
                box.setValue(v)
                box.blockSignals(False)

    def _update_size_preset(self, *_args) -> None:
        size = f"{self.width_box.value()}x{self.height_box.value()}"
        index = self.size_preset.findData(size)
        if index < 0:
            index = self.size_preset.findText(CUSTOM)
        self.size_preset.setCurrentIndex(index)

    def _swap_sides(self) -> None:
        w, h = self.width_box.value(), self.height_box.value()
        self.width_box.blockSignals(True)
        self.width_box.setValue(h)
        self.width_box.blockSignals(False)
        self.height_box.setValue(w)

    def _model_changed(self, model: str) -> None:
        """Built-in GANs make fixed-size pictures in one pass: grey out what doesn't apply."""
        entry = next((e for e in self.ctx.models if e.id == model), None)
        gan = entry is not None and entry.family == "GAN"
        for w in (self.negative, self.steps, self.guidance, self.scheduler):
            w.setEnabled(not gan)
        for name in ("CFG", "Steps", "Sampler"):
            self._label_for[name].setEnabled(not gan)
        if gan:
            self.model_hint.setText(
                f"{entry.name}: a one-pass generator; steps, CFG, sampler and the negative "
                "prompt do not apply. Try a batch of 8 or 16.")
        self.model_hint.setVisible(gan)

    # ------------------------------------------------------------------ actions
    def generate(self) -> int | None:
        """Queue the form as a job; a bad field is reported under the buttons."""
        try:
            job_id = self.jobs.submit(self.request())
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        except ValueError as exc:  # a value the widgets let through but the request refuses
            self.message.show_error(str(exc).splitlines()[0])
            return None
        self.message.clear_message()
        self.submitted.emit(job_id)
        if self.jobs.current is None:
            self.progress.start("Queued…")
        return job_id

    def cancel(self) -> None:
        """Stop this panel's running job and drop the ones waiting behind it."""
        self.jobs.cancel_all()

    def busy(self) -> bool:
        return self.jobs.busy()

    def _update_buttons(self) -> None:
        waiting = self.jobs.waiting
        self.cancel_button.setEnabled(self.jobs.busy())
        self.generate_button.setText(f"Generate  (+{waiting} queued)" if waiting else "Generate")

    # ------------------------------------------------------------------ job signals
    def _on_started(self, job_id: int, request: Request) -> None:
        self._started_at = time.perf_counter()
        self.progress.start("Starting…")

    def _on_preview(self, job_id: int, preview: Preview) -> None:
        if preview.kind != "image":
            return
        data = preview.data if isinstance(preview.data, list) else [preview.data]
        try:
            image = contact_sheet([qimage_from_array(a) for a in data])
        except ValueError:
            return
        caption = f"Preview · step {preview.step}/{preview.total}" if preview.total else "Preview"
        self.view.set_image(image, caption)

    def _on_finished(self, job_id: int, result: Result, paths: list) -> None:
        request = result.request
        images = [qimage_from_array(a) for a in result.images]
        paths = [Path(p) for p in paths]
        seeds = result.info.get("seeds") if isinstance(result.info, dict) else None
        items: list[ResultItem] = []
        for i, img in enumerate(images):
            seed = seeds[i] if isinstance(seeds, list) and i < len(seeds) else request.seed + i
            path = paths[i] if i < len(paths) else None
            items.append(ResultItem(img, request, path, int(seed)))
        self._set_results(items, request, paths)
        seed = getattr(request, "seed", -1)
        if isinstance(seed, int) and seed >= 0:
            self.seed.set_last_seed(seed)
        took = time.perf_counter() - self._started_at
        where = f" · saved {paths[0].name}" if paths else ""
        count = f"{len(images)} pictures" if len(images) > 1 else "Done"
        self.progress.finish(f"{count} in {took:.1f} s · seed {seed}{where}")
        self.generated.emit(paths)

    def _on_failed(self, job_id: int, message: str) -> None:
        self.progress.reset("Failed.")
        self.message.show_error(message)

    def _on_cancelled(self, job_id: int, was_running: bool) -> None:
        if was_running or not self.jobs.busy():
            self.progress.reset("Cancelled.")
            if self.view.caption().startswith("Preview"):
                self.view.set_caption("Cancelled: nothing was saved")

    # ------------------------------------------------------------------ results
    def _set_results(self, items: list[ResultItem], request: Request, paths: list[Path]) -> None:
        self._results = []
        self.strip.blockSignals(True)
        self.strip.clear()
        if len(items) > 1:
            sheet = contact_sheet([it.image for it in items])
            self._add_result(ResultItem(sheet, request, None, -1, paths), "All")
        for it in items:
            self._add_result(it, str(it.seed) if it.seed >= 0 else "")
        self.strip.blockSignals(False)
        if self._results:
            self.strip.setCurrentRow(0)
            self._show_result(0)

    def _add_result(self, item: ResultItem, label: str) -> None:
        thumb = item.image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
        entry = QListWidgetItem(QIcon(QPixmap.fromImage(thumb)), label)
        entry.setToolTip(str(item.path) if item.path else f"{len(item.paths)} pictures")
        entry.setSizeHint(QSize(THUMB + 12, THUMB + 26))
        self.strip.addItem(entry)
        self._results.append(item)

    def _show_result(self, row: int) -> None:
        if not 0 <= row < len(self._results):
            return
        item = self._results[row]
        req = item.request
        w, h = item.image.width(), item.image.height()
        if item.path is not None:
            caption = f"Seed {item.seed} · {w}×{h} · {item.path.name}"
        else:
            caption = f"{len(item.paths) or len(self._results) - 1} pictures · seed {req.seed}"
        self.view.set_image(item.image, caption)

    def results(self) -> list[ResultItem]:
        return list(self._results)

    def selected_result(self) -> ResultItem | None:
        row = self.strip.currentRow()
        if 0 <= row < len(self._results):
            return self._results[row]
        return self._results[0] if self._results else None

    def open_folder(self) -> None:
        item = self.selected_result()
        folder = None
        if item is not None:
            first = item.path or (item.paths[0] if item.paths else None)
            folder = first.parent if first is not None else None
        folder = folder or self.ctx.settings.output_path
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def copy_recipe(self) -> None:
        """Copy A1111-style text: read back from the saved PNG (what others will see)."""
        item = self.selected_result()
        if item is None:
            self.message.show_info("Nothing to copy yet: generate a picture first.")
            return
        path = item.path or (item.paths[0] if item.paths else None)
        request = item.request
        if item.seed >= 0 and getattr(request, "seed", -1) != item.seed and item.path:
            request = request.replace(seed=item.seed)

        def read() -> str:
            if path is not None and path.exists():
                from studio.core.recipes import read_recipe

                recipe = read_recipe(path)
                if recipe.parameters:
                    return recipe.parameters
            return recipe_text(request)

        run_in_pool(read, guarded(self, self._copied),
                    on_failed=guarded(self, lambda _m: self._copied(recipe_text(request))))

    def _copied(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.message.show_info("Recipe copied to the clipboard.")


def recipe_text(request: Request) -> str:
    """A1111 infotext for a request; our JSON when the metadata writer is unavailable."""
    try:
        from studio.core.metadata import format_infotext

        return format_infotext(request)
    except Exception:  # the writer belongs to core; a recipe is still worth copying
        return json.dumps(request.to_dict(), ensure_ascii=False, indent=2)
