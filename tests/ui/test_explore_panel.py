"""The Explore panel with the real built-in face GAN (and a tiny diffusion pipeline), driven
by real mouse events on the pad, real slider moves and real clicks."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from studio.core.explore import DirectionNames, ExploreRequest, grid_child_seed
from studio.core.recipes import read_recipe
from studio.ui.explore.panel import ExplorePanel
from tests.ui import close_ctx, make_ctx, output_files, scan

WAIT = 60000


@pytest.fixture(scope="session")
def directions_cache(tmp_path_factory) -> Path:
    """The faces model's GANSpace directions, computed once for the whole session."""
    import os

    from studio.core.paths import cache_dir
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.gan import GanEngine

    home = tmp_path_factory.mktemp("directions-home")
    before = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    try:
        engine = GanEngine.load(LoadSpec("builtin:faces", "cpu", "float32"), Settings(),
                                Events())
        engine.principal_directions()
        return cache_dir() / "directions"
    finally:
        if before is not None:
            os.environ["STUDIO_HOME"] = before


@pytest.fixture
def panel(qtbot, tmp_path, studio_home, directions_cache):
    shutil.copytree(directions_cache, studio_home / "cache" / "directions")  # skip the PCA
    ctx = make_ctx(tmp_path)
    p = ExplorePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1280, 860)
    p.show()
    qtbot.waitExposed(p)
    settle(qtbot, p)
    yield p
    p.close()
    close_ctx(ctx, qtbot)


def settle(qtbot, p: ExplorePanel, timeout: int = WAIT) -> None:
    """Wait until the panel has no explorer job running or waiting and shows a frame."""
    qtbot.waitUntil(lambda: not p.busy() and p.shown_request is not None, timeout=timeout)


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    ptr = image.constBits()
    arr = np.frombuffer(ptr, np.uint8, image.sizeInBytes())
    return arr.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3].copy()


def drag(qtbot, pad, start: tuple[float, float], end: tuple[float, float], steps: int = 12,
         delay_ms: int = 0) -> None:
    """Press, move and release the left button on the pad (real mouse events)."""
    a = pad.point_at(*start).toPoint()
    b = pad.point_at(*end).toPoint()
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, steps + 1):
        pt = QPoint(round(a.x() + (b.x() - a.x()) * i / steps),
                    round(a.y() + (b.y() - a.y()) * i / steps))
        QTest.mouseMove(pad, pt, delay_ms)
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def test_first_frame_shows_the_faces_model_with_its_size_note(panel):
    assert panel.model.current_model() == "builtin:faces"
    assert panel.shown_request.model == "builtin:faces"
    assert panel.view.image().width() == 64
    assert panel.view.note().startswith("64² model, shown ×")
    assert [k for k in panel.directions.rows][:2] == ["pc1", "pc2"]
    assert panel.pad.anchor_count() == 2


def test_first_frame_reports_the_model_load_apart_from_the_latency(panel):
    # the fixture's first frame loaded the model: that is not "render latency" (issue 10)
    assert panel.session.timing.latency_ms is None
    assert panel.timing.text().startswith("render ") and "model ready in" in panel.timing.text()


def test_prompts_and_render_fields_follow_the_model_family(panel, qtbot):
    cards = panel.anchors.cards
    assert not any(c.prompt.isVisibleTo(panel) for c in cards)  # the faces GAN has no text
    assert not panel.tabs.isTabVisible(3) and not panel.render_page.steps.isEnabled()
    panel.model.set_model("builtin:eyes")
    assert all(c.prompt.isVisibleTo(panel) for c in cards)
    assert cards[0].prompt.placeholderText() == "colour for this anchor"
    qtbot.keyClicks(cards[0].prompt, "green")
    qtbot.keyClick(cards[0].prompt, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not panel.busy() and panel.shown_request.model == "builtin:eyes"
                    and panel.shown_request.prompt == "green", timeout=WAIT)
    assert panel.view.note().startswith("128² model, shown ×")
    assert panel.view.image().width() == 128


def test_dragging_on_the_pad_changes_the_preview(panel, qtbot):
    moves = []
    panel.pad.position_changed.connect(lambda x, y: moves.append((x, y)))
    before = pixels(panel.view.image())
    drag(qtbot, panel.pad, (0.05, 0.5), (0.95, 0.5))
    assert len(moves) >= 10  # every mouse move while the button is held
    assert moves[5][0] < moves[-1][0]
    qtbot.waitUntil(lambda: not panel.busy() and panel.shown_request.pad_x == pytest.approx(
        panel.pad.position()[0], abs=1e-6), timeout=WAIT)
    after = pixels(panel.view.image())
    assert panel.shown_request.pad_x > 0.9
    assert not np.array_equal(before, after)
    assert "ms" in panel.timing.text()
    # the weight sliders follow the puck
    assert panel.blend.sliders[1].value() > 85


class JobClock:
    """Start and end times of the explorer's jobs, from the job queue's signals."""

    def __init__(self, jobs) -> None:
        self.starts: dict[int, float] = {}
        self.ends: dict[int, float] = {}
        jobs.job_started.connect(self._started)
        jobs.job_finished.connect(lambda j, _r, _p: self._ended(j))
        jobs.job_cancelled.connect(self._ended)

    def _started(self, job_id: int, request) -> None:
        if request.kind == "explore":
            self.starts[job_id] = time.perf_counter()

    def _ended(self, job_id: int) -> None:
        if job_id in self.starts:
            self.ends[job_id] = time.perf_counter()

    def shortest(self) -> float:
        return min(self.ends[j] - self.starts[j] for j in self.ends)


def hundred_moves(qtbot, panel) -> tuple[float, float, int]:
    """100 moves spread over about a second (events processed between them), then release.
    Returns (start, release) times and how many explorer jobs the panel had sent by the
    release: a job sent before it may only be heard starting after it (the worker's
    signal waits for the GUI thread, and on a busy machine the worker itself may not have
    picked it up yet), so what came after the release is counted by sending, not by the
    started signal."""
    pad = panel.pad
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     pad.point_at(0.0, 0.5).toPoint())
    t0 = time.perf_counter()
    for i in range(1, 101):
        QTest.mouseMove(pad, pad.point_at(i / 100, 0.5).toPoint())
        qtbot.wait(max(0, round((t0 + i / 100 - time.perf_counter()) * 1000)))
    released, sent = time.perf_counter(), panel.jobs_started
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       pad.point_at(1.0, 0.5).toPoint())
    return t0, released, sent


def test_a_hundred_moves_never_build_a_backlog_and_the_last_is_shown(panel, qtbot):
    clock = JobClock(panel.ctx.jobs)
    t0, released, sent = hundred_moves(qtbot, panel)
    settle(qtbot, panel)
    assert panel.shown_request.pad_x == 1.0  # the last position is what is shown
    assert panel.ctx.jobs.pending() == []
    # no backlog: once the mouse is let go at most the running frame and the last one run
    assert panel.jobs_started - sent <= 1
    # and while dragging, never more jobs than frames fit in the time
    ran = len(clock.starts)
    assert ran <= (released - t0) / clock.shortest() + 2


def test_direction_slider_moves_the_face_and_can_be_renamed(panel, qtbot):
    row = panel.directions.rows["pc1"]
    before = pixels(panel.view.image())
    row.slider.setValue(250)  # +2.5σ, as a drag on the slider would
    qtbot.waitUntil(lambda: not panel.busy()
                    and panel.shown_request.directions.get("pc1") == 2.5, timeout=WAIT)
    assert not np.array_equal(before, pixels(panel.view.image()))
    panel.rename_direction("pc1", "Turn")
    assert row.name.text() == "Turn"
    assert DirectionNames().name("builtin:faces", "pc1") == "Turn"
    qtbot.mouseClick(row.reset, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy() and "pc1" not in panel.shown_request.directions,
                    timeout=WAIT)


def test_variation_grid_child_becomes_the_centre(panel, qtbot):
    grids = []
    panel.ctx.jobs.job_finished.connect(
        lambda _j, result, _p: grids.append(result) if result.request.mode == "grid" else None)
    panel.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: bool(grids) and not panel.busy(), timeout=WAIT)
    assert all(not c.icon().isNull() for c in panel.variations.cells)
    grid = grids[-1]
    qtbot.mouseClick(panel.variations.cells[6], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy() and bool(panel.shown_request.variation_seeds),
                    timeout=WAIT)
    request = panel.shown_request
    assert request.variation_seeds == (grid_child_seed(grid.request.seed, 6),)
    assert np.array_equal(panel.last_result.images[0], grid.images[6])
    qtbot.mouseClick(panel.variations.undo_step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy() and not panel.shown_request.variation_seeds,
                    timeout=WAIT)


def test_four_anchors_make_a_bilinear_pad(panel, qtbot):
    qtbot.mouseClick(panel.anchors.add_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.anchors.add_button, Qt.MouseButton.LeftButton)
    assert panel.pad.anchor_count() == 4 and not panel.anchors.add_button.isEnabled()
    settle(qtbot, panel)
    drag(qtbot, panel.pad, (0.5, 0.5), (1.0, 1.0), steps=4)
    qtbot.waitUntil(lambda: not panel.busy() and panel.shown_request.pad_y == 1.0, timeout=WAIT)
    seeds = panel.anchor_seeds()
    assert list(panel.shown_request.anchors) == seeds and len(seeds) == 4
    qtbot.waitUntil(lambda: panel.shown_thumbs is not None, timeout=WAIT)
    # the bottom-right corner is anchor 4's own image
    thumbs = panel.shown_thumbs
    assert thumbs.mode == "anchors" and len(thumbs.anchors) == 4
    assert [round(w, 6) for w in panel.last_result.info["weights"]] == [0, 0, 0, 1]


def test_save_this_point_replays_exactly_and_use_these_settings(panel, qtbot, tmp_path):
    panel.set_offset("pc2", -1.5)
    settle(qtbot, panel)
    drag(qtbot, panel.pad, (0.5, 0.5), (0.3, 0.5), steps=3)
    qtbot.waitUntil(lambda: not panel.busy() and panel.shown_request.pad_x == pytest.approx(
        0.3, abs=0.02), timeout=WAIT)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=WAIT) as sig:
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    paths = sig.args[2]
    assert len(paths) == 1 and paths[0].suffix == ".png"
    recipe = read_recipe(paths[0])
    request = recipe.to_request()
    assert isinstance(request, ExploreRequest)
    assert request.directions == {"pc2": -1.5} and request.width == 256
    # replaying the recipe gives the very same pixels
    from PIL import Image

    from studio.engines.base import Events
    from studio.engines.runner import Runner

    replay = Runner(panel.ctx.settings).generate(request, Events()).images[0]
    with Image.open(paths[0]) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), replay)
    # "use these settings" on a fresh panel fills it and shows that point
    other = ExplorePanel(panel.ctx)
    qtbot.addWidget(other)
    other.apply_request(request)
    assert other.shown_request is None  # nothing renders until the tab is shown
    other.show()
    qtbot.waitUntil(lambda: other.shown_request is not None and not other.busy()
                    and other.shown_request.directions == {"pc2": -1.5}, timeout=WAIT)
    assert other.anchor_seeds() == list(request.anchors)
    assert other.shown_request.pad_x == pytest.approx(request.pad_x)
    assert np.array_equal(other.last_result.images[0], panel.last_result.images[0])


def test_rating_a_frame_saves_it_and_records_the_stars(panel, qtbot):
    # the history is written off the GUI thread: wait until the session says it is done
    with qtbot.waitSignal(panel.session.outputs.rating_saved, timeout=WAIT), \
            qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=WAIT) as sig:
        panel.rate(4)
    path = sig.args[2][0]
    qtbot.waitUntil(lambda: panel.ctx.history.find_path(path) is not None, timeout=WAIT)
    assert panel.ctx.history.find_path(path).rating == 4
    with qtbot.waitSignal(panel.session.outputs.rating_saved, timeout=WAIT):
        panel.favourite.setChecked(True)  # a favourite is five stars, on the same saved file
    assert panel.ctx.history.find_path(path).rating == 5
    assert len(output_files(panel.ctx.settings.output_path)) == 1


def test_walk_renders_gif_and_mp4_with_progress(panel, qtbot):
    progress = []
    panel.ctx.jobs.job_progress.connect(lambda _j, p: progress.append(p.step))
    panel.walk.frame_count.setValue(6)
    panel.walk.loop.setChecked(True)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=WAIT) as sig:
        qtbot.mouseClick(panel.walk.button, Qt.MouseButton.LeftButton)
        assert not panel.walk.button.isEnabled() and panel.walk.cancel.isEnabled()
    paths = sig.args[2]
    assert [p.suffix for p in paths] == [".gif", ".mp4"]
    assert progress and max(progress) == 6
    request = read_recipe(paths[0]).to_request()
    assert request.mode == "walk" and request.loop and request.frames == 6
    assert panel.walk.play.isEnabled() and ".gif" in panel.walk.result.text()
    panel.walk.play.setChecked(True)
    qtbot.waitUntil(lambda: "walk · frame" in panel.view.caption(), timeout=5000)
    panel.walk.play.setChecked(False)


def stop_a_long_walk(panel, qtbot, stop) -> None:
    """Start a 1000-frame walk and call stop() once it has made progress; returns when
    the walk's job reports it was cancelled."""
    panel.walk.frame_count.setValue(1000)
    progressed = []
    panel.ctx.jobs.job_progress.connect(lambda _j, p: progressed.append(p.step))
    with qtbot.waitSignal(panel.ctx.jobs.job_cancelled, timeout=WAIT):
        panel.render_walk()
        qtbot.waitUntil(lambda: bool(progressed), timeout=WAIT)
        stop()


def test_cancelling_a_walk_writes_nothing(panel, qtbot):
    stop_a_long_walk(panel, qtbot,
                     lambda: qtbot.mouseClick(panel.walk.cancel, Qt.MouseButton.LeftButton))
    assert panel.walk.button.isEnabled()
    assert output_files(panel.ctx.settings.output_path, ".gif") == []


def test_ctrl_enter_saves_the_point_and_esc_stops_the_walk(panel, qtbot):
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=WAIT) as sig:
        qtbot.keyClick(panel.pad, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert [p.suffix for p in sig.args[2]] == [".png"]
    stop_a_long_walk(panel, qtbot, lambda: qtbot.keyClick(panel.pad, Qt.Key.Key_Escape))
    assert panel.walk.button.isEnabled() and "Cancelled" in panel.walk.progress.status.text()
    assert output_files(panel.ctx.settings.output_path, ".gif") == []


def test_bad_input_is_one_sentence_not_a_crash(panel, qtbot):
    panel.anchors.cards[0].seed.set_value(-1)  # an empty seed box draws a fixed seed
    assert panel.anchor_seeds()[0] != -1
    panel.walk.frame_count.setValue(5)
    while len(panel.anchors.cards) > 1:
        panel.anchors.remove(panel.anchors.cards[-1])
    assert panel.render_walk() is None
    assert "two anchors" in panel.message.text()


@pytest.mark.slow
def test_diffusion_drag_previews_fast_then_renders_full(qtbot, tmp_path, tiny_sd):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent)])
    p = ExplorePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    try:
        scan(ctx, qtbot)
        settle(qtbot, p)
        p.steps.setValue(3)
        p.preview_steps.setValue(1)
        p.width_box.setValue(128)
        p.height_box.setValue(128)
        p.preview_size.setValue(64)
        p.model.set_model(str(tiny_sd))
        for card, prompt in zip(p.anchors.cards, ("red fox", "cat"), strict=True):
            card.prompt.setText(prompt)
        p._rerender()
        qtbot.waitUntil(lambda: not p.busy() and p.shown_request.model == str(tiny_sd),
                        timeout=180000)
        assert p.tabs.isTabVisible(3)
        keys = list(p.directions.rows)
        assert keys == ["noise", "prompt"]
        fast_seen = []
        ctx.jobs.job_finished.connect(
            lambda _j, r, _p: fast_seen.append(r.request.fast) if r.request.kind == "explore"
            else None)
        clock = JobClock(ctx.jobs)
        t0, released, sent = hundred_moves(qtbot, p)
        qtbot.waitUntil(lambda: not p.busy() and p.shown_request.pad_x == 1.0
                        and not p.shown_request.fast, timeout=180000)
        ran = len(clock.starts)
        # a handful of quick previews (as many as fit in the second), then the full frame
        assert ran <= (released - t0) / clock.shortest() + 2 and ran < 50
        assert p.jobs_started - sent <= 2
        assert True in fast_seen and fast_seen[-1] is False
        assert p.view.image().width() == 128
    finally:
        p.close()
        close_ctx(ctx, qtbot)
