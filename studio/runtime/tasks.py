"""Background work that is not a generation job (folder scans, file reads, downloads).

It runs on Qt's thread pool and never blocks the GUI. A `Task` is the handle:
its signals (`progress`, `done`, `failed`, `cancelled`) arrive, queued, in the
thread the task was made in (the GUI thread); the function it runs gets the task
itself, to report progress (`task.report(value)`) and to see a cancel request
(`task.cancel_event`, `task.is_cancelled()`). Exactly one of done/failed/cancelled
ends every task. `run_in_pool` is the short form for a plain call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from studio.core.errors import Cancelled, StudioError
from studio.core.text import first_line

log = logging.getLogger(__name__)


class Task(QObject):
    """One background call with progress reports and a cooperative cancel flag."""

    progress = Signal(object)  # whatever the function reports (plain data)
    done = Signal(object)  # its return value
    failed = Signal(str)  # one line (a StudioError's sentence, else the first line)
    cancelled = Signal(str)  # the Cancelled message

    def __init__(self, fn: Callable[[Task], Any]) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self._started = False

    @property
    def cancel_event(self) -> threading.Event:
        """The flag to hand to code that takes a `threading.Event` (set by `cancel()`)."""
        return self._cancel

    def cancel(self) -> None:
        """Ask the function to stop; it ends with `cancelled` once it notices (thread-safe)."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def report(self, value: Any) -> None:
        """Called from the function (pool thread): emits `progress(value)` to the GUI thread."""
        self.progress.emit(value)

    def start(self, pool: QThreadPool | None = None) -> Task:
        """Queue the call on `pool` (Qt's global pool by default). Connect signals first."""
        if self._started:
            raise RuntimeError("a task runs once")
        self._started = True
        _live.add(self)
        for signal in (self.done, self.failed, self.cancelled):
            signal.connect(self._forget)
        (pool or QThreadPool.globalInstance()).start(_Runnable(self))
        return self

    def _forget(self, _value: object = None) -> None:
        _live.discard(self)

    def _run(self) -> None:
        try:
            value = self._fn(self)
        except Cancelled as exc:
            self.cancelled.emit(str(exc))
        except StudioError as exc:
            self.failed.emit(first_line(exc))
        except Exception as exc:  # reported, never raised into Qt
            log.exception("background task failed")
            self.failed.emit(first_line(exc))
        else:
            self.done.emit(value)


class _Runnable(QRunnable):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def run(self) -> None:
        self.task._run()


_live: set[Task] = set()  # started tasks, kept alive until their last signal is delivered


def run_in_pool(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    pool: QThreadPool | None = None,
    on_failed: Callable[[str], None] | None = None,
) -> Task:
    """Run fn() on a pool thread; on_done(value) is called in the calling (GUI) thread.

    on_failed gets one line when fn raises (a Cancelled included).
    """
    task = Task(lambda _task: fn())
    task.done.connect(on_done)
    if on_failed is not None:
        task.failed.connect(on_failed)
        task.cancelled.connect(on_failed)
    return task.start(pool)
