"""Ratings of explorer points: which points were saved, and their stars in the history.

A point is rated through the file it was saved to; rating a point that is not saved yet
saves it first and rates the file when it exists. Every history call runs on a pool
thread of its own (one thread, so two quick ratings keep their order) and reports back
with a signal: the GUI thread never waits on SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from studio.core.explore import ExploreRequest
from studio.core.history import History
from studio.runtime.tasks import run_in_pool


def point_key(request: ExploreRequest) -> int:
    """Frames that differ only in size or preview settings are the same point."""
    return hash(replace(request, width=64, height=64, fast=False, frames=48, loop=False,
                        easing="ease-in-out", fps=12, spread=0.3, preview_steps=4,
                        preview_size=256, mode="point"))


class PointRatings(QObject):
    rating_changed = Signal(int)  # the stars of the point shown (or just given)
    rating_saved = Signal(object, int)  # path, rating: written to the history
    info = Signal(str)
    error = Signal(str)

    def __init__(self, history: History | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self._saved: dict[int, Path] = {}  # point_key → saved path
        self._pending: tuple[int, int] | None = None  # (point_key, rating) until it is saved
        self._shown: int | None = None  # point_key of the point shown
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def saved_path(self, request: ExploreRequest) -> Path | None:
        return self._saved.get(point_key(request))

    def rate(self, request: ExploreRequest, rating: int) -> bool:
        """Rate a point; True when it must be saved first (the rating follows the save)."""
        self.rating_changed.emit(rating)
        key = point_key(request)
        path = self._saved.get(key)
        if path is not None:
            self._write(path, rating)
            return False
        if rating:
            self._pending = (key, rating)
            return True
        return False

    def saved(self, request: ExploreRequest, path: Path) -> None:
        """A point was saved to path: remember it, and give it the rating it waits for."""
        key = point_key(request)
        self._saved[key] = path
        if self._pending is not None and self._pending[0] == key:
            self._write(path, self._pending[1])
            self._pending = None

    def show(self, request: ExploreRequest) -> None:
        """A point is shown: its stars, if it was saved (and rated) in this session."""
        key = point_key(request)
        self._shown = key
        path = self._saved.get(key)
        history = self.history
        if path is None or history is None:
            self.rating_changed.emit(0)
            return

        def read() -> int:
            item = history.find_path(path)
            return item.rating if item is not None else 0

        def done(rating: int) -> None:
            if self._shown == key:  # that point is still the one shown
                self.rating_changed.emit(rating)

        run_in_pool(read, done, self._pool, on_failed=lambda _m: done(0))

    def _write(self, path: Path, rating: int) -> None:
        history = self.history
        if history is None:
            return

        def write() -> bool:
            item = history.find_path(path)
            return item is not None and history.set_rating(item.id, rating)

        def done(ok: bool) -> None:
            if ok:
                stars = "★" * rating if rating else "no rating"
                self.info.emit(f"{path.name}: {stars}")
                self.rating_saved.emit(path, rating)

        run_in_pool(write, done, self._pool, on_failed=self.error.emit)
