"""Music streaming: time to the first audible chunk, and the cost of streaming vs plain generate.

The Studio side runs through the real worker, measured from the GUI thread as the Music
panel sees it: submit → first audio preview (the first chunk that can be played) and
submit → job_finished. The raw side is `MusicgenForConditionalGeneration.generate` on the
same loaded weights, same text, same sampling settings and seed (it makes the same tokens;
the audio is compared), decoding the whole piece with EnCodec once at the end.

    .venv/bin/python benchmarks/music_stream.py                    # "mini": random weights,
                                                                   # MusicGen's real 32 kHz codec
    .venv/bin/python benchmarks/music_stream.py --preset tiny      # the test model (seconds)
    .venv/bin/python benchmarks/music_stream.py --preset small     # musicgen-small's shapes
    .venv/bin/python benchmarks/music_stream.py --model /path/to/musicgen-small --seconds 10

Aims: first chunk / total ≤ 0.25, Studio / raw time ≤ 1.10. Not a pass/fail test. On a busy
machine numbers wander: runs alternate raw/Studio, the machine's load is printed beside
the figures and medians (of per-pair ratios) are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WorkerRun, machine_info, machine_line, median, paired, ratios

PROMPT = "a calm piano melody with soft drums"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a MusicGen folder (default: build one)")
    p.add_argument("--preset", default="mini", choices=("tiny", "mini", "small"),
                   help="shapes of the random-weight model built when --model is not given")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each piece")
    p.add_argument("--runs", type=int, default=3, help="measured runs per side")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's choice)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import torch
    from PySide6.QtCore import QCoreApplication

    from studio.core.requests import MusicRequest
    from studio.core.settings import Settings
    from studio.runtime.worker import JobQueue

    if args.threads:
        torch.set_num_threads(args.threads)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv)
    model = args.model
    if model is None:
        from tests.tiny_musicgen import build_tiny_musicgen

        folder = Path(tempfile.mkdtemp(prefix="studio-bench-")) / f"musicgen-{args.preset}"
        t = time.perf_counter()
        model = str(build_tiny_musicgen(folder, preset=args.preset))
        print(f"built a random-weight '{args.preset}' MusicGen in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    request = MusicRequest(model=model, prompt=PROMPT, seed=args.seed, duration=args.seconds,
                           guidance=args.guidance)
    request.validate()
    queue = JobQueue(Settings(device=args.device, output_dir=tempfile.mkdtemp()), None)

    run = WorkerRun(queue)

    def through_worker() -> dict:
        box = run(request, preview_kind="audio")
        result = box["result"]
        return {"seconds": box["seconds"], "first": box["to_first"],
                "first_audio_s": box.get("first_seconds", 0.0), "chunks": box["previews"],
                "audio": result.audio, "decode_s": result.info["decode_s"]}

    print(f"model: {model}; {machine_line()}", flush=True)
    t = time.perf_counter()
    warm = through_worker()  # loads the model into the worker's cache
    print(f"load + first run through the worker: {time.perf_counter() - t:.1f} s", flush=True)

    engine = run.engine(model)
    resolved = request.resolved()
    inputs = engine.inputs(resolved)
    kwargs = engine.sampling_kwargs(resolved)
    _frames, steps, samples = engine.plan(resolved)
    device = engine.spec.device

    def raw() -> dict:
        torch.manual_seed(resolved.seed)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = engine.model.generate(**inputs, **kwargs, max_new_tokens=steps)
        if device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        audio = out[0].float().cpu().numpy()[:, :samples]
        return {"seconds": end - t0, "audio": audio}

    sides = paired(args.runs, {"raw": raw, "studio": through_worker})
    raws, studios = sides["raw"], sides["studio"]
    queue.shutdown()
    app.processEvents()

    import numpy as np

    diff = max(float(np.abs(np.clip(r["audio"], -1, 1) - s["audio"]).max())
               for r, s in zip(raws, studios, strict=True))
    same_runs = all(np.array_equal(warm["audio"], s["audio"]) for s in studios)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    raw_s, studio_s, first_s = med(raws, "seconds"), med(studios, "seconds"), med(studios,
                                                                                   "first")
    first_ratio = first_s / studio_s
    # the median of per-pair ratios: each pair ran back to back, under the same load
    overhead = median(ratios([s["seconds"] for s in studios], [r["seconds"] for r in raws]))
    print(f"\n{'':28}{'total':>10}{'first chunk':>14}{'× real time':>13}")
    print(f"{'raw model.generate':28}{raw_s:9.2f}s{'(at the end)':>14}"
          f"{raw_s / args.seconds:12.2f}×")
    print(f"{'Studio worker, streaming':28}{studio_s:9.2f}s{first_s:13.2f}s"
          f"{studio_s / args.seconds:12.2f}×")
    print(f"\nfirst audible chunk / total: {first_ratio:.3f}  (aim ≤ 0.25; the first chunk "
          f"holds {studios[0]['first_audio_s']:.2f} s of audio, {studios[0]['chunks']} chunks)")
    print(f"streaming / plain generate:  {overhead:.3f}  (aim ≤ 1.10; windowed EnCodec "
          f"decoding took {med(studios, 'decode_s'):.2f} s of it)")
    print(machine_line())
    print(f"largest sample difference streamed vs plain: {diff:.2e}; "
          f"same audio every run: {same_runs}")
    print(json.dumps({
        "benchmark": "music_stream", "model": model, "device": device,
        "seconds_of_audio": args.seconds, "runs": args.runs,
        "raw_s": round(raw_s, 3), "studio_s": round(studio_s, 3),
        "first_chunk_s": round(first_s, 3), "first_chunk_ratio": round(first_ratio, 4),
        "overhead_ratio": round(overhead, 4), "decode_s": round(med(studios, "decode_s"), 3),
        "max_abs_diff": diff, "deterministic": same_runs, **machine_info(),
    }))
    return 0 if same_runs and diff < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
