"""The spectrogram's analysis, off the GUI thread: a log-frequency STFT fed chunk by chunk.

`Spectrum` is the plain numpy state (Hann window, rfft, max-pooled log-frequency rows,
uint8 levels); `SpectrumFeed` runs it on one background thread, in the order chunks
arrive, and hands the GUI finished columns (a uint8 array per chunk) through a queued
signal. A ten-minute piece set at once is analysed while the window stays responsive.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

SPEC_ROWS = 160  # log-frequency rows of the spectrogram
SPEC_FLOOR_DB = -90.0
SPEC_MIN_HZ = 30.0


class Spectrum:
    """STFT state for one piece at one sample rate; `feed` returns the new columns."""

    def __init__(self, sample_rate: int) -> None:
        rate = sample_rate or 32000
        self.rate = rate
        self.n_fft = 1024 if rate >= 24000 else 512
        self.hop = self.n_fft // 2
        self._window = np.hanning(self.n_fft).astype(np.float32)
        bins = self.n_fft // 2 + 1
        top = rate / 2
        low = min(SPEC_MIN_HZ, top / 4)
        freqs = np.geomspace(low, top, SPEC_ROWS + 1)[:-1]  # each row's lowest frequency
        edges = np.round(freqs / top * (bins - 1)).astype(np.int64)
        self._row_edges = np.clip(edges, 0, bins - 1)
        self._pending = np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Mono float32 samples in; uint8 (SPEC_ROWS, n) columns out, highest frequency
        in row 0 (n may be 0 until a whole window has arrived)."""
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        if data.size < self.n_fft:
            self._pending = data.copy()
            return np.zeros((SPEC_ROWS, 0), np.uint8)
        n = 1 + (data.size - self.n_fft) // self.hop
        frames = np.lib.stride_tricks.sliding_window_view(data, self.n_fft)[:: self.hop][:n]
        spectrum = np.abs(np.fft.rfft(frames * self._window, axis=1))
        reference = self.n_fft / 4  # a full-scale sine through a Hann window
        db = 20 * np.log10(np.maximum(spectrum / reference, 1e-9))
        rows = np.maximum.reduceat(db, self._row_edges, axis=1)  # (n, SPEC_ROWS)
        level = np.clip((rows - SPEC_FLOOR_DB) / -SPEC_FLOOR_DB, 0, 1)
        self._pending = data[n * self.hop :].copy()
        return np.ascontiguousarray(np.round(level * 255).astype(np.uint8).T[::-1])


_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _serial() -> ThreadPoolExecutor:
    """One analysis thread for every view: chunks are analysed in the order they came."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spectrum")
        return _executor


class SpectrumFeed(QObject):
    """Feeds chunks to a Spectrum on the analysis thread; `columns_ready(array)` arrives
    in the GUI thread, in order. `reset` starts a new piece (late results of the old one
    are dropped); `flush` waits for what is in flight (for readers that need it all).

    The analysis thread never touches a Qt object (the view may be gone by the time a
    chunk is done): a GUI-thread timer collects finished chunks while any are in flight.
    """

    columns_ready = Signal(object)  # uint8 (SPEC_ROWS, n)
    POLL_MS = 25

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.spectrum = Spectrum(0)
        self._futures: list[Future[np.ndarray]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self._collect)

    def reset(self, sample_rate: int) -> None:
        self.spectrum = Spectrum(sample_rate)
        self._futures = []
        self._timer.stop()

    def feed(self, samples: np.ndarray) -> None:
        self._futures.append(_serial().submit(self.spectrum.feed, samples))
        if not self._timer.isActive():
            self._timer.start()

    def pending(self) -> int:
        return len(self._futures)

    def flush(self) -> None:
        """Wait for every chunk in flight and deliver its columns now."""
        for future in list(self._futures):
            future.result()
        self._collect()

    def _collect(self) -> None:
        while self._futures and self._futures[0].done():
            columns = self._futures.pop(0).result()
            if columns.shape[1]:
                self.columns_ready.emit(columns)
        if not self._futures:
            self._timer.stop()
