"""The Music panel's list of past pieces (this session's and the history's).

A click plays a piece; the right-click menu plays it or uses it as the motif of the next
piece ("Use as motif": the notes of a composer piece, its .mid beside the audio, become
the composer's starting material). The list only says what was asked; the panel acts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QWidget

from studio.core.text import format_duration

MIDI_SUFFIXES = (".mid", ".midi")


def motif_file(path: str | Path) -> Path | None:
    """The MIDI file a piece's notes are in: the file itself when it is MIDI, else the
    .mid beside its audio (the composer writes one; MusicGen does not). None: no notes."""
    path = Path(path)
    mid = path if path.suffix.lower() in MIDI_SUFFIXES else path.with_suffix(".mid")
    return mid if mid.is_file() else None


class PiecesList(QListWidget):
    """Past pieces, newest first, once per path; each item's UserRole is its path."""

    play_requested = Signal(str)  # a piece's path: play it
    motif_requested = Signal(str)  # a piece's path: use its notes as the motif

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pieces")
        self.setToolTip("Past pieces: click one to play it; right-click to use a composer "
                        "piece as the motif of the next")
        self.setMaximumHeight(130)
        self.menu: QMenu | None = None  # the context menu last shown (tests trigger it)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemClicked.connect(self._clicked)

    def path_of(self, item: QListWidgetItem | None) -> str:
        return str(item.data(Qt.ItemDataRole.UserRole) or "") if item is not None else ""

    def row_of(self, path: str | Path) -> int:
        return next((r for r in range(self.count()) if self.path_of(self.item(r)) == str(path)),
                    -1)

    def remember(self, path: Path, title: str, seconds: float, *, at_top: bool = True) -> None:
        """Add a piece to the list (once per path)."""
        if self.row_of(path) >= 0:
            return
        label = f"{format_duration(seconds, clock=True)}  ·  {title}" if seconds else title
        item = QListWidgetItem(label)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        if at_top:
            self.insertItem(0, item)
        else:
            self.addItem(item)

    def _clicked(self, item: QListWidgetItem) -> None:
        if self.path_of(item):
            self.play_requested.emit(self.path_of(item))

    def _context_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        path = self.path_of(item)
        if not path:
            return
        if self.menu is not None:
            self.menu.deleteLater()
        menu = QMenu(self)
        menu.addAction("Play").triggered.connect(lambda: self.play_requested.emit(path))
        motif = menu.addAction("Use as motif")
        motif.setEnabled(motif_file(path) is not None)
        motif.setToolTip("Start the next composer piece from this piece's notes")
        motif.triggered.connect(lambda: self.motif_requested.emit(path))
        self.menu = menu
        menu.popup(self.viewport().mapToGlobal(pos))
