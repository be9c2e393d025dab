"""The Explore panel: the latent-space explorer's views bound to one ExploreSession.

Pick 2–4 anchors (a seed, plus a prompt where the model has a text condition, or take
them from any saved output); the pad's corners are the anchors and the puck blends them.
Sliders move along the model's directions, the variation grid shows nine children
around the current point, walks render a path through the anchors to GIF and MP4.
The session (studio.runtime.explore_session) holds the state and runs the jobs; this
panel only lays the views out and shows what the session reports.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import families
from studio.core.explore import ExploreRequest
from studio.core.requests import Request
from studio.core.results import Result
from studio.runtime.context import AppContext
from studio.runtime.explore_session import SAVE_SCALES, ExploreSession, Timing
from studio.ui.explore.anchors import AnchorCard, AnchorRow
from studio.ui.explore.blend import BlendColumn
from studio.ui.explore.directions import DirectionsPage
from studio.ui.explore.frame_view import FrameView
from studio.ui.explore.render import RenderPage
from studio.ui.explore.variations import VariationsPage
from studio.ui.explore.walk import WalkPage
from studio.ui.images import qimage_from_array
from studio.ui.panel import action_button
from studio.ui.widgets import MessageLabel, ModelPicker, StarRating, section_label

TAB_VARIATIONS, TAB_RENDER = 1, 3


class ExplorePanel(QWidget):
    """The latent explorer (see the module docstring)."""

    frame_shown = Signal(object)  # the ExploreRequest whose frame the view now shows

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ExploreSession(ctx.jobs, ctx.history, lambda: ctx.models, self)
        self.session.add_anchor(render=False)
        self.session.add_anchor(render=False)
        self._shown_once = False
        self._build()
        default = families.DEFAULT_BUILTIN["image"]
        if default in self.model.model_ids():
            self.model.set_model(default)
        self._connect()
        self.session.set_model(self.model.current_model())

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        s = self.session
        self.model = ModelPicker(self.ctx, "image")
        self.model.setToolTip("The model whose latent space to explore")
        self.anchors = AnchorRow(s)
        top = QHBoxLayout()
        top.setSpacing(10)
        model_col = QVBoxLayout()
        model_col.addWidget(section_label("Model"))
        model_col.addWidget(self.model)
        model_col.addStretch(1)
        top.addLayout(model_col)
        top.addWidget(self.anchors, 1)

        self.blend = BlendColumn(s)
        self.pad = self.blend.pad
        self.view = FrameView()
        self.timing = QLabel("")
        self.timing.setObjectName("muted")
        self.save_button = action_button(
            "Save this point", "Save the frame as an output (Ctrl+Enter); its recipe holds the "
            "anchors, weights, variation steps and direction offsets", primary=True)
        self.save_scale = QComboBox()
        for scale in SAVE_SCALES:
            self.save_scale.addItem(f"×{scale}", scale)
        self.save_scale.setToolTip("Saved frames and walks of fixed-size models are "
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

        self.directions = DirectionsPage(s)
        self.variations = VariationsPage(s)
        self.walk = WalkPage(s)
        self.render_page = RenderPage(s)
        # the Render fields by their old names (the latency benchmark sets them)
        self.steps, self.preview_steps = self.render_page.steps, self.render_page.preview_steps
        self.width_box, self.height_box = self.render_page.width_box, self.render_page.height_box
        self.preview_size = self.render_page.preview_size
        self.tabs = QTabWidget()
        self.tabs.addTab(self.directions, "Directions")
        self.tabs.addTab(self.variations, "Variations")
        self.tabs.addTab(self.walk, "Walk")
        self.tabs.addTab(self.render_page, "Render")
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
        split.addWidget(self.blend)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 820])
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 10, 12, 0)
        col.setSpacing(8)
        col.addLayout(top)
        col.addWidget(split, 1)
        self._show_save_scale()

    def _connect(self) -> None:
        s = self.session
        self.model.model_changed.connect(s.set_model)
        self.save_button.clicked.connect(s.save_point)
        self.save_scale.currentIndexChanged.connect(self._save_scale_changed)
        self.stars.rating_changed.connect(s.rate)
        self.favourite.toggled.connect(lambda on: s.rate(5 if on else 0))
        self.tabs.currentChanged.connect(lambda i: s.set_grid_visible(i == TAB_VARIATIONS))
        self.walk.frame.connect(self._show_walk_frame)
        self.walk.stopped.connect(self._walk_stopped)
        # as in the generate panels: Ctrl+Enter makes the output, Esc stops the long job
        for keys, slot in (("Ctrl+Return", s.save_point), ("Ctrl+Enter", s.save_point),
                           (Qt.Key.Key_Escape, s.cancel_walk)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        s.model_changed.connect(self._model_changed)
        s.settings_changed.connect(self._show_save_scale)
        s.frame_changed.connect(self._show_frame)
        s.frame_preview.connect(
            lambda array, caption: self.view.set_frame(qimage_from_array(array), None, caption))
        s.caption_changed.connect(self.view.set_caption)
        s.timing_changed.connect(self._show_timing)
        s.outputs.rating_changed.connect(self._show_rating)
        s.info.connect(self.message.show_info)
        s.error.connect(self.message.show_error)

    # ------------------------------------------------------------------ session → views
    def _model_changed(self, model: str) -> None:
        if self.model.current_model() != model:
            self.model.blockSignals(True)
            self.model.set_model(model)
            self.model.blockSignals(False)
        self.save_scale.setVisible(self.session.native_size() is not None)
        self.tabs.setTabVisible(TAB_RENDER, self.session.progressive)

    def _show_frame(self, result: Result, caption: str) -> None:
        self.view.set_frame(qimage_from_array(result.images[0]), self.session.native_size(),
                            caption)
        self.frame_shown.emit(result.request)

    def _show_timing(self, timing: Timing) -> None:
        self.timing.setText(timing.text())

    def _show_rating(self, rating: int) -> None:
        self.stars.set_rating(rating)
        self.favourite.blockSignals(True)
        self.favourite.setChecked(rating == 5)
        self.favourite.blockSignals(False)

    def _show_save_scale(self) -> None:
        self.save_scale.blockSignals(True)
        self.save_scale.setCurrentIndex(SAVE_SCALES.index(self.session.save_scale))
        self.save_scale.blockSignals(False)

    def _save_scale_changed(self, _index: int) -> None:
        self.session.save_scale = int(self.save_scale.currentData() or 1)
        self.view.update()

    def _show_walk_frame(self, image: QImage, caption: str) -> None:
        self.view.set_frame(image, self.session.native_size(), caption)

    def _walk_stopped(self) -> None:
        last = self.session.last_result
        if last is not None and last.images:
            self.view.set_frame(qimage_from_array(last.images[0]), self.session.native_size())

    # ------------------------------------------------------------------ what others call
    @property
    def shown_request(self) -> ExploreRequest | None:
        return self.session.shown_request

    @property
    def shown_thumbs(self) -> ExploreRequest | None:
        return self.session.shown_thumbs

    @property
    def last_result(self) -> Result | None:
        return self.session.last_result

    @property
    def jobs_started(self) -> int:
        return self.session.jobs_started

    @property
    def _anchor_cards(self) -> list[AnchorCard]:  # the latency benchmark types prompts here
        return self.anchors.cards

    def busy(self) -> bool:
        return self.session.busy()

    def anchor_seeds(self) -> list[int]:
        return self.anchors.seeds()

    def set_anchors(self, seeds: list[int], prompts: list[str] | None = None) -> None:
        self.session.set_anchors(seeds, prompts)

    def apply_request(self, request: Request) -> None:
        """Fill the explorer from a recipe ("use these settings")."""
        self.session.apply_request(request)

    def save_point(self) -> int | None:
        return self.session.save_point()

    def rate(self, rating: int) -> None:
        self.session.rate(rating)

    def render_walk(self) -> int | None:
        return self.session.render_walk()

    def set_offset(self, key: str, value: float) -> None:
        self.session.set_offset(key, value)

    def rename_direction(self, key: str, name: str | None = None) -> None:
        self.directions.rename(key, name)

    def pad_point(self, x: float, y: float) -> QPointF:
        """Widget coordinates of a pad position (for tests that drag with the mouse)."""
        return self.pad.point_at(x, y)

    def _rerender(self) -> None:
        """Render again with what the fields show (tests and the benchmark type, then call)."""
        self.anchors.seeds()
        self.session.rerender()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.session.activate()
