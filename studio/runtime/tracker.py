"""The jobs one panel submitted, with the queue's signals filtered down to them.

Every panel needs the same bookkeeping: remember the ids it queued, know which one
is running, forget an id when it ends. Doing it once here keeps the panels about
what they show, not about which signal belongs to whom.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.core.requests import Request
from studio.runtime.worker import JobQueue


class JobTracker(QObject):
    """Signals for this panel's jobs only; `changed` fires whenever ids or current change.

    started/status/progress/preview concern the running job; finished, failed and
    cancelled(id, was_running) fire after the id has been forgotten, so `busy()` and
    `waiting` already describe what is left.
    """

    started = Signal(int, object)
    status = Signal(int, str)
    progress = Signal(int, object)
    preview = Signal(int, object)
    finished = Signal(int, object, list)
    failed = Signal(int, str)
    cancelled = Signal(int, bool)
    changed = Signal()

    def __init__(self, queue: JobQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.ids: list[int] = []  # oldest first
        self.current: int | None = None
        queue.job_started.connect(self._started)
        queue.job_status.connect(self._status)
        queue.job_progress.connect(self._progress)
        queue.job_preview.connect(self._preview)
        queue.job_finished.connect(self._finished)
        queue.job_failed.connect(self._failed)
        queue.job_cancelled.connect(self._cancelled)

    def submit(self, request: Request, **kwargs: Any) -> int:
        """Queue a request (RequestError propagates) and track its id."""
        job_id = self.queue.submit(request, **kwargs)
        self.ids.append(job_id)
        self.changed.emit()
        return job_id

    def cancel_current(self) -> None:
        """Stop the running job only (A1111's Interrupt): the waiting ones still run. With
        none of this panel's jobs running yet, the next one in line is dropped."""
        target = self.current if self.current is not None else (self.ids[0] if self.ids else None)
        if target is not None:
            self.queue.cancel(target)

    def cancel_all(self) -> None:
        """Stop the running job and drop the ones waiting behind it."""
        for job_id in list(reversed(self.ids)):
            self.queue.cancel(job_id)

    def busy(self) -> bool:
        return bool(self.ids)

    @property
    def waiting(self) -> int:
        return len([j for j in self.ids if j != self.current])

    def _started(self, job_id: int, request: object) -> None:
        if job_id in self.ids:
            self.current = job_id
            self.started.emit(job_id, request)
            self.changed.emit()

    def _status(self, job_id: int, text: str) -> None:
        if job_id == self.current:
            self.status.emit(job_id, text)

    def _progress(self, job_id: int, progress: object) -> None:
        if job_id == self.current:
            self.progress.emit(job_id, progress)

    def _preview(self, job_id: int, preview: object) -> None:
        if job_id == self.current:
            self.preview.emit(job_id, preview)

    def _forget(self, job_id: int) -> bool:
        if job_id not in self.ids:
            return False
        self.ids.remove(job_id)
        if job_id == self.current:
            self.current = None
        return True

    def _finished(self, job_id: int, result: object, paths: list) -> None:
        if self._forget(job_id):
            self.finished.emit(job_id, result, paths)
            self.changed.emit()

    def _failed(self, job_id: int, message: str) -> None:
        if self._forget(job_id):
            self.failed.emit(job_id, message)
            self.changed.emit()

    def _cancelled(self, job_id: int) -> None:
        was_running = job_id == self.current
        if self._forget(job_id):
            self.cancelled.emit(job_id, was_running)
            self.changed.emit()
