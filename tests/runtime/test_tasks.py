"""runtime.tasks: background calls report progress, end exactly once, and stop when asked."""

from __future__ import annotations

import threading

import pytest

from studio.core.errors import Cancelled, StudioError
from studio.runtime.tasks import Task, run_in_pool


def record(task: Task) -> list[tuple[str, object, bool]]:
    """Every signal the task sends, with whether it arrived on this (the GUI) thread."""
    gui = threading.get_ident()
    seen: list[tuple[str, object, bool]] = []
    for name in ("progress", "done", "failed", "cancelled"):
        getattr(task, name).connect(
            lambda value, name=name: seen.append((name, value, threading.get_ident() == gui)))
    return seen


def ended(seen: list[tuple[str, object, bool]]) -> bool:
    return any(name != "progress" for name, _v, _t in seen)


def test_progress_arrives_in_order_on_the_gui_thread_before_done(qtbot):
    worker_threads: list[int] = []

    def count(task: Task) -> int:
        worker_threads.append(threading.get_ident())
        for i in range(5):
            task.report(i)
        return 42

    task = Task(count)
    seen = record(task)
    task.start()
    qtbot.waitUntil(lambda: ended(seen), timeout=5000)
    assert seen == [("progress", i, True) for i in range(5)] + [("done", 42, True)]
    assert worker_threads and worker_threads[0] != threading.get_ident()


def test_cancel_ends_with_cancelled_only(qtbot):
    started = threading.Event()

    def wait_for_cancel(task: Task) -> None:
        started.set()
        if not task.cancel_event.wait(5):
            return None  # never cancelled: would end with done and fail the test
        raise Cancelled("Stopped; it resumes later.")

    task = Task(wait_for_cancel)
    seen = record(task)
    task.start()
    assert started.wait(5)
    assert not task.is_cancelled()
    task.cancel()
    assert task.is_cancelled()
    qtbot.waitUntil(lambda: ended(seen), timeout=5000)
    qtbot.wait(50)  # nothing else may follow
    assert seen == [("cancelled", "Stopped; it resumes later.", True)]


@pytest.mark.parametrize(("error", "line"), [
    (StudioError("The disk is full.\nmore detail"), "The disk is full."),
    (KeyError("weights"), "'weights'"),
    (RuntimeError(), "RuntimeError"),
])
def test_a_raising_function_fails_with_one_line(qtbot, error, line):
    def boom(_task: Task) -> None:
        raise error

    task = Task(boom)
    seen = record(task)
    task.start()
    qtbot.waitUntil(lambda: ended(seen), timeout=5000)
    qtbot.wait(50)
    assert seen == [("failed", line, True)]


def test_a_task_starts_once(qtbot):
    task = Task(lambda _t: None)
    with qtbot.waitSignal(task.done, timeout=5000):
        task.start()
    with pytest.raises(RuntimeError):
        task.start()


def test_run_in_pool_reports_a_cancel_as_a_failure(qtbot):
    done: list[object] = []
    failed: list[str] = []

    def cancelled() -> None:
        raise Cancelled()

    run_in_pool(lambda: "value", done.append, on_failed=failed.append)
    run_in_pool(cancelled, done.append, on_failed=failed.append)
    qtbot.waitUntil(lambda: len(done) + len(failed) == 2, timeout=5000)
    assert done == ["value"] and failed == ["Cancelled."]

