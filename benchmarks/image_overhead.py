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
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, default=512, help="picture side (latents are size/8)")
    p.add_argument("--block", type=int, default=32, help="UNet width (channels of level 1)")
    p.add_argument("--runs", type=int, default=3, help="measured runs per side")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-worker", action="store_true", help="skip the Qt worker side")
    p.add_argument("--seed", type=int, default=1234)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.image_diffusers import DiffusersImageEngine
    from studio.engines.latents import seeded_noise
    from studio.engines.schedulers import build_scheduler
    from tests.tiny import build_tiny_sd

    tmp = Path(tempfile.mkdtemp(prefix="studio-image-bench-"))
    os.environ["STUDIO_HOME"] = str(tmp / "home")
    os.environ["STUDIO_MODELS"] = str(tmp / "no-models")  # no TAESD: linear previews
    folder = build_tiny_sd(tmp, sample_size=args.size // 8, block=args.block)
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
    """The real JobQueue + Worker thread, driven from a headless Qt main thread."""

    def __init__(self, request) -> None:
        from PySide6.QtCore import QCoreApplication

        from studio.core.settings import Settings
        from studio.runtime.worker import JobQueue

        self.app = QCoreApplication.instance() or QCoreApplication([])
        self.request = request
        self.queue = JobQueue(Settings(device="cpu", live_previews=True), None)
        self.result = None
        self.previews = 0
        self.queue.job_finished.connect(self._finished)
        self.queue.job_failed.connect(lambda _id, message: self._failed(message))
        self.queue.job_preview.connect(self._preview)

    def _finished(self, _job_id, result, _paths) -> None:
        self.result = result
        self.app.exit(0)

    def _failed(self, message: str) -> None:
        print("worker job failed:", message)
        self.app.exit(1)

    def _preview(self, *_args) -> None:
        self.previews += 1

    def run(self):
        self.result, self.previews = None, 0
        self.queue.submit(self.request, save=False)
        if self.app.exec() != 0:
            raise SystemExit(1)
        return self.result.images[0], self.previews, self.result.info["timings"]["callbacks_s"]

    def close(self) -> None:
        self.queue.shutdown()


if __name__ == "__main__":
    sys.exit(main())
