"""A listening proxy for builtin:composer: does the music keep its key, metre and pace?

    python models/composer/evaluate.py [--seeds 4] [--save /tmp/composer-samples]

For each test prompt and seed it generates 20 s with the real engine and
measures, from the MIDI it wrote: the key a Krumhansl-Kessler key finder
hears (vs the key asked for), the share of note time on the asked scale,
notes per second, the share of onsets on a beat, and the time to generate.
Prints a Markdown table (pasted into MODEL_CARD.md). With --save, also writes
each sample's .mid and .wav.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from studio.core.composer_prompt import PITCH_NAMES  # noqa: E402
from studio.core.requests import MusicRequest  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.engines.base import Events, LoadSpec  # noqa: E402
from studio.engines.composer.engine import ComposerEngine  # noqa: E402
from studio.engines.composer.tokens import beat_quarters  # noqa: E402

PROMPTS = (
    "bach chorale in D minor",
    "bach chorale in G major",
    "lively irish jig in G",
    "irish reel in D",
    "hornpipe in A minor",
    "slow air in F",
    "german folk song in C major",
    "chinese folk song in D",
)
_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}


def heard_key(hist: np.ndarray) -> tuple[int, str]:
    best = (-2.0, 0, "major")
    for tonic in range(12):
        rolled = np.roll(hist, -tonic)
        for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(rolled, prof)[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def measure(result) -> dict[str, float | str]:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(result.extras[".mid"]))
    notes = pm.instruments[0].notes  # the composed part, not the accompaniment
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.end - n.start
    hist /= hist.sum()
    info = result.info
    tonic = PITCH_NAMES.index(info["key"].split()[0])
    mode = info["key"].split()[1]
    k_tonic, k_mode = heard_key(hist)
    on_scale = sum(hist[(tonic + d) % 12] for d in SCALES[mode])
    qpm = float(pm.get_tempo_changes()[1][0])
    beat_s = beat_quarters(info["time_signature"]) * 60.0 / qpm
    onsets = sorted({round(n.start, 4) for n in notes})
    on_beat = np.mean([abs(t / beat_s - round(t / beat_s)) < 0.02 for t in onsets])
    return {"asked": info["key"], "heard": f"{PITCH_NAMES[k_tonic]} {k_mode}",
            "on_scale": float(on_scale), "notes_per_s": len(notes) / result.request.duration,
            "on_beat": float(on_beat)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--save", type=Path, default=None)
    args = ap.parse_args(argv)
    engine = ComposerEngine.load(LoadSpec("builtin:composer", "cpu", "float32"), Settings(),
                                 Events())
    print("| prompt | key heard = key asked | on scale | notes/s | onsets on a beat "
          "| seconds to make |")
    print("| --- | --- | --- | --- | --- | --- |")
    for prompt in PROMPTS:
        rows = []
        for seed in range(1, args.seeds + 1):
            t0 = time.perf_counter()
            request = MusicRequest(model="builtin:composer", prompt=prompt, seed=seed,
                                   duration=args.duration)
            result = engine.generate(request, Events())
            elapsed = time.perf_counter() - t0
            row = measure(result)
            row["seconds"] = elapsed
            rows.append(row)
            if args.save:
                import soundfile

                args.save.mkdir(parents=True, exist_ok=True)
                stem = args.save / f"{prompt.replace(' ', '_')}-{seed}"
                stem.with_suffix(".mid").write_bytes(result.extras[".mid"])
                soundfile.write(stem.with_suffix(".wav"), result.audio.T, result.sample_rate)
        same = sum(r["heard"] == r["asked"] for r in rows)
        misses = "; ".join(f"{r['asked']} heard as {r['heard']}" for r in rows
                           if r["heard"] != r["asked"])
        print(f"| {prompt} | {same}/{len(rows)}{f' ({misses})' if misses else ''} "
              f"| {np.mean([r['on_scale'] for r in rows]):.0%} "
              f"| {np.mean([r['notes_per_s'] for r in rows]):.1f} "
              f"| {np.mean([r['on_beat'] for r in rows]):.0%} "
              f"| {np.mean([r['seconds'] for r in rows]):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
