"""Closing the window never waits for the worker, whatever it is doing."""

from __future__ import annotations

import time

import pytest

from studio.engines import registry
from studio.ui.main_window import MainWindow
from tests.runtime import step_engine
from tests.runtime.test_worker import req
from tests.ui import close_ctx, make_ctx


@pytest.fixture
def ctx(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "ROUTES",
                        [("image", "test:", "tests.runtime.step_engine:StepEngine"),
                         *registry.ROUTES])
    monkeypatch.setattr(step_engine.StepEngine, "load_seconds", 5.0)
    step_engine.LOAD_STARTS.clear()
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


def test_closing_the_window_while_a_model_loads_takes_under_a_second(qtbot, ctx):
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(ctx.jobs.model_loading, timeout=10000,
                          check_params_cb=lambda model, _device: model == "test:slow"):
        ctx.jobs.submit(req(model="test:slow"))
        ctx.jobs.submit(req(model="test:slow"))
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 1.0  # was 5 s: "worker still busy at shutdown"
    assert not window.isVisible()
    assert ctx.jobs._thread.isFinished()
    assert step_engine.LOAD_STARTS == ["test:slow"]  # nothing else started after the close
