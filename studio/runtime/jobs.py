"""Jobs and the thread-safe queue the worker takes them from.

Two lanes: "generate" is first-in first-out; "explore" is latest-wins (a drag
on the explorer pad replaces the pending position instead of queueing behind it)
and is served before waiting generate jobs, because someone is watching it live.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from studio.core.requests import Request

Lane = Literal["generate", "explore"]
_ids = itertools.count(1)


@dataclass
class Job:
    request: Request | None  # None for a control job (see `action`)
    lane: Lane = "generate"
    save: bool = True
    id: int = field(default_factory=lambda: next(_ids))
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"  # queued → running → done | failed | cancelled | removed
    action: str = ""  # control jobs: "unload_all" or "unload:<model>"
    #: a job of many requests (a grid): work(runner, events, history) -> (result, paths)
    #: runs on the engine thread instead of one generate + save; `request` is its base
    work: Callable[..., Any] | None = None


class JobStore:
    """Pending jobs shared by the GUI thread (producers) and the worker (consumer)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._latest: Job | None = None
        self._closed = False

    def put(self, job: Job) -> Job | None:
        """Add a job; for the explore lane returns the job it replaced (if any)."""
        with self._cond:
            replaced = None
            if job.lane == "explore":
                replaced, self._latest = self._latest, job
                if replaced is not None:
                    replaced.state = "removed"
            else:
                self._queue.append(job)
            self._cond.notify()
            return replaced

    def put_front(self, job: Job) -> None:
        """Queue a control job ahead of waiting generate jobs."""
        with self._cond:
            self._queue.appendleft(job)
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Job | None:
        """Block until a job is pending (explore first) or the store is closed."""
        with self._cond:
            while not self._closed and self._latest is None and not self._queue:
                if not self._cond.wait(timeout):
                    return None
            if self._closed:
                return None
            if self._latest is not None:
                job, self._latest = self._latest, None
            else:
                job = self._queue.popleft()
            job.state = "running"
            return job

    def remove(self, job_id: int) -> Job | None:
        """Take a queued job out (it never runs); None if it is not waiting."""
        with self._cond:
            if self._latest is not None and self._latest.id == job_id:
                job, self._latest = self._latest, None
                job.state = "removed"
                return job
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    job.state = "removed"
                    return job
            return None

    def clear(self) -> list[Job]:
        with self._cond:
            jobs = list(self._queue) + ([self._latest] if self._latest else [])
            self._queue.clear()
            self._latest = None
            for job in jobs:
                job.state = "removed"
            return jobs

    def pending(self) -> list[Job]:
        """Waiting jobs in the order they will run (control jobs left out)."""
        with self._cond:
            jobs = ([self._latest] if self._latest else []) + list(self._queue)
            return [j for j in jobs if j.request is not None]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once close() was called (the worker stops waiting for the engine then)."""
        return self._closed
