"""The status bar tells the truth: loading X…, loaded X, nothing after Unload all, the device."""

from __future__ import annotations

import subprocess
import sys

import pytest

from studio.core.paths import REPO_ROOT
from studio.engines import registry
from studio.runtime import machine
from studio.ui.status_bar import StatusBar
from tests.runtime import step_engine
from tests.ui import close_ctx, make_ctx


@pytest.fixture
def ctx(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "ROUTES",
                        [("image", "test:", "tests.runtime.step_engine:StepEngine"),
                         *registry.ROUTES])
    monkeypatch.setattr(step_engine.StepEngine, "load_seconds", 1.0)
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


@pytest.fixture
def bar(qtbot, ctx):
    widget = StatusBar(ctx)
    qtbot.addWidget(widget)
    return widget


def req(model: str = "test:slow"):
    from tests.runtime.test_worker import req as image_req

    return image_req(model=model)


def test_loading_then_loaded_then_nothing_after_unload_all(qtbot, ctx, bar):
    label = bar.models_label
    assert label.text() == "No model loaded"
    job_id = ctx.jobs.submit(req(), save=False)
    qtbot.waitUntil(lambda: label.text() == "Loading test:slow…", timeout=5000)
    assert "Loading test:slow on cpu" in label.toolTip()
    assert bar.device_label.text() == "Device: cpu"
    qtbot.waitUntil(lambda: label.text().startswith("Loaded: test:slow"), timeout=10000)
    assert ctx.jobs.is_busy() or job_id not in ctx.jobs.jobs  # told as soon as it loaded
    qtbot.waitUntil(lambda: not ctx.jobs.is_busy(), timeout=10000)
    assert label.text().startswith("Loaded: test:slow")
    with qtbot.waitSignal(ctx.jobs.models_changed, timeout=5000):
        ctx.jobs.unload(None)  # what the Models view's "Unload all" does
    assert label.text() == "No model loaded"
    assert "test:slow" not in label.toolTip()


def test_a_second_load_says_how_many_are_loaded_already(qtbot, ctx, bar):
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=10000):
        ctx.jobs.submit(req("test:a"), save=False)
    ctx.jobs.submit(req(), save=False)
    qtbot.waitUntil(lambda: bar.models_label.text() == "Loading test:slow… · 1 loaded",
                    timeout=5000)
    qtbot.waitUntil(lambda: bar.models_label.text().startswith("Loaded: 2 models"),
                    timeout=10000)


def test_a_failed_load_does_not_stay_loading(qtbot, ctx, bar):
    with qtbot.waitSignal(ctx.jobs.job_failed, timeout=10000):
        ctx.jobs.submit(req("test:missing"), save=False)
    qtbot.waitUntil(lambda: bar.models_label.text() == "No model loaded", timeout=5000)


def test_a_cancelled_load_shows_loading_until_it_really_ends(qtbot, ctx, bar, monkeypatch):
    """The given-up load goes on in the background: the bar says so, then what it left."""
    monkeypatch.setattr(step_engine.StepEngine, "load_seconds", 3.0)
    with qtbot.waitSignal(ctx.jobs.model_loading, timeout=5000):
        job_id = ctx.jobs.submit(req(), save=False)
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=2000):
        ctx.jobs.cancel(job_id)
    assert bar.models_label.text() == "Loading test:slow…"
    qtbot.waitUntil(lambda: bar.models_label.text().startswith("Loaded: test:slow"),
                    timeout=10000)


def test_auto_shows_the_device_it_resolves_to_not_auto(qtbot, tmp_path):
    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.engines.devices import pick_device
    from studio.runtime.context import AppContext

    ctx = AppContext(Settings(output_dir=str(tmp_path / "out"), device="auto"),
                     History.open_default())
    try:
        bar = StatusBar(ctx)
        qtbot.addWidget(bar)
        assert bar.device_label.text() == f"Device: {pick_device('auto')}"
        assert "auto" in bar.device_label.toolTip()
    finally:
        close_ctx(ctx, qtbot)


def test_the_auto_guess_does_not_import_torch():
    code = ("import sys; from studio.runtime.machine import expected_device; "
            "print(expected_device('auto'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out[1] == "False" and out[0] in ("cpu", "cuda", "mps")


def test_the_auto_guess_reads_how_torch_was_built(tmp_path, monkeypatch):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "version.py").write_text(
        "from typing import Optional\n__version__ = '2.5.0+cu124'\n"
        "cuda: Optional[str] = '12.4'\nhip: Optional[str] = None\n")
    assert machine.torch_build(fake) == {"__version__": "2.5.0+cu124", "cuda": "12.4",
                                         "hip": None}
    real_build = machine.torch_build
    monkeypatch.setattr(machine, "torch_build", lambda root=None: real_build(fake))
    monkeypatch.setattr(machine, "has_nvidia_gpu", lambda: True)  # the one thing mocked: a GPU
    machine.expected_device.cache_clear()
    try:
        assert machine.expected_device("auto") == "cuda"
        monkeypatch.setattr(machine, "has_nvidia_gpu", lambda: False)
        machine.expected_device.cache_clear()
        assert machine.expected_device("auto") in ("cpu", "mps")
        assert machine.expected_device("cpu") == "cpu"
    finally:
        machine.expected_device.cache_clear()


def test_the_models_views_unload_all_button_empties_the_bar(qtbot, ctx, bar):
    from PySide6.QtCore import Qt

    from studio.ui.models_view import ModelsView

    view = ModelsView(ctx)
    qtbot.addWidget(view)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=10000):
        ctx.jobs.submit(req("test:a"), save=False)
    qtbot.waitUntil(view.unload_all_button.isEnabled, timeout=5000)
    assert bar.models_label.text().startswith("Loaded: test:a")
    with qtbot.waitSignal(ctx.jobs.models_changed, timeout=5000):
        qtbot.mouseClick(view.unload_all_button, Qt.MouseButton.LeftButton)
    assert bar.models_label.text() == "No model loaded"
    assert bar.device_label.text() == "Device: cpu"
