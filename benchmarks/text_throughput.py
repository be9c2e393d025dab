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

A GGUF runs on llama.cpp in Studio; its raw side is then a plain llama-cpp-python
`create_completion` on the same prompt ids and settings.

Not a pass/fail test; aim: Studio/raw ≥ 0.97. Runs alternate and medians are reported.

Runtimes (for a GGUF model, e.g. the built-in): the same file is also loaded on each text
runtime, llama.cpp (studio.engines.text_llama) and the transformers GGUF path (dequantised
to 32-bit), each in a fresh process so its memory is its own: load time, RSS, time to first
token and tokens/s, same prompt and settings (`--runtimes-only` runs just this part,
`--skip-runtimes` skips it).
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

from _common import WorkerRun, machine_line

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
        engine = RawEngine.target
        request = request.replace(model=request.model.removeprefix(RAW_PREFIX))
        if getattr(engine, "llm", None) is not None:  # a GGUF on llama.cpp
            return self.generate_llama(engine, request)
        import torch

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

    @staticmethod
    def generate_llama(engine: Any, request: Any) -> Result:
        """What a plain llama-cpp-python script does: one `create_completion` on the same
        prompt ids with the same sampling settings and seed (min_p off, as Studio sets it),
        timed around the call; time to first token from a separate one-token call."""
        llm = engine.llm
        ids = engine.prompt_ids(request)
        settings = dict(temperature=float(request.temperature), top_p=float(request.top_p),
                        top_k=int(request.top_k), min_p=0.0, typical_p=1.0,
                        repeat_penalty=float(request.repetition_penalty),
                        seed=int(request.seed) & 0xFFFFFFFF)
        llm.reset()
        t0 = time.perf_counter()
        out = llm.create_completion(ids, max_tokens=request.max_new_tokens, **settings)
        seconds = time.perf_counter() - t0
        llm.reset()
        t1 = time.perf_counter()
        llm.create_completion(ids, max_tokens=1, **settings)
        first = time.perf_counter() - t1
        low_tokens, low_seconds = RawEngine.generate_low_level(engine, request, ids)
        return Result(request, "text", text=out["choices"][0]["text"],
                      info={"tokens": int(out["usage"]["completion_tokens"]),
                            "seconds": seconds, "first_token_s": first,
                            "low_tokens": low_tokens, "low_seconds": low_seconds})

    @staticmethod
    def generate_low_level(engine: Any, request: Any, ids: list[int]) -> tuple[int, float]:
        """The floor under both: `Llama.generate` (the call Studio's engine makes, no
        per-token detokenising or stop-string checks as create_completion does), same ids,
        settings and seed, counted up to the first end-of-generation token."""
        import llama_cpp

        llm = engine.llm
        vocab = llm._model.vocab
        llm.reset()
        llm.set_seed(int(request.seed) & 0xFFFFFFFF)
        n = 0
        t0 = time.perf_counter()
        tokens = llm.generate(ids, reset=False, temp=float(request.temperature),
                              top_k=int(request.top_k), top_p=float(request.top_p), min_p=0.0,
                              typical_p=1.0, repeat_penalty=float(request.repetition_penalty))
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(vocab, int(token)):
                    break
                n += 1
                if n >= request.max_new_tokens:
                    break
        finally:
            tokens.close()
        return n, time.perf_counter() - t0


RUNTIMES = {"llama.cpp": "studio.engines.text_llama:LlamaTextEngine",
            "transformers": "studio.engines.text_lm:TextEngine"}


def runtime_probe(runtime: str, model: str, tokens: int, seed: int, runs: int) -> dict:
    """Load `model` on one runtime in this (fresh) process and time it: what the
    runtime comparison prints. torch is imported first on both sides (the app has it)."""
    import psutil
    import torch  # noqa: F401  (the app's baseline memory, on both sides)

    from studio.core.requests import TextRequest
    from studio.core.settings import Settings
    from studio.engines.registry import import_engine

    engine_class = import_engine(RUNTIMES[runtime])
    me = psutil.Process()
    rss0 = me.memory_info().rss
    t = time.perf_counter()
    engine = engine_class.load(LoadSpec(model, "cpu", "float32"), Settings(), Events())
    load_s = time.perf_counter() - t
    request = TextRequest(model=model, prompt=PROMPT, seed=seed, max_new_tokens=tokens,
                          temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.1)
    engine.generate(request, Events())  # warm-up
    rows = [engine.generate(request.replace(seed=seed + i), Events()).info
            for i in range(runs)]
    return {
        "runtime": runtime, "load_s": round(load_s, 3),
        "rss_mib": round((me.memory_info().rss - rss0) / 2**20, 1),
        "memory_bytes": engine.memory_bytes(),
        "first_token_ms": round(statistics.median(r["first_token_s"] for r in rows) * 1000, 1),
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows), 2),
        "tokens": rows[0]["tokens"],
    }


def compare_runtimes(model: str, tokens: int, seed: int, runs: int) -> list[dict]:
    """The same GGUF on llama.cpp and on transformers, each in its own process."""
    import subprocess

    rows = []
    for runtime in RUNTIMES:
        done = subprocess.run(
            [sys.executable, __file__, "--probe", runtime, "--model", model,
             "--tokens", str(tokens), "--seed", str(seed), "--runs", str(runs)],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{runtime}: failed ({tail})", flush=True)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"\n{'runtime':14}{'load s':>9}{'RSS MiB':>10}{'engine MiB':>12}{'first token':>13}"
          f"{'tokens/s':>10}")
    for r in rows:
        print(f"{r['runtime']:14}{r['load_s']:9.2f}{r['rss_mib']:10.0f}"
              f"{r['memory_bytes'] / 2**20:12.0f}{r['first_token_ms']:10.0f} ms"
              f"{r['tokens_per_s']:10.1f}")
    print(json.dumps({"benchmark": "text_runtimes", "model": model, "runs": runs,
                      "runtimes": rows}), flush=True)
    return rows


def is_gguf(model: str) -> bool:
    from studio.engines.registry import model_format

    return model_format(model) == "gguf"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:smollm2")
    p.add_argument("--tiny", action="store_true", help="use a tiny GPT-2 built on the spot")
    p.add_argument("--tokens", type=int, default=96, help="new tokens per run")
    p.add_argument("--runs", type=int, default=3, help="measured runs per side")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--runtimes-only", dest="runtimes_only", action="store_true",
                   help="only compare llama.cpp with transformers on the GGUF")
    p.add_argument("--skip-runtimes", dest="skip_runtimes", action="store_true",
                   help="skip that comparison (its transformers side dequantises the GGUF: "
                        "minutes on a small machine)")
    p.add_argument("--probe", choices=sorted(RUNTIMES), help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.probe:  # one side of the runtime comparison, in its own process
        print(json.dumps(runtime_probe(args.probe, args.model, args.tokens, args.seed,
                                       args.runs)))
        return 0
    if not args.tiny and not args.skip_runtimes and is_gguf(args.model):
        compare_runtimes(args.model, args.tokens, args.seed, args.runs)
        if args.runtimes_only:
            return 0
    from PySide6.QtCore import QCoreApplication

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

    run = WorkerRun(queue)  # one job through the queue, timed from this (GUI) thread

    def submit(req: TextRequest) -> dict:
        return run(req, timeout_s=900)

    def studio() -> dict:
        box = submit(request)
        result = box["result"]
        return {"tokens": result.info["tokens"], "seconds": box["end"] - box["t0"],
                "ttft": box.get("first", box["end"]) - box["t0"], "text": result.text,
                "engine_tps": result.info["tokens_per_s"]}

    def raw() -> dict:
        info = submit(request.replace(model=RAW_PREFIX + model))["result"]
        return {"tokens": info.info["tokens"], "seconds": info.info["seconds"],
                "ttft": info.info["first_token_s"], "text": info.text,
                "low_tokens": info.info.get("low_tokens"),
                "low_seconds": info.info.get("low_seconds")}

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
    low = [r for r in raws if r.get("low_seconds")]
    low_tps = statistics.median(r["low_tokens"] / r["low_seconds"] for r in low) if low else None
    if low_tps is not None:
        print(f"{'raw Llama.generate':24}{low_tps:10.2f}   (the floor: Studio / it "
              f"{tps(studios) / low_tps:.3f})")
    print(f"\nStudio / raw throughput: {ratio:.3f}  (aim ≥ 0.97)")
    print(f"tokens per run: {studios[0]['tokens']}; same text both ways: {same}")
    print(json.dumps({
        "benchmark": "text_throughput", "model": model, "runs": args.runs,
        "tokens": studios[0]["tokens"],
        "raw_tokens_per_s": round(tps(raws), 3), "studio_tokens_per_s": round(tps(studios), 3),
        "ratio": round(ratio, 4), "raw_first_token_ms": round(ttft(raws) * 1000, 1),
        "studio_first_token_ms": round(ttft(studios) * 1000, 1), "same_text": same,
        "engine_tokens_per_s": round(statistics.median(w["engine_tps"] for w in studios), 3),
        "raw_generate_tokens_per_s": None if low_tps is None else round(low_tps, 3),
    }))
    print(f"\nsample: {studios[0]['text'][:300]!r}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
