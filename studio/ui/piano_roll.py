"""A piano roll of a piece's MIDI: a lane per track, its notes, a play head, click to seek.

It shows what the composer wrote (or any MIDI file): the notes come from the plain-data
loader `studio.core.midi.read_midi`, each track in its own lane with its own pitch
range, so a bass line and a melody are both legible. `set_position` moves the play head
(connect an AudioPlayer's `position_changed`); a click or drag emits `seek_requested`
with the seconds under the pointer, as the waveform and spectrogram views do.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QLineF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.core.midi import MidiData, MidiNote, read_midi

BACKGROUND = QColor(24, 25, 31)
LANE = (QColor(30, 31, 39), QColor(35, 36, 45))
GRID = QColor(52, 54, 64)
COLOURS = (QColor(124, 92, 255), QColor(0, 184, 212), QColor(255, 167, 38),
           QColor(102, 187, 106), QColor(239, 83, 80), QColor(171, 71, 188))
HEAD = QColor(255, 255, 255)
TEXT = QColor(150, 152, 165)


class PianoRoll(QWidget):
    """A lane per track; notes as bars in time (x) and pitch (y, within the lane)."""

    seek_requested = Signal(float)  # seconds

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data: MidiData | None = None
        self._position = 0.0
        self._span = 0.0
        self._placeholder = "No notes"
        self.setMinimumHeight(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    # data ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> None:
        """Show the notes of a MIDI file (raises RequestError, one sentence, if unreadable)."""
        self.set_midi(read_midi(Path(path)))

    def set_midi(self, data: MidiData | None) -> None:
        self._data = data
        self._span = data.duration if data is not None else 0.0
        self._position = 0.0
        self.update()

    def clear(self) -> None:
        self.set_midi(None)

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    @property
    def midi(self) -> MidiData | None:
        return self._data

    @property
    def duration(self) -> float:
        return self._span

    def set_duration(self, seconds: float) -> None:
        """Span the time axis to the audio's length (a piece rings on after its notes)."""
        self._span = max(float(seconds), self._data.duration if self._data else 0.0)
        self.update()

    @property
    def position(self) -> float:
        return self._position

    def set_position(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        if abs(seconds - self._position) > 1e-6:
            self._position = seconds
            self.update()

    def lanes(self) -> list[tuple[str, int]]:
        """(track name, note count) per lane, top to bottom."""
        return [(t.name, len(t.notes)) for t in self._tracks()]

    def _tracks(self) -> list:
        return [t for t in self._data.tracks if t.notes] if self._data else []

    # geometry -------------------------------------------------------------------------
    def x_of(self, seconds: float) -> float:
        return 0.0 if self._span <= 0 else seconds / self._span * self.width()

    def seconds_at(self, x: float) -> float:
        if self._span <= 0 or self.width() <= 0:
            return 0.0
        return min(max(x / self.width() * self._span, 0.0), self._span)

    def lane_rect(self, index: int) -> QRectF:
        n = max(1, len(self._tracks()))
        h = self.height() / n
        return QRectF(0, index * h, self.width(), h)

    def note_rect(self, lane: int, note: MidiNote) -> QRectF:
        """Where a note of a lane is drawn (its lane's pitch range fills the lane)."""
        track = self._tracks()[lane]
        lo = min(n.pitch for n in track.notes)
        hi = max(n.pitch for n in track.notes)
        box = self.lane_rect(lane).adjusted(0, 3, 0, -3)
        rows = hi - lo + 1
        row_h = box.height() / rows
        x0, x1 = self.x_of(note.start), self.x_of(note.end)
        y = box.top() + (hi - note.pitch) * row_h
        return QRectF(x0, y, max(1.0, x1 - x0), max(1.0, row_h - 0.5))

    # input ----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._span > 0:
            self.seek_requested.emit(self.seconds_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.buttons() & Qt.MouseButton.LeftButton and self._span > 0:
            self.seek_requested.emit(self.seconds_at(event.position().x()))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(600, 160)

    # drawing --------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        tracks = self._tracks()
        if not tracks:
            p.setPen(TEXT)
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self._placeholder)
            p.end()
            return
        for i, track in enumerate(tracks):
            lane = self.lane_rect(i)
            p.fillRect(lane, LANE[i % 2])
            colour = COLOURS[i % len(COLOURS)]
            played = colour.lighter(140)
            for note in track.notes:
                rect = self.note_rect(i, note)
                p.fillRect(rect, played if note.start <= self._position else colour)
            p.setPen(TEXT)
            p.drawText(lane.adjusted(4, 2, -4, -2),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), track.name)
            p.setPen(GRID)
            p.drawLine(QLineF(0, lane.bottom(), self.width(), lane.bottom()))
        x = self.x_of(self._position)
        p.setPen(QPen(HEAD, 1.5))
        p.drawLine(QLineF(x, 0, x, self.height()))
        p.end()
