"""The background worker (a QObject in a QThread) and its GUI-side facade, JobQueue.

The worker owns the models (through the Runner's cache) and runs one job at a
time. Engines report through WorkerEvents, which throttles previews and turns
them into Qt signals; payloads are plain data (numpy arrays, str, dataclasses).
The GUI thread never waits on the worker: it submits, cancels and listens.

The engine work itself (load, generate, save) runs on one daemon thread, the
engine thread, that the worker supervises. A model load is one long library call
that no flag can interrupt; waiting for it from the side means a cancel is
reported within CANCEL_GRACE and shutdown never waits for a load, while the engine
thread finishes (or, at exit, is dropped with the process: it is a daemon).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.core.errors import Cancelled, RequestError, StudioError
from studio.core.requests import Request
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines.base import Events
from studio.runtime.jobs import Job, JobStore, Lane

if TYPE_CHECKING:
    from studio.core.history import History
    from studio.engines.runner import Runner

log = logging.getLogger(__name__)

IMAGE_PREVIEW_INTERVAL = 0.2  # s: at most five image previews a second
TEXT_FLUSH_INTERVAL = 0.05  # s: text chunks are coalesced to ~20 updates a second
PROGRESS_INTERVAL = 0.05  # s
POLL_INTERVAL = 0.02  # s: how often the worker looks at the cancel flag while the engine works
CANCEL_GRACE = 0.25  # s: an engine that has not stopped by then (a load) is left to finish
SHUTDOWN_WAIT_MS = 1000  # the window closes within a second whatever the worker is doing


class WorkerEvents(Events):
    """Bridges an engine's Events to the worker's signals, with throttling.

    Called on the engine thread. Once the worker has given up on the job
    (`abandon`), nothing more is sent for it: the GUI has already heard it was cancelled.
    """

    def __init__(self, worker: Worker, job: Job) -> None:
        super().__init__(job.cancel)
        self.worker = worker
        self.job = job
        self._last_image = 0.0
        self._last_progress = 0.0
        self._text: list[str] = []
        self._text_meta: Preview | None = None
        self._last_text = 0.0
        self._lock = threading.Lock()  # abandon vs. save vs. the text buffer
        self.abandoned = False
        self.saving = False
        self.load_pending = False  # a load was announced; models_changed follows it
        self.load_announced = False  # ...and has followed it

    @property
    def settings(self) -> Settings:
        """The settings in force for this job (engines that read a setting per job, such
        as the image engine's runtime, look here before the ones they were loaded with)."""
        return self.worker.settings

    def wants_previews(self) -> bool:
        return self.worker.settings.live_previews or self.job.lane == "explore"

    def on_progress(self, progress: Progress) -> None:
        self._loaded()
        now = time.perf_counter()
        edge = progress.step >= progress.total or progress.step <= 1
        if (edge or now - self._last_progress >= PROGRESS_INTERVAL) and not self.abandoned:
            self._last_progress = now
            self.worker.job_progress.emit(self.job.id, progress)

    def on_preview(self, preview: Preview) -> None:
        self._loaded()
        now = time.perf_counter()
        if preview.kind == "text":
            with self._lock:
                self._text.append(preview.data)
                self._text_meta = preview
                if now - self._last_text >= TEXT_FLUSH_INTERVAL:
                    self._flush_locked()
            return
        if preview.kind == "image":
            final = preview.total and preview.step >= preview.total
            if not final and now - self._last_image < IMAGE_PREVIEW_INTERVAL:
                return
            self._last_image = now
        if not self.abandoned:
            self.worker.job_preview.emit(self.job.id, preview)

    def on_status(self, text: str) -> None:
        if not self.abandoned:
            self.worker.job_status.emit(self.job.id, text)

    def flush(self) -> None:
        """Send coalesced text that is still waiting (called before the job ends)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._text and self._text_meta is not None and not self.abandoned:
            meta = self._text_meta
            chunk = "".join(self._text)
            self._text.clear()
            self._last_text = time.perf_counter()
            self.worker.job_preview.emit(
                self.job.id, Preview("text", chunk, meta.step, meta.total, info=meta.info)
            )

    def _loaded(self) -> None:
        """The engine reports steps, so its model is in memory: say so at once."""
        if self.load_pending:
            self.load_pending = False
            self.load_announced = True
            self.worker.announce_models()

    def begin_save(self) -> bool:
        """The engine thread is about to write files; False if the job was given up."""
        with self._lock:
            if self.abandoned:
                return False
            self.saving = True
            return True

    def abandon(self) -> bool:
        """The worker gives up on this job (it is reported cancelled); False once saving."""
        with self._lock:
            if self.saving:
                return False
            self._flush_locked()  # the text made before the cancel stays visible
            self.abandoned = True
            return True


class _Task:
    """One piece of engine work and its outcome, waited on by the worker."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the worker, which decides what it means
            self.error = exc
        finally:
            self.done.set()


class EngineThread:
    """A daemon thread that runs tasks one at a time (the runner and its cache live here)."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="studio-engine", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> _Task:
        task = _Task(fn)
        self._tasks.put(task)
        return task

    def stop(self) -> None:
        """End the thread after the task it is running (it never blocks the caller)."""
        self._tasks.put(None)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while (task := self._tasks.get()) is not None:
            task.run()


class Worker(QObject):
    """Runs jobs from a JobStore in its own thread. Talk to it through JobQueue.

    Its thread only hands each job to the engine thread and watches: the job's cancel
    flag (a job still busy CANCEL_GRACE after a cancel is reported cancelled and left to
    finish alone, the next job waiting for it) and the store closing (then it stops at once).
    """

    job_started = Signal(int, object)  # job id, resolved-or-not request
    job_progress = Signal(int, object)  # job id, Progress
    job_preview = Signal(int, object)  # job id, Preview
    job_status = Signal(int, str)  # job id, a state line ("Loading model…")
    job_finished = Signal(int, object, list)  # job id, Result, [Path]
    job_failed = Signal(int, str)  # job id, one sentence
    job_cancelled = Signal(int)
    model_loading = Signal(str, str)  # model id, device: a load starts (models_changed ends it)
    models_changed = Signal(list)  # [{model, device, dtype, bytes}]
    warmed_up = Signal(dict)  # {step: seconds}: the ML imports are done (JobQueue.warm_up)
    stopped = Signal()

    def __init__(self, store: JobStore, settings: Settings, history: History | None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.history = history
        self.runner: Runner | None = None  # built on the engine thread (imports engines lazily)
        self.current: Job | None = None
        self.engine: EngineThread | None = None
        self._task: _Task | None = None  # the engine thread's latest task
        self._events: WorkerEvents | None = None

    @Slot()
    def run(self) -> None:
        self.engine = EngineThread()
        try:
            while (job := self.store.take()) is not None:
                self.current = job
                try:
                    if not self._run(job):
                        break  # the store closed while the engine worked: leave it to finish
                finally:
                    self.current = None
        finally:
            self.engine.stop()
            self.stopped.emit()

    def _get_runner(self) -> Runner:
        """The runner, made on first use (engine thread only: the cache is not thread-safe)."""
        if self.runner is None:
            from studio.engines.runner import Runner

            self.runner = Runner(self.settings)
        self.runner.settings = self.settings
        return self.runner

    def announce_models(self) -> None:
        """Send what is in memory now (engine thread only: it owns the cache)."""
        if self.runner is not None:
            self.models_changed.emit(self.runner.cache.loaded())

    def _wait(self, task: _Task, events: WorkerEvents | None = None) -> bool:
        """Wait for a task; True when it ended, False when the job was given up or we close.

        With `events`, a cancelled job whose engine has not stopped within CANCEL_GRACE
        (a model load, one long step) is abandoned: reported now, left to finish.
        """
        cancelled_at: float | None = None
        while not task.done.wait(POLL_INTERVAL):
            if self.store.closed:
                if events is not None:
                    events.abandon()  # closing: nothing more is said about this job
                return False
            if events is None or not events.cancel_flag.is_set():
                continue
            now = time.perf_counter()
            cancelled_at = cancelled_at or now
            if now - cancelled_at >= CANCEL_GRACE and events.abandon():
                return False
        return True

    def _run(self, job: Job) -> bool:
        """Run one job; False when the store closed while the engine was still busy."""
        if job.request is None:  # a control job (unload)
            return self._wait(self._submit(lambda: self._control(job)))
        if job.cancel.is_set():
            job.state = "cancelled"
            self.job_cancelled.emit(job.id)
            return True
        events = self._events = WorkerEvents(self, job)
        self.job_started.emit(job.id, job.request)
        task = self._submit(lambda: self._work(job, events))
        if not self._wait(task, events):  # given up: cancelled now, the engine finishes alone
            job.state = "cancelled"
            self.current = None
            self.job_cancelled.emit(job.id)
            return self._wait(task)  # the cache is the engine thread's alone: the next job waits
        exc = task.error
        if isinstance(exc, Cancelled):
            job.state = "cancelled"
            self.job_cancelled.emit(job.id)
        elif exc is not None:  # one job's failure never stops the worker
            from studio.engines.runner import failure_message

            if isinstance(exc, StudioError):  # the user's input or model: the sentence says it
                log.info("job %s failed: %s", job.id, failure_message(exc))
            else:  # a fault in Studio: keep the traceback in the log
                log.error("job %s failed", job.id, exc_info=exc)
            job.state = "failed"
            self.job_failed.emit(job.id, failure_message(exc))
        else:
            result, paths = task.value
            job.state = "done"
            self.job_finished.emit(job.id, result, paths)
        return True

    def _submit(self, fn: Callable[[], Any]) -> _Task:
        assert self.engine is not None  # started with the worker's run loop
        self._task = self.engine.submit(fn)
        return self._task

    def _work(self, job: Job, events: WorkerEvents) -> tuple[Any, list[Path]]:
        """Engine thread: load (once), generate, save. Raises Cancelled or the job's error."""
        runner = self._get_runner()
        assert job.request is not None  # action jobs (unload) never reach the engine thread
        loaded_before = runner.cache.loads
        failed = True
        try:
            self._announce_load(runner, job, events)
            if job.work is not None:  # many requests in one job (a grid): it saves its own
                made: tuple[Any, list[Path]] = job.work(runner, events, self.history)
                failed = False
                return made
            result = runner.generate(job.request, events)
            events.flush()
            events.check_cancelled()
            if not events.begin_save():
                raise Cancelled()
            paths: list[Path] = runner.save(result, self.history) if job.save else []
            failed = False
            return result, paths
        except Cancelled:
            events.flush()  # text made before the cancel stays visible (not held back)
            failed = False
            raise
        finally:
            loaded = runner.cache.loads != loaded_before and not events.load_announced
            if events.load_pending or failed or loaded:
                events.load_pending = False
                self.announce_models()

    def _announce_load(self, runner: Runner, job: Job, events: WorkerEvents) -> None:
        """Say which model is about to load and where, before the long part starts."""
        assert job.request is not None
        try:
            spec = runner.spec_for(job.request)
        except Exception:  # the same error comes back from generate, as the job's failure
            return
        if spec not in runner.cache:
            events.load_pending = True
            self.model_loading.emit(spec.model, spec.device)

    def _control(self, job: Job) -> None:
        action = job.action
        if action == "warm_up":
            from studio.engines.warmup import warm_up

            job.state = "done"
            self.warmed_up.emit(warm_up())
            return
        runner = self._get_runner()
        if action == "unload_all":
            runner.cache.unload_all()
        elif action.startswith("unload:"):
            runner.cache.unload_model(action.removeprefix("unload:"))
        job.state = "done"
        self.announce_models()

    def wait_saved(self, timeout_s: float) -> None:
        """At shutdown: let files that are being written be finished (bounded)."""
        task, events = self._task, self._events
        if task is not None and events is not None and events.saving:
            task.done.wait(timeout_s)


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
    model_loading = Signal(str, str)  # model id, device
    models_changed = Signal(list)
    warmed_up = Signal(dict)  # {step: seconds} once warm_up() has imported the ML stack
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
            "model_loading",
            "models_changed",
            "warmed_up",
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

    def submit(self, request: Request, *, lane: Lane = "generate", save: bool = True,
               work: Callable[..., Any] | None = None) -> int:
        """Validate and queue a request; returns its job id. Raises RequestError at once.
        `work`: what the job runs instead of the request alone (see `Job.work`)."""
        if not isinstance(request, Request):
            raise RequestError("Nothing to generate.")
        request.validate()
        job = Job(request, lane=lane, save=save, work=work)
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

    def warm_up(self) -> None:
        """Import torch, diffusers and transformers on the engine thread now, ahead of any
        job (call it once the window is shown): the import holds the GIL in long C calls,
        so the hiccup it causes happens once at launch instead of during the first job.
        A job submitted meanwhile starts when the imports are done (it needs them)."""
        self.store.put_front(Job(None, save=False, action="warm_up"))

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

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """Cancel everything and stop the thread, within timeout_ms whatever the engine does.

        The worker thread stops at once; a load still running on the engine thread is left
        to end with the process. Files being written when this is called are finished
        first (within the same bound), so no complete output is cut off.
        """
        t0 = time.perf_counter()
        self.cancel_all()
        self.store.close()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("worker still busy at shutdown; leaving it to finish")
        left = timeout_ms / 1000 - (time.perf_counter() - t0)
        if left > 0:
            self.worker.wait_saved(left)

    def _changed(self, job_id: int, *_args) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state in ("done", "failed", "cancelled"):
            self.jobs.pop(job_id, None)
        self.queue_changed.emit()

