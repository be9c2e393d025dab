"""Deletes to the trash and their Undo, off the GUI thread.

The file moves and history updates (`core.trash`) touch the disk and the index, so they
run on the pool; the GUI hears `trashed`, `restored` or `failed`. The deletes of this
session stack up, newest last, so Undo reverses them one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from studio.core import trash
from studio.core.history import History
from studio.core.trash import Trashed
from studio.runtime.tasks import run_in_pool


class TrashCan(QObject):
    """Moves outputs into `<output>/.trash/` and back, one pool task at a time per call."""

    trashed = Signal(object)  # Trashed: the files are in the trash, the row is gone
    restored = Signal(object)  # Path: the output is back in place and in the history
    failed = Signal(str)  # one sentence

    def __init__(self, history: History, out_dir: Callable[[], Path],
                 parent: QObject | None = None) -> None:
        """`out_dir` is asked at each delete (the setting may change while running)."""
        super().__init__(parent)
        self._history = history
        self._out_dir = out_dir
        self._done: list[Trashed] = []
        self._busy = 0

    def delete(self, path: str | Path) -> None:
        """Move an output and its companions to the trash (on the pool)."""
        path, out_dir, history = Path(path), Path(self._out_dir()), self._history
        self._busy += 1
        run_in_pool(lambda: trash.trash_output(path, out_dir, history), self._trashed,
                    on_failed=self._failed)

    def can_undo(self) -> bool:
        return bool(self._done)

    def last(self) -> Trashed | None:
        return self._done[-1] if self._done else None

    def undo(self) -> bool:
        """Put the most recent delete back (on the pool); False when there is none."""
        if not self._done:
            return False
        entry, history = self._done.pop(), self._history
        self._busy += 1
        run_in_pool(lambda: trash.restore(entry, history), self._restored,
                    on_failed=self._failed)
        return True

    def is_busy(self) -> bool:
        return self._busy > 0

    def _trashed(self, entry: Trashed) -> None:
        self._busy -= 1
        self._done.append(entry)
        self.trashed.emit(entry)

    def _restored(self, path: Path) -> None:
        self._busy -= 1
        self.restored.emit(path)

    def _failed(self, message: str) -> None:
        self._busy -= 1
        self.failed.emit(message)
