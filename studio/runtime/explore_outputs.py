"""What an exploring session writes: saved points, their ratings, and walks.

Saves and walks are ordinary generate-lane jobs (saved, indexed, in the queue like any
other). A point is rated through the file it was saved to; rating a point that is not
saved yet saves it first and rates the file when it exists. Every history call runs on
a pool thread of its own (one thread, so two quick ratings keep their order) and
reports back with a signal: the GUI thread never waits on SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from studio.core.errors import StudioError
from studio.core.explore import ExploreRequest
from studio.core.history import History
from studio.core.results import Progress, Result
from studio.core.text import first_line
from studio.runtime.tasks import run_in_pool
from studio.runtime.tracker import JobTracker


def point_key(request: ExploreRequest) -> int:
    """Frames that differ only in size or preview settings are the same point."""
    return hash(replace(request, width=64, height=64, fast=False, frames=48, loop=False,
                        easing="ease-in-out", fps=12, spread=0.3, preview_steps=4,
                        preview_size=256, mode="point"))


class ExploreOutputs(QObject):
    """Saves, ratings and walks of one exploring session (see the module docstring)."""

    rating_changed = Signal(int)  # the stars of the point shown (or just given)
    rating_saved = Signal(object, int)  # path, rating: written to the history
    walk_started = Signal()
    walk_progress = Signal(object)  # Progress
    walk_status = Signal(str)
    walk_finished = Signal(object, list)  # Result, [Path]
    walk_ended = Signal(str)  # "Failed" | "Cancelled"
    info = Signal(str)
    error = Signal(str)

    def __init__(self, tracker: JobTracker, history: History | None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tracker = tracker
        self.history = history
        self.walk_job: int | None = None
        self._kinds: dict[int, str] = {}  # job id → "save" | "walk"
        self._saved: dict[int, Path] = {}  # point_key → saved path
        self._pending: tuple[int, int] | None = None  # (point_key, rating) until it is saved
        self._shown: int | None = None  # point_key of the point shown
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        tracker.status.connect(self._status)
        tracker.progress.connect(self._progress)
        tracker.finished.connect(self._finished)
        tracker.failed.connect(self._failed)
        tracker.cancelled.connect(lambda job_id, _running: self._ended(job_id, "Cancelled"))

    # ------------------------------------------------------------------ jobs
    def save(self, request: ExploreRequest) -> int | None:
        """Save a point as an output (the request is rendered again at its save size)."""
        job = self._submit(request, "save")
        if job is not None:
            self.info.emit("Saving this point…")
        return job

    def render_walk(self, request: ExploreRequest) -> int | None:
        """Render a walk through the anchors to GIF and MP4."""
        if len(request.anchors) < 2:
            self.error.emit("A walk needs at least two anchors.")
            return None
        job = self._submit(request, "walk")
        if job is not None:
            self.walk_job = job
            self.walk_started.emit()
        return job

    def cancel_walk(self) -> None:
        if self.walk_job is not None:
            self.tracker.queue.cancel(self.walk_job)

    def _submit(self, request: ExploreRequest, kind: str) -> int | None:
        try:
            job = self.tracker.submit(request, lane="generate", save=True)
        except StudioError as exc:
            self.error.emit(first_line(exc))
            return None
        self._kinds[job] = kind
        return job

    def _status(self, job_id: int, text: str) -> None:
        if job_id == self.walk_job:
            self.walk_status.emit(text)

    def _progress(self, job_id: int, progress: Progress) -> None:
        if job_id == self.walk_job:
            self.walk_progress.emit(progress)

    def _finished(self, job_id: int, result: Result, paths: list) -> None:
        kind = self._kinds.pop(job_id, None)
        if kind == "save" and paths and isinstance(result.request, ExploreRequest):
            self.info.emit(f"Saved {Path(paths[0]).name}")
            self.saved(result.request, Path(paths[0]))
        elif kind == "walk":
            self.walk_job = None
            self.walk_finished.emit(result, [Path(p) for p in paths])

    def _failed(self, job_id: int, message: str) -> None:
        if self._ended(job_id, "Failed"):
            self.error.emit(message)

    def _ended(self, job_id: int, walk_status: str) -> bool:
        """Forget a save or walk that ended without a result; False if it was not ours."""
        kind = self._kinds.pop(job_id, None)
        if kind == "walk":
            self.walk_job = None
            self.walk_ended.emit(walk_status)
        return kind is not None

    # ------------------------------------------------------------------ ratings

    def saved_path(self, request: ExploreRequest) -> Path | None:
        return self._saved.get(point_key(request))

    def rate(self, request: ExploreRequest, rating: int) -> None:
        """Rate (and favourite, at 5) a point: saved first when it is not yet."""
        self.rating_changed.emit(rating)
        key = point_key(request)
        path = self._saved.get(key)
        if path is not None:
            self._write(path, rating)
        elif rating:
            self._pending = (key, rating)
            self.save(request)

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
