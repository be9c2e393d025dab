"""img2img / inpaint overhead: a job through Studio's worker (live previews on) vs the raw
diffusers inpainting pipeline on the same weights, same run.

A small SD-shaped pipeline is built from configs, saved and loaded by the worker with the
engine's own loader; the raw side is `StableDiffusionInpaintPipeline.from_pipe` over the
worker's own modules, called with the same picture, mask, strength, sampler (Euler a),
seed and CPU generator, so both sides make the same pixels (checked: img2img everywhere,
inpaint inside the mask; outside it Studio pastes the init back, a few ms of numpy).
Paired runs alternate the order; the median of the per-pair ratios is printed.

    .venv/bin/python benchmarks/img2img_overhead.py
    .venv/bin/python benchmarks/img2img_overhead.py --size 256 --steps 8 --runs 3 --threads 1

Not a pass/fail test; aim: worker/raw ≤ 1.03.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def parse_args() -> argparse.Namespace:
    import _common

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_tiny_sd_args(p, runs_help="measured pairs per mode")
    p.add_argument("--strength", type=float, default=0.75)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import _common
    import numpy as np
    import torch
    from PIL import Image
    from PySide6.QtCore import QCoreApplication

    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.engines import canvas
    from studio.engines.devices import cpu_generator
    from studio.engines.schedulers import build_scheduler
    from studio.runtime.worker import JobQueue

    tmp, folder = _common.tiny_sd_setup(args, "studio-img2img-bench-")
    side = args.size
    y, x = np.mgrid[0:side, 0:side]
    init = np.stack([x * 255 / side, y * 255 / side, np.full_like(x, 90)], -1).astype(np.uint8)
    Image.fromarray(init).save(tmp / "init.png")
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4:side * 3 // 4, side // 4:side * 3 // 4] = 255
    Image.fromarray(mask).save(tmp / "mask.png")

    app = QCoreApplication.instance() or QCoreApplication([])
    queue = JobQueue(Settings(device="cpu", live_previews=True), None)
    run_job = _common.WorkerRun(queue)
    common = dict(model=str(folder), prompt=PROMPT, seed=args.seed, steps=args.steps,
                  width=side, height=side, scheduler="Euler a", guidance=7.0,
                  init_image=str(tmp / "init.png"), strength=args.strength, mask_blur=4)
    requests = {"img2img": ImageRequest(**common),
                "inpaint": ImageRequest(**common, mask=str(tmp / "mask.png"))}
    run_job(requests["img2img"])  # loads the model in the worker thread; not timed
    engine = run_job.engine(str(folder))
    mode_pipe = engine.mode_pipe()
    print(_common.machine_line())
    print(f"{side}² ({side // 8}² latents), {args.steps} steps × strength {args.strength}, "
          f"Euler a, CFG 7, torch threads {torch.get_num_threads()}")

    def raw(mode: str) -> tuple[np.ndarray, float]:
        request = requests[mode]
        prepared = canvas.prepare(request)
        soft = canvas.blurred(prepared.mask, 4) if prepared.mask is not None else \
            Image.new("L", (side, side), 255)

        def call() -> np.ndarray:
            mode_pipe.scheduler = build_scheduler("Euler a", engine.scheduler_config)
            out = mode_pipe(PROMPT, image=prepared.image, mask_image=soft,
                            strength=args.strength, num_inference_steps=args.steps,
                            guidance_scale=7.0, height=side, width=side,
                            generator=[cpu_generator(args.seed)], output_type="np")
            return (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8)

        return _common.timed(call)

    def worker(mode: str) -> tuple[np.ndarray, float, int]:
        box = run_job(requests[mode], preview_kind="image")
        return box["result"].images[0], box["seconds"], box["previews"]

    for mode in ("img2img", "inpaint"):
        raw(mode)  # warm
        worker(mode)
        out = _common.paired(args.runs, {"raw": lambda m=mode: raw(m),
                                         "worker": lambda m=mode: worker(m)})
        raw_s = [t for _image, t in out["raw"]]
        worker_s = [t for _image, t, _n in out["worker"]]
        ratio = _common.median(_common.ratios(worker_s, raw_s))
        a, b = out["raw"][0][0], out["worker"][0][0]
        inside = np.asarray(canvas.blurred(Image.fromarray(mask), 4)) == 255
        same = np.array_equal(a, b) if mode == "img2img" else np.array_equal(a[inside],
                                                                               b[inside])
        print(f"{mode}: raw {_common.median(raw_s):.3f}s, worker {_common.median(worker_s):.3f}s "
              f"({out['worker'][0][2]} previews), median paired ratio {ratio:.3f} "
              f"(aim ≤ 1.03), same pixels: {same}", flush=True)
    queue.shutdown()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
