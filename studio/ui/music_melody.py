"""The Music panel's "Melody from" picker, shown for MusicGen-Melody models only.

The reference is an audio file (the "…" button) or a past piece (the "Past piece" menu,
which lists what the panel's pieces list holds). Its melody (chroma) conditions the
piece; the request's `melody` field carries the path, and the saved recipe points at a
content-named copy beside the outputs, so a piece replays when the original moves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QMenu, QToolButton, QWidget

from studio.core.fields import spec
from studio.core.requests import MELODY_SUFFIXES, MusicRequest, Request
from studio.ui.forms import field_grid

AUDIO_FILTER = "Audio files (" + " ".join(f"*{s}" for s in MELODY_SUFFIXES) + ")"


class MelodyPicker(QWidget):
    """A path box, a file button and a menu of past pieces; `changed` on every edit."""

    changed = Signal()

    def __init__(self, pieces: Callable[[], list[tuple[str, str]]],
                 parent: QWidget | None = None) -> None:
        """`pieces()`: (label, path) of the past pieces to offer, newest first."""
        super().__init__(parent)
        self._pieces = pieces
        self.start = ""  # where the file dialog opens (the panel: the output folder)
        meta = spec(MusicRequest, "melody")
        self.path = QLineEdit()
        self.path.setPlaceholderText("none: the text alone")
        self.path.setToolTip(meta.tip)
        self.file_button = QToolButton()
        self.file_button.setText("…")
        self.file_button.setToolTip("Choose an audio file whose melody the piece follows")
        self.piece_button = QToolButton()
        self.piece_button.setText("Past piece")
        self.piece_button.setToolTip("Follow the melody of a piece made earlier")
        self.piece_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.piece_button)
        self.piece_button.setMenu(self.menu)
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.path, 1)
        row.addWidget(self.file_button)
        row.addWidget(self.piece_button)
        self.setLayout(field_grid([[(meta.label, row)]], margins=(0, 0, 0, 0)))
        self.path.textChanged.connect(lambda _t: self.changed.emit())
        self.file_button.clicked.connect(self.pick_file)
        self.menu.aboutToShow.connect(self.fill_menu)

    def fill_menu(self) -> None:
        """The past pieces, as the pieces list holds them now."""
        self.menu.clear()
        offered = self._pieces()
        for label, path in offered:
            action = self.menu.addAction(label)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.path.setText(p))
        if not offered:
            self.menu.addAction("No pieces yet").setEnabled(False)

    def pick_file(self) -> None:
        start = str(Path(self.path.text()).parent) if self.path.text() else self.start
        path, _filter = QFileDialog.getOpenFileName(self, "Follow the melody of", start,
                                                    AUDIO_FILTER)
        if path:
            self.path.setText(path)

    def values(self) -> dict[str, str]:
        return {"melody": self.path.text().strip()}

    def set_values(self, request: Request) -> None:
        if isinstance(request, MusicRequest):
            self.path.setText(request.melody)
