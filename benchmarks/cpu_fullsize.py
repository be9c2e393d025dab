"""CPU speed of a full-size SD 2.x-shaped pipeline: PyTorch fp32 / bf16 / OpenVINO, full and
fast (TAESD) decode, against raw diffusers, in the same run.

The pipeline is built from models/configs/sd2 with random weights (865 M-parameter UNet,
the real VAE and OpenCLIP-H text encoder shapes): a step costs what a real model's costs.
Every Studio row is the image engine's own `generate` (the path the worker and the CLI
take: CPU noise, the step callback with progress, previews on, cancel checks); the raw
row is `pipe(...)` on the same pipeline with nothing around it. With OpenVINO, the two
libraries' own speeds on this UNet come last: one CFG call of the bare UNet in PyTorch and
compiled by `openvino.convert_model` + `compile_model` directly (median of 3 after a warm-up
call), so OpenVINO's speed-up by itself stands beside Studio's. Per step is the time
between the first and the last step callback over steps - 1; decode is the time from
the last step to the image; whole is the job. OpenVINO's one-off conversion is reported
on its own line and left out of its rows (it is cached on disk for the next launch).

    .venv/bin/python benchmarks/cpu_fullsize.py --runs 2   # 512², 3 steps (~20 min, 2 cores)
    .venv/bin/python benchmarks/cpu_fullsize.py --quick    # half-width UNet, 256² (~2 min)

Aims (issue 18): OpenVINO ≥ 1.8× PyTorch fp32 per step; the whole image with OpenVINO and
fast decode ≥ 5× the plain PyTorch path. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, machine_line, median
from _pipelines import build, engine_for, params, tiny_autoencoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="a half-width UNet, 4-layer text encoder, half-width VAE, at 256²")
    p.add_argument("--size", type=int, default=0, help="image side (default 512, quick 256)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--runs", type=int, default=1, help="measured runs per row (medians)")
    p.add_argument("--guidance", type=float, default=7.0, help="> 1: CFG (a batch of 2)")
    p.add_argument("--skip-openvino", action="store_true")
    p.add_argument("--rows", default="",
                   help="only the rows whose names contain one of these comma-separated words "
                        "(case-insensitive; the Studio PyTorch fp32 row, the base, always runs)")
    p.add_argument("--json", default="", help="also write the results to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size or (256 if args.quick else 512)
    home = Path(tempfile.mkdtemp(prefix="studio-cpu-bench-"))
    os.environ["STUDIO_HOME"] = str(home)  # the OpenVINO IR cache goes here, then away
    try:
        return run(args, size)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, size: int) -> int:
    import numpy as np
    import torch

    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events
    from studio.engines.openvino_backend import available, bf16_supported

    print(machine_line(), flush=True)
    t = time.perf_counter()
    scale = 2 if args.quick else 1
    pipe = build("sd2", scale=scale, text_layers=4 if args.quick else None,
                 vae_scale=2 if args.quick else 1)
    taesd = tiny_autoencoder()
    engine = engine_for(pipe, "sd2", device="cpu", dtype="float32", taesd=taesd,
                        name="sd2-random")
    print(f"built an SD 2.x-shaped pipeline{' (quick: smaller shapes)' if args.quick else ''} "
          f"in {time.perf_counter() - t:.0f} s: UNet {params(pipe.unet) / 1e6:.0f} M, VAE "
          f"{params(pipe.vae) / 1e6:.0f} M, text encoder {params(pipe.text_encoder) / 1e6:.0f} M,"
          f" TAESD {params(taesd) / 1e6:.1f} M parameters; {size}², {args.steps} steps, "
          f"guidance {args.guidance}, torch threads {torch.get_num_threads()}", flush=True)
    request = ImageRequest(model="bench:sd2-random", prompt="a lighthouse at dusk", seed=7,
                           steps=args.steps, guidance=args.guidance, width=size, height=size,
                           scheduler="DDIM").resolved()

    class Bench(Events):
        def __init__(self, settings: Settings) -> None:
            super().__init__()
            self.settings = settings

    def studio(settings: Settings) -> dict[str, Any]:
        result = engine.generate(request, Bench(settings))
        timings = result.info["timings"]
        return {"step": timings["steps_s"] / max(1, args.steps - 1),
                "decode": timings["decode_s"], "whole": timings["total_s"],
                "convert": timings.get("openvino_convert_s", 0.0), "image": result.images[0],
                "record": {k: v for k, v in result.info.items()
                           if k in ("runtime", "runtime_parts", "runtime_precision",
                                    "final_decoder", "bf16")}}

    def raw() -> dict[str, Any]:
        marks: list[float] = []

        def on_step(_pipe: Any, _i: int, _t: Any, _kw: dict) -> dict:
            marks.append(time.perf_counter())
            return {}

        generator = torch.Generator("cpu").manual_seed(request.seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = pipe(request.prompt, num_inference_steps=args.steps,
                       guidance_scale=args.guidance, height=size, width=size,
                       generator=generator, output_type="np", callback_on_step_end=on_step)
        end = time.perf_counter()
        return {"step": (marks[-1] - marks[0]) / max(1, args.steps - 1),
                "decode": end - marks[-1], "whole": end - t0, "convert": 0.0,
                "image": (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8),
                "record": {"runtime": "raw diffusers"}}

    rows: list[tuple[str, Any]] = [("raw diffusers, fp32", raw),
                                   ("Studio PyTorch fp32", lambda: studio(Settings()))]
    if bf16_supported():
        rows.append(("Studio PyTorch bf16", lambda: studio(Settings(cpu_bf16=True))))
    rows.append(("Studio PyTorch fp32 + fast decode",
                 lambda: studio(Settings(fast_decode=True))))
    if bf16_supported():
        rows.append(("Studio PyTorch bf16 + fast decode",
                     lambda: studio(Settings(cpu_bf16=True, fast_decode=True))))
    openvino = available() and not args.skip_openvino
    wanted = [w.strip().lower() for w in args.rows.split(",") if w.strip()]

    def keep(name: str) -> bool:
        return not wanted or name == "Studio PyTorch fp32" or any(w in name.lower() for w in wanted)

    openvino = openvino and (not wanted or any(keep(n) for n in (
        "Studio OpenVINO", "Studio OpenVINO + fast decode")))
    if openvino:
        t = time.perf_counter()
        first = studio(Settings(image_runtime="openvino"))
        print(f"OpenVINO: converted and compiled the UNet, VAE decoder and text encoder in "
              f"{first['convert']:.0f} s (first job {time.perf_counter() - t:.0f} s; cached on "
              f"disk for later launches)", flush=True)
        rows.append(("Studio OpenVINO", lambda: studio(Settings(image_runtime="openvino"))))
        rows.append(("Studio OpenVINO + fast decode",
                     lambda: studio(Settings(image_runtime="openvino", fast_decode=True))))
    elif not args.skip_openvino and not available():
        print("OpenVINO: not installed; its rows are skipped")
    rows = [(name, fn) for name, fn in rows if keep(name)]

    from studio.core.errors import StudioError

    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in rows}
    failed: dict[str, str] = {}  # a row whose job fails is reported, not the end of the run
    for i in range(args.runs):  # alternate the order run by run, so load falls on all alike
        for name, fn in (rows if i % 2 == 0 else rows[::-1]):
            if name in failed:
                continue
            try:
                results[name].append(fn())
            except StudioError as exc:
                failed[name] = str(exc)
                print(f"  {name}: failed: {exc}", flush=True)
                continue
            print(f"  {name}: {results[name][-1]['whole']:.1f} s", flush=True)
    rows = [(name, fn) for name, fn in rows if name not in failed]

    def med(name: str, key: str) -> float:
        return median([r[key] for r in results[name]])

    base = "Studio PyTorch fp32"
    print(f"\n{'':36}{'per step':>10}{'decode':>9}{'whole':>9}{'step ×':>9}{'whole ×':>9}")
    summary: dict[str, Any] = {}
    for name, _ in rows:
        step, decode, whole = med(name, "step"), med(name, "decode"), med(name, "whole")
        step_x, whole_x = med(base, "step") / step, med(base, "whole") / whole
        print(f"{name:36}{step:9.2f}s{decode:8.2f}s{whole:8.1f}s{step_x:8.2f}×{whole_x:8.2f}×")
        summary[name] = {"step_s": round(step, 3), "decode_s": round(decode, 3),
                         "whole_s": round(whole, 3), "step_speedup": round(step_x, 3),
                         "whole_speedup": round(whole_x, 3),
                         "record": results[name][0]["record"]}
    raw_ran = bool(results.get("raw diffusers, fp32"))  # --rows may leave it out
    studio_vs_raw = med(base, "whole") / med("raw diffusers, fp32", "whole") if raw_ran else 0.0
    print("\n× = speed-up against the plain Studio PyTorch fp32 path" + (
        f"; Studio fp32 / raw diffusers whole image: {studio_vs_raw:.3f}" if raw_ran else ""))
    reference = results[base][0]["image"]
    for name, _ in rows:
        diff = np.abs(results[name][0]["image"].astype(int) - reference.astype(int))
        summary[name]["max_pixel_diff_vs_fp32"] = int(diff.max())
        summary[name]["mean_pixel_diff_vs_fp32"] = round(float(diff.mean()), 3)
    print("pixels against Studio fp32 (max / mean of |Δ| in 0-255): " + "; ".join(
        f"{n}: {s['max_pixel_diff_vs_fp32']} / {s['mean_pixel_diff_vs_fp32']}"
        for n, s in summary.items()))
    bare = bare_unet_calls(pipe, size, args.guidance) if openvino else {}
    if bare:
        own = bare["pytorch_s"] / bare["openvino_s"]
        studio_x = med(base, "step") / med("Studio OpenVINO", "step") \
            if results.get("Studio OpenVINO") else 0.0
        print(f"the bare UNet, one call (batch {bare['batch']}): PyTorch fp32 "
              f"{bare['pytorch_s']:.2f} s, OpenVINO {bare['openvino_s']:.2f} s (converted in "
              f"{bare['convert_s']:.0f} s): OpenVINO's own speed-up {own:.2f}×"
              + (f"; Studio's per step {studio_x:.2f}×" if studio_x else ""), flush=True)
        bare["openvino_speedup"] = round(own, 3)
    print(machine_line())
    out = {"benchmark": "cpu_fullsize", "quick": args.quick, "size": size,
           "steps": args.steps, "guidance": args.guidance, "runs": args.runs,
           "unet_params": params(pipe.unet), "studio_vs_raw": round(studio_vs_raw, 4),
           "rows": summary, "failed": failed, **machine_info()}
    if openvino:
        out["openvino_convert_s"] = round(first["convert"], 1)
        out["bare_unet"] = bare
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def bare_unet_calls(pipe: Any, size: int, guidance: float) -> dict[str, Any]:
    """One call of the UNet alone, in PyTorch fp32 and compiled by OpenVINO from the same
    module with the app's settings (f32, the torch thread count): what each library does by
    itself, with no pipeline, sampler or Studio around it."""
    import openvino as ov
    import torch

    batch = 2 if guidance > 1 else 1
    latent = size // pipe.vae_scale_factor
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(batch, pipe.unet.config.in_channels, latent, latent, generator=gen)
    timestep = torch.tensor(500.0)
    context = torch.randn(batch, pipe.tokenizer.model_max_length,
                          pipe.unet.config.cross_attention_dim, generator=gen)

    class Bare(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = pipe.unet

        def forward(self, x: Any, t: Any, c: Any) -> Any:
            return self.unet(x, t, encoder_hidden_states=c, return_dict=False)[0]

    def timed(call: Any) -> float:
        call()  # the first call builds kernels
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return median(times)

    with torch.inference_mode():
        torch_s = timed(lambda: Bare()(sample, timestep, context))
    t0 = time.perf_counter()
    with torch.no_grad():
        model = ov.convert_model(Bare(), example_input=(sample, timestep, context))
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": "f32"})
    convert_s = time.perf_counter() - t0
    feeds = [sample.numpy(), timestep.numpy(), context.numpy()]
    openvino_s = timed(lambda: compiled(feeds))
    return {"batch": batch, "pytorch_s": round(torch_s, 3), "openvino_s": round(openvino_s, 3),
            "convert_s": round(convert_s, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
