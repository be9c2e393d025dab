"""The explorer's latest-wins pump: the newest request per kind, one job in flight.

Each kind of explorer job ("frame", "anchors", "grid") keeps only its newest request;
at most one explorer job is in flight, on the job store's "explore" lane (served before
waiting generate jobs, and itself latest-wins); the next request is sent when it ends.
So a fast drag never builds a backlog and the last frame shown is always the last
position. Nothing is sent before `activate()` (the panel is first shown), so starting
the app stays light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from studio.core.errors import StudioError
from studio.core.explore import ExploreRequest
from studio.core.results import Preview, Result
from studio.core.text import first_line
from studio.runtime.tracker import JobTracker

SLOTS = ("frame", "anchors", "grid")  # in the order they are served


@dataclass(frozen=True)
class Timing:
    """How long a frame took. A job that loaded its model first (the worker reported a
    status such as "Loading …") has no round-trip latency: the render started when the
    load ended, so the load is reported on its own and never counted as render latency."""

    render_ms: float  # the engine's own render time
    latency_ms: float | None  # request sent → frame back; None when the model loaded first
    load_s: float | None = None  # model load (and other preparation) before the render

    def text(self) -> str:
        if self.latency_ms is None:
            load = self.load_s or 0.0
            took = f"{load:.1f} s" if load >= 1 else f"{load * 1000:.0f} ms"
            return f"render {self.render_ms:.0f} ms · model ready in {took}"
        return f"{self.latency_ms:.0f} ms (render {self.render_ms:.0f} ms)"


class ExplorePump(QObject):
    """Sends explorer requests through a JobTracker, latest-wins (see the module docstring)."""

    done = Signal(str, object, object)  # slot, Result, Timing
    preview = Signal(object, str)  # an in-between image (numpy) of the frame job, caption
    status = Signal(str)  # a status line of the running explorer job ("Loading …")
    failed = Signal(str)  # one sentence

    def __init__(self, tracker: JobTracker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tracker = tracker
        self.jobs_started = 0  # explorer jobs submitted (tests, the benchmark)
        self._active = False
        self._slots: dict[str, ExploreRequest | None] = dict.fromkeys(SLOTS)
        self._inflight: int | None = None
        self._inflight_slot = ""
        self._inflight_request: ExploreRequest | None = None
        self._sent = 0.0  # when the job in flight was submitted
        self._prepared: float | None = None  # when it reported a status (a model load)
        tracker.status.connect(self._status)
        tracker.preview.connect(self._preview)
        tracker.finished.connect(self._finished)
        tracker.failed.connect(self._failed)
        tracker.cancelled.connect(lambda job_id, _running: self._ended(job_id))

    def activate(self) -> None:
        self._active = True
        self._pump()

    def queue(self, slot: str, request: ExploreRequest) -> None:
        """Keep only the newest request of this kind; send it when no explorer job runs."""
        self._slots[slot] = request
        self._pump()

    def busy(self) -> bool:
        """True while an explorer job runs or waits."""
        return self._inflight is not None or any(v is not None for v in self._slots.values())

    @property
    def running_request(self) -> ExploreRequest | None:
        return self._inflight_request

    def cancel_running(self) -> None:
        """Stop the job in flight (its result would be stale); the next one follows."""
        if self._inflight is not None:
            self.tracker.queue.cancel(self._inflight)

    def _pump(self) -> None:
        if self._inflight is not None or not self._active:
            return
        for slot in SLOTS:
            request = self._slots[slot]
            if request is None:
                continue
            self._slots[slot] = None
            sent = time.perf_counter()  # before submit: the worker may start at once
            try:
                job = self.tracker.submit(request, lane="explore", save=False)
            except StudioError as exc:
                self.failed.emit(first_line(exc))
                continue
            self.jobs_started += 1
            self._inflight, self._inflight_slot, self._inflight_request = job, slot, request
            self._sent, self._prepared = sent, None
            return

    def _end(self, job_id: int) -> bool:
        if job_id != self._inflight or self._inflight is None:
            return False
        self._inflight = None
        self._inflight_request = None
        return True

    def _status(self, job_id: int, text: str) -> None:
        if job_id == self._inflight:
            if self._prepared is None:
                self._prepared = time.perf_counter()
            self.status.emit(text)

    def _preview(self, job_id: int, preview: Preview) -> None:
        if job_id != self._inflight or self._inflight_slot != "frame" or preview.kind != "image":
            return
        data = preview.data[0] if isinstance(preview.data, list) else preview.data
        self.preview.emit(data, f"preview · step {preview.step}/{preview.total}")

    def _finished(self, job_id: int, result: Result, _paths: list) -> None:
        if not self._end(job_id):
            return
        now = time.perf_counter()
        render_ms = float(result.info.get("render_ms") or 0)
        if self._prepared is None:
            timing = Timing(render_ms, (now - self._sent) * 1000)
        else:  # the render began when the load ended, not when the job was sent
            timing = Timing(render_ms, None, max(0.0, now - self._prepared - render_ms / 1000))
        self.done.emit(self._inflight_slot, result, timing)
        self._pump()

    def _failed(self, job_id: int, message: str) -> None:
        if self._end(job_id):
            self.failed.emit(message)
            self._pump()

    def _ended(self, job_id: int) -> None:
        if self._end(job_id):
            self._pump()
