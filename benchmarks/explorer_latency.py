"""Explorer latency: from a pad move (a real mouse event) to the new frame in the view.

The real ExplorePanel runs headless with the real job queue and worker thread. The
mouse button is held on the pad and the puck is moved step by step; each step waits
until the view shows the frame of that very position (frame_shown). Reported per model,
with the raw library measured in the same run for comparison:

- builtin:faces (64² DCGAN): pad move → frame in view, vs. the raw forward pass
  `net(z)` and the engine's own generate() (no Qt, no worker). Aim: < 50 ms.
- a tiny diffusion pipeline (built from configs into a temp folder): pad move → quick
  preview in view (preview steps, smaller size, latent→RGB decode), and the full frame
  rendered when the pad settles, vs. a raw `pipe(...)` call of the same size and steps.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/explorer_latency.py
    .venv/bin/python benchmarks/explorer_latency.py --moves 60 --skip-diffusion

Not a pass/fail test. On a busy 2-core machine the numbers wander: medians and p90s.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

print = functools.partial(print, flush=True)  # progress shows as it happens
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<44} median {statistics.median(values):7.1f} ms   "
            f"p90 {pct(values, 0.9):7.1f} ms   n={len(values)}")


def wait_until(app, cond, timeout: float = 120.0) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if cond():
            return True
        app.processEvents()
        time.sleep(0.0005)
    return cond()


def pad_moves(app, panel, moves: int, *, want_full: bool) -> list[float]:
    """Hold the button on the pad, move step by step, time each move → its frame shown."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    pad = panel.pad
    shown: list = []

    def record(request) -> None:  # a Python callable: PySide6 and bound builtins do not mix
        shown.append(request)

    panel.frame_shown.connect(record)
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     pad.point_at(0.0, 0.5).toPoint())
    wait_until(app, lambda: not panel.busy())
    times = []
    for i in range(1, moves + 1):
        x = i / moves
        shown.clear()
        t0 = time.perf_counter()
        QTest.mouseMove(pad, pad.point_at(x, 0.5).toPoint())
        target = pad.position()[0]
        ok = wait_until(app, lambda target=target: any(
            abs(r.pad_x - target) < 1e-5 and (r.fast or not want_full) for r in shown),
            timeout=60)
        if ok:
            times.append((time.perf_counter() - t0) * 1000)
        else:
            print(f"  move {i}: no frame for x={target:.3f} within 60 s "
                  f"({panel.message.text() or 'no message'}; shown {[r.pad_x for r in shown]})")
        wait_until(app, lambda: not panel.busy())
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       pad.point_at(1.0, 0.5).toPoint())
    wait_until(app, lambda: not panel.busy())
    panel.frame_shown.disconnect(record)
    return times


def settle_times(app, panel, runs: int) -> list[float]:
    """Release the pad at a new place → the full (non-preview) frame of it in the view."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    pad = panel.pad
    out = []
    for i in range(runs):
        x = 0.2 + 0.6 * i / max(1, runs - 1)
        shown: list = []

        def record(request, shown=shown) -> None:
            shown.append(request)

        panel.frame_shown.connect(record)
        p = pad.point_at(x, 0.5).toPoint()
        t0 = time.perf_counter()
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
        target = pad.position()[0]
        if wait_until(app, lambda target=target, shown=shown: any(
                abs(r.pad_x - target) < 1e-5 and not r.fast for r in shown), timeout=600):
            out.append((time.perf_counter() - t0) * 1000)
        panel.frame_shown.disconnect(record)
        wait_until(app, lambda: not panel.busy(), timeout=600)
    return out


def raw_gan(runs: int) -> tuple[list[float], list[float]]:
    """The bare DCGAN forward pass (on the engine's thread count, so the comparison is
    fair), and the engine's generate() for one explorer point."""
    import torch

    from studio.core.explore import ExploreRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.gan import GanEngine, torch_threads

    engine = GanEngine.load(LoadSpec("builtin:faces", "cpu", "float32"), Settings(), Events())
    engine.principal_directions()
    z = torch.randn(1, 100, 1, 1)
    raw, eng = [], []
    with torch.inference_mode():
        for _ in range(5):
            engine.net.main(z)
    for i in range(runs):
        with torch.inference_mode(), torch_threads(GanEngine.frame_threads):
            t0 = time.perf_counter()
            engine.net.main(z)
            raw.append((time.perf_counter() - t0) * 1000)
        request = ExploreRequest(model="builtin:faces", anchors=(1, 2), pad_x=i / runs,
                                 width=64, height=64)
        t0 = time.perf_counter()
        engine.generate(request, Events())
        eng.append((time.perf_counter() - t0) * 1000)
    return raw, eng


def raw_diffusers(model: Path, steps: int, size: int, runs: int) -> list[float]:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        with torch.inference_mode():
            pipe("red fox", num_inference_steps=steps, height=size, width=size,
                 generator=torch.Generator().manual_seed(i), output_type="np")
        if i:  # the first call warms up
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=40, help="pad moves per model")
    ap.add_argument("--skip-diffusion", action="store_true")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ["STUDIO_HOME"] = str(home)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import torch

    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.runtime.context import AppContext
    from studio.ui.explore_panel import ExplorePanel

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    raw, eng = raw_gan(args.moves)
    print(summary("faces: raw DCGAN forward (torch)", raw))
    print(summary("faces: engine.generate (one explorer point)", eng))

    models = home / "models"
    diffusion = None
    if not args.skip_diffusion:
        from tests.tiny import build_tiny_sd

        diffusion = build_tiny_sd(models, sample_size=32, block=32)

    ctx = AppContext(Settings(output_dir=str(home / "out"), device="cpu",
                              model_dirs=[str(models)]), History.open_default())
    panel = ExplorePanel(ctx)
    panel.resize(1280, 860)
    panel.show()
    if not wait_until(app, lambda: panel.shown_request is not None and not panel.busy()):
        print(f"no first frame: {panel.message.text() or 'no message'}")
        return 1
    started = panel.jobs_started
    gan = pad_moves(app, panel, args.moves, want_full=False)
    print(summary("faces: pad move → frame in view", gan))
    med = statistics.median(gan)
    print(f"{'':44} ratio to engine {med / statistics.median(eng):.2f}×, "
          f"to raw forward {med / statistics.median(raw):.2f}×; aim < 50 ms: "
          f"{'met' if med < 50 else 'missed'} ({panel.jobs_started - started} jobs)")

    if diffusion is not None:
        ctx.rescan_models()
        wait_until(app, lambda: str(diffusion) in panel.model.model_ids(), timeout=60)
        size, steps, preview_steps = 256, 8, 2
        panel.width_box.setValue(size)
        panel.height_box.setValue(size)
        panel.steps.setValue(steps)
        panel.preview_steps.setValue(preview_steps)
        panel.preview_size.setValue(size // 2)
        panel.model.set_model(str(diffusion))
        for card, prompt in zip(panel._anchor_cards, ("red fox", "cat"), strict=False):
            card.prompt.setText(prompt)
        panel._rerender()
        wait_until(app, lambda: panel.shown_request is not None and not panel.busy()
                   and panel.shown_request.model == str(diffusion), timeout=600)
        moves = max(6, args.moves // 4)
        fast = pad_moves(app, panel, moves, want_full=True)
        print(summary(f"tiny SD: pad move → preview ({preview_steps} steps, {size // 2}²)", fast))
        full = settle_times(app, panel, 4)
        print(summary(f"tiny SD: pad settles → full frame ({steps} steps, {size}²)", full))
        raw_full = raw_diffusers(diffusion, steps, size, 3)
        print(summary(f"tiny SD: raw pipe() ({steps} steps, {size}²)", raw_full))
        full_med, fast_med = statistics.median(full), statistics.median(fast)
        print(f"{'':44} full frame / raw pipe {full_med / statistics.median(raw_full):.2f}×, "
              f"preview / full {fast_med / full_med:.2f}×")
    ctx.shutdown()
    ctx.jobs._thread.wait(10000)
    ctx.history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
