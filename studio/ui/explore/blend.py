"""The Blend column: the latent pad and one weight slider per anchor, bound to an
ExploreSession's pad position and weights."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QSlider, QVBoxLayout, QWidget

from studio.runtime.explore_session import ExploreSession
from studio.ui.explore.anchors import ColourDot
from studio.ui.explore.pad import ANCHOR_COLOURS, LatentPad
from studio.ui.images import qimage_from_array
from studio.ui.widgets import section_label

PAD_HINT = "Drag the puck, or set the weights:"
BY_HAND_HINT = "Weights set by hand (touch the pad to go back to it)"


class BlendColumn(QWidget):
    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("formColumn")
        self.session = session
        self.pad = LatentPad()
        self.weights_box = QWidget()
        self.weights_layout = QFormLayout(self.weights_box)
        self.weights_layout.setContentsMargins(0, 0, 0, 0)
        self.weights_layout.setSpacing(4)
        self.sliders: list[QSlider] = []
        self._moving = False  # a slider is being moved by hand: leave the sliders be
        self.hint = QLabel(PAD_HINT)
        self.hint.setObjectName("muted")
        tips = QLabel("Corners are the anchors; the puck blends them (slerp for noise, "
                      "lerp for prompts). Arrow keys nudge the puck.")
        tips.setObjectName("muted")
        tips.setWordWrap(True)
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 12, 12, 12)
        col.setSpacing(8)
        col.addWidget(section_label("Blend"))
        col.addWidget(self.pad)
        col.addWidget(self.hint)
        col.addWidget(self.weights_box)
        col.addWidget(tips)
        col.addStretch(1)
        self.setMinimumWidth(300)
        self.pad.position_changed.connect(session.move_pad)
        self.pad.settled.connect(lambda _x, _y: session.settle())
        session.anchors_changed.connect(self._anchors_changed)
        session.weights_changed.connect(self._show_weights)
        session.pad_changed.connect(self.pad.set_position)
        session.thumbs_changed.connect(self._show_thumbs)
        self._anchors_changed()

    def _anchors_changed(self) -> None:
        n = len(self.session.anchors)
        self.pad.set_anchor_count(n)
        self.pad.set_position(*self.session.pad)
        if n != len(self.sliders):
            self._rebuild_sliders(n)

    def _rebuild_sliders(self, n: int) -> None:
        while self.weights_layout.rowCount():
            self.weights_layout.removeRow(0)
        self.sliders = []
        for i in range(n):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            colour = ANCHOR_COLOURS[i].name()
            slider.setStyleSheet(
                f"QSlider::sub-page:horizontal {{ background: {colour}; border-radius: 2px; }}")
            slider.valueChanged.connect(self._slider_moved)
            slider.sliderReleased.connect(self.session.settle)
            self.weights_layout.addRow(ColourDot(ANCHOR_COLOURS[i]), slider)
            self.sliders.append(slider)
        self._show_weights(self.session.weights(), self.session.explicit_weights is not None)

    def _slider_moved(self, _value: int) -> None:
        self._moving = True
        try:
            self.session.set_weights([float(s.value()) for s in self.sliders])
        finally:
            self._moving = False

    def _show_weights(self, weights: list[float], by_hand: bool) -> None:
        """Follow the pad (a hand-set slider is left where the hand put it)."""
        self.hint.setText(BY_HAND_HINT if by_hand else PAD_HINT)
        if self._moving:
            return
        for slider, w in zip(self.sliders, weights, strict=False):
            slider.blockSignals(True)
            slider.setValue(round(w * 100))
            slider.blockSignals(False)

    def _show_thumbs(self, images: list[np.ndarray]) -> None:
        self.pad.set_corner_images([qimage_from_array(a) for a in images])
