"""Queue rows tell jobs apart: seed, size / length / token budget, and a thumbnail when done."""

from __future__ import annotations

import pytest

from studio.core.requests import MusicRequest, TextRequest
from studio.engines import registry
from studio.ui.queue_dock import THUMB_PX, QueueDock, describe_request
from tests.runtime.test_worker import req
from tests.ui import close_ctx, make_ctx


@pytest.fixture
def ctx(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "ROUTES",
                        [("image", "test:", "tests.runtime.step_engine:StepEngine"),
                         *registry.ROUTES])
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


@pytest.fixture
def dock(qtbot, ctx):
    widget = QueueDock(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_what_each_kind_of_job_is_told_by():
    assert describe_request(req(seed=42, width=512, height=768)) == "seed 42 · 512 × 768"
    assert describe_request(req(seed=-1, batch_size=4)) == "random seed · 64 × 64 · 4 images"
    assert describe_request(MusicRequest(model="m", prompt="p", seed=3, duration=12.5)) == \
        "seed 3 · 12.5 s"
    assert describe_request(TextRequest(model="t", prompt="p", seed=-1, max_new_tokens=200)) \
        == "random seed · 200 tokens"


def test_rows_show_seed_and_size_and_a_thumbnail_when_done(qtbot, ctx, dock):
    running = ctx.jobs.submit(req(seed=7, steps=300, width=128, height=64), save=False)
    waiting = ctx.jobs.submit(req(seed=-1, width=64, height=128), save=False)
    qtbot.waitUntil(lambda: running in dock.rows and dock.rows[running].running, timeout=10000)
    assert dock.rows[running].details.text() == "seed 7 · 128 × 64"
    assert dock.rows[waiting].details.text() == "random seed · 64 × 128"
    assert not dock.rows[running].thumb.isVisible()  # no picture before it is done
    ctx.jobs.cancel(running)
    qtbot.waitUntil(lambda: waiting in dock.recent_rows, timeout=10000)
    done, cancelled = dock.recent_rows[waiting], dock.recent_rows[running]
    assert done.state.text().startswith("Done")
    seed = next(f.request.seed for f in dock.recent if f.job_id == waiting)
    assert seed >= 0 and done.details.text() == f"seed {seed} · 64 × 128"  # the seed it used
    assert done.thumb.isVisible()
    picture = done.thumb.pixmap().toImage()
    assert (picture.width(), picture.height()) == (THUMB_PX, THUMB_PX)
    # a tall picture keeps its shape: the tile's sides are empty, its middle is painted
    assert picture.pixelColor(1, THUMB_PX // 2).alpha() == 0
    assert picture.pixelColor(THUMB_PX // 2, THUMB_PX // 2).alpha() == 255
    assert not cancelled.thumb.isVisible()  # a cancelled job made no picture
