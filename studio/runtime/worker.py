"""The background worker (a QObject in a QThread) and its GUI-side facade, JobQueue.

The worker owns the models (through the Runner's cache) and runs one job at a
time. Engines report through WorkerEvents, which throttles previews and turns
them into Qt signals; payloads are plain data (numpy arrays, str, dataclasses).
The GUI thread never waits on the worker: it submits, cancels and listens.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.core.errors import Cancelled, RequestError
from studio.core.requests import Request
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines.base import Events
from studio.runtime.jobs import Job, JobStore, Lane

if TYPE_CHECKING:
    from studio.core.history import History

log = logging.getLogger(__name__)

IMAGE_PREVIEW_INTERVAL = 0.2  # s: at most five image previews a second
TEXT_FLUSH_INTERVAL = 0.05  # s: text chunks are coalesced to ~20 updates a second
PROGRESS_INTERVAL = 0.05  # s


class WorkerEvents(Events):
    """Bridges an engine's Events to the worker's signals, with throttling."""

    def __init__(self, worker: Worker, job: Job) -> None:
        super().__init__(job.cancel)
        self.worker = worker
        self.job = job
        self._last_image = 0.0
        self._last_progress = 0.0
        self._text: list[str] = []
        self._text_meta: Preview | None = None
        self._last_text = 0.0

    def wants_previews(self) -> bool:
        return self.worker.settings.live_previews or self.job.lane == "explore"

    def on_progress(self, progress: Progress) -> None:
        now = time.perf_counter()
        edge = progress.step >= progress.total or progress.step <= 1
        if edge or now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            self.worker.job_progress.emit(self.job.id, progress)

    def on_preview(self, preview: Preview) -> None:
        now = time.perf_counter()
        if preview.kind == "text":
            self._text.append(preview.data)
            self._text_meta = preview
            if now - self._last_text >= TEXT_FLUSH_INTERVAL:
                self.flush()
            return
        if preview.kind == "image":
            final = preview.total and preview.step >= preview.total
            if not final and now - self._last_image < IMAGE_PREVIEW_INTERVAL:
                return
            self._last_image = now
        self.worker.job_preview.emit(self.job.id, preview)

    def on_status(self, text: str) -> None:
        self.worker.job_status.emit(self.job.id, text)

    def flush(self) -> None:
        """Send coalesced text that is still waiting (called before the job ends)."""
        if self._text and self._text_meta is not None:
            meta = self._text_meta
            chunk = "".join(self._text)
            self._text.clear()
            self._last_text = time.perf_counter()
            self.worker.job_preview.emit(
                self.job.id, Preview("text", chunk, meta.step, meta.total, info=meta.info)
            )


class Worker(QObject):
    """Runs jobs from a JobStore in its own thread. Talk to it through JobQueue."""

    job_started = Signal(int, object)  # job id, resolved-or-not request
    job_progress = Signal(int, object)  # job id, Progress
    job_preview = Signal(int, object)  # job id, Preview
    job_status = Signal(int, str)  # job id, a state line ("Loading model…")
    job_finished = Signal(int, object, list)  # job id, Result, [Path]
    job_failed = Signal(int, str)  # job id, one sentence
    job_cancelled = Signal(int)
    models_changed = Signal(list)  # [{model, device, dtype, bytes}]
    stopped = Signal()

    def __init__(self, store: JobStore, settings: Settings, history: History | None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.history = history
        self.runner = None  # built in the worker thread (imports the engines lazily)
        self.current: Job | None = None

    @Slot()
    def run(self) -> None:
        from studio.engines.runner import Runner

        self.runner = Runner(self.settings)
        while True:
            job = self.store.take()
            if job is None:
                break
            self.current = job
            try:
                self._run(job)
            finally:
                self.current = None
        self.stopped.emit()

    def _run(self, job: Job) -> None:
        from studio.engines.runner import failure_message

        runner = self.runner
        runner.settings = self.settings
        if job.request is None:  # a control job (unload)
            self._control(job)
            return
        if job.cancel.is_set():
            job.state = "cancelled"
            self.job_cancelled.emit(job.id)
            return
        events = WorkerEvents(self, job)
        self.job_started.emit(job.id, job.request)
        loaded_before = runner.cache.loads
        try:
            result = runner.generate(job.request, events)
            events.flush()
            events.check_cancelled()
            paths: list[Path] = runner.save(result, self.history) if job.save else []
        except Cancelled:
            job.state = "cancelled"
            events.flush()  # text made before the cancel stays visible (not held back)
            self.job_cancelled.emit(job.id)
        except Exception as exc:  # one job's failure never stops the worker
            log.exception("job %s failed", job.id)
            job.state = "failed"
            self.job_failed.emit(job.id, failure_message(exc))
        else:
            job.state = "done"
            self.job_finished.emit(job.id, result, paths)
        if runner.cache.loads != loaded_before or job.state == "failed":
            self.models_changed.emit(runner.cache.loaded())

    def _control(self, job: Job) -> None:
        action = job.action
        if action == "unload_all":
            self.runner.cache.unload_all()
        elif action.startswith("unload:"):
            self.runner.cache.unload_model(action.removeprefix("unload:"))
        job.state = "done"
        self.models_changed.emit(self.runner.cache.loaded())


class JobQueue(QObject):
    """The GUI-side face of the worker: submit, cancel, remove; relays the worker's signals.

    Panels keep the ids they submitted and filter the signals by id.
    """

    job_started = Signal(int, object)
    job_progress = Signal(int, object)
    job_preview = Signal(int, object)
    job_status = Signal(int, str)
    job_finished = Signal(int, object, list)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)
    models_changed = Signal(list)
    queue_changed = Signal()

    def __init__(
        self, settings: Settings, history: History | None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.store = JobStore()
        self.jobs: dict[int, Job] = {}
        self._thread = QThread()
        self._thread.setObjectName("studio-worker")
        self.worker = Worker(self.store, settings, history)
        self.worker.moveToThread(self._thread)
        self._thread.started.connect(self.worker.run)
        for name in (
            "job_started",
            "job_progress",
            "job_preview",
            "job_status",
            "job_finished",
            "job_failed",
            "job_cancelled",
            "models_changed",
        ):
            getattr(self.worker, name).connect(getattr(self, name))
        for name in ("job_started", "job_finished", "job_failed", "job_cancelled"):
            getattr(self.worker, name).connect(self._changed)
        self._thread.start()

    @property
    def settings(self) -> Settings:
        return self.worker.settings

    def set_settings(self, settings: Settings) -> None:
        self.worker.settings = settings

    def submit(self, request: Request, *, lane: Lane = "generate", save: bool = True) -> int:
        """Validate and queue a request; returns its job id. Raises RequestError at once."""
        if not isinstance(request, Request):
            raise RequestError("Nothing to generate.")
        request.validate()
        job = Job(request, lane=lane, save=save)
        self.jobs[job.id] = job
        replaced = self.store.put(job)
        if replaced is not None:
            self.jobs.pop(replaced.id, None)
        self.queue_changed.emit()
        return job.id

    def cancel(self, job_id: int) -> None:
        """Cancel a running job (cooperatively) or drop a queued one."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        if self.store.remove(job_id) is not None:
            self.jobs.pop(job_id, None)
            self.job_cancelled.emit(job_id)
        else:
            job.cancel.set()
        self.queue_changed.emit()

    def remove(self, job_id: int) -> bool:
        """Take a queued job out without running it."""
        job = self.store.remove(job_id)
        if job is None:
            return False
        self.jobs.pop(job_id, None)
        self.job_cancelled.emit(job_id)
        self.queue_changed.emit()
        return True

    def cancel_current(self) -> int | None:
        """Stop the running job only (A1111's Interrupt): the queued ones go on; its id or None."""
        current = self.worker.current
        if current is None or current.request is None:  # idle, or a control job (unload)
            return None
        self.cancel(current.id)
        return current.id

    def cancel_all(self) -> None:
        """Stop the running job and drop every queued one."""
        for job in self.store.clear():
            self.jobs.pop(job.id, None)
            self.job_cancelled.emit(job.id)
        current = self.worker.current
        if current is not None:
            current.cancel.set()
        self.queue_changed.emit()

    def unload(self, model: str | None = None) -> None:
        """Unload one model (all its devices/dtypes) or, with None, every model."""
        job = Job(None, save=False, action="unload_all" if model is None else f"unload:{model}")
        self.store.put_front(job)

    def pending(self) -> list[Job]:
        return self.store.pending()

    def running(self) -> Job | None:
        return self.worker.current

    def is_busy(self) -> bool:
        """True until every submitted job has reported its end to the GUI thread."""
        return bool(self.jobs)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel everything and stop the thread (waits at most timeout_ms)."""
        self.cancel_all()
        self.store.close()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("worker still busy at shutdown; leaving it to finish")

    def _changed(self, job_id: int, *_args) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state in ("done", "failed", "cancelled"):
            self.jobs.pop(job_id, None)
        self.queue_changed.emit()

