"""ExploreSession without widgets: a real JobQueue and worker thread with the built-in GANs,
driven through the session's methods and watched through its signals."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from studio.core import families
from studio.core.catalog import ModelEntry
from studio.core.explore import ExploreRequest
from studio.core.families import Explore, Family
from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.explore_pump import Timing
from studio.runtime.explore_session import ExploreSession, RenderSettings
from studio.runtime.worker import JobQueue
from tests.ui.test_explore_panel import directions_cache  # noqa: F401 - the fixture is reused

WAIT = 60000


@pytest.fixture
def queue(qtbot, tmp_path, studio_home, directions_cache):  # noqa: F811
    shutil.copytree(directions_cache, studio_home / "cache" / "directions")  # skip the PCA
    history = History(tmp_path / "history.sqlite")
    jobs = JobQueue(Settings(output_dir=str(tmp_path / "out"), device="cpu"), history)
    yield jobs
    jobs.shutdown()
    qtbot.waitUntil(jobs._thread.isFinished, timeout=20000)
    history.close()


def faces_session(queue: JobQueue) -> ExploreSession:
    session = ExploreSession(queue, queue.worker.history)
    session.set_anchors([11, 22], render=False)
    session.set_model("builtin:faces")
    return session


def test_nothing_renders_until_activated_then_the_first_frame(qtbot, queue):
    session = faces_session(queue)
    assert session.busy() and queue.pending() == []  # waiting in the session, not queued
    frames = []
    session.frame_changed.connect(lambda result, caption: frames.append(result))
    with qtbot.waitSignal(session.timing_changed, timeout=WAIT) as sig:
        session.activate()
    qtbot.waitUntil(lambda: not session.busy(), timeout=WAIT)
    assert frames and frames[0].images[0].shape == (64, 64, 3)
    assert session.shown_request.anchors == (11, 22)
    assert session.direction_keys[:2] == ["pc1", "pc2"]
    assert session.shown_thumbs is not None and session.shown_thumbs.mode == "anchors"
    # issue 10: the first frame loaded the model; that load is not "render latency"
    first: Timing = sig.args[0]
    assert first.latency_ms is None and first.load_s is not None
    assert "model ready in" in first.text()
    with qtbot.waitSignal(session.timing_changed, timeout=WAIT) as sig:
        session.move_pad(0.9, 0.5)
    later: Timing = sig.args[0]
    assert later.latency_ms is not None and later.load_s is None
    assert later.latency_ms >= later.render_ms * 0.5
    assert later.text().endswith(f"(render {later.render_ms:.0f} ms)")


def test_a_burst_of_moves_keeps_one_job_in_flight_and_ends_on_the_last(qtbot, queue):
    session = faces_session(queue)
    session.activate()
    qtbot.waitUntil(lambda: not session.busy() and session.shown_request is not None,
                    timeout=WAIT)
    started = session.jobs_started
    most_in_flight = 0
    for i in range(1, 51):  # faster than any frame: no event is handled in between
        session.move_pad(i / 50, 0.5)
        most_in_flight = max(most_in_flight, len(queue.jobs))
    assert most_in_flight == 1  # never a backlog in the job store
    qtbot.waitUntil(lambda: not session.busy(), timeout=WAIT)
    assert session.shown_request.pad_x == 1.0  # the last position is what is shown
    assert session.jobs_started - started == 2  # the first move, then only the newest


def test_capabilities_come_from_the_family_descriptor(qtbot, queue):
    session = ExploreSession(queue, None)
    session.set_anchors([1, 2], ["blue", "green"], render=False)
    session.set_model("builtin:faces")
    faces = session.point_request()
    assert faces.prompts == () and faces.prompt == ""  # the faces GAN has no text condition
    assert (faces.width, faces.height) == families.GAN_FACES.native_size
    assert session.point_request(for_saving=True).width == 64 * session.save_scale
    assert not session.progressive and not session.point_request(fast=True).fast
    session.set_model("builtin:eyes")
    eyes = session.point_request()
    assert eyes.prompts == ("blue", "green") and session.prompt_label == "Colour"
    assert session.native_size() == (128, 128)
    # a family registered from the test, found through a catalog entry
    fam = families.register(Family(
        "test-explore", "Test explorer", "image", ("image", "explore"), "x:Y",
        native_size=(256, 256), fields=families.DIFFUSION_FIELDS, explore=Explore.DIFFUSION))
    try:
        entry = ModelEntry("/models/test", "test", "image", fam.name, "diffusers", "here",
                           family_id=fam.id)
        session = ExploreSession(queue, None, lambda: [entry])
        session.set_anchors([1, 2], render=False)
        session.set_model(entry.id)
        assert session.family is fam and session.progressive and session.native_size() is None
        session.render = RenderSettings(width=200, height=136, negative=" blurry ")
        fast = session.point_request(fast=True)
        assert fast.fast and (fast.width, fast.height) == (200, 136)
        assert fast.negative == "blurry"
    finally:
        families.unregister(fam.id)


def test_rating_writes_the_history_off_the_gui_thread_in_order(qtbot, queue, monkeypatch):
    session = faces_session(queue)
    session.activate()
    qtbot.waitUntil(lambda: not session.busy() and session.shown_request is not None,
                    timeout=WAIT)
    history = queue.worker.history
    threads: list[threading.Thread] = []
    real_set = history.set_rating

    def set_rating(item_id: int, rating: int) -> bool:
        threads.append(threading.current_thread())
        return real_set(item_id, rating)

    monkeypatch.setattr(history, "set_rating", set_rating)
    saved = []
    session.outputs.rating_saved.connect(lambda path, rating: saved.append((path, rating)))
    with qtbot.waitSignal(session.outputs.rating_saved, timeout=WAIT):
        session.rate(3)  # not saved yet: saved first, then rated
    path: Path = saved[0][0]
    assert path.exists() and history.find_path(path).rating == 3
    for rating in (4, 1, 5):
        session.rate(rating)
    qtbot.waitUntil(lambda: len(saved) == 4, timeout=WAIT)
    assert [r for _p, r in saved] == [3, 4, 1, 5]  # one pool thread: the order holds
    assert history.find_path(path).rating == 5
    assert threads and threading.main_thread() not in threads
    stars = []
    session.outputs.rating_changed.connect(stars.append)
    session.move_pad(0.1, 0.5)  # another point: no stars
    qtbot.waitUntil(lambda: not session.busy() and session.shown_request.pad_x == 0.1,
                    timeout=WAIT)
    assert stars[-1] == 0
    with qtbot.waitSignal(session.outputs.rating_changed, timeout=WAIT,
                          check_params_cb=lambda rating: rating == 5):
        session.move_pad(0.5, 0.5)  # back on the saved point: its stars, read off the GUI thread


def test_a_recipe_fills_the_session_and_renders_that_point(qtbot, queue):
    session = ExploreSession(queue, None)
    session.set_anchors([5, 6], render=False)
    session.set_model("builtin:faces")
    recipe = ExploreRequest(model="builtin:eyes", anchors=(7, 8, 9), prompts=("a", "b", "c"),
                            pad_x=0.25, pad_y=0.75, directions={"pc1": 1.5}, frames=10,
                            loop=True, width=256, height=256, variation_seeds=(3,),
                            variation_strengths=(0.2,))
    changed = []
    session.settings_changed.connect(lambda: changed.append(True))
    session.apply_request(recipe)
    assert changed and session.model == "builtin:eyes"
    assert [(a.seed, a.prompt) for a in session.anchors] == [(7, "a"), (8, "b"), (9, "c")]
    assert session.pad == (0.25, 0.75) and session.offsets == {"pc1": 1.5}
    assert session.walk.frames == 10 and session.walk.loop and session.save_scale == 2
    assert session.variations == [(3, 0.2)]
    session.activate()
    qtbot.waitUntil(lambda: not session.busy() and session.shown_request is not None,
                    timeout=WAIT)
    shown = session.shown_request
    assert shown.anchors == (7, 8, 9) and shown.directions == {"pc1": 1.5}
    assert shown.variation_seeds == (3,) and shown.pad_y == 0.75


def test_an_anchor_from_a_saved_output_takes_its_seed(qtbot, queue, tmp_path):
    session = faces_session(queue)
    with qtbot.waitSignal(queue.job_finished, timeout=WAIT) as sig:
        session.save_point()
    path = sig.args[2][0]
    session.set_model("builtin:eyes")
    notes = []
    session.info.connect(notes.append)
    with qtbot.waitSignal(session.anchors_changed, timeout=WAIT):
        session.anchor_from_path(1, path)  # the recipe is read off the GUI thread
    assert session.anchor_seeds() == [11, 11]  # the saved point's first anchor
    assert notes[-1].startswith(f"Anchor 2 from {path.name} (seed 11).")
    assert "builtin:faces" in notes[-1]  # it was made with another model
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with qtbot.waitSignal(session.error, timeout=WAIT) as sig:
        session.anchor_from_path(0, broken)
    assert "\n" not in sig.args[0] and session.anchor_seeds() == [11, 11]
