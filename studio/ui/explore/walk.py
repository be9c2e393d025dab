"""The Walk tab: render a path through the anchors to GIF and MP4, and play the last walk
in the frame view. Bound to an ExploreSession's walk settings and walk job."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.explore import EASINGS
from studio.core.results import Result
from studio.runtime.explore_session import ExploreSession, WalkSettings
from studio.ui.images import qimage_from_array
from studio.ui.panel import action_button
from studio.ui.widgets import ProgressRow, play_icon


class WalkPage(QWidget):
    """Frames, easing, speed and loop; Render / Cancel / Play; progress and the result."""

    frame = Signal(QImage, str)  # a frame of the walk being played, and its caption
    stopped = Signal()  # playing stopped: the view goes back to the current point

    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.frames: list[QImage] = []
        self._index = 0
        self._player = QTimer(self)
        self._player.timeout.connect(self._next_frame)
        self.frame_count = QSpinBox()
        self.frame_count.setRange(2, 1000)
        self.loop = QCheckBox("Loop back to the first anchor")
        self.easing = QComboBox()
        self.easing.addItems(EASINGS)
        self.fps = QSpinBox()
        self.fps.setRange(1, 60)
        self.button = action_button("Render walk", "Render a path through the anchors to "
                                    "GIF and MP4", primary=True)
        self.cancel = action_button("Cancel", "Stop rendering the walk (Esc)")
        self.play = QToolButton()
        self.play.setIcon(play_icon())
        self.play.setCheckable(True)
        self.play.setToolTip("Play the last walk in the view")
        self.progress = ProgressRow()
        self.result = QLabel("")
        self.result.setObjectName("muted")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Frames", self.frame_count)
        form.addRow("Easing", self.easing)
        form.addRow("Frames/s", self.fps)
        form.addRow("", self.loop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.button)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.play)
        buttons.addStretch(1)
        col = QVBoxLayout(self)
        col.addLayout(form)
        col.addLayout(buttons)
        col.addWidget(self.progress)
        col.addWidget(self.result)
        col.addStretch(1)
        self._show_settings()
        self._buttons()
        for box in (self.frame_count, self.fps):
            box.valueChanged.connect(self._push)
        self.loop.toggled.connect(self._push)
        self.easing.currentIndexChanged.connect(self._push)
        self.button.clicked.connect(session.render_walk)
        self.cancel.clicked.connect(session.cancel_walk)
        self.play.toggled.connect(self._play)
        session.settings_changed.connect(self._show_settings)
        session.outputs.walk_started.connect(self._started)
        session.outputs.walk_progress.connect(self.progress.set_progress)
        session.outputs.walk_status.connect(self.progress.set_status)
        session.outputs.walk_finished.connect(self._done)
        session.outputs.walk_ended.connect(self._ended)

    def _push(self, *_args: object) -> None:
        self.session.walk = WalkSettings(self.frame_count.value(), self.loop.isChecked(),
                                         self.easing.currentText(), self.fps.value())

    def _show_settings(self) -> None:
        w = self.session.walk
        widgets = (self.frame_count, self.loop, self.easing, self.fps)
        for widget in widgets:
            widget.blockSignals(True)
        self.frame_count.setValue(w.frames)
        self.loop.setChecked(w.loop)
        self.easing.setCurrentText(w.easing)
        self.fps.setValue(w.fps)
        for widget in widgets:
            widget.blockSignals(False)

    def _buttons(self) -> None:
        busy = self.session.outputs.walk_job is not None
        self.button.setEnabled(not busy)
        self.cancel.setEnabled(busy)
        self.play.setEnabled(bool(self.frames) and not busy)

    def _started(self) -> None:
        self.progress.start("Rendering the walk…")
        self.result.setText("")
        self._buttons()

    def _done(self, result: Result, paths: list[Path]) -> None:
        self.progress.finish(f"Walk saved: {len(result.images)} frames")
        self.frames = [qimage_from_array(a) for a in result.images]
        names = ", ".join(p.name for p in paths[:2])
        more = f" (+{len(paths) - 2} frames)" if len(paths) > 2 else ""
        self.result.setText(f"{names}{more}\n{paths[0].parent}" if paths else "")
        self._buttons()

    def _ended(self, status: str) -> None:
        self.progress.finish(status)
        self._buttons()

    def _play(self, on: bool) -> None:
        if on and self.frames:
            self._index = 0
            self._player.start(max(15, round(1000 / self.fps.value())))
        else:
            self._player.stop()
            self.stopped.emit()

    def _next_frame(self) -> None:
        if not self.frames:
            self._player.stop()
            return
        n = len(self.frames)
        self.frame.emit(self.frames[self._index % n], f"walk · frame {self._index % n + 1}/{n}")
        self._index += 1
