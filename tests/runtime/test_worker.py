"""The worker and job queue with real signals, a real thread and a small real engine."""

from __future__ import annotations

import time

import pytest

from studio.core.errors import RequestError
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines import registry
from studio.runtime.worker import JobQueue
from tests.runtime import step_engine


@pytest.fixture
def jobs(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(
        registry,
        "ROUTES",
        [("image", "test:", "tests.runtime.step_engine:StepEngine"),
         ("explore", "test:", "tests.runtime.step_engine:StepEngine"), *registry.ROUTES],
    )
    step_engine.LOADS.clear()
    step_engine.LOAD_STARTS.clear()
    settings = Settings(output_dir=str(tmp_path / "out"), device="cpu")
    queue = JobQueue(settings, None)
    yield queue
    queue.shutdown()


def req(**kw) -> ImageRequest:
    base = dict(model="test:a", prompt="fox", seed=1, steps=5, width=64, height=64)
    base.update(kw)
    return ImageRequest(**base)


def test_job_runs_and_reports_in_order(qtbot, jobs):
    progress, previews = [], []
    jobs.job_progress.connect(lambda i, p: progress.append(p.step))
    jobs.job_preview.connect(lambda i, p: previews.append(p.step))
    with qtbot.waitSignal(jobs.job_finished, timeout=10000) as sig:
        job_id = jobs.submit(req(steps=8), save=False)
    fid, result, paths = sig.args
    assert fid == job_id and paths == []
    assert result.images[0].shape == (64, 64, 3)
    assert result.request.seed == 1
    assert progress == sorted(progress) and progress[-1] == 8
    assert previews == sorted(previews) and previews[-1] == 8  # the last one is never dropped


def test_random_seed_is_drawn_and_recorded(qtbot, jobs):
    with qtbot.waitSignal(jobs.job_finished, timeout=10000) as sig:
        jobs.submit(req(seed=-1), save=False)
    assert sig.args[1].request.seed >= 0


def test_image_previews_are_throttled(qtbot, jobs):
    step_engine.StepEngine.step_seconds = 0.005
    previews = []
    jobs.job_preview.connect(lambda i, p: previews.append(p.step))
    try:
        with qtbot.waitSignal(jobs.job_finished, timeout=10000):
            jobs.submit(req(steps=100), save=False)
    finally:
        step_engine.StepEngine.step_seconds = 0.01
    # 100 steps over ~0.5 s: at most a few previews a second get through (+ the final one)
    assert 1 <= len(previews) <= 6


def test_text_previews_are_coalesced_and_none_is_lost(qtbot, jobs):
    chunks: list[str] = []
    jobs.job_preview.connect(lambda i, p: chunks.append(p.data))
    try:
        step_engine.StepEngine.step_seconds = 0.001  # 60 words in a few 50 ms windows
        with qtbot.waitSignal(jobs.job_finished, timeout=10000):
            jobs.submit(req(prompt="words", steps=60), save=False)
        assert "".join(chunks) == "".join(f"w{i} " for i in range(1, 61))
        assert 1 <= len(chunks) < 30
        chunks.clear()
        step_engine.StepEngine.step_seconds = 0.07  # slower than a window: a chunk a word
        with qtbot.waitSignal(jobs.job_finished, timeout=10000):
            jobs.submit(req(prompt="words", steps=5), save=False)
        assert chunks == [f"w{i} " for i in range(1, 6)]
    finally:
        step_engine.StepEngine.step_seconds = 0.01


def test_invalid_request_is_refused_at_submit(jobs):
    with pytest.raises(RequestError, match="multiple of 8"):
        jobs.submit(req(width=100))
    assert jobs.pending() == []


def test_cancel_mid_job_is_prompt_and_writes_nothing(qtbot, jobs, tmp_path):
    started = []
    jobs.job_progress.connect(lambda i, p: started.append(p.step))
    job_id = jobs.submit(req(steps=500))
    qtbot.waitUntil(lambda: len(started) > 2, timeout=10000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(jobs.job_cancelled, timeout=5000) as sig:
        jobs.cancel(job_id)
    assert sig.args == [job_id]
    assert time.perf_counter() - t0 < 1.0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_engine_error_fails_that_job_only(qtbot, jobs):
    failures, finished = [], []
    jobs.job_failed.connect(lambda i, m: failures.append((i, m)))
    jobs.job_finished.connect(lambda i, r, p: finished.append(i))
    bad = jobs.submit(req(prompt="boom"), save=False)
    good = jobs.submit(req(), save=False)
    qtbot.waitUntil(lambda: finished == [good], timeout=10000)
    assert [i for i, _ in failures] == [bad]
    message = failures[0][1]
    assert "\n" not in message and "exploded" in message and "Traceback" not in message


def test_missing_model_is_a_clear_failure(qtbot, jobs):
    with qtbot.waitSignal(jobs.job_failed, timeout=10000) as sig:
        jobs.submit(req(model="test:missing"), save=False)
    assert sig.args[1] == "No model at test:missing."


def test_model_is_loaded_once_and_cached(qtbot, jobs):
    done = []
    jobs.job_finished.connect(lambda i, r, p: done.append(i))
    for _ in range(3):
        jobs.submit(req(), save=False)
    qtbot.waitUntil(lambda: len(done) == 3, timeout=10000)
    assert step_engine.LOADS == ["test:a"]


def test_queue_is_fifo_and_queued_jobs_can_be_removed(qtbot, jobs):
    order = []
    jobs.job_started.connect(lambda i, r: order.append(i))
    first = jobs.submit(req(steps=30), save=False)
    second = jobs.submit(req(), save=False)
    third = jobs.submit(req(), save=False)
    assert jobs.remove(second)
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    assert order == [first, third]


def test_cancel_all_clears_the_queue(qtbot, jobs):
    cancelled = []
    jobs.job_cancelled.connect(cancelled.append)
    ids = [jobs.submit(req(steps=200), save=False) for _ in range(4)]
    qtbot.waitUntil(lambda: jobs.running() is not None, timeout=10000)
    jobs.cancel_all()
    qtbot.waitUntil(lambda: sorted(cancelled) == sorted(ids), timeout=10000)
    assert not jobs.is_busy()


def test_explore_lane_is_latest_wins(qtbot, jobs):
    """100 pad moves in about a second run only a handful of jobs; the last one wins."""
    started, finished = [], []
    jobs.job_started.connect(lambda i, r: started.append(r.seed))
    jobs.job_finished.connect(lambda i, r, p: finished.append(r.request.seed))
    for seed in range(100):
        jobs.submit(req(seed=seed, steps=3), lane="explore", save=False)
        qtbot.wait(10)
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    assert finished[-1] == 99
    assert len(started) < 50


def test_unload_empties_the_cache(qtbot, jobs):
    with qtbot.waitSignal(jobs.models_changed, timeout=10000) as sig:
        jobs.submit(req(), save=False)
    assert [m["model"] for m in sig.args[0]] == ["test:a"]
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    with qtbot.waitSignal(jobs.models_changed, timeout=10000) as sig:
        jobs.unload(None)
    assert sig.args[0] == []


def test_cancel_current_stops_the_running_job_and_the_queue_goes_on(qtbot, jobs):
    cancelled, finished = [], []
    jobs.job_cancelled.connect(cancelled.append)
    jobs.job_finished.connect(lambda i, r, p: finished.append(i))
    assert jobs.cancel_current() is None  # idle: nothing to stop
    first = jobs.submit(req(steps=500), save=False)
    rest = [jobs.submit(req(), save=False) for _ in range(2)]
    qtbot.waitUntil(lambda: jobs.running() is not None, timeout=10000)
    assert jobs.cancel_current() == first
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=10000)
    assert cancelled == [first] and finished == rest


def test_a_load_is_announced_and_its_end_is_reported_before_the_job_ends(qtbot, jobs):
    """The status bar can say "Loading X…" and then "Loaded X" while the job still runs."""
    events = []
    jobs.model_loading.connect(lambda model, device: events.append(("loading", model, device)))
    jobs.models_changed.connect(lambda loaded: events.append(
        ("loaded", [m["model"] for m in loaded])))
    jobs.job_finished.connect(lambda i, r, p: events.append(("finished",)))
    for _ in range(2):
        jobs.submit(req(), save=False)
    qtbot.waitUntil(lambda: events.count(("finished",)) == 2, timeout=10000)
    # one load (the second job finds it cached); "loaded" comes before the first job ends
    assert events == [("loading", "test:a", "cpu"), ("loaded", ["test:a"]),
                      ("finished",), ("finished",)]


def test_cancel_during_an_uninterruptible_load_is_reported_at_once(qtbot, jobs, tmp_path):
    """A load that ignores the flag (one long from_pretrained) does not hold the cancel back:
    the job is cancelled at once, the load finishes alone, nothing is saved, the queue goes on."""
    after, finished = [], []
    jobs.job_finished.connect(lambda i, r, p: finished.append(i))
    # the runner's "Loading slow…" line follows model_loading: both are said before the cancel
    with qtbot.waitSignals([jobs.model_loading, jobs.job_status], timeout=10000):
        slow = jobs.submit(req(model="test:slow"))
    for name in ("job_progress", "job_preview", "job_status", "job_finished", "job_failed"):
        getattr(jobs, name).connect(lambda i, *_a, n=name: after.append((n, i)) if i == slow
                                    else None)
    t0 = time.perf_counter()
    with qtbot.waitSignal(jobs.job_cancelled, timeout=5000) as sig:
        jobs.cancel(slow)
    assert sig.args == [slow]
    assert time.perf_counter() - t0 < 1.0  # was the whole load (3 s here, 27 s seen)
    assert step_engine.LOADS == []  # the load is still running: the job was given up
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=500)
    assert jobs.running() is None
    nxt = jobs.submit(req(), save=False)
    with qtbot.waitSignal(jobs.models_changed, timeout=10000,
                          check_params_cb=lambda loaded: any(m["model"] == "test:slow"
                                                             for m in loaded)):
        pass  # the finished load is reported: the status bar never keeps "Loading…"
    qtbot.waitUntil(lambda: finished == [nxt], timeout=10000)
    assert after == []  # nothing more was said about the given-up job
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_cancel_during_a_load_that_checks_the_flag_stops_it(qtbot, jobs):
    with qtbot.waitSignal(jobs.model_loading, timeout=10000):
        job_id = jobs.submit(req(model="test:slow-checks"), save=False)
    t0 = time.perf_counter()
    with qtbot.waitSignal(jobs.job_cancelled, timeout=5000):
        jobs.cancel(job_id)
    assert time.perf_counter() - t0 < 1.0
    with qtbot.waitSignal(jobs.job_finished, timeout=5000):
        jobs.submit(req(), save=False)
    assert time.perf_counter() - t0 < 2.0  # the engine was free again, not 3 s later
    assert step_engine.LOADS == ["test:a"]  # the stopped load left nothing behind


def test_shutdown_during_a_load_returns_within_a_second(qtbot, jobs):
    with qtbot.waitSignal(jobs.model_loading, timeout=10000):
        jobs.submit(req(model="test:slow"), save=False)
        jobs.submit(req(), save=False)
    t0 = time.perf_counter()
    jobs.shutdown()
    assert time.perf_counter() - t0 < 1.0  # was 5 s ("worker still busy at shutdown")
    assert jobs._thread.isFinished()
    assert step_engine.LOAD_STARTS == ["test:slow"]  # the queued job never started


EXIT_DURING_LOAD = """
import sys, time
from PySide6.QtCore import QCoreApplication
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines import registry
from studio.runtime.worker import JobQueue
from tests.runtime import step_engine

registry.ROUTES.insert(0, ("image", "test:", "tests.runtime.step_engine:StepEngine"))
step_engine.StepEngine.load_seconds = 30.0
app = QCoreApplication([])
jobs = JobQueue(Settings(output_dir=sys.argv[1], device="cpu"), None)
jobs.submit(ImageRequest(model="test:slow", prompt="fox", seed=1, steps=5, width=64, height=64))
while not step_engine.LOAD_STARTS:
    time.sleep(0.01)
jobs.shutdown()
print("shut down", flush=True)
"""


def test_the_process_exits_at_once_and_cleanly_while_a_load_runs(tmp_path):
    """The given-up load (30 s here) neither keeps the process alive nor crashes it at exit."""
    import subprocess
    import sys

    from studio.core.paths import REPO_ROOT

    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", EXIT_DURING_LOAD, str(tmp_path / "out")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "shut down"
    assert "QThread" not in done.stderr and "Traceback" not in done.stderr
    assert took < 15  # start-up included; the load alone would take 30 s


def test_random_cancels_during_loads_and_steps_end_every_job_exactly_once(qtbot, jobs,
                                                                          monkeypatch):
    """A small soak: loads that ignore or check the flag, unloads, cancels at random moments;
    every job ends once (done, failed or cancelled), none is stuck, the worker stays alive."""
    import random

    monkeypatch.setattr(step_engine.StepEngine, "load_seconds", 0.3)
    rng = random.Random(10)
    ends: dict[int, list[str]] = {}
    for name in ("job_finished", "job_failed", "job_cancelled"):
        getattr(jobs, name).connect(lambda i, *_a, n=name: ends.setdefault(i, []).append(n))
    ids = []
    for n in range(40):
        model = rng.choice(["test:a", "test:slow", "test:slow-checks", "test:missing"])
        ids.append(jobs.submit(req(model=model, steps=rng.randint(1, 30), seed=n), save=False))
        if rng.random() < 0.2:
            jobs.unload(None)
        qtbot.wait(rng.randint(0, 60))
        if rng.random() < 0.4:
            jobs.cancel(rng.choice(ids))
        if rng.random() < 0.1:
            jobs.cancel_current()
    qtbot.waitUntil(lambda: not jobs.is_busy(), timeout=60000)
    assert sorted(ends) == sorted(ids)
    assert all(len(v) == 1 for v in ends.values()), {i: v for i, v in ends.items() if len(v) > 1}
    with qtbot.waitSignal(jobs.job_finished, timeout=20000):  # still serving
        jobs.submit(req(), save=False)


# ─── warm-up and the settings a job runs with (issue 18) ────────────────────────────────


class SettingsEcho(step_engine.StepEngine):
    """Answers with the image runtime of the settings its job ran with."""

    def generate(self, request, events):
        result = super().generate(request, events)
        result.info["runtime_setting"] = events.settings.image_runtime
        return result


def test_warm_up_imports_the_ml_stack_before_the_next_job(qtbot, jobs):
    import sys

    order = []
    jobs.warmed_up.connect(lambda took: order.append(("warm", took)))
    jobs.job_started.connect(lambda i, _r: order.append(("job", i)))
    jobs.warm_up()
    with qtbot.waitSignal(jobs.job_finished, timeout=300000):
        job_id = jobs.submit(req(steps=2), save=False)
    assert [kind for kind, _ in order] == ["warm", "job"]  # the job waited for the imports
    took = order[0][1]
    assert {"torch", "diffusers", "transformers", "studio.engines.image_diffusers",
            "kernels"} <= set(took)
    assert all(isinstance(s, float) and s >= 0 for s in took.values())
    assert "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion" in sys.modules
    assert order[1] == ("job", job_id)


def test_each_job_sees_the_settings_in_force(qtbot, jobs, monkeypatch):
    import dataclasses

    monkeypatch.setattr(registry, "ROUTES", [
        ("image", "echo:", "tests.runtime.test_worker:SettingsEcho"), *registry.ROUTES])
    with qtbot.waitSignal(jobs.job_finished, timeout=10000) as first:
        jobs.submit(req(model="echo:a", steps=1), save=False)
    jobs.set_settings(dataclasses.replace(jobs.settings, image_runtime="openvino"))
    with qtbot.waitSignal(jobs.job_finished, timeout=10000) as second:
        jobs.submit(req(model="echo:a", steps=1), save=False)  # the same loaded engine
    assert first.args[1].info["runtime_setting"] == "pytorch"
    assert second.args[1].info["runtime_setting"] == "openvino"
