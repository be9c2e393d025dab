"""JobTracker: a panel sees only its own jobs, and its bookkeeping is done before it hears."""

from __future__ import annotations

from studio.runtime.tracker import JobTracker
from tests.runtime.test_worker import jobs, req  # noqa: F401 - the fixture is reused


def test_tracker_sees_only_its_own_jobs(qtbot, jobs):  # noqa: F811
    mine, other = JobTracker(jobs), JobTracker(jobs)
    seen_mine, seen_other = [], []
    mine.finished.connect(lambda i, r, p: seen_mine.append((i, mine.busy())))
    other.finished.connect(lambda i, r, p: seen_other.append(i))
    a = mine.submit(req(), save=False)
    b = other.submit(req(), save=False)
    c = mine.submit(req(), save=False)
    assert mine.ids == [a, c] and mine.waiting == 2
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    assert seen_mine == [(a, True), (c, False)]  # the id is forgotten before the signal
    assert seen_other == [b]
    assert mine.current is None and not mine.busy()


def test_tracker_cancel_all_reports_which_was_running(qtbot, jobs):  # noqa: F811
    tracker = JobTracker(jobs)
    cancelled = []
    tracker.cancelled.connect(lambda i, running: cancelled.append((i, running)))
    running = tracker.submit(req(steps=500), save=False)
    queued = tracker.submit(req(), save=False)
    qtbot.waitUntil(lambda: tracker.current == running, timeout=10000)
    assert tracker.waiting == 1
    tracker.cancel_all()
    qtbot.waitUntil(lambda: len(cancelled) == 2, timeout=10000)
    assert sorted(cancelled) == sorted([(running, True), (queued, False)])
    assert not tracker.busy()


def test_tracker_cancel_current_stops_the_running_job_only(qtbot, jobs):  # noqa: F811
    """A1111's Interrupt: the running job stops, the queued one runs and says it started."""
    tracker = JobTracker(jobs)
    events = []
    tracker.cancelled.connect(lambda i, running: events.append(("cancelled", i, running,
                                                                tracker.busy())))
    tracker.started.connect(lambda i, r: events.append(("started", i)))
    tracker.finished.connect(lambda i, r, p: events.append(("finished", i)))
    running = tracker.submit(req(steps=500), save=False)
    queued = tracker.submit(req(), save=False)
    qtbot.waitUntil(lambda: tracker.current == running, timeout=10000)
    assert tracker.cancel_current() == running
    qtbot.waitUntil(lambda: ("finished", queued) in events, timeout=10000)
    assert events == [
        ("started", running),
        ("cancelled", running, True, True),  # busy: the next job is still to come
        ("started", queued),
        ("finished", queued),
    ]
    assert not tracker.busy() and tracker.current is None


def test_tracker_cancel_current_drops_its_next_job_when_another_panel_runs(qtbot, jobs):  # noqa: F811
    mine, other = JobTracker(jobs), JobTracker(jobs)
    cancelled, finished = [], []
    mine.cancelled.connect(lambda i, running: cancelled.append((i, running)))
    mine.finished.connect(lambda i, r, p: finished.append(i))
    theirs = other.submit(req(steps=60), save=False)
    first = mine.submit(req(), save=False)
    second = mine.submit(req(), save=False)
    qtbot.waitUntil(lambda: other.current == theirs, timeout=10000)
    assert mine.cancel_current() == first
    assert cancelled == [(first, False)]  # a queued job is dropped at once
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    assert finished == [second]
    assert mine.cancel_current() is None  # nothing left to cancel
