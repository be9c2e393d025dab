"""Shared pieces for the UI tests (no conftest: each module imports what it uses).

- tiny_sd: a session-wide tiny Stable Diffusion folder (tests/tiny.build_tiny_sd)
- SlowEngine: a real Engine with controllable timing for queue/cancel tests
- make_ctx / close_ctx: an AppContext over a private history, shut down cleanly
- shown_window: the main window over such a context, shown, then closed with it
- click_check: a click on a check box's indicator, where it always lands
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QStyle, QStyleOptionButton

from studio.core.requests import ImageRequest
from studio.core.results import Preview, Result
from studio.engines.base import Engine, Events, LoadSpec


class SlowEngine(Engine):
    """Paints a flat colour step by step; `slow:<ms>` in the model id sets the step time."""

    kinds = ("image",)

    @classmethod
    def load(cls, spec: LoadSpec, settings, events: Events) -> SlowEngine:
        return cls(spec)

    def generate(self, request: ImageRequest, events: Events) -> Result:
        ms = float(request.model.split(":", 1)[1] or 10)
        seeds = [request.seed + i for i in range(request.batch_size)]
        rngs = [np.random.default_rng(s) for s in seeds]
        images = [np.zeros((request.height, request.width, 3), np.uint8) for _ in seeds]
        for step in range(1, request.steps + 1):
            time.sleep(ms / 1000)
            for image, rng in zip(images, rngs, strict=True):
                image[:] = rng.integers(0, 255, 3, dtype=np.uint8)
            events.progress(step, request.steps)
            if events.wants_previews():
                events.preview(Preview("image", [i.copy() for i in images], step, request.steps))
        return Result(request, "image", images=images, info={"seeds": seeds})

    def memory_bytes(self) -> int:
        return 4096


def use_slow_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route `slow:` model ids to SlowEngine for this test."""
    from studio.engines import registry

    monkeypatch.setattr(registry, "ROUTES",
                        [("image", "slow:", "tests.ui:SlowEngine"), *registry.ROUTES])


def make_ctx(tmp_path: Path, model_dirs: list[str] | None = None, **settings):
    """An AppContext with outputs under tmp_path, the history in this test's Studio home."""
    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.runtime.context import AppContext

    s = Settings(output_dir=str(tmp_path / "outputs"), model_dirs=model_dirs or [],
                 device="cpu", **settings)
    return AppContext(s, History.open_default())


def close_ctx(ctx, qtbot) -> None:
    """Stop the worker and wait for its thread, then close the history."""
    ctx.shutdown()
    qtbot.waitUntil(ctx.jobs._thread.isFinished, timeout=20000)
    ctx.history.close()


def scan(ctx, qtbot) -> None:
    """Rescan the model folders and wait for the catalog."""
    with qtbot.waitSignal(ctx.catalog_changed, timeout=20000):
        ctx.rescan_models()


@contextlib.contextmanager
def shown_window(qtbot, ctx, *, scanned: bool = False, tab: str | None = None,
                 active: bool = False, size: tuple[int, int] | None = None) -> Iterator:
    """The main window over `ctx`, shown (on `tab`, at `size`) and exposed; `active` waits
    for it to take the keyboard (shortcuts need it), `scanned` for the catalog of its model
    folders. Closes the window, then `ctx`."""
    from studio.ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    try:
        if size is not None:
            window.resize(*size)
        window.show()
        if tab is not None:
            window.show_tab(tab)
        qtbot.waitExposed(window)
        if active:
            qtbot.waitActive(window, timeout=10000)
        if scanned:
            scan(ctx, qtbot)
        yield window
    finally:
        window.close()
        close_ctx(ctx, qtbot)


class PanelJobs:
    """The ids a panel submitted, so tests wait for its own jobs' signals and not for
    jobs other panels start by themselves (the explorer renders when it opens)."""

    def __init__(self, panel) -> None:
        self.ids: list[int] = []
        panel.submitted.connect(self.ids.append)

    def mine(self, job_id: int, *_args) -> bool:
        return job_id in self.ids


def image_jobs_waiting(ctx) -> list:
    return [j for j in ctx.jobs.pending() if j.lane == "generate"]


def output_files(folder: Path, suffix: str = ".png") -> list[Path]:
    return sorted(folder.rglob(f"*{suffix}")) if folder.exists() else []


def click_check(qtbot, box: QCheckBox) -> None:
    """Click a check box on its indicator. A form layout stretches a check box wider than
    its label and only the indicator and the label take clicks, so a click at its centre
    can miss: on CI's fonts one did, by a few pixels."""
    option = QStyleOptionButton()
    box.initStyleOption(option)
    indicator = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=indicator.center())
