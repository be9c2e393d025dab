"""Waveform and spectrogram views that grow as audio chunks arrive, with a play head.

Both keep a compact summary computed with numpy as chunks arrive (min/max per block of
samples; log-frequency STFT columns, computed off the GUI thread), never the whole
signal, so drawing a ten-minute piece costs the same as drawing a short one. Clicking
or dragging asks to seek.
The time axis spans the expected duration of a piece still being generated, so the
waveform grows from left to right instead of rescaling with every chunk.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.runtime.spectrum import SPEC_ROWS, SpectrumFeed

BLOCK = 64  # samples per min/max pair of the waveform summary

BACKGROUND = QColor(24, 25, 31)
GRID = QColor(52, 54, 64)
WAVE = QColor(124, 92, 255)
WAVE_PLAYED = QColor(0, 184, 212)
PENDING = QColor(36, 37, 46)
HEAD = QColor(255, 255, 255)
TEXT = QColor(150, 152, 165)


def mono(chunk: np.ndarray) -> np.ndarray:
    """The mean of the channels of a (channels, n) or (n,) float array, as float32."""
    data = np.asarray(chunk, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=0, dtype=np.float32)


class TimelineView(QWidget):
    """Shared by both views: a time axis, a play head and click/drag to seek."""

    seek_requested = Signal(float)  # seconds

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rate = 0
        self._samples = 0  # samples received
        self._expected = 0.0  # seconds the piece will have (while growing)
        self._position = 0.0
        self._placeholder = ""
        self.setMinimumHeight(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setMouseTracking(False)

    # data ---------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self._samples / self._rate if self._rate else 0.0

    @property
    def span(self) -> float:
        """Seconds the time axis spans (the expected length while a piece grows)."""
        return max(self.duration, self._expected)

    @property
    def position(self) -> float:
        return self._position

    def set_expected_duration(self, seconds: float) -> None:
        self._expected = max(0.0, float(seconds))
        self.update()

    def set_position(self, seconds: float) -> None:
        if abs(seconds - self._position) > 1e-6:
            self._position = max(0.0, float(seconds))
            self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        """Show a whole piece (replaces what was there)."""
        self.clear()
        self.append(audio, sample_rate)

    def clear(self) -> None:
        self._samples = 0
        self._position = 0.0
        self._reset()
        self.update()

    def append(self, chunk: np.ndarray, sample_rate: int) -> None:
        """Add the next chunk (float32 (channels, n)) of a growing piece."""
        if sample_rate != self._rate:
            if self._samples:
                raise ValueError("a chunk's sample rate differs from the audio's")
            self._rate = int(sample_rate)
            self._reset()
        samples = mono(chunk)
        if samples.size:
            self._samples += samples.size
            self._add(samples)
        self.update()

    # subclasses ---------------------------------------------------------------------
    def _reset(self) -> None:
        raise NotImplementedError

    def _add(self, samples: np.ndarray) -> None:
        raise NotImplementedError

    # geometry and input -------------------------------------------------------------
    def x_of(self, seconds: float) -> float:
        span = self.span
        return 0.0 if span <= 0 else seconds / span * self.width()

    def seconds_at(self, x: float) -> float:
        span = self.span
        if span <= 0 or self.width() <= 0:
            return 0.0
        return min(max(x / self.width() * span, 0.0), self.duration)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._samples:
            self.seek_requested.emit(self.seconds_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.buttons() & Qt.MouseButton.LeftButton and self._samples:
            self.seek_requested.emit(self.seconds_at(event.position().x()))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(600, 120)

    def _paint_common(self, p: QPainter) -> None:
        """The not-yet-generated part, the play head and the placeholder text."""
        w, h = self.width(), self.height()
        if self._samples and self.span > self.duration:
            x = self.x_of(self.duration)
            p.fillRect(QRectF(x, 0, w - x, h), PENDING)
        if not self._samples and self._placeholder:
            p.setPen(TEXT)
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self._placeholder)
        if self._samples:
            x = self.x_of(self._position)
            p.setPen(QPen(HEAD, 1.5))
            p.drawLine(QLineF(x, 0, x, h))


class WaveformView(TimelineView):
    """Min/max envelope of the mono mix; the played part in a second colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._mins = np.zeros(0, np.float32)
        self._maxs = np.zeros(0, np.float32)
        self._blocks = 0
        self._tail = np.zeros(0, np.float32)  # samples not yet filling a whole block
        self._reset()

    def _reset(self) -> None:
        self._mins = np.zeros(1024, np.float32)
        self._maxs = np.zeros(1024, np.float32)
        self._blocks = 0
        self._tail = np.zeros(0, np.float32)

    def _add(self, samples: np.ndarray) -> None:
        data = np.concatenate([self._tail, samples]) if self._tail.size else samples
        whole = data.size // BLOCK
        if whole:
            blocks = data[: whole * BLOCK].reshape(whole, BLOCK)
            self._push(blocks.min(axis=1), blocks.max(axis=1))
        self._tail = data[whole * BLOCK :].copy()

    def _push(self, mins: np.ndarray, maxs: np.ndarray) -> None:
        end = self._blocks + mins.size
        if end > self._mins.size:
            size = max(end, 2 * self._mins.size)
            self._mins = np.resize(self._mins, size)
            self._maxs = np.resize(self._maxs, size)
        self._mins[self._blocks : end] = mins
        self._maxs[self._blocks : end] = maxs
        self._blocks = end

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """(mins, maxs) per block, the unfinished last block included."""
        mins, maxs = self._mins[: self._blocks], self._maxs[: self._blocks]
        if self._tail.size:
            mins = np.append(mins, self._tail.min())
            maxs = np.append(maxs, self._tail.max())
        return mins, maxs

    def columns(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(mins, maxs) for each pixel column that holds audio (numpy reduceat)."""
        mins, maxs = self.envelope()
        if not mins.size or width <= 0 or not self._rate:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        span_blocks = self.span * self._rate / BLOCK
        cols = min(width, max(1, int(np.ceil(mins.size / span_blocks * width))))
        edges = (np.arange(cols) * span_blocks / width).astype(np.int64)
        edges = np.clip(edges, 0, mins.size - 1)
        return np.minimum.reduceat(mins, edges), np.maximum.reduceat(maxs, edges)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), BACKGROUND)
        mid = h / 2
        p.setPen(QPen(GRID, 1))
        p.drawLine(QLineF(0, mid, w, mid))
        mins, maxs = self.columns(w)
        if mins.size:
            head = self.x_of(self._position)
            scale = (h / 2 - 2)
            tops = mid - np.clip(maxs, -1, 1) * scale
            bottoms = mid - np.clip(mins, -1, 1) * scale
            bottoms = np.maximum(bottoms, tops + 1)  # silence still shows a hairline
            played = [QLineF(i + 0.5, tops[i], i + 0.5, bottoms[i])
                      for i in range(min(mins.size, int(head)))]
            rest = [QLineF(i + 0.5, tops[i], i + 0.5, bottoms[i])
                    for i in range(min(mins.size, int(head)), mins.size)]
            if played:
                p.setPen(QPen(WAVE_PLAYED, 1))
                p.drawLines(played)
            if rest:
                p.setPen(QPen(WAVE, 1))
                p.drawLines(rest)
        self._paint_common(p)
        p.end()


def _colour_table() -> list[int]:
    """256 ARGB colours from near-black through violet and orange to pale yellow."""
    stops = np.array([
        [0.00, 14, 14, 20], [0.25, 60, 20, 110], [0.50, 150, 40, 120],
        [0.75, 240, 120, 40], [1.00, 252, 250, 190],
    ])
    x = np.linspace(0, 1, 256)
    rgb = [np.interp(x, stops[:, 0], stops[:, i]) for i in (1, 2, 3)]
    return [0xFF000000 | (int(r) << 16) | (int(g) << 8) | int(b)
            for r, g, b in zip(*rgb, strict=True)]


COLOURS = _colour_table()


class SpectrogramView(TimelineView):
    """A log-frequency STFT, grown column by column; the STFT runs on the analysis
    thread (runtime.spectrum) and the view only stores and paints the columns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cols = np.zeros((SPEC_ROWS, 0), np.uint8)
        self._count = 0
        self._image: QImage | None = None
        self._image_count = -1
        self._feed = SpectrumFeed(self)
        self._feed.columns_ready.connect(self._add_columns)
        self._reset()

    @property
    def n_fft(self) -> int:
        return self._feed.spectrum.n_fft

    @property
    def hop(self) -> int:
        return self._feed.spectrum.hop

    def _reset(self) -> None:
        self._feed.reset(self._rate)
        self._cols = np.zeros((SPEC_ROWS, 256), np.uint8)
        self._count = 0
        self._image = None
        self._image_count = -1

    @property
    def columns_per_second(self) -> float:
        return (self._rate or 1) / self.hop

    def column_count(self) -> int:
        self._feed.flush()
        return self._count

    def columns(self) -> np.ndarray:
        """uint8 (rows, columns), highest frequency in row 0 (waits for the analysis)."""
        self._feed.flush()
        return self._cols[:, : self._count]

    def _add(self, samples: np.ndarray) -> None:
        self._feed.feed(samples)

    def _add_columns(self, column: np.ndarray) -> None:
        n = column.shape[1]
        end = self._count + n
        if end > self._cols.shape[1]:
            grown = np.zeros((SPEC_ROWS, max(end, 2 * self._cols.shape[1])), np.uint8)
            grown[:, : self._count] = self._cols[:, : self._count]
            self._cols = grown
        self._cols[:, self._count : end] = column
        self._count = end
        self.update()

    def _qimage(self) -> QImage | None:
        if not self._count:
            return None
        if self._image is None or self._image_count != self._count:
            data = np.ascontiguousarray(self._cols[:, : self._count])
            image = QImage(data.data, self._count, SPEC_ROWS, self._count,
                           QImage.Format.Format_Indexed8)
            image.setColorTable(COLOURS)
            self._image = image.copy()  # own the pixels: the numpy buffer may go
            self._image_count = self._count
        return self._image

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        image = self._qimage()
        if image is not None:
            seconds = self._count * self.hop / self._rate
            target = QRectF(0, 0, self.x_of(seconds), self.height())
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, image, QRectF(image.rect()))
        self._paint_common(p)
        p.setPen(TEXT)
        if self._rate:
            p.drawText(QPointF(4, 12), f"{self._rate / 2000:.0f} kHz")
        p.end()
