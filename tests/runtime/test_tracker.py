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
