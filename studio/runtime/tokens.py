"""The prompt boxes' token counters, counted off the GUI thread with the model's tokenizer.

A panel asks `TokenCounter.count(key, text, model)` on every edit; the count runs a
short while after the typing stops (debounced), on a pool thread, through
`engines/tokens.py` (the real CLIP tokenizer, loaded once per model; imported on that
thread, since it brings torch). Only the latest request of each box is answered: a slow
count for older text is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.catalog import ModelEntry
from studio.runtime.tasks import run_in_pool

if TYPE_CHECKING:
    from studio.engines.tokens import TokenCount


def counts_tokens(entry: ModelEntry | None) -> bool:
    """Whether a model reads its prompt with CLIP (its family applies clip skip), so a
    token count means something."""
    if entry is None or entry.path is None:
        return False
    family = entry.descriptor
    return family is not None and family.applies("clip_skip")


class TokenCounter(QObject):
    """Debounced, latest-wins token counts for several prompt boxes (by key)."""

    counted = Signal(str, object)  # key, TokenCount | None (None: nothing to count with)

    def __init__(self, delay_ms: int = 300, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.delay_ms = delay_ms
        self._pending: dict[str, tuple[str, ModelEntry | None]] = {}
        self._serial: dict[str, int] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fire)
        self.running = 0  # counts in flight (tests wait for 0)

    def count(self, key: str, text: str, entry: ModelEntry | None) -> None:
        """Count `text` for the model `entry` a moment from now (restarts the wait)."""
        self._pending[key] = (text, entry)
        self._serial[key] = self._serial.get(key, 0) + 1
        self._timer.start(self.delay_ms)

    def _fire(self) -> None:
        pending, self._pending = self._pending, {}
        for key, (text, entry) in pending.items():
            if not counts_tokens(entry):
                self.counted.emit(key, None)
                continue
            assert entry is not None and entry.descriptor is not None
            path: Path | None = entry.path
            latent = entry.descriptor.latent
            serial = self._serial[key]
            self.running += 1

            def done(value: object, key: str = key, serial: int = serial) -> None:
                self._answer(key, serial, value)

            def failed(_message: str, key: str = key, serial: int = serial) -> None:
                self._answer(key, serial, None)

            def work(text: str = text, path: Path | None = path,
                     latent: str = latent) -> TokenCount | None:
                # imported here, on the pool thread: the tokenizer code brings torch
                from studio.engines.tokens import count_prompt

                return count_prompt(text, path, latent)

            run_in_pool(work, done, on_failed=failed)

    def _answer(self, key: str, serial: int, value: object) -> None:
        """A count came back: shown if it is still the latest for its box (and the box's
        panel still exists: it may close while a count runs)."""
        if not shiboken6.isValid(self):
            return
        self.running -= 1
        if self._serial.get(key) == serial:
            self.counted.emit(key, value)
