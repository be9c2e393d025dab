"""Image overhead: Studio's diffusers engine (and its worker) vs a raw `pipe(...)`, same run.

A small SD-shaped pipeline is built from configs (UNet at 64×64 latents, i.e. 512×512
pictures, so a step costs tens of milliseconds on a CPU), saved, and loaded with the
engine's own loader. Every side uses the same weights, sampler (Euler a), seed, initial
latents and generator, so they make the same pixels (checked):

- raw:      `pipe(prompt, latents=..., generator=...)`, no callback
- engine:   `engine.generate(...)` with a preview decoded at every step (the worst case)
- throttled: the engine with its default preview throttle (≤ 5/s, ≤ 3 % of the time)
- worker:   submit to the real JobQueue/Worker thread → job_finished, seen from the GUI
            thread (headless Qt), live previews on, nothing saved

    .venv/bin/python benchmarks/image_overhead.py
    .venv/bin/python benchmarks/image_overhead.py --steps 30 --runs 5 --block 64
    .venv/bin/python benchmarks/image_overhead.py --threads 1      # steadier on a busy machine

Not a pass/fail test; aim: engine/raw ≤ 1.03. On a busy 2-core machine the numbers
wander: runs alternate between the sides and medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_tiny_sd_args(p)
    p.add_argument("--no-worker", action="store_true", help="skip the Qt worker side")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import numpy as np
    import torch

    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.image_diffusers import DiffusersImageEngine
    from studio.engines.latents import seeded_noise
    from studio.engines.schedulers import build_scheduler

    _tmp, folder = _common.tiny_sd_setup(args, "studio-image-bench-")
    engine = DiffusersImageEngine.load(LoadSpec(str(folder), "cpu", "float32"), Settings(),
                                       Events())
    pipe = engine.pipe
    params = sum(p.numel() for p in pipe.unet.parameters())
    request = ImageRequest(model=str(folder), prompt=PROMPT, seed=args.seed, steps=args.steps,
                           width=args.size, height=args.size, scheduler="Euler a", guidance=7.0)

    def raw() -> np.ndarray:
        pipe.scheduler = build_scheduler("Euler a", engine.scheduler_config)
        shape = (1, pipe.unet.config.in_channels, args.size // 8, args.size // 8)
        latents, generator = seeded_noise(args.seed, shape)
        out = pipe(PROMPT, num_inference_steps=args.steps, guidance_scale=7.0,
                   height=args.size, width=args.size, latents=latents, generator=[generator],
                   output_type="np")
        return (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8)

    class Watching(Events):
        previews = 0

        def on_preview(self, _preview) -> None:
            self.previews += 1

    def through_engine(every_step: bool):
        engine.preview_interval = 0.0 if every_step else DiffusersImageEngine.preview_interval
        engine.preview_budget = 1.0 if every_step else DiffusersImageEngine.preview_budget
        events = Watching()
        result = engine.generate(request, events)
        return result.images[0], events.previews, result.info["timings"]["callbacks_s"]

    worker = WorkerSide(request) if not args.no_worker else None
    print(f"UNet {params / 1e6:.1f} M params, {args.size}² ({args.size // 8}² latents), "
          f"{args.steps} steps, Euler a, CFG 7, torch threads {torch.get_num_threads()}")
    print("warming up…", flush=True)
    reference = raw()
    through_engine(True)
    if worker is not None:
        worker.run()  # loads the model in the worker thread; not timed

    sides = ["raw", "engine", "throttled"] + (["worker"] if worker is not None else [])
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    callbacks: dict[str, list[float]] = {side: [] for side in sides[1:]}
    previews: dict[str, int] = {}
    same = True
    for run in range(args.runs):
        for side in sides:
            t0, c0 = time.perf_counter(), time.process_time()
            if side == "raw":
                image = raw()
            elif side == "worker":
                image, previews[side], spent = worker.run()
            else:
                image, previews[side], spent = through_engine(side == "engine")
            wall[side].append(time.perf_counter() - t0)
            cpu[side].append(time.process_time() - c0)
            if side != "raw":
                callbacks[side].append(spent)
            same &= bool(np.array_equal(image, reference))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in wall.items()),
              flush=True)

    base_wall, base_cpu = statistics.median(wall["raw"]), statistics.median(cpu["raw"])
    print(f"\nmedians of {args.runs} runs (raw: {base_wall / args.steps * 1000:.1f} ms/step wall, "
          f"{base_cpu / args.steps * 1000:.1f} ms/step CPU)")
    print(f"  {'side':10s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s}"
          f" {'in callback':>12s}  previews")
    for side in sides:
        w, c = statistics.median(wall[side]), statistics.median(cpu[side])
        spent = f"{statistics.median(callbacks[side]) / w * 100:10.2f} %" if side != "raw" else (
            f"{'-':>12s}")
        print(f"  {side:10s} {w:8.3f} {w / base_wall:6.3f} {c:8.3f} {c / base_cpu:6.3f} "
              f"{spent}  {previews.get(side, '-')}")
    print(f"same pixels on every side: {same}")
    print("(CPU time counts every thread of this process, so it is steadier than wall time on a "
          "busy machine; 'in callback' is the share of the job spent in Studio's per-step code)")
    if worker is not None:
        worker.close()
    return 0


class WorkerSide:
    """The real JobQueue + Worker thread, driven from a headless Qt main thread
    (`_common.WorkerRun`, as the other benchmarks), for one fixed request."""

    def __init__(self, request) -> None:
        from PySide6.QtCore import QCoreApplication

        from studio.core.settings import Settings
        from studio.runtime.worker import JobQueue

        self.app = QCoreApplication.instance() or QCoreApplication([])
        self.request = request
        self.queue = JobQueue(Settings(device="cpu", live_previews=True), None)
        self.job = _common.WorkerRun(self.queue)

    def run(self):
        box = self.job(self.request, preview_kind="image")
        result = box["result"]
        return result.images[0], box["previews"], result.info["timings"]["callbacks_s"]

    def close(self) -> None:
        self.queue.shutdown()


if __name__ == "__main__":
    sys.exit(main())
