"""The Explore panel: the latent-space explorer (anchors, the pad, directions, variations, walks).

Pick 2–4 anchors (a seed, plus a prompt for diffusion models or an eye colour for the
eye GAN, or take them from any saved output); the pad's corners are the anchors and the
puck blends them. Sliders below move along the model's principal directions (GANs) or
along the noise and prompt differences between the anchors (diffusion). The variation
grid shows nine children around the current point; clicking one makes it the centre.
Walks render a path through the anchors to GIF and MP4.

Everything is a request: each frame is an ExploreRequest sent on the job queue's
"explore" lane (latest wins). The panel keeps at most one explorer job in flight and
remembers only the newest position while it runs, so a fast drag never builds a backlog
and the last frame shown is always the last position. Built-in GANs render every frame;
diffusion models render a quick preview while dragging and the full frame once the pad
settles. Saving, rating and walks go through the ordinary generate lane.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.explore import (
    EASINGS,
    GRID_SIZE,
    MAX_ANCHORS,
    DirectionNames,
    ExploreRequest,
    grid_child_seed,
    pad_weights,
)
from studio.core.requests import SCHEDULERS, ImageRequest, Request
from studio.core.results import Preview, Progress, Result
from studio.core.seeds import draw_seed
from studio.runtime.tasks import run_in_pool
from studio.ui.images import qimage_from_array
from studio.ui.latent_pad import ANCHOR_COLOURS, LatentPad
from studio.ui.widgets import (
    MessageLabel,
    ModelPicker,
    ProgressRow,
    SeedField,
    StarRating,
    close_icon,
    folder_icon,
    play_icon,
    section_label,
)

log = logging.getLogger(__name__)

#: the built-in GANs and their native sides (frames are rendered at this size live)
GAN_SIDES = {"builtin:faces": 64, "builtin:eyes": 128}
SAVE_SCALES = (1, 2, 4, 8)
SETTLE_MS = 450  # a drag that pauses this long counts as settled (diffusion full render)
SLIDER_STEPS = 100  # slider ticks per unit of offset


def is_gan(model: str) -> bool:
    return model in GAN_SIDES


# ------------------------------------------------------------------------------- pieces


class FrameView(QWidget):
    """The big preview: the frame scaled to fit (smoothly), with a note about its size.

    A 64² model shown at 512 px is an upscale, and the note says so ("64² model, shown
    ×8"), so nobody mistakes the GAN's output for a high-resolution picture.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._pixmap: QPixmap | None = None
        self._native: tuple[int, int] | None = None
        self._caption = ""
        self._placeholder = "Pick anchors and drag on the pad"
        self.setMinimumSize(280, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setObjectName("FrameView")

    def set_frame(self, image: QImage, native: tuple[int, int] | None = None,
                  caption: str = "") -> None:
        self._image = image
        self._pixmap = QPixmap.fromImage(image) if not image.isNull() else None
        self._native = native
        self._caption = caption
        self.update()

    def image(self) -> QImage:
        return self._image

    def set_caption(self, caption: str) -> None:
        self._caption = caption
        self.update()

    def caption(self) -> str:
        return self._caption

    def shown_scale(self) -> float:
        """On-screen pixels per model pixel."""
        if self._pixmap is None:
            return 1.0
        w, h = self._pixmap.width(), self._pixmap.height()
        fit = min((self.width() - 24) / w, (self.height() - 24) / h)
        native = self._native or (w, h)
        return max(fit, 0.01) * w / native[0]

    def note(self) -> str:
        """"64² model, shown ×6" for small models; "" when the frame is shown at its size."""
        if self._pixmap is None or self._native is None:
            return ""
        nw, nh = self._native
        side = f"{nw}²" if nw == nh else f"{nw}×{nh}"
        scale = self.shown_scale()
        if scale < 1.05:
            return f"{side} frame"
        shown = f"{scale:.0f}" if scale >= 3 else f"{scale:.1f}"
        return f"{side} model, shown ×{shown}"

    def _target(self) -> QRectF:
        assert self._pixmap is not None
        w, h = self._pixmap.width(), self._pixmap.height()
        s = min((self.width() - 24) / w, (self.height() - 24) / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(21, 22, 26))
        if self._pixmap is None:
            p.setPen(QColor(120, 122, 135))
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self._placeholder)
            return
        target = self._target()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 90))
        p.drawRoundedRect(target.adjusted(-4, -3, 4, 6), 6, 6)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        f = QFont(self.font())
        f.setPixelSize(12)
        p.setFont(f)
        fm = p.fontMetrics()
        for text, top in ((self.note(), True), (self._caption, False)):
            if not text:
                continue
            w = fm.horizontalAdvance(text) + 16
            h = fm.height() + 8
            y = target.top() + 10 if top else target.bottom() - h - 10
            box = QRectF(target.left() + 10, y, w, h)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 160))
            p.drawRoundedRect(box, 6, 6)
            p.setPen(QColor(236, 236, 242))
            p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)


class ColourDot(QWidget):
    def __init__(self, colour: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = colour
        self.setFixedSize(14, 14)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.colour)
        p.drawEllipse(QRectF(1, 1, 12, 12))


class AnchorCard(QFrame):
    """One anchor: its seed (dice for a new one), a prompt where the model has one,
    "from a saved output", and remove."""

    changed = Signal()
    remove_requested = Signal(object)
    file_requested = Signal(object)

    def __init__(self, index: int, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("anchorCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.index = index
        self.dot = ColourDot(ANCHOR_COLOURS[index])
        self.title = QLabel(f"Anchor {index + 1}")
        self.title.setObjectName("sectionLabel")
        self.seed = SeedField(allow_reuse=False)
        self.seed.set_value(seed)
        self.seed.dice.setToolTip("A new random seed for this anchor")
        self.seed.dice.clicked.disconnect()
        self.seed.dice.clicked.connect(self._new_seed)
        self.seed.edit.editingFinished.connect(self._seed_edited)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("prompt for this anchor")
        self.prompt.editingFinished.connect(self.changed.emit)
        self.from_file = QToolButton()
        self.from_file.setIcon(folder_icon())
        self.from_file.setToolTip("Take seed and prompt from a saved output…")
        self.from_file.clicked.connect(lambda: self.file_requested.emit(self))
        self.remove = QToolButton()
        self.remove.setIcon(close_icon())
        self.remove.setToolTip("Remove this anchor")
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self))
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(6)
        top.addWidget(self.dot)
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.from_file)
        top.addWidget(self.remove)
        col = QVBoxLayout(self)
        col.setContentsMargins(8, 6, 8, 8)
        col.setSpacing(4)
        col.addLayout(top)
        col.addWidget(self.seed)
        col.addWidget(self.prompt)
        self._last_seed = seed

    def seed_value(self) -> int:
        """The anchor's seed; an empty box gets a fresh one (the explorer needs fixed seeds)."""
        try:
            value = self.seed.value()
        except ValueError:
            value = -1
        if value == -1:
            value = draw_seed()
            self.seed.set_value(value)
        return value

    def set_anchor(self, seed: int, prompt: str | None = None) -> None:
        self.seed.set_value(seed)
        self._last_seed = seed
        if prompt is not None:
            self.prompt.setText(prompt)

    def _new_seed(self) -> None:
        self.set_anchor(draw_seed())
        self.changed.emit()

    def _seed_edited(self) -> None:
        value = self.seed_value()
        if value != self._last_seed:
            self._last_seed = value
            self.changed.emit()


class DirectionRow(QWidget):
    """One direction: its name (double-click to rename), a ±range slider, the value."""

    offset_changed = Signal(str, float)
    released = Signal()
    rename_requested = Signal(str)

    def __init__(self, key: str, label: str, value_range: float, unit: str = "",
                 tip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.range = value_range
        self.unit = unit
        self.name = QLabel(label)
        self.name.setMinimumWidth(96)
        self.name.setToolTip((tip + "\n" if tip else "") + "Double-click to rename")
        self.name.mouseDoubleClickEvent = lambda _e: self.rename_requested.emit(self.key)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-round(value_range * SLIDER_STEPS), round(value_range * SLIDER_STEPS))
        self.slider.setValue(0)
        self.slider.setPageStep(SLIDER_STEPS // 4)
        self.slider.setToolTip(f"−{value_range:g}{unit} … +{value_range:g}{unit}")
        # a two-sided slider: no "filled" part growing from the left end
        self.slider.setStyleSheet("QSlider::sub-page:horizontal { background: #33343c; }")
        self.slider.valueChanged.connect(self._changed)
        self.slider.sliderReleased.connect(self.released.emit)
        self.value_label = QLabel(self._text(0.0))
        self.value_label.setObjectName("muted")
        self.value_label.setMinimumWidth(52)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.reset = QToolButton()
        self.reset.setText("↺")
        self.reset.setToolTip("Back to 0")
        self.reset.clicked.connect(lambda: (self.set_value(0.0, emit=True), self.released.emit()))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.name)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        row.addWidget(self.reset)

    def _text(self, value: float) -> str:
        return f"{value:+.2f}{self.unit}"

    def value(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_value(self, value: float, *, emit: bool = False) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(max(-self.range, min(self.range, value)) * SLIDER_STEPS))
        self.slider.blockSignals(False)
        self.value_label.setText(self._text(self.value()))
        if emit:
            self.offset_changed.emit(self.key, self.value())

    def set_label(self, text: str) -> None:
        self.name.setText(text)

    def _changed(self, _v: int) -> None:
        self.value_label.setText(self._text(self.value()))
        self.offset_changed.emit(self.key, self.value())


class GridCell(QToolButton):
    """One child of the variation grid (the centre is the current point)."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setIconSize(QSize(84, 84))
        self.setFixedSize(QSize(92, 92))
        self.setObjectName("gridCell")
        centre = index == GRID_SIZE // 2
        self.setToolTip("The current point: click for new children" if centre
                        else "Make this child the centre")
        if centre:
            self.setStyleSheet("QToolButton#gridCell { border: 2px solid #7c5cff; }")


# --------------------------------------------------------------------------------- panel


class ExplorePanel(QWidget):
    """The latent explorer (see the module docstring)."""

    frame_shown = Signal(object)  # the ExploreRequest whose frame the view now shows

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.names = DirectionNames()
        self.shown_request: ExploreRequest | None = None
        self.shown_thumbs: ExploreRequest | None = None
        self.last_result: Result | None = None
        self._jobs: dict[int, str] = {}  # job id → "frame" | "grid" | "anchors" | "walk" | "save"
        self._submitted: dict[int, float] = {}
        self._slots: dict[str, ExploreRequest | None] = {"frame": None, "anchors": None,
                                                         "grid": None}
        self._inflight: int | None = None
        self._inflight_request: ExploreRequest | None = None
        self._shown_once = False
        self.jobs_started = 0  # explorer-lane jobs submitted (tests, the benchmark)
        self._offsets: dict[str, float] = {}
        self._direction_rows: dict[str, DirectionRow] = {}
        self._direction_keys: list[str] = []
        self._explicit_weights: list[float] | None = None
        self._variations: list[tuple[int, float]] = []
        self._grid_seed = draw_seed()
        self._saved: dict[int, Path] = {}  # hash(request) → saved path
        self._pending_rating: tuple[int, int] | None = None  # (hash(request), rating)
        self._walk_job: int | None = None
        self._walk_frames: list[QImage] = []
        self._play_index = 0
        self._anchor_cards: list[AnchorCard] = []
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._settled)
        self._player = QTimer(self)
        self._player.timeout.connect(self._next_walk_frame)
        self._build()
        self._connect()
        for seed in (draw_seed(), draw_seed()):
            self._add_anchor(seed, render=False)
        self._model_changed(self.model.current_model())

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model = ModelPicker(self.ctx, "image")
        self.model.setToolTip("The model whose latent space to explore")
        if "builtin:faces" in self.model.model_ids():
            self.model.set_model("builtin:faces")
        self.anchor_row = QHBoxLayout()
        self.anchor_row.setSpacing(8)
        self.add_anchor_button = QPushButton("+ Anchor")
        self.add_anchor_button.setToolTip("Add an anchor (up to four: the pad's corners)")
        self.add_anchor_button.clicked.connect(lambda: self._add_anchor(draw_seed()))
        top = QHBoxLayout()
        top.setSpacing(10)
        model_col = QVBoxLayout()
        model_col.addWidget(section_label("Model"))
        model_col.addWidget(self.model)
        model_col.addStretch(1)
        top.addLayout(model_col)
        top.addLayout(self.anchor_row, 1)
        top.addWidget(self.add_anchor_button, 0, Qt.AlignmentFlag.AlignBottom)

        # left: the pad and the blend weights
        self.pad = LatentPad()
        self.weights_box = QWidget()
        self.weights_layout = QFormLayout(self.weights_box)
        self.weights_layout.setContentsMargins(0, 0, 0, 0)
        self.weights_layout.setSpacing(4)
        self._weight_sliders: list[QSlider] = []
        self.blend_hint = QLabel("Drag the puck, or set the weights:")
        self.blend_hint.setObjectName("muted")
        left = QWidget()
        left.setObjectName("formColumn")
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(12, 12, 12, 12)
        lcol.setSpacing(8)
        lcol.addWidget(section_label("Blend"))
        lcol.addWidget(self.pad)
        lcol.addWidget(self.blend_hint)
        lcol.addWidget(self.weights_box)
        tips = QLabel("Corners are the anchors; the puck blends them (slerp for noise, "
                      "lerp for prompts). Arrow keys nudge the puck.")
        tips.setObjectName("muted")
        tips.setWordWrap(True)
        lcol.addWidget(tips)
        lcol.addStretch(1)
        left.setMinimumWidth(300)

        # right: the view, actions, then the tabs of sliders/grid/walk
        self.view = FrameView()
        self.timing = QLabel("")
        self.timing.setObjectName("muted")
        self.save_button = QPushButton("Save this point")
        self.save_button.setObjectName("primary")
        self.save_button.setToolTip("Save the frame as an output; its recipe holds the anchors, "
                                    "weights, variation steps and direction offsets")
        self.save_scale = QComboBox()
        for s in SAVE_SCALES:
            self.save_scale.addItem(f"×{s}", s)
        self.save_scale.setCurrentIndex(SAVE_SCALES.index(4))
        self.save_scale.setToolTip("Saved frames and walks of the built-in GANs are "
                                   "upscaled by this factor (Lanczos)")
        self.stars = StarRating()
        self.stars.setToolTip("Rate this frame (saves it first)")
        self.favourite = QToolButton()
        self.favourite.setText("♥")
        self.favourite.setCheckable(True)
        self.favourite.setToolTip("Favourite this frame (saves it with five stars)")
        self.message = MessageLabel()
        actions = QHBoxLayout()
        actions.setSpacing(8)
        actions.addWidget(self.save_button)
        actions.addWidget(self.save_scale)
        actions.addSpacing(8)
        actions.addWidget(self.stars)
        actions.addWidget(self.favourite)
        actions.addStretch(1)
        actions.addWidget(self.timing)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_directions(), "Directions")
        self.tabs.addTab(self._build_grid(), "Variations")
        self.tabs.addTab(self._build_walk(), "Walk")
        self.tabs.addTab(self._build_render(), "Render")
        self.tabs.setMinimumHeight(250)

        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(12, 12, 12, 12)
        rcol.setSpacing(8)
        rcol.addWidget(self.view, 3)
        rcol.addLayout(actions)
        rcol.addWidget(self.message)
        rcol.addWidget(self.tabs, 2)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 820])
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 10, 12, 0)
        col.setSpacing(8)
        col.addLayout(top)
        col.addWidget(split, 1)

    def _build_directions(self) -> QWidget:
        self.directions_box = QWidget()
        self.directions_layout = QVBoxLayout(self.directions_box)
        self.directions_layout.setContentsMargins(4, 4, 4, 4)
        self.directions_layout.setSpacing(4)
        self.directions_hint = QLabel("Directions appear with the first frame.")
        self.directions_hint.setObjectName("muted")
        self.directions_hint.setWordWrap(True)
        self.directions_layout.addWidget(self.directions_hint)
        self.directions_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.directions_box)
        self.reset_directions = QPushButton("Reset all")
        self.reset_directions.clicked.connect(self._reset_directions)
        page = QWidget()
        col = QVBoxLayout(page)
        col.setContentsMargins(0, 6, 0, 0)
        col.addWidget(scroll, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.reset_directions)
        col.addLayout(row)
        return page

    def _build_grid(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout()
        grid.setSpacing(4)
        self.grid_cells: list[GridCell] = []
        for i in range(GRID_SIZE):
            cell = GridCell(i)
            cell.clicked.connect(lambda _c=False, i=i: self.pick_child(i))
            grid.addWidget(cell, i // 3, i % 3)
            self.grid_cells.append(cell)
        self.spread = QSlider(Qt.Orientation.Horizontal)
        self.spread.setRange(1, 100)
        self.spread.setValue(30)
        self.spread.setToolTip("How far the children stray from the centre")
        self.spread_label = QLabel("0.30")
        self.spread_label.setObjectName("muted")
        self.new_children = QPushButton("New children")
        self.new_children.setToolTip("Draw nine new children around the current point")
        self.undo_step = QPushButton("Undo step")
        self.undo_step.setToolTip("Go back to the point before the last child you picked")
        self.steps_label = QLabel("")
        self.steps_label.setObjectName("muted")
        side = QVBoxLayout()
        side.addWidget(section_label("Spread"))
        srow = QHBoxLayout()
        srow.addWidget(self.spread, 1)
        srow.addWidget(self.spread_label)
        side.addLayout(srow)
        side.addWidget(self.new_children)
        side.addWidget(self.undo_step)
        side.addWidget(self.steps_label)
        side.addStretch(1)
        row = QHBoxLayout(page)
        row.addLayout(grid)
        row.addSpacing(12)
        row.addLayout(side, 1)
        return page

    def _build_walk(self) -> QWidget:
        page = QWidget()
        self.walk_frames = QSpinBox()
        self.walk_frames.setRange(2, 1000)
        self.walk_frames.setValue(48)
        self.walk_loop = QCheckBox("Loop back to the first anchor")
        self.walk_easing = QComboBox()
        self.walk_easing.addItems(EASINGS)
        self.walk_easing.setCurrentText("ease-in-out")
        self.walk_fps = QSpinBox()
        self.walk_fps.setRange(1, 60)
        self.walk_fps.setValue(12)
        self.walk_button = QPushButton("Render walk")
        self.walk_button.setObjectName("primary")
        self.walk_button.setToolTip("Render a path through the anchors to GIF and MP4")
        self.walk_cancel = QPushButton("Cancel")
        self.walk_cancel.setEnabled(False)
        self.walk_play = QToolButton()
        self.walk_play.setIcon(play_icon())
        self.walk_play.setCheckable(True)
        self.walk_play.setEnabled(False)
        self.walk_play.setToolTip("Play the last walk in the view")
        self.walk_progress = ProgressRow()
        self.walk_result = QLabel("")
        self.walk_result.setObjectName("muted")
        self.walk_result.setWordWrap(True)
        self.walk_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Frames", self.walk_frames)
        form.addRow("Easing", self.walk_easing)
        form.addRow("Frames/s", self.walk_fps)
        form.addRow("", self.walk_loop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.walk_button)
        buttons.addWidget(self.walk_cancel)
        buttons.addWidget(self.walk_play)
        buttons.addStretch(1)
        col = QVBoxLayout(page)
        col.addLayout(form)
        col.addLayout(buttons)
        col.addWidget(self.walk_progress)
        col.addWidget(self.walk_result)
        col.addStretch(1)
        return page

    def _build_render(self) -> QWidget:
        page = QWidget()
        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.steps.setValue(20)
        self.preview_steps = QSpinBox()
        self.preview_steps.setRange(1, 50)
        self.preview_steps.setValue(4)
        self.preview_steps.setToolTip("Steps of the quick preview rendered while dragging")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(7.0)
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(64, 2048)
            box.setSingleStep(64)
            box.setValue(512)
        self.preview_size = QSpinBox()
        self.preview_size.setRange(64, 1024)
        self.preview_size.setSingleStep(64)
        self.preview_size.setValue(256)
        self.scheduler = QComboBox()
        self.scheduler.addItems(SCHEDULERS)
        self.scheduler.setCurrentText("Euler")
        self.scheduler.setToolTip("Deterministic samplers (Euler, DDIM, DPM++) make walks "
                                  "end exactly on the anchors' own images")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("negative prompt (optional)")
        self.render_note = QLabel("")
        self.render_note.setObjectName("muted")
        self.render_note.setWordWrap(True)
        form = QFormLayout(page)
        form.addRow(self.render_note)
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_box)
        form.addRow("Size", size)
        form.addRow("Steps", self.steps)
        form.addRow("Preview steps", self.preview_steps)
        form.addRow("Preview size", self.preview_size)
        form.addRow("CFG scale", self.guidance)
        form.addRow("Sampler", self.scheduler)
        form.addRow("Negative", self.negative)
        self._render_fields = [self.steps, self.preview_steps, self.guidance, self.width_box,
                               self.height_box, self.preview_size, self.scheduler, self.negative]
        for box in (self.steps, self.width_box, self.height_box, self.preview_steps,
                    self.preview_size):
            box.editingFinished.connect(self._rerender)
        self.guidance.editingFinished.connect(self._rerender)
        self.scheduler.currentIndexChanged.connect(lambda _i: self._rerender())
        self.negative.editingFinished.connect(self._rerender)
        return page

    def _connect(self) -> None:
        jobs = self.ctx.jobs
        jobs.job_finished.connect(self._job_finished)
        jobs.job_failed.connect(self._job_failed)
        jobs.job_cancelled.connect(self._job_cancelled)
        jobs.job_preview.connect(self._job_preview)
        jobs.job_progress.connect(self._job_progress)
        jobs.job_status.connect(self._job_status)
        self.model.model_changed.connect(self._model_changed)
        self.pad.position_changed.connect(self._pad_moved)
        self.pad.settled.connect(lambda _x, _y: self._settled())
        self.save_button.clicked.connect(self.save_point)
        self.stars.rating_changed.connect(self.rate)
        self.favourite.toggled.connect(lambda on: self.rate(5 if on else 0))
        self.spread.valueChanged.connect(self._spread_changed)
        self.spread.sliderReleased.connect(self._refresh_grid)
        self.new_children.clicked.connect(self.reseed_children)
        self.undo_step.clicked.connect(self.undo_variation)
        self.walk_button.clicked.connect(self.render_walk)
        self.walk_cancel.clicked.connect(self.cancel_walk)
        self.walk_play.toggled.connect(self._play_walk)
        self.save_scale.currentIndexChanged.connect(lambda _i: self._update_note())
        self.tabs.currentChanged.connect(lambda _i: self._refresh_grid())

    # ------------------------------------------------------------------ anchors
    def _add_anchor(self, seed: int, prompt: str = "", *, render: bool = True) -> AnchorCard | None:
        if len(self._anchor_cards) >= MAX_ANCHORS:
            return None
        card = AnchorCard(len(self._anchor_cards), seed)
        card.prompt.setText(prompt)
        card.changed.connect(self._anchors_changed)
        card.remove_requested.connect(self._remove_anchor)
        card.file_requested.connect(self._anchor_from_file)
        self._anchor_cards.append(card)
        self.anchor_row.addWidget(card, 1)
        self._layout_anchors()
        if render:
            self._anchors_changed()
        return card

    def _remove_anchor(self, card: AnchorCard) -> None:
        if len(self._anchor_cards) <= 1:
            return
        self._anchor_cards.remove(card)
        card.setParent(None)
        card.deleteLater()
        for i, c in enumerate(self._anchor_cards):
            c.index = i
            c.dot.colour = ANCHOR_COLOURS[i]
            c.dot.update()
            c.title.setText(f"Anchor {i + 1}")
        self._layout_anchors()
        self._anchors_changed()

    def _layout_anchors(self) -> None:
        n = len(self._anchor_cards)
        self.add_anchor_button.setEnabled(n < MAX_ANCHORS)
        for c in self._anchor_cards:
            c.remove.setEnabled(n > 1)
        self.pad.set_anchor_count(n)
        self._explicit_weights = None
        self._rebuild_weight_sliders()
        self._update_prompt_fields()

    def set_anchors(self, seeds: list[int], prompts: list[str] | None = None) -> None:
        """Replace the anchors (tests, recipes, "use these settings")."""
        for card in list(self._anchor_cards):
            card.setParent(None)
            card.deleteLater()
        self._anchor_cards.clear()
        prompts = prompts or [""] * len(seeds)
        for seed, prompt in zip(seeds[:MAX_ANCHORS], prompts, strict=False):
            self._add_anchor(seed, prompt, render=False)
        self._anchors_changed()

    def anchor_seeds(self) -> list[int]:
        return [c.seed_value() for c in self._anchor_cards]

    def _anchors_changed(self) -> None:
        self._variations.clear()
        self.shown_thumbs = None
        self._update_steps_label()
        self._queue_anchor_thumbs()
        self._request_frame(settled=True)

    def _anchor_from_file(self, card: AnchorCard) -> None:
        start = str(self.ctx.settings.output_path)
        path, _ = QFileDialog.getOpenFileName(
            self, "Take an anchor from a saved output", start,
            "Outputs (*.png *.jpg *.jpeg *.webp *.gif *.mp4);;All files (*)")
        if path:
            self.anchor_from_path(card, Path(path))

    def anchor_from_path(self, card: AnchorCard, path: Path) -> None:
        """Read a saved output's recipe (off the GUI thread) and use its seed and prompt."""

        def read() -> Request | str:
            from studio.core.recipes import read_recipe

            try:
                return read_recipe(path).to_request()
            except StudioError as exc:
                return str(exc)

        def done(value: Request | str) -> None:
            if isinstance(value, str):
                self.message.show_error(value)
                return
            if card not in self._anchor_cards:
                return
            if isinstance(value, ExploreRequest):
                seed = value.anchors[0] if value.anchors else value.seed
                prompt = value.anchor_prompts()[0] if value.anchors else value.prompt
            else:
                seed, prompt = value.seed, value.prompt
            card.set_anchor(seed, prompt)
            model = getattr(value, "model", "")
            note = f"Anchor {card.index + 1} from {path.name} (seed {seed})."
            if model and model != self.model.current_model():
                note += f" It was made with {Path(model).name or model}."
            self.message.show_info(note)
            self._anchors_changed()

        run_in_pool(read, done, on_failed=self.message.show_error)

    def _update_prompt_fields(self) -> None:
        model = self.model.current_model()
        eyes = model == "builtin:eyes"
        show = eyes or not is_gan(model)
        for c in self._anchor_cards:
            c.prompt.setVisible(show)
            c.prompt.setPlaceholderText(
                "eye colour: blue, green, hazel…" if eyes else "prompt for this anchor")

    # ------------------------------------------------------------------ weights
    def _rebuild_weight_sliders(self) -> None:
        while self.weights_layout.rowCount():
            self.weights_layout.removeRow(0)
        self._weight_sliders = []
        for i in range(len(self._anchor_cards)):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            colour = ANCHOR_COLOURS[i].name()
            slider.setStyleSheet(
                f"QSlider::sub-page:horizontal {{ background: {colour}; border-radius: 2px; }}")
            slider.valueChanged.connect(self._weight_moved)
            slider.sliderReleased.connect(self._settled)
            dot = ColourDot(ANCHOR_COLOURS[i])
            self.weights_layout.addRow(dot, slider)
            self._weight_sliders.append(slider)
        self._show_weights(self.current_weights())

    def current_weights(self) -> list[float]:
        if self._explicit_weights is not None:
            total = sum(self._explicit_weights) or 1.0
            return [w / total for w in self._explicit_weights]
        x, y = self.pad.position()
        return pad_weights(len(self._anchor_cards), x, y)

    def _show_weights(self, weights: list[float]) -> None:
        for slider, w in zip(self._weight_sliders, weights, strict=False):
            slider.blockSignals(True)
            slider.setValue(round(w * 100))
            slider.blockSignals(False)

    def _weight_moved(self, _value: int) -> None:
        values = [s.value() for s in self._weight_sliders]
        if sum(values) <= 0:
            return
        self._explicit_weights = [float(v) for v in values]
        self.blend_hint.setText("Weights set by hand (touch the pad to go back to it)")
        self._request_frame()

    # ------------------------------------------------------------------ requests
    def _native_side(self) -> int | None:
        return GAN_SIDES.get(self.model.current_model())

    def _size(self, *, for_saving: bool) -> tuple[int, int]:
        side = self._native_side()
        if side is not None:
            scale = int(self.save_scale.currentData() or 1) if for_saving else 1
            return side * scale, side * scale
        return self.width_box.value() // 8 * 8, self.height_box.value() // 8 * 8

    def point_request(self, *, fast: bool = False, for_saving: bool = False) -> ExploreRequest:
        """The ExploreRequest of the current point (what the view shows, or will)."""
        model = self.model.current_model()
        seeds = self.anchor_seeds()
        conditional = not is_gan(model) or model == "builtin:eyes"
        prompts = tuple(c.prompt.text().strip() for c in self._anchor_cards) \
            if conditional else ()
        width, height = self._size(for_saving=for_saving)
        x, y = self.pad.position()
        weights = tuple(round(w, 6) for w in self.current_weights()) \
            if self._explicit_weights is not None else ()
        return ExploreRequest(
            model=model,
            prompt=prompts[0] if prompts else "",
            anchors=tuple(seeds),
            prompts=prompts if any(prompts) else (),
            negative=self.negative.text().strip() if not is_gan(model) else "",
            weights=weights,
            pad_x=round(x, 6),
            pad_y=round(y, 6),
            variation_seeds=tuple(s for s, _ in self._variations),
            variation_strengths=tuple(st for _, st in self._variations),
            directions={k: round(v, 4) for k, v in self._offsets.items() if v},
            mode="point",
            frames=self.walk_frames.value(),
            loop=self.walk_loop.isChecked(),
            easing=self.walk_easing.currentText(),
            fps=self.walk_fps.value(),
            spread=self.spread.value() / 100,
            steps=self.steps.value(),
            guidance=self.guidance.value(),
            width=width,
            height=height,
            scheduler=self.scheduler.currentText(),
            fast=fast and not is_gan(model),
            preview_steps=min(self.preview_steps.value(), self.steps.value()),
            preview_size=self.preview_size.value(),
        )

    def _request_frame(self, *, settled: bool = False) -> None:
        """Render the current point: every frame for GANs, a preview then the full frame
        for diffusion models."""
        if not self.model.current_model():
            return
        diffusion = not is_gan(self.model.current_model())
        fast = diffusion and not settled
        self._queue("frame", self.point_request(fast=fast))
        if fast:
            self._settle.start()
        elif not diffusion or settled:
            self._settle.stop()

    def _settled(self) -> None:
        """The pad/slider came to rest: the full frame (diffusion), then the variations."""
        self._settle.stop()
        if not is_gan(self.model.current_model()):
            full = self.point_request(fast=False)
            running = self._inflight_request
            if running is not None and running.fast and self._inflight is not None:
                self.ctx.jobs.cancel(self._inflight)  # its preview is stale: start the full one
            if self.shown_request != full.resolved():
                self._queue("frame", full)
        self._refresh_grid()

    def _rerender(self) -> None:
        self._queue_anchor_thumbs()
        self._request_frame(settled=True)

    def _queue(self, slot: str, request: ExploreRequest) -> None:
        """Keep only the newest request per slot; send it when no explorer job runs."""
        self._slots[slot] = request
        self._pump()

    def _pump(self) -> None:
        if self._inflight is not None or not self._shown_once:
            return  # nothing renders before the tab is first opened (app start stays light)
        for slot in ("frame", "anchors", "grid"):
            request = self._slots[slot]
            if request is None:
                continue
            self._slots[slot] = None
            t0 = time.perf_counter()  # before submit: the worker may start at once
            try:
                job = self.ctx.jobs.submit(request, lane="explore", save=False)
            except StudioError as exc:
                self.message.show_error(str(exc))
                continue
            self.jobs_started += 1
            self._inflight = job
            self._inflight_request = request
            self._jobs[job] = slot
            self._submitted[job] = t0
            return

    def _pad_moved(self, x: float, y: float) -> None:
        if self._explicit_weights is not None:
            self._explicit_weights = None
            self.blend_hint.setText("Drag the puck, or set the weights:")
        self._show_weights(pad_weights(len(self._anchor_cards), x, y))
        self._request_frame()

    # ------------------------------------------------------------------ directions
    def _set_directions(self, described: list[dict[str, Any]], *, force: bool = False) -> None:
        """(Re)build the sliders when the model's directions differ from those shown."""
        keys = [d.get("key", "") for d in described]
        if keys == self._direction_keys and not force:
            return
        for row in self._direction_rows.values():
            row.setParent(None)
            row.deleteLater()
        self._direction_rows.clear()
        self._direction_keys = keys
        model = self.model.current_model()
        layout = self.directions_layout
        layout.takeAt(layout.count() - 1)  # the stretch
        for d in described:
            key = str(d.get("key", ""))
            default = str(d.get("label") or key.upper())
            variance = float(d.get("variance") or 0.0)
            tip = f"{variance * 100:.1f}% of the layer's variance" if variance else ""
            row = DirectionRow(key, self.names.name(model, key, default),
                               float(d.get("range") or 1.0), str(d.get("unit") or ""), tip)
            row.set_value(self._offsets.get(key, 0.0))
            row.offset_changed.connect(self._offset_changed)
            row.released.connect(self._settled)
            row.rename_requested.connect(self.rename_direction)
            layout.addWidget(row)
            self._direction_rows[key] = row
        layout.addStretch(1)
        if described:
            principal = any(k.startswith("pc") for k in keys)
            self.directions_hint.setText(
                "Principal directions of the model (GANSpace), strongest first; ±3σ. "
                "Double-click a name to rename it." if principal else
                "Move along the noise and the prompt from anchor 1 toward anchor 2.")
        else:
            self.directions_hint.setText("Add a second anchor for directions between anchors.")
        self._offsets = {k: v for k, v in self._offsets.items() if k in self._direction_rows}

    def _offset_changed(self, key: str, value: float) -> None:
        self._offsets[key] = value
        self._request_frame()

    def set_offset(self, key: str, value: float) -> None:
        """Move one direction's slider (tests, recipes)."""
        self._offsets[key] = value
        row = self._direction_rows.get(key)
        if row is not None:
            row.set_value(value)
        self._request_frame(settled=True)

    def _reset_directions(self) -> None:
        self._offsets.clear()
        for row in self._direction_rows.values():
            row.set_value(0.0)
        self._request_frame(settled=True)

    def rename_direction(self, key: str, name: str | None = None) -> None:
        """Give a direction a name of your own (kept per model; recipes keep the key)."""
        model = self.model.current_model()
        row = self._direction_rows.get(key)
        if name is None:
            current = row.name.text() if row is not None else key.upper()
            name, ok = QInputDialog.getText(self, "Rename direction",
                                            f"A name for {key.upper()}:", text=current)
            if not ok:
                return
        try:
            self.names.rename(model, key, name)
        except OSError as exc:
            self.message.show_error(f"Could not save the name: {exc.strerror or exc}.")
            return
        if row is not None:
            row.set_label(self.names.name(model, key))

    # ------------------------------------------------------------------ variations
    def _spread_changed(self, value: int) -> None:
        self.spread_label.setText(f"{value / 100:.2f}")

    def _refresh_grid(self) -> None:
        """Render the nine children around the current point (when the grid is visible)."""
        if self.tabs.currentIndex() != 1 or not self.model.current_model():
            return
        request = replace(self.point_request(fast=True), mode="grid", seed=self._grid_seed)
        self._queue("grid", request)

    def reseed_children(self) -> None:
        self._grid_seed = draw_seed()
        self._refresh_grid()

    def pick_child(self, index: int) -> None:
        """Make grid child `index` the current point (the centre draws new children)."""
        if index == GRID_SIZE // 2:
            self.reseed_children()
            return
        self._variations.append((grid_child_seed(self._grid_seed, index),
                                 self.spread.value() / 100))
        self._grid_seed = draw_seed()
        self._update_steps_label()
        self._request_frame(settled=True)
        self._refresh_grid()

    def undo_variation(self) -> None:
        if self._variations:
            self._variations.pop()
            self._update_steps_label()
            self._request_frame(settled=True)
            self._refresh_grid()

    def _update_steps_label(self) -> None:
        n = len(self._variations)
        self.undo_step.setEnabled(n > 0)
        self.steps_label.setText(f"{n} step{'s' if n != 1 else ''} from the blend" if n else "")

    # ------------------------------------------------------------------ model
    def _model_changed(self, model: str) -> None:
        gan = is_gan(model)
        self._offsets.clear()
        self._set_directions([], force=True)
        self.directions_hint.setText("Directions appear with the first frame.")
        self._variations.clear()
        self._update_steps_label()
        self._update_prompt_fields()
        self.save_scale.setVisible(gan)
        self.tabs.setTabVisible(3, not gan)
        for w in self._render_fields:
            w.setEnabled(not gan)
        self.render_note.setText(
            "" if gan else "Diffusion renders a quick preview while you drag (fewer steps, "
            "smaller, decoded cheaply) and the full frame when the pad settles.")
        self._anchors_changed()

    def _queue_anchor_thumbs(self) -> None:
        if not self.model.current_model() or not self._anchor_cards:
            return
        request = replace(self.point_request(fast=True), mode="anchors", weights=(),
                          variation_seeds=(), variation_strengths=(), directions={})
        self._queue("anchors", request)

    # ------------------------------------------------------------------ job signals
    def _job_finished(self, job_id: int, result: Result, paths: list) -> None:
        kind = self._jobs.pop(job_id, None)
        if kind is None:
            return
        if job_id == self._inflight:
            self._inflight = None
            self._inflight_request = None
        started = self._submitted.pop(job_id, None)
        if kind == "frame":
            self._show_frame(result, started)
        elif kind == "anchors":
            thumbs = [qimage_from_array(a) for a in result.images]
            self.pad.set_corner_images(thumbs)
            self.shown_thumbs = result.request
        elif kind == "grid":
            for cell, array in zip(self.grid_cells, result.images, strict=False):
                cell.setIcon(QIcon(QPixmap.fromImage(qimage_from_array(array))))
        elif kind == "save":
            self._saved_done(result, [Path(p) for p in paths])
        elif kind == "walk":
            self._walk_done(result, [Path(p) for p in paths])
        self._pump()

    def _job_failed(self, job_id: int, message: str) -> None:
        if self._job_ended(job_id, "Failed"):
            self.message.show_error(message)
            self._pump()

    def _job_cancelled(self, job_id: int) -> None:
        if self._job_ended(job_id, "Cancelled"):
            self._pump()

    def _job_ended(self, job_id: int, walk_status: str) -> bool:
        """Forget a job that ended without a result; False if it was not this panel's."""
        kind = self._jobs.pop(job_id, None)
        if kind is None:
            return False
        self._submitted.pop(job_id, None)
        if job_id == self._inflight:
            self._inflight = None
            self._inflight_request = None
        if kind == "walk":
            self._walk_job = None
            self.walk_progress.finish(walk_status)
            self._walk_buttons()
        return True

    def _job_preview(self, job_id: int, preview: Preview) -> None:
        if self._jobs.get(job_id) != "frame" or preview.kind != "image":
            return
        data = preview.data[0] if isinstance(preview.data, list) else preview.data
        self.view.set_frame(qimage_from_array(data), None,
                            f"preview · step {preview.step}/{preview.total}")

    def _job_progress(self, job_id: int, progress: Progress) -> None:
        if job_id == self._walk_job:
            self.walk_progress.set_progress(progress)

    def _job_status(self, job_id: int, text: str) -> None:
        kind = self._jobs.get(job_id)
        if job_id == self._walk_job:
            self.walk_progress.set_status(text)
        elif kind in ("frame", "anchors", "grid"):
            self.view.set_caption(text)

    # ------------------------------------------------------------------ showing frames
    def _show_frame(self, result: Result, started: float | None) -> None:
        request = result.request
        if not result.images or not isinstance(request, ExploreRequest):
            return
        if request.model != self.model.current_model():
            return  # a frame of the model shown before: its sliders do not apply any more
        array = result.images[0]
        side = self._native_side()
        native = (side, side) if side else None  # the "64² model, shown ×N" note: GANs only
        caption = ""
        if result.info.get("fast"):
            size = result.info.get("render_size") or [array.shape[1], array.shape[0]]
            caption = f"quick preview ({request.preview_steps} steps, {size[0]}×{size[1]})"
        self.view.set_frame(qimage_from_array(array), native, caption)
        self.shown_request = request
        self.last_result = result
        self._set_directions(list(result.info.get("directions") or []))
        if started is not None:
            ms = (time.perf_counter() - started) * 1000
            engine_ms = float(result.info.get("render_ms") or 0)
            self.timing.setText(f"{ms:.0f} ms (render {engine_ms:.0f} ms)")
        self._sync_rating(request)
        self.frame_shown.emit(request)

    def _update_note(self) -> None:
        self.view.update()

    # ------------------------------------------------------------------ saving, rating
    def save_point(self) -> int | None:
        """Save the current point as an output (re-rendered at full quality and save size)."""
        if not self.model.current_model():
            return None
        request = self.point_request(for_saving=True).resolved()
        try:
            job = self.ctx.jobs.submit(request, lane="generate", save=True)
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        self._jobs[job] = "save"
        self.message.show_info("Saving this point…")
        return job

    def _key(self, request: ExploreRequest) -> int:
        """Frames that differ only in size or preview settings are the same point."""
        return hash(replace(request, width=64, height=64, fast=False, frames=48, loop=False,
                            easing="ease-in-out", fps=12, spread=0.3, preview_steps=4,
                            preview_size=256, mode="point"))

    def _saved_done(self, result: Result, paths: list[Path]) -> None:
        if not paths:
            return
        key = self._key(result.request)
        self._saved[key] = paths[0]
        self.message.show_info(f"Saved {paths[0].name}")
        if self._pending_rating is not None and self._pending_rating[0] == key:
            self._apply_rating(paths[0], self._pending_rating[1])
            self._pending_rating = None

    def rate(self, rating: int) -> None:
        """Rate (and favourite, at 5) the current point: saved first when it is not yet."""
        self.favourite.blockSignals(True)
        self.favourite.setChecked(rating == 5)
        self.favourite.blockSignals(False)
        self.stars.set_rating(rating)
        request = self.point_request(for_saving=True).resolved()
        key = self._key(request)
        path = self._saved.get(key)
        if path is not None:
            self._apply_rating(path, rating)
        elif rating:
            self._pending_rating = (key, rating)
            self.save_point()

    def _apply_rating(self, path: Path, rating: int) -> None:
        history = getattr(self.ctx, "history", None)
        if history is None:
            return
        try:
            item = history.find_path(path)
            if item is not None:
                history.set_rating(item.id, rating)
                stars = "★" * rating if rating else "no rating"
                self.message.show_info(f"{path.name}: {stars}")
        except StudioError as exc:
            self.message.show_error(str(exc))

    def _sync_rating(self, request: ExploreRequest) -> None:
        """Show the stars of this point if it was saved and rated in this session."""
        path = self._saved.get(self._key(request))
        rating = 0
        if path is not None and getattr(self.ctx, "history", None) is not None:
            try:
                item = self.ctx.history.find_path(path)
                rating = item.rating if item is not None else 0
            except StudioError:
                rating = 0
        self.stars.set_rating(rating)
        self.favourite.blockSignals(True)
        self.favourite.setChecked(rating == 5)
        self.favourite.blockSignals(False)

    # ------------------------------------------------------------------ walks
    def walk_request(self) -> ExploreRequest:
        return replace(self.point_request(for_saving=True), mode="walk", weights=())

    def render_walk(self) -> int | None:
        if len(self._anchor_cards) < 2:
            self.message.show_error("A walk needs at least two anchors.")
            return None
        try:
            job = self.ctx.jobs.submit(self.walk_request(), lane="generate", save=True)
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        self._jobs[job] = "walk"
        self._walk_job = job
        self.walk_progress.start("Rendering the walk…")
        self.walk_result.setText("")
        self._walk_buttons()
        return job

    def cancel_walk(self) -> None:
        if self._walk_job is not None:
            self.ctx.jobs.cancel(self._walk_job)

    def _walk_buttons(self) -> None:
        busy = self._walk_job is not None
        self.walk_button.setEnabled(not busy)
        self.walk_cancel.setEnabled(busy)
        self.walk_play.setEnabled(bool(self._walk_frames) and not busy)

    def _walk_done(self, result: Result, paths: list[Path]) -> None:
        self._walk_job = None
        self.walk_progress.finish(f"Walk saved: {len(result.images)} frames")
        self._walk_frames = [qimage_from_array(a) for a in result.images]
        names = ", ".join(p.name for p in paths[:2])
        more = f" (+{len(paths) - 2} frames)" if len(paths) > 2 else ""
        self.walk_result.setText(f"{names}{more}\n{paths[0].parent}" if paths else "")
        self._walk_buttons()

    def _play_walk(self, on: bool) -> None:
        if on and self._walk_frames:
            self._play_index = 0
            self._player.start(max(15, round(1000 / self.walk_fps.value())))
        else:
            self._player.stop()
            if self.last_result is not None:
                self._show_frame(self.last_result, None)

    def _next_walk_frame(self) -> None:
        if not self._walk_frames:
            self._player.stop()
            return
        image = self._walk_frames[self._play_index % len(self._walk_frames)]
        side = self._native_side()
        self.view.set_frame(image, (side, side) if side else None,
                            f"walk · frame {self._play_index % len(self._walk_frames) + 1}"
                            f"/{len(self._walk_frames)}")
        self._play_index += 1

    # ------------------------------------------------------------------ recipes
    def apply_request(self, request: Request) -> None:
        """Fill the explorer from a recipe: an explorer point/walk, or an image as anchor 1."""
        if isinstance(request, ExploreRequest):
            self._apply_explore(request)
        elif isinstance(request, ImageRequest):
            self.model.set_model(request.model)
            self.steps.setValue(request.steps)
            self.guidance.setValue(request.guidance)
            self.width_box.setValue(request.width)
            self.height_box.setValue(request.height)
            self.negative.setText(request.negative)
            if request.scheduler in SCHEDULERS:
                self.scheduler.setCurrentText(request.scheduler)
            seeds = self.anchor_seeds()
            prompts = [c.prompt.text() for c in self._anchor_cards]
            seeds[0] = request.seed if request.seed != -1 else draw_seed()
            prompts[0] = request.prompt
            self.set_anchors(seeds, prompts)
        else:
            self.message.show_error(f"The explorer cannot use a {request.kind} recipe.")

    def _apply_explore(self, r: ExploreRequest) -> None:
        self.model.blockSignals(True)
        self.model.set_model(r.model)
        self.model.blockSignals(False)
        self._model_changed(self.model.current_model())
        prompts = list(r.prompts) if r.prompts else [r.prompt] * len(r.anchors)
        seeds = [s if s != -1 else draw_seed() for s in r.anchors] or [draw_seed()]
        self.walk_frames.setValue(r.frames)
        self.walk_loop.setChecked(r.loop)
        self.walk_easing.setCurrentText(r.easing)
        self.walk_fps.setValue(r.fps)
        self.spread.setValue(round(r.spread * 100))
        self.steps.setValue(r.steps)
        self.guidance.setValue(r.guidance)
        self.preview_steps.setValue(r.preview_steps)
        self.preview_size.setValue(r.preview_size)
        self.negative.setText(r.negative)
        if r.scheduler in SCHEDULERS:
            self.scheduler.setCurrentText(r.scheduler)
        side = GAN_SIDES.get(r.model)
        if side:
            scale = max(1, r.width // side)
            best = min(SAVE_SCALES, key=lambda s: abs(s - scale))
            self.save_scale.setCurrentIndex(SAVE_SCALES.index(best))
        else:
            self.width_box.setValue(r.width)
            self.height_box.setValue(r.height)
        for card in list(self._anchor_cards):
            card.setParent(None)
            card.deleteLater()
        self._anchor_cards.clear()
        for seed, prompt in zip(seeds, prompts, strict=False):
            self._add_anchor(seed, prompt, render=False)
        self.pad.set_position(r.pad_x, r.pad_y)
        self._explicit_weights = list(r.weights) if r.weights else None
        self._show_weights(self.current_weights())
        self._offsets = dict(r.directions)
        for key, row in self._direction_rows.items():
            row.set_value(self._offsets.get(key, 0.0))
        self._queue_anchor_thumbs()
        self._variations = list(zip(r.variation_seeds, r.variation_strengths, strict=True))
        if r.mode == "grid":
            self._grid_seed = r.seed
        self._update_steps_label()
        self._request_frame(settled=True)
        self._refresh_grid()
        self.message.show_info("Loaded the explorer recipe.")

    # ------------------------------------------------------------------ misc
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self._pump()

    def pad_point(self, x: float, y: float) -> QPointF:
        """Widget coordinates of a pad position (for tests that drag with the mouse)."""
        return self.pad.point_at(x, y)

    def busy(self) -> bool:
        """True while an explorer job runs or waits (tests wait for it to settle)."""
        return self._inflight is not None or any(v is not None for v in self._slots.values())
