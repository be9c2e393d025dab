"""The window's start-up recovers what a killed save left; SIGTERM closes it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from studio.core.outputs import save_result
from studio.core.requests import ImageRequest
from studio.core.results import Result
from tests.faults.inject import temp_files
from tests.ui import close_ctx, make_ctx

ROOT = Path(__file__).resolve().parents[2]


def test_start_up_indexes_orphans_and_removes_stale_temp_files(qtbot, tmp_path: Path) -> None:
    from studio.ui.app import start_recovery
    from studio.ui.main_window import MainWindow

    ctx = make_ctx(tmp_path)
    out = ctx.settings.output_path
    request = ImageRequest(model="builtin:faces", prompt="an orphan", seed=8, width=64,
                           height=64, batch_size=2)
    orphans = save_result(Result(request, "image",
                                 images=[np.zeros((64, 64, 3), np.uint8)] * 2), out)
    stale = orphans[0].parent / ".00003-8-an-orphan.png.k1ll3d.part"  # a killed save's
    stale.write_bytes(b"\x89PNG half")
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    try:
        assert len(ctx.history) == 0
        start_recovery(ctx, window)
        qtbot.waitUntil(lambda: len(ctx.history) == 2 and window.gallery.item_count() == 2,
                        timeout=20000)
        assert temp_files(out) == []
        assert sorted(i.path for i in ctx.history.recent()) == sorted(p.resolve()
                                                                       for p in orphans)
    finally:
        close_ctx(ctx, qtbot)


def test_sigterm_closes_the_window_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = dict(os.environ, STUDIO_HOME=str(home), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "studio"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (home / "history.sqlite").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)  # the window is up and its event loop runs
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - start < 10
    assert "Traceback" not in err and out == ""
