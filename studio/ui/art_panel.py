"""The Art panel: prompt → image, with live previews, a results strip and the recipe at hand.

Any picture can be the init image (open, paste, drop, "Use as init" on a result): the
canvas (`studio.ui.canvas`) then paints a mask over it and the request becomes img2img,
inpainting or outpainting; clearing it returns to text-to-image.

It builds an ImageRequest from the form and submits it through the panel base's job
tracker; everything it shows arrives through the job queue's signals, filtered by the
ids it submitted. The form's fields come from the request's field metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSlider,
    QStackedWidget,
    QTabBar,
    QToolButton,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.grid import GridPlan
from studio.core.requests import SAMPLERS, SCHEDULES, ImageRequest, Request, sampling
from studio.core.results import Preview, Result
from studio.core.upscale import UpscaleRequest
from studio.core.vaes import AUTOMATIC, list_vaes
from studio.runtime.context import AppContext
from studio.runtime.grids import grid_submit_options
from studio.runtime.tasks import run_in_pool
from studio.ui.canvas import CanvasControls, MaskCanvas
from studio.ui.forms import FieldForm, field_grid, set_choice
from studio.ui.grid_section import GridSection
from studio.ui.hires_section import HiresSection, upscale_menu
from studio.ui.image_view import ImageView
from studio.ui.images import contact_sheet, qimage_from_array
from studio.ui.lora_picker import LoraPicker
from studio.ui.panel import (
    GeneratePanel,
    PromptEdit,
    canvas_column,
    list_with_buttons,
    reveal_folder,
)
from studio.ui.widgets import (
    CollapsibleSection,
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
FIELDS = ("steps", "guidance", "width", "height", "batch_size", "variation_strength",
          "schedule", "clip_skip", "vae")


@dataclass
class ResultItem:
    """One picture in the results strip (or the whole batch as a sheet)."""

    image: QImage
    request: Request
    path: Path | None = None
    seed: int = -1
    paths: list[Path] = field(default_factory=list)


class ResultsStrip(QListWidget):
    """The batch's thumbnails in a row; says what it is for while empty."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.count() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.viewport().rect(), int(Qt.AlignmentFlag.AlignCenter),
                       "Each picture of a batch lands here: click one to view it.")


class ArtPanel(GeneratePanel):
    """Text-to-image: the form on the left, the canvas and results on the right."""

    modality = "image"
    noun = "pictures"
    request_type = ImageRequest
    prompt_placeholder = "Describe the picture… (Ctrl+Enter generates)"
    prompt_lines = 5
    model_tip = "The image model to use"

    generated = Signal(list)  # [Path] of the last finished job (for whoever cares)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._results: list[ResultItem] = []
        self._build()
        self._connect()
        self.assemble(self._canvas())
        self._update_size_preset()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.negative = PromptEdit("What to avoid (optional)", 2)
        vaes = [AUTOMATIC, *(v.name for v in list_vaes(self.ctx.settings))]
        self.fields = FieldForm(ImageRequest, FIELDS, choices={"schedule": SCHEDULES,
                                                               "vae": vaes}, editable=("vae",))
        self.steps = self.fields["steps"]
        self.guidance = self.fields["guidance"]
        self.width_box = self.fields["width"]
        self.height_box = self.fields["height"]
        self.batch = self.fields["batch_size"]
        self.variation_strength = self.fields["variation_strength"]
        for box in (self.width_box, self.height_box):
            box.setKeyboardTracking(False)
        self.size_preset = QComboBox()
        for label, w, h in SIZE_PRESETS:
            self.size_preset.addItem(label, f"{w}x{h}")
        self.size_preset.addItem(CUSTOM, None)
        swap = QToolButton()
        swap.setText("⇄")
        swap.setToolTip("Swap width and height")
        swap.clicked.connect(self._swap_sides)
        self.swap_button = swap
        self.scheduler = QComboBox()
        self.scheduler.addItems(list(SAMPLERS))
        self.scheduler.setCurrentText(ImageRequest().scheduler)
        self.scheduler.setToolTip("The sampler (scheduler) that walks from noise to picture")

        # variation: a second seed blended into the first
        self.variation_seed = SeedField(allow_reuse=False)
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

        size_row = QHBoxLayout()
        size_row.setSpacing(6)
        size_row.addWidget(self.width_box, 1)
        times = QLabel("×")
        times.setObjectName("muted")
        size_row.addWidget(times)
        size_row.addWidget(self.height_box, 1)
        size_row.addWidget(swap)
        self.negative_label = section_label("Negative prompt")
        self.sampler_label = QLabel("Sampler")
        form = self.form
        form.addSpacing(4)
        form.addWidget(self.negative_label)
        form.addWidget(self.negative, 1)
        form.addWidget(self.negative.note)
        form.addSpacing(8)
        form.addWidget(section_label("Settings"))
        form.addLayout(field_grid([
            [("Size", self.size_preset)],
            [("", size_row)],
            [self.fields.pair("steps"), self.fields.pair("guidance")],
            [(self.sampler_label, self.scheduler), self.fields.pair("schedule")],
            [self.fields.pair("clip_skip"), self.fields.pair("batch_size")],
            [self.fields.pair("vae")],
            [("Seed", self.seed)],
        ]))
        form.addSpacing(6)
        form.addWidget(self.variation)
        self.loras = LoraPicker(self.ctx)  # ImageRequest.loras, as <lora:...> tags are
        self.lora_section = CollapsibleSection("LoRAs", self.loras)
        form.addWidget(self.lora_section)
        self.hires = HiresSection()
        self.hires.set_upscalers(self.ctx.models)
        self.ctx.catalog_changed.connect(self.hires.set_upscalers)
        self.hires_section = CollapsibleSection("Hires fix", self.hires)
        form.addWidget(self.hires_section)
        self.grid = GridSection(self.grid_base, self.submit_grid, lambda: self.ctx.models)
        self.ctx.catalog_changed.connect(self.grid.refresh_loras)
        self.grid_box = CollapsibleSection("Grid (X/Y/Z plot, prompt matrix)", self.grid)
        form.addWidget(self.grid_box)
        self.mask_canvas = MaskCanvas()
        self.canvas_controls = CanvasControls(self.mask_canvas)
        self.canvas_controls.failed.connect(self.message.show_error)
        self.canvas_controls.init_changed.connect(self._init_changed)
        self.init_section = CollapsibleSection("Init image and mask", self.canvas_controls,
                                               expanded=True)
        form.addWidget(self.init_section)

    def _canvas(self) -> QWidget:
        self.view = ImageView("Your picture appears here.\nWrite a prompt and press Generate.")
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
        self.strip.currentRowChanged.connect(self._show_result)
        self.strip.itemClicked.connect(lambda item: self._show_result(self.strip.row(item)))
        self.open_folder_button.clicked.connect(self.open_folder)
        self.copy_recipe_button.clicked.connect(self.copy_recipe)
        self.use_init_button = QPushButton("Use as init")
        self.use_init_button.setToolTip("Start the next picture from this one (img2img)")
        self.use_init_button.clicked.connect(self.use_as_init)
        self.upscale_button = QPushButton("Upscale")
        self.upscale_button.setToolTip("Upscale this picture ×2 or ×4 (Lanczos or an upscaler "
                                       "model in models/upscale)")
        self.upscale_button.clicked.connect(self.show_upscale_menu)
        self.upscale_choices: QMenu | None = None  # the menu last shown (tests click it)
        bottom = list_with_buttons(self.strip, [self.open_folder_button,
                                                self.copy_recipe_button, self.use_init_button,
                                                self.upscale_button])
        self.tabs = QTabBar()
        self.tabs.addTab("Picture")
        self.tabs.addTab("Canvas")
        self.tabs.setTabToolTip(1, "The init image and its mask (paint over it)")
        self.tabs.setTabEnabled(1, False)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.mask_canvas)
        self.tabs.currentChanged.connect(self.stack.setCurrentIndex)
        return canvas_column([self.tabs, (self.stack, 1), self.progress, bottom])

    def _connect(self) -> None:
        for edit in (self.prompt, self.negative):  # prompt S/R and the matrix read them
            edit.textChanged.connect(self.grid.changed)
        self.size_preset.activated.connect(self._preset_chosen)
        self.width_box.valueChanged.connect(self._update_size_preset)
        self.height_box.valueChanged.connect(self._update_size_preset)
        for box in (self.width_box, self.height_box):
            box.valueChanged.connect(lambda _v: self.hires.set_base_size(
                self.width_box.value(), self.height_box.value()))
        self.hires.set_base_size(self.width_box.value(), self.height_box.value())

    # ------------------------------------------------------------------ the form
    def request(self) -> ImageRequest:
        """The form as a request (not yet validated: submit() does that)."""
        return ImageRequest(
            **self.common_values(),  # type: ignore[arg-type]
            negative=self.negative.toPlainText().strip(),
            scheduler=self.scheduler.currentText(),
            variation_seed=self.variation_seed.value(),
            loras=self.loras.values(),
            **self.fields.values(),
            **self.hires.values(),
        )

    def generate(self) -> int | None:
        """Queue the form with the canvas: its init image and mask written to files."""
        request = self.with_canvas(self.request())
        return self.submit(request) if request is not None else None

    def with_canvas(self, request: ImageRequest) -> ImageRequest | None:
        """`request` with the canvas's init image and mask (kept as files); None, with the
        sentence shown, when they could not be written."""
        try:
            if self.init_section.isEnabled():  # a family that reads no init image gets none
                return self.canvas_controls.apply(request)
            return request
        except OSError as exc:
            self.message.show_error(f"Could not keep the init image: {exc.strerror or exc}.")
            return None

    # ------------------------------------------------------------------ the grid
    def grid_base(self, for_run: bool) -> ImageRequest:
        """The request a plot varies: the form (for a run, with the canvas's inputs)."""
        request = self.request()
        if for_run:
            request = self.with_canvas(request) or request
        return request

    def submit_grid(self, plan: GridPlan) -> int | None:
        """Queue a plot as one job of the worker; its cells and grid arrive as one result."""
        return self.submit(plan.base, **grid_submit_options(plan))

    def apply_plot(self, recipe: dict[str, object]) -> None:
        """A grid image's plot back in the Grid section (after `apply_request` filled the
        form with its base): axes, values, prompt matrix and batch count, ready to Run."""
        if recipe.get("prompt_matrix"):  # the base holds the first part; the box, them all
            self.prompt.setPlainText(str(recipe["prompt_matrix"]))
        base = recipe.get("base")
        seed = base.get("variation_seed") if isinstance(base, dict) else None
        if isinstance(seed, int) and seed >= 0:  # drawn for the plot: an axis may use it
            self.variation_seed.set_value(seed)
        self.grid.load_recipe(recipe)
        self.grid_box.set_expanded(True)

    def fill(self, request: Request) -> None:
        assert isinstance(request, ImageRequest)
        self.canvas_controls.fill(request)
        self.negative.setPlainText(request.negative)
        self.fields.set_values(request)
        sampler, schedule = sampling(request.scheduler, request.schedule)  # old combined names
        if sampler in SAMPLERS:
            self.scheduler.setCurrentText(sampler)
        set_choice(self.fields["schedule"], schedule)
        self.variation_seed.set_value(
            request.variation_seed if request.variation_strength > 0 else -1)
        self.variation.set_expanded(request.variation_strength > 0)
        self.loras.set_values(request.loras)
        self.lora_section.set_expanded(bool(request.loras) or self.lora_section.is_expanded())
        self.hires.fill(request)
        if request.hires:
            self.hires_section.set_expanded(True)
        self._update_size_preset()

    def _init_changed(self, has_init: bool) -> None:
        """An init image sets the size (multiples of 8) and shows the canvas; none: back
        to text-to-image and the picture."""
        self.tabs.setTabEnabled(1, has_init)
        self.hires.setEnabled(not has_init)  # the hires fix refines text-to-image renders
        self.hires.setToolTip("The hires fix refines text-to-image renders; clear the init "
                              "image to use it." if has_init else "")
        if has_init:
            image = self.mask_canvas.image()
            for box, side in ((self.width_box, image.width()), (self.height_box, image.height())):
                box.setValue(max(box.minimum(), min(box.maximum(), side // 8 * 8)))
            self.init_section.set_expanded(True)
        self.tabs.setCurrentIndex(1 if has_init else 0)

    def use_as_init(self) -> None:
        """Start from the selected result (the whole sheet of a batch is not one picture)."""
        item = self.selected_result()
        if item is None or (item.path is None and item.paths):
            self.message.show_info("Choose one picture of the results first.")
            return
        self.canvas_controls.set_init(item.image, str(item.path or ""))

    def show_upscale_menu(self) -> None:
        """The upscalers, ×2 and ×4, for the selected picture (a saved one)."""
        if self._picked_file() is None:
            return
        if self.upscale_choices is not None:
            self.upscale_choices.deleteLater()
        self.upscale_choices = upscale_menu(self, self.ctx.models, self.upscale_result)
        button = self.upscale_button
        self.upscale_choices.popup(button.mapToGlobal(button.rect().bottomLeft()))

    def upscale_result(self, model: str, scale: int) -> int | None:
        """Queue an upscale of the selected picture; the result lands in the strip."""
        path = self._picked_file()
        if path is None:
            return None
        return self.submit(UpscaleRequest(model=model, image=str(path), scale=scale))

    def _picked_file(self) -> Path | None:
        """The selected result's file, or None with one sentence saying what to pick."""
        item = self.selected_result()
        if item is None or item.path is None:
            self.message.show_info("Choose one saved picture of the results first.")
            return None
        if not item.path.exists():
            self.message.show_error(f"{item.path.name} is no longer on disk.")
            return None
        return item.path

    def use_file_as_init(self, path: str) -> bool:
        """Start from a picture file ("Use as init" in the gallery or its lightbox): the
        Canvas tab shows it; False (and one sentence) when it is not a picture."""
        return self.canvas_controls.load_file(path)

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

    def optional_widgets(self) -> dict[str, Sequence[QWidget]]:
        return {"steps": (self.steps, self.fields.labels["steps"]),
                "guidance": (self.guidance, self.fields.labels["guidance"]),
                "scheduler": (self.scheduler, self.sampler_label),
                **{name: (self.fields[name], self.fields.labels[name])
                   for name in ("schedule", "clip_skip", "vae")},
                "negative": (self.negative, self.negative_label),
                "init_image": (self.init_section,), "loras": (self.lora_section,),
                "hires_scale": (self.hires_section,)}

    def on_model_changed(self, model: str) -> None:
        """Grey out the controls the model's family does not read (a GAN's one pass)."""
        self.grid.changed()
        unused = self.grey_out_unused(model)
        names = {"negative": "the negative prompt", "steps": "steps", "guidance": "CFG",
                 "scheduler": "sampler"}  # the init image's section greys out without a word
        listed = [names[n] for n in unused if n in names]
        if listed:
            said = ", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 \
                else listed[0]
            one_pass = " a one-pass generator;" if "steps" in unused else ""
            name = next((e.name for e in self.ctx.models if e.id == model), model)
            self.model_hint.setText(
                f"{name}:{one_pass} {said} do{'es' if len(listed) == 1 else ''} not "
                "apply. Try a batch of 8 or 16.")
        self.model_hint.setVisible(bool(listed))

    # ------------------------------------------------------------------ job hooks
    def on_preview(self, job_id: int, preview: Preview) -> None:
        if preview.kind != "image":
            return
        data = preview.data if isinstance(preview.data, list) else [preview.data]
        try:
            image = contact_sheet([qimage_from_array(a) for a in data])
        except ValueError:
            return
        caption = f"Preview · step {preview.step}/{preview.total}" if preview.total else "Preview"
        self.view.set_image(image, caption)
        self.tabs.setCurrentIndex(0)

    def on_finished(self, job_id: int, result: Result, paths: list[Path]) -> None:
        if isinstance(result.info, dict) and isinstance(result.info.get("grid"), dict):
            self._grid_finished(result, paths)
            return
        request = result.request
        images = [qimage_from_array(a) for a in result.images]
        seeds = result.info.get("seeds") if isinstance(result.info, dict) else None
        items: list[ResultItem] = []
        for i, img in enumerate(images):
            seed = seeds[i] if isinstance(seeds, list) and i < len(seeds) else request.seed + i
            path = paths[i] if i < len(paths) else None
            items.append(ResultItem(img, request, path, int(seed)))
        self._set_results(items, request, paths)
        self.tabs.setCurrentIndex(0)
        count = f"{len(images)} pictures" if len(images) > 1 else "Done"
        warned = result.info.get("prompt_warnings") if isinstance(result.info, dict) else None
        head = f"{count} in {self.took():.1f} s" + (f" · {' '.join(warned)}" if warned else "")
        self.progress.finish(self.finish_line(head, request.seed, paths))
        self.generated.emit(paths)

    def _grid_finished(self, result: Result, paths: list[Path]) -> None:
        """A plot: the labelled grid first (what the view shows), then each cell."""
        info = result.info
        images = [qimage_from_array(a) for a in result.images]
        try:
            cells = [c.request for c in GridPlan.from_recipe(info["grid"]).first_cells()]
        except (StudioError, ValueError, TypeError, KeyError):
            cells = []
        files = [Path(f) if f else None for f in info.get("cell_files", [])]
        seeds = list(info.get("seeds", []))[1:]
        items = [ResultItem(images[0], result.request, paths[0] if paths else None, -1)]
        for i, image in enumerate(images[1:]):
            request = cells[i] if i < len(cells) else result.request
            items.append(ResultItem(image, request, files[i] if i < len(files) else None,
                                    int(seeds[i]) if i < len(seeds) else request.seed))
        self._set_results(items, result.request, paths, sheet=False, first_label="Grid")
        self.tabs.setCurrentIndex(0)
        cols, rows, subs = info.get("grid_shape", [len(images) - 1, 1, 1])
        shape = f"{cols}×{rows}" + (f"×{subs}" if subs > 1 else "")
        head = f"Grid {shape}: {len(images) - 1} pictures in {self.took():.1f} s"
        self.progress.finish(self.finish_line(head, result.request.seed, paths[:1]))
        self.generated.emit(paths)

    def on_started(self, job_id: int, request: Request) -> None:
        if self.view.caption().startswith("Cancelled"):  # that was the job before this one
            self.view.set_caption("Starting…")

    def on_cancelled(self, job_id: int, was_running: bool) -> None:
        super().on_cancelled(job_id, was_running)
        if (was_running or not self.jobs.busy()) and self.view.caption().startswith("Preview"):
            self.view.set_caption("Cancelled: nothing was saved")

    # ------------------------------------------------------------------ results
    def _set_results(self, items: list[ResultItem], request: Request, paths: list[Path], *,
                     sheet: bool = True, first_label: str = "") -> None:
        self._results = []
        self.strip.blockSignals(True)
        self.strip.clear()
        if sheet and len(items) > 1:
            whole = contact_sheet([it.image for it in items])
            self._add_result(ResultItem(whole, request, None, -1, paths), "All")
        for i, it in enumerate(items):
            label = first_label if i == 0 and first_label else (
                str(it.seed) if it.seed >= 0 else "")
            self._add_result(it, label)
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
            seed = f"Seed {item.seed}" if item.seed >= 0 else "Grid"
            caption = f"{seed} · {w}×{h} · {item.path.name}"
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
        reveal_folder(folder or self.ctx.settings.output_path)

    def copy_recipe(self) -> None:
        """Copy A1111-style text: read back from the saved PNG (what others will see)."""
        item = self.selected_result()
        if item is None:
            self.message.show_info("Nothing to copy yet: generate a picture first.")
            return
        path = item.path or (item.paths[0] if item.paths else None)
        request = item.request
        if item.seed >= 0 and request.seed != item.seed and item.path:
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
