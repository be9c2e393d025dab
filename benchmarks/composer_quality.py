"""Composer quality: form repetition, cadences, SATB voice leading, tempo words, textures.

Runs the built-in composer (models/composer weights) on fixed prompts and seeds and
measures on the notes it writes (the MIDI read back, not its own report):

- form: for AABB / AABA pieces, the share of bars the plan repeats that are repeated
  note for note (copies) or by design varied (second endings, the final bar), and the
  share of bars of the whole piece that repeat an earlier bar exactly; against the same
  prompts through-composed (`form="through"`, what the composer did before issue 14),
  with the share of 4-note pitch patterns that occur only once;
- cadences: phrase ends whose last beat sounds only dominant or tonic chord tones, and
  pieces whose final sonority is the tonic chord with its root;
- chorales: the voice-leading checker's faults (studio/engines/composer/voiceleading.py)
  per kind, and per 100 sonorities;
- tempo words: the bpm each prompt gets ("slow waltz" must be slow);
- textures: the style and instruments "fast strings" and friends get.

    .venv/bin/python benchmarks/composer_quality.py            # 8 seeds, ~2 minutes
    .venv/bin/python benchmarks/composer_quality.py --seeds 3 --json out.json

Not a pass/fail test: the numbers go into models/composer/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

print = functools.partial(print, flush=True)  # progress shows as it happens
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FORM_PROMPTS = (("lively irish jig in D", "AABB"), ("irish reel in G", "AABB"),
                ("slow air in A minor", "AABA"), ("german folk song in F", "AABA"))
CHORALE_PROMPTS = ("bach chorale in D minor", "hymn in G major", "chorale in A minor",
                   "four-part chorale in F major")
TEMPO_PROMPTS = ("slow waltz", "slow air", "adagio chorale", "andante folk song",
                 "irish jig", "lively irish jig", "fast strings", "presto reel",
                 "very slow lament", "allegro march")
TEXTURE_PROMPTS = ("fast strings", "slow strings", "string quartet", "strings",
                   "cello and guitar", "fiddle tune")


def bar_patterns(track, qpm: float, ts: str) -> dict[int, tuple]:
    from studio.engines.composer.tokens import bar_ticks

    bar_q = bar_ticks(ts) / 12
    out: dict[int, list] = {}
    for n in track.notes:
        q = round(n.start * qpm / 60, 2)  # MIDI ticks round onsets a little
        bar = int(q // bar_q + 1e-6)
        out.setdefault(bar, []).append((round(q - bar * bar_q, 2), n.pitch))
    return {b: tuple(sorted(v)) for b, v in out.items()}


def measure_form(engine, prompt: str, seed: int, shape: str, seconds: float) -> dict:
    from studio.core.midi import read_midi
    from studio.core.requests import MusicRequest
    from studio.engines.base import Events
    from studio.engines.composer import form

    result = engine.generate(MusicRequest(model="builtin:composer", prompt=prompt, seed=seed,
                                          duration=seconds, form=shape), Events())
    info = result.info
    data = read_midi(result.extras[".mid"])
    ts = info["time_signature"]
    bars = bar_patterns(data.tracks[0], data.tempo_qpm, ts)
    plan = form.plan(shape, info["bars"], ts) if shape != "through" else None
    copies = [b for b in plan.bars if b.kind == "copy"] if plan else []
    repeats = plan.repeated() if plan else []
    exact = sum(bars.get(b.index) == bars.get(b.source) for b in copies)
    seen: set = set()
    again = 0
    for b in range(info["bars"]):
        if bars.get(b) in seen:
            again += 1
        seen.add(bars.get(b))
    pitches = [n.pitch for n in data.tracks[0].notes]
    grams = Counter(tuple(pitches[i:i + 4]) for i in range(len(pitches) - 3))
    unique = sum(1 for c in grams.values() if c == 1) / max(1, len(grams))
    tonic = data.key[0] if data.key else 0
    last = max(n.end for t in data.tracks for n in t.notes)
    final = {n.pitch % 12 for t in data.tracks for n in t.notes if n.end >= last - 0.2}
    third = (tonic + (4 if info["key"].endswith("major") else 3)) % 12
    return {
        "bars": info["bars"], "plan_repeats": len(repeats), "copies": len(copies),
        "copies_exact": exact, "varied": sum(b.kind == "vary" for b in repeats),
        "bars_repeating_earlier": again, "unique_4grams": unique,
        "cadences": info["cadences"], "cadence_hits": info["cadence_hits"],
        "final_tonic": tonic in final and final <= {tonic, third, (tonic + 7) % 12},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from studio.core.composer_prompt import describe, understand
    from studio.core.midi import read_midi
    from studio.core.requests import MusicRequest
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.composer import voiceleading
    from studio.engines.composer.engine import ComposerEngine

    engine = ComposerEngine.load(LoadSpec("builtin:composer", "cpu", "float32"), Settings(),
                                 Events())
    seeds = range(args.seeds)
    report: dict = {"seeds": args.seeds, "seconds": args.seconds}
    t0 = time.perf_counter()

    print("== form and cadences")
    rows: dict[str, list[dict]] = {"form": [], "through": []}
    for prompt, shape in FORM_PROMPTS:
        for seed in seeds:
            rows["form"].append(measure_form(engine, prompt, seed, shape, args.seconds))
            rows["through"].append(measure_form(engine, prompt, seed, "through", args.seconds))
    for name, rs in rows.items():
        plan_repeats = sum(r["plan_repeats"] for r in rs)
        copies = sum(r["copies"] for r in rs)
        summary = {
            "pieces": len(rs),
            "bars": sum(r["bars"] for r in rs),
            "planned_repeats": plan_repeats,
            "copies_exact_pct": 100 * sum(r["copies_exact"] for r in rs) / max(1, copies),
            "planned_repeats_kept_pct": 100 * sum(r["copies_exact"] + r["varied"] for r in rs)
            / max(1, plan_repeats),
            "bars_repeating_an_earlier_bar_pct": 100 * sum(r["bars_repeating_earlier"]
                                                           for r in rs)
            / sum(r["bars"] for r in rs),
            "unique_4gram_pct": 100 * sum(r["unique_4grams"] for r in rs) / len(rs),
            "cadence_hit_pct": 100 * sum(r["cadence_hits"] for r in rs)
            / max(1, sum(r["cadences"] for r in rs)),
            "final_tonic_pct": 100 * sum(r["final_tonic"] for r in rs) / len(rs),
        }
        report[name] = summary
        print(f"{name:8s} " + "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in summary.items()))

    print("== chorales (SATB)")
    faults = dict.fromkeys(voiceleading.KINDS, 0)
    sonorities = 0
    tracks = Counter()
    for prompt in CHORALE_PROMPTS:
        for seed in seeds:
            result = engine.generate(MusicRequest(model="builtin:composer", prompt=prompt,
                                                  seed=seed, duration=args.seconds), Events())
            data = read_midi(result.extras[".mid"])
            tracks[len(data.tracks)] += 1
            spans = [[(n.start, n.end, n.pitch) for n in t.notes] for t in data.tracks]
            tonic, mode = data.key or (0, "major")
            for k, v in voiceleading.counts(voiceleading.check(spans, tonic, mode)).items():
                faults[k] += v
            sonorities += len(voiceleading.sonorities(spans))
    report["chorale"] = {"pieces": sum(tracks.values()), "tracks": dict(tracks),
                         "sonorities": sonorities, "faults": faults,
                         "faults_per_100_sonorities": 100 * sum(faults.values()) / sonorities}
    print(f"pieces={sum(tracks.values())} tracks={dict(tracks)} sonorities={sonorities} "
          f"faults={faults} per100={report['chorale']['faults_per_100_sonorities']:.2f}")

    print("== tempo words (bpm of the conducted beat)")
    report["tempo"] = {}
    for prompt in TEMPO_PROMPTS:
        bpms = []
        for seed in seeds:
            result = engine.generate(MusicRequest(model="builtin:composer", prompt=prompt,
                                                  seed=seed, duration=10), Events())
            bpms.append(result.info["bpm"])
        report["tempo"][prompt] = {"min": min(bpms), "max": max(bpms),
                                   "metre": result.info["time_signature"]}
        print(f"{prompt:22s} {min(bpms):6.1f}–{max(bpms):6.1f} bpm "
              f"({result.info['time_signature']})")

    print("== instrument words → texture")
    report["texture"] = {}
    for prompt in TEXTURE_PROMPTS:
        styles = Counter(understand(MusicRequest(model="builtin:composer", prompt=prompt,
                                                 seed=s))[1].style for s in seeds)
        example = describe(understand(MusicRequest(model="builtin:composer", prompt=prompt,
                                                   seed=0))[1])
        report["texture"][prompt] = {"styles": dict(styles), "seed 0": example}
        print(f"{prompt:18s} {dict(styles)}  e.g. {example}")
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(f"done in {report['elapsed_s']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
