"""Text throughput: tokens/s through Studio's worker vs raw `model.generate`, same run.

Both sides use the same loaded weights, the same prompt ids, the same sampling settings
and seed, so they make exactly the same tokens (checked), and both run in the worker's
own thread:

- Studio: a TextRequest submitted to the JobQueue, timed from the GUI thread as a panel
  sees it (submit → job_finished): queue hop, per-token progress and cancel checks,
  incremental decoding, stop-string holdback, 50 ms preview coalescing, signals.
  Time to first token: submit → first text preview signal.
- raw: a benchmark-only engine (route `raw:`) that calls `model.generate` on that same
  model object with nothing else around it (no streamer either: a plain script passes
  none), timed around the call inside the worker thread.
  Time to first token: a separate one-token generate() (prefill + one step).

Why the same thread: on an oversubscribed machine (a 2-core box shared with other jobs)
torch's two OpenMP threads were seen to run several times slower in a long-lived thread
that already owns an OpenMP team than in a fresh one, which would swamp the overhead this
benchmark is about.

    .venv/bin/python benchmarks/text_throughput.py                 # the built-in SmolLM2
    .venv/bin/python benchmarks/text_throughput.py --tiny          # a tiny GPT-2 (seconds)
    .venv/bin/python benchmarks/text_throughput.py --model /path/to/model --tokens 256

Not a pass/fail test; aim: Studio/raw ≥ 0.97. Runs alternate and medians are reported.
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
from typing import Any, ClassVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line

from studio.core.results import Result
from studio.engines.base import Engine, Events, LoadSpec

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
RAW_PREFIX = "raw:"


class RawEngine(Engine):
    """Benchmark only: plain `model.generate` on the TextEngine the worker already loaded.

    The baseline is what a user's own script would do: one `generate` call with the same
    GenerationConfig and nothing else passed (no streamer, no stopping criteria), timed
    around that call; its tokens are counted like Studio counts them (up to the first end
    token). Time to first token comes from a second, separate call that makes one token
    (prefill + one step), so measuring it costs the throughput run nothing.
    """

    kinds: ClassVar[tuple[str, ...]] = ("text",)
    target: ClassVar[Any] = None  # the studio TextEngine whose model and tokenizer to use

    @classmethod
    def load(cls, spec: LoadSpec, settings: Any, events: Events) -> RawEngine:
        return cls(spec)

    def generate(self, request: Any, events: Events) -> Result:
        import torch

        engine = RawEngine.target
        request = request.replace(model=request.model.removeprefix(RAW_PREFIX))
        ids = torch.tensor([engine.prompt_ids(request)])
        mask = torch.ones_like(ids)
        config = engine.generation_config(request, request.max_new_tokens)
        torch.manual_seed(request.seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = engine.model.generate(ids, attention_mask=mask, generation_config=config)
        seconds = time.perf_counter() - t0
        new = out[0, ids.shape[1]:].tolist()
        eos = engine.eos_ids()
        n = next((i for i, x in enumerate(new) if x in eos), len(new))
        text = engine.tokenizer.decode(new[:n], skip_special_tokens=True)
        one = engine.generation_config(request, 1)
        torch.manual_seed(request.seed)
        t1 = time.perf_counter()
        with torch.inference_mode():
            engine.model.generate(ids, attention_mask=mask, generation_config=one)
        first = time.perf_counter() - t1
        return Result(request, "text", text=text,
                      info={"tokens": n, "seconds": seconds, "first_token_s": first})


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:smollm2")
    p.add_argument("--tiny", action="store_true", help="use a tiny GPT-2 built on the spot")
    p.add_argument("--tokens", type=int, default=96, help="new tokens per run")
    p.add_argument("--runs", type=int, default=3, help="measured runs per side")
    p.add_argument("--seed", type=int, default=1234)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from studio.core.requests import TextRequest
    from studio.core.settings import Settings
    from studio.engines import registry
    from studio.runtime.worker import JobQueue

    app = QCoreApplication.instance() or QCoreApplication(sys.argv)
    registry.ROUTES.insert(0, ("text", RAW_PREFIX, f"{__name__}:RawEngine"))
    model = args.model
    if args.tiny:
        from tests.engines.tiny_text import build_tiny_gpt2

        model = str(build_tiny_gpt2(Path(tempfile.mkdtemp(prefix="studio-bench-"))))
    request = TextRequest(model=model, prompt=PROMPT, seed=args.seed,
                          max_new_tokens=args.tokens, temperature=0.8, top_p=0.95, top_k=50,
                          repetition_penalty=1.1)
    request.validate()
    queue = JobQueue(Settings(device="cpu", output_dir=tempfile.mkdtemp()), None)

    def submit(req: TextRequest) -> dict:
        """Run one job through the queue; returns timings seen from this (GUI) thread."""
        box: dict = {}
        loop = QEventLoop()

        def preview(job_id: int, _p: Any) -> None:
            if job_id == box.get("id") and "first" not in box:
                box["first"] = time.perf_counter()

        def finished(job_id: int, result: Result, _paths: list) -> None:
            if job_id == box.get("id"):
                box["end"], box["result"] = time.perf_counter(), result
                loop.quit()

        def failed(job_id: int, message: str) -> None:
            if job_id == box.get("id"):
                box["error"] = message
                loop.quit()

        queue.job_preview.connect(preview)
        queue.job_finished.connect(finished)
        queue.job_failed.connect(failed)
        try:
            box["t0"] = time.perf_counter()
            box["id"] = queue.submit(req, save=False)
            QTimer.singleShot(900_000, loop.quit)
            loop.exec()
        finally:
            queue.job_preview.disconnect(preview)
            queue.job_finished.disconnect(finished)
            queue.job_failed.disconnect(failed)
        if "result" not in box:
            raise SystemExit(f"job failed: {box.get('error', 'timed out')}")
        return box

    def studio() -> dict:
        box = submit(request)
        result = box["result"]
        return {"tokens": result.info["tokens"], "seconds": box["end"] - box["t0"],
                "ttft": box.get("first", box["end"]) - box["t0"], "text": result.text,
                "engine_tps": result.info["tokens_per_s"]}

    def raw() -> dict:
        info = submit(request.replace(model=RAW_PREFIX + model))["result"]
        return {"tokens": info.info["tokens"], "seconds": info.info["seconds"],
                "ttft": info.info["first_token_s"], "text": info.text}

    print(f"model: {model}; {machine_line()}", flush=True)
    t = time.perf_counter()
    warm = studio()  # loads the model into the worker's cache
    print(f"load + first run through the worker: {time.perf_counter() - t:.1f} s", flush=True)
    RawEngine.target = next(
        e for s, e in queue.worker.runner.cache._engines.items() if s.model == model)
    raw()  # warm the raw path too

    raws, studios = [], []
    for i in range(args.runs):
        for fn in ((raw, studio) if i % 2 == 0 else (studio, raw)):
            (raws if fn is raw else studios).append(fn())
    queue.shutdown()
    app.processEvents()

    same = all(r["text"] == w["text"] for r, w in zip(raws, studios, strict=True))
    same = same and warm["text"] == studios[0]["text"]

    def tps(rows: list[dict]) -> float:
        return statistics.median(r["tokens"] / r["seconds"] for r in rows)

    def ttft(rows: list[dict]) -> float:
        return statistics.median(r["ttft"] for r in rows)

    ratio = tps(studios) / tps(raws)
    print(f"\n{'':24}{'tokens/s':>10}{'first token':>14}")
    print(f"{'raw model.generate':24}{tps(raws):10.2f}{ttft(raws) * 1000:11.0f} ms")
    print(f"{'Studio worker':24}{tps(studios):10.2f}{ttft(studios) * 1000:11.0f} ms")
    print(f"\nStudio / raw throughput: {ratio:.3f}  (aim ≥ 0.97)")
    print(f"tokens per run: {studios[0]['tokens']}; same text both ways: {same}")
    print(json.dumps({
        "benchmark": "text_throughput", "model": model, "runs": args.runs,
        "tokens": studios[0]["tokens"],
        "raw_tokens_per_s": round(tps(raws), 3), "studio_tokens_per_s": round(tps(studios), 3),
        "ratio": round(ratio, 4), "raw_first_token_ms": round(ttft(raws) * 1000, 1),
        "studio_first_token_ms": round(ttft(studios) * 1000, 1), "same_text": same,
        "engine_tokens_per_s": round(statistics.median(w["engine_tps"] for w in studios), 3),
    }))
    print(f"\nsample: {studios[0]['text'][:300]!r}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
