"""The GPU path, measured: SD 2.x and SDXL shapes in fp16, raw diffusers vs the Studio worker.

Run by benchmarks/gpu_check.sh. On a CUDA machine (no model hub needed: the pipelines are
built from models/configs/ with random weights, directly on the GPU) it measures:

- fp16 at 512² (SD 2.x shapes) and 1024² (SDXL shapes): raw `pipe(...)` against a job
  through the real JobQueue with live previews on (median of paired runs; aim ≤ 1.03),
  steps per second, and the VRAM peak of each;
- the memory budget Studio derives from this GPU's VRAM;
- CUDA out-of-memory: a job too large for the VRAM left fails with Studio's hint, and the
  next job runs (VRAM is filled on purpose to make the first one too large);
- speed-ups on the raw pipeline: SDPA attention (diffusers' default) against channels-last
  and torch.compile of the UNet (whichever measures best is the one to adopt).

Without CUDA (`--smoke`, what CI runs) the same code runs on the CPU with tiny shapes at
64², and out-of-memory is simulated by an engine that raises CUDA's error: the script's
every path is exercised, no figure means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WorkerRun, machine_info, machine_line, median, paired, ratios
from _pipelines import build, engine_for, params

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

#: prebuilt engines by model id, handed to the worker by the `bench:` route
ENGINES: dict[str, Any] = {}


def prebuilt_engine() -> type:
    from studio.core.errors import ModelError
    from studio.engines.base import Engine

    class Prebuilt(Engine):
        """Benchmark only: 'loads' a pipeline this script built (the worker's cache keeps it)."""

        kinds: ClassVar[tuple[str, ...]] = ("image",)

        @classmethod
        def load(cls, spec, settings, events):
            if spec.model.startswith("bench:oom"):
                return OomEngine(spec)
            if spec.model not in ENGINES:
                raise ModelError(f"no prebuilt pipeline {spec.model}")
            return ENGINES[spec.model]

        def generate(self, request, events):  # pragma: no cover - never itself loaded
            raise NotImplementedError

    class OomEngine(Engine):
        """The smoke path's stand-in for a job too large for the GPU (CPUs do not OOM
        politely): raises the error CUDA raises, so Studio's handling is exercised."""

        kinds: ClassVar[tuple[str, ...]] = ("image",)

        @classmethod
        def load(cls, spec, settings, events):
            return cls(spec)

        def generate(self, request, events):
            import torch

            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    return Prebuilt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CPU-sized: tiny shapes, 64²")
    p.add_argument("--steps", type=int, default=0, help="default 20 (smoke: 3)")
    p.add_argument("--runs", type=int, default=3, help="paired runs per size (medians)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile try")
    p.add_argument("--json", default="", help="also write the results to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("no CUDA GPU here: running the CPU-sized smoke path")
        args.smoke = True
    device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
    steps = args.steps or (3 if args.smoke else 20)
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-gpu-check-"))
    t_start = time.perf_counter()

    from PySide6.QtCore import QCoreApplication

    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.engines import registry
    from studio.engines.memory import MIB, OOM_MESSAGE, budget_bytes, total_vram_bytes
    from studio.runtime.worker import JobQueue

    app = QCoreApplication.instance() or QCoreApplication(sys.argv)
    module = type(sys)("gpu_check_prebuilt")
    module.Prebuilt = prebuilt_engine()
    sys.modules["gpu_check_prebuilt"] = module
    registry.ROUTES.insert(0, ("image", "bench:", "gpu_check_prebuilt:Prebuilt"))

    report: dict[str, Any] = {"benchmark": "gpu_check", "smoke": args.smoke, "steps": steps,
                              "device": device, **machine_info()}
    if cuda:
        props = torch.cuda.get_device_properties(0)
        report["gpu"] = props.name
        report["vram_gib"] = round(props.total_memory / 2**30, 1)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB; torch "
              f"{torch.__version__}, CUDA {torch.version.cuda}")
    print(machine_line(), flush=True)
    settings = Settings(device=device, output_dir=tempfile.mkdtemp(), live_previews=True)
    queue = JobQueue(settings, None)
    run = WorkerRun(queue)
    report["budget_mib"] = budget_bytes(settings, device) // MIB
    if cuda:
        print(f"memory budget from VRAM: {report['budget_mib']} MiB of "
              f"{total_vram_bytes(device) // MIB} MiB")

    cases = [("sd2", 64 if args.smoke else 512), ("sdxl", 64 if args.smoke else 1024)]
    report["sizes"] = {}
    for family, size in cases:
        t = time.perf_counter()
        with torch.device(device):  # random weights made on the GPU: seconds, not minutes
            pipe = build(family, scale=8 if args.smoke else 1,
                         text_layers=1 if args.smoke else None, vae_scale=4 if args.smoke else 1)
        pipe.to(device=device, dtype=dtype)
        model = f"bench:{family}"
        ENGINES[model] = engine_for(pipe, family, device=device,
                                    dtype="float16" if cuda else "float32", name=family)
        print(f"\n{family}: UNet {params(pipe.unet) / 1e6:.0f} M params, built in "
              f"{time.perf_counter() - t:.0f} s; {size}², {steps} steps", flush=True)
        request = ImageRequest(model=model, prompt="a lighthouse at dusk", seed=3, steps=steps,
                               width=size, height=size, guidance=7.0,
                               scheduler="Euler").resolved()

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize()

        def raw(pipe: Any = pipe, request: ImageRequest = request) -> dict[str, Any]:
            marks: list[float] = []

            def on_step(*_a: Any) -> dict:
                marks.append(time.perf_counter())
                return {}

            if cuda:
                torch.cuda.reset_peak_memory_stats()
            sync()
            t0 = time.perf_counter()
            with torch.inference_mode():
                pipe(request.prompt, num_inference_steps=request.steps, width=request.width,
                     height=request.height, guidance_scale=request.guidance,
                     generator=torch.Generator("cpu").manual_seed(request.seed),
                     output_type="np", callback_on_step_end=on_step)
            sync()
            seconds = time.perf_counter() - t0
            rate = (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 1 else 0.0
            peak = torch.cuda.max_memory_allocated() // MIB if cuda else 0
            return {"seconds": seconds, "it_s": rate, "peak_mib": peak}

        def worker(request: ImageRequest = request) -> dict[str, Any]:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            box = run(request, preview_kind="image")
            peak = torch.cuda.max_memory_allocated() // MIB if cuda else 0
            return {"seconds": box["seconds"], "previews": box["previews"],
                    "it_s": box["result"].info["timings"]["it_per_s"], "peak_mib": peak}

        raw()  # warm: kernels, cuDNN autotuning, allocator
        worker()
        sides = paired(args.runs, {"raw": raw, "worker": worker})
        ratio = median(ratios([w["seconds"] for w in sides["worker"]],
                              [r["seconds"] for r in sides["raw"]]))
        row = {"size": size, "raw_s": round(median([r["seconds"] for r in sides["raw"]]), 3),
               "worker_s": round(median([w["seconds"] for w in sides["worker"]]), 3),
               "worker_over_raw": round(ratio, 4),
               "raw_it_s": round(median([r["it_s"] for r in sides["raw"]]), 2),
               "worker_it_s": round(median([w["it_s"] for w in sides["worker"]]), 2),
               "previews": sides["worker"][0]["previews"],
               "raw_peak_mib": max(r["peak_mib"] for r in sides["raw"]),
               "worker_peak_mib": max(w["peak_mib"] for w in sides["worker"])}
        print(f"  raw {row['raw_s']:.2f} s ({row['raw_it_s']:.2f} it/s), worker with previews "
              f"{row['worker_s']:.2f} s ({row['worker_it_s']:.2f} it/s, {row['previews']} "
              f"previews): worker / raw {ratio:.3f} (aim ≤ 1.03); VRAM peak raw "
              f"{row['raw_peak_mib']} MiB, worker {row['worker_peak_mib']} MiB", flush=True)

        # speed-ups on the raw pipeline (SDPA is diffusers' default attention already)
        speed: dict[str, float] = {"sdpa": row["raw_it_s"]}
        pipe.unet.to(memory_format=torch.channels_last)
        raw()
        speed["channels_last"] = round(median([raw()["it_s"] for _ in range(2)]), 2)
        pipe.unet.to(memory_format=torch.contiguous_format)
        budget_left = 480 - (time.perf_counter() - t_start)  # keep the whole run < 10 min
        # (not on the smoke path: compiling even the tiny UNet takes minutes on 2 cores)
        if not args.no_compile and cuda and family == "sd2" and budget_left > 180:
            plain_unet = pipe.unet
            try:
                pipe.unet = torch.compile(plain_unet)
                t = time.perf_counter()
                raw()  # compiles
                row["compile_s"] = round(time.perf_counter() - t, 1)
                speed["torch_compile"] = round(median([raw()["it_s"] for _ in range(2)]), 2)
            except Exception as exc:  # a compiler missing on this machine: say so, go on
                speed["torch_compile_failed"] = 0.0
                row["compile_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                pipe.unet = plain_unet
        best = max((k for k in speed if not k.endswith("failed")), key=lambda k: speed[k])
        row["speedups_it_s"], row["best"] = speed, best
        print(f"  speed-ups (it/s): {speed}; best: {best}", flush=True)
        report["sizes"][family] = row

    # out of memory: a job too large fails with the hint, and the next one runs
    failed: list[str] = []
    queue.job_failed.connect(lambda _i, message: failed.append(message))
    blocker = None
    if cuda:
        free, _total = torch.cuda.mem_get_info()
        blocker = torch.empty(max(0, free - 1536 * MIB), dtype=torch.uint8, device="cuda")
        too_large = ImageRequest(model="bench:sdxl", prompt="x", seed=1, steps=2, width=1024,
                                 height=1024, batch_size=4, scheduler="Euler")
    else:
        too_large = ImageRequest(model="bench:oom", prompt="x", seed=1, steps=2, width=64,
                                 height=64, scheduler="Euler")
    try:
        run(too_large)
        oom_failed = False
    except SystemExit:  # WorkerRun: the job failed (as it should)
        oom_failed = True
    del blocker
    if cuda:
        torch.cuda.empty_cache()
    after = run(ImageRequest(model="bench:sd2", prompt="after", seed=2, steps=2,
                             width=cases[0][1], height=cases[0][1], scheduler="Euler"))
    report["oom"] = {"too_large_failed": oom_failed, "message": failed[-1] if failed else "",
                     "hint_shown": bool(failed) and failed[-1] == OOM_MESSAGE,
                     "next_job_ran": "result" in after, "simulated": not cuda}
    print(f"\nout of memory{' (simulated on the CPU)' if not cuda else ''}: the job failed "
          f"with {failed[-1] if failed else 'nothing'!r}; the next job ran: "
          f"{'result' in after}")
    queue.shutdown()
    app.processEvents()
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    print(f"\ntotal {report['total_s']:.0f} s; {machine_line()}")
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    ok = report["oom"]["hint_shown"] and report["oom"]["next_job_ran"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
