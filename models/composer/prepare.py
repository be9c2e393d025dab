"""Parse the music21 corpus into the composer's note events (slow: run once, cached).

    python models/composer/prepare.py [--out ~/.cache/studio/composer/dataset.jsonl]

Every piece becomes one JSON line: conditioning (style, form, mode, time
signature) and notes (bar, position in ticks, pitch, duration) with the tonic
transposed to C. Parsing ~8,000 pieces with music21 takes 10-20 minutes on
two cores, so each corpus file's events are cached (parsed/ beside the output)
and a second run only reassembles them; train.py reads the assembled file.
The order of files and pieces is fixed, so the output is the same every run.

Palestrina (Humdrum encodings whose licence reserves derivative electronic
formats) is left out on purpose; see MODEL_CARD.md for the licence of each part.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from studio.engines.composer.tokens import (  # noqa: E402
    MAX_BAR_TICKS,
    PITCH_MAX,
    PITCH_MIN,
    TIME_SIGNATURES,
    nearest_duration,
    quantize,
)

DEFAULT_OUT = Path.home() / ".cache" / "studio" / "composer" / "dataset.jsonl"
# A slice of the ~8,000 Essen songs (German songs of several collections, children's
# songs, ballads, and one Chinese collection): enough for the few epochs we can afford,
# and parsing all of Essen would take longer than training.
ESSEN_FILES = ("altdeu10.abc", "ballad10.abc", "boehme10.abc", "dva0.abc", "erk20.abc",
               "kinder0.abc", "han1.abc")
log = logging.getLogger("prepare")

# Krumhansl-Kessler key profiles, for pieces whose final note is not a likely tonic.
_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def sources() -> list[tuple[str, str, Path]]:
    """(corpus part, default style, file) in a fixed order."""
    root = corpus_root()
    out: list[tuple[str, str, Path]] = []
    for p in sorted((root / "bach").iterdir()):
        if p.suffix in (".mxl", ".xml") and p.name.startswith("bwv"):
            out.append(("bach", "chorale", p))
    for p in sorted((root / "ryansMammoth").glob("*.abc")):
        out.append(("ryansMammoth", "fiddle", p))
    for p in sorted((root / "oneills1850").glob("*.abc")):
        out.append(("oneills1850", "fiddle", p))
    for p in sorted((root / "airdsAirs").glob("*.abc")):
        out.append(("airdsAirs", "air", p))
    for p in sorted((root / "miscFolk").glob("*.abc")):
        out.append(("miscFolk", "air", p))
    for name in ESSEN_FILES:
        style = "chinese" if name.startswith("han") else "folksong"
        out.append(("essenFolksong", style, root / "essenFolksong" / name))
    return out


def abc_headers(path: Path) -> dict[int, dict[str, str]]:
    """Header fields (T, R, N) of each tune of an ABC file, by X: number."""
    heads: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "X":
            try:
                current = heads.setdefault(int(re.sub(r"\D", "", value) or -1), {})
            except ValueError:
                current = None
        elif current is not None and key in "TRN" and key not in current:
            current[key] = value
    return heads


def form_of(style: str, text: str, ts: str) -> str:
    """The dance form from a tune's R:/T:/N: text, else from its metre."""
    if style in ("chorale", "folksong", "chinese"):
        return "none"
    t = text.lower()
    for words, form in (
        (("slip jig", "slipjig", "slip-jig", "hop jig"), "slip_jig"),
        (("jig",), "jig"),
        (("reel",), "reel"),
        (("hornpipe", "clog"), "hornpipe"),
        (("strathspey", "fling"), "strathspey"),
        (("march",), "march"),
        (("waltz",), "waltz"),
        (("polka",), "polka"),
    ):
        if any(w in t for w in words):
            return form
    if style == "fiddle":
        if ts == "9/8":
            return "slip_jig"
        if ts in ("6/8", "12/8"):
            return "jig"
    return "none"


def style_of(default: str, text: str, form: str) -> str:
    """O'Neill's and Aird's mix airs and dances: route them by their own words."""
    t = text.lower()
    if default == "fiddle" and form == "none" and re.search(r"slow|air|song|lament", t):
        return "air"
    if default == "air" and form not in ("none", "waltz"):
        return "fiddle"
    return default


def key_profile_tonic(hist: list[float]) -> tuple[int, str]:
    import numpy as np

    h = np.asarray(hist, dtype=float)
    best = (-2.0, 0, "major")
    for tonic in range(12):
        rolled = np.roll(h, -tonic)
        for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(rolled, prof)[0, 1]) if h.std() > 0 else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def scaled_ts(ts: str, factor: float) -> str:
    num, den = (int(x) for x in ts.split("/"))
    den = int(den / factor)
    return f"{num}/{den}"


def extract(score: Any, style: str, text: str) -> dict[str, Any] | None:
    """One piece's events, or None when it does not fit the vocabulary."""
    from music21 import key as m21key
    from music21 import meter

    sigs = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if len(sigs) != 1:
        return None
    ts = sigs.pop()
    ts = {"C": "4/4", "C|": "2/2"}.get(ts, ts)
    parts = list(score.parts) or [score]
    bar_len = None
    events: list[tuple[int, int, int, int, int]] = []  # onset, bar, pos, pitch, dur (ticks)
    for part in parts:
        part = part.stripTies(matchByPitch=True)
        measures = list(part.getElementsByClass("Measure"))
        if not measures:
            return None
        for i, m in enumerate(measures):
            ts_obj = m.timeSignature or (measures[0].timeSignature if i else None)
            if ts_obj is not None and bar_len is None:
                bar_len = quantize(ts_obj.barDuration.quarterLength)
            pad = quantize(m.paddingLeft) if i == 0 else 0
            m_off = quantize(m.offset)
            for n in m.recurse().notes:
                if n.duration.isGrace or n.quarterLength <= 0:
                    continue
                pos = quantize(n.getOffsetInHierarchy(m)) + pad
                dur = max(1, quantize(n.quarterLength))
                for p in n.pitches:
                    events.append((m_off + pos - pad, i, pos, p.midi, dur))
    if bar_len is None or not events:
        return None
    if any(pos >= bar_len or pos < 0 for _o, _b, pos, _p, _d in events):
        return None
    # Normalise notation: 16th-note fiddle tunes become 8th-note ones, half-note hymns quarter.
    onsets = sorted({e[0] for e in events})
    iois = Counter(b - a for a, b in itertools.pairwise(onsets) if b > a)
    factor = 1.0
    if iois:
        common = iois.most_common(1)[0][0]
        for _ in range(2):
            if common * factor <= 3:
                factor *= 2
            elif common * factor >= 24:
                factor /= 2
    try:
        ts = scaled_ts(ts, factor)
    except (ValueError, ZeroDivisionError):
        return None
    bar_len = round(bar_len * factor)
    if ts not in TIME_SIGNATURES or bar_len > MAX_BAR_TICKS:
        return None
    # Tonic: the bass of the last onset when it fits the key signature, else a key profile.
    hist = [0.0] * 12
    for _o, _b, _pos, p, d in events:
        hist[p % 12] += d
    last = max(e[0] for e in events)
    final_pc = min(e[3] for e in events if e[0] == last) % 12
    ks = next(iter(score.recurse().getElementsByClass(m21key.KeySignature)), None)
    if ks is not None:
        major = (ks.sharps * 7) % 12
        likely = {major, (major + 9) % 12, (major + 2) % 12, (major + 7) % 12, (major + 4) % 12}
        tonic = final_pc if final_pc in likely else key_profile_tonic(hist)[0]
    else:
        tonic = final_pc
    mode = "major" if hist[(tonic + 4) % 12] >= hist[(tonic + 3) % 12] else "minor"
    shift = (-tonic) % 12
    if shift > 6:
        shift -= 12
    notes = []
    for _o, b, pos, p, d in events:
        pitch = p + shift
        if not PITCH_MIN <= pitch <= PITCH_MAX:
            return None
        notes.append((b, round(pos * factor), pitch, nearest_duration(round(d * factor))))
    notes.sort()
    n_bars = max(n[0] for n in notes) + 1
    if n_bars < 4:
        return None
    form = form_of(style, text, ts)
    style = style_of(style, text, form)
    return {"style": style, "form": form, "mode": mode, "ts": ts, "n_bars": n_bars,
            "tonic": tonic, "notes": notes}


def pieces(path: Path) -> Iterator[tuple[Any, str]]:
    """(score, header text) for each tune/piece in a file."""
    from music21 import converter, stream

    parsed = converter.parse(str(path), forceSource=True)
    heads = abc_headers(path) if path.suffix == ".abc" else {}
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    for s in scores:
        head = heads.get(int(s.metadata.number or -1), {}) if s.metadata else {}
        title = (s.metadata.title if s.metadata else "") or head.get("T", "")
        yield s, " ".join([title, head.get("R", ""), head.get("N", "")])


def parse_file(part: str, style: str, path: Path, cache: Path) -> list[dict[str, Any]]:
    """Records of one corpus file, from the per-file cache when it was parsed before."""
    cached = cache / part / (path.name + ".jsonl")
    if cached.is_file():
        return [json.loads(line) for line in cached.read_text(encoding="utf-8").splitlines()]
    records = []
    for score, text in pieces(path):
        try:
            rec = extract(score, style, text)
        except Exception as exc:  # one odd tune must not stop the corpus
            log.warning("skip a piece of %s: %s", path.name, exc)
            rec = None
        if rec is not None:
            records.append({"part": part, "file": path.name, "title": text.strip()[:80], **rec})
        else:
            records.append({"part": part, "file": path.name, "skip": True})
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records),
                   encoding="utf-8")
    tmp.replace(cached)
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default="", help="parse only the files of this corpus part")
    ap.add_argument("--skip", action="append", default=[], metavar="PART",
                    help="leave a corpus part out (e.g. essenFolksong, whose licence is "
                         "non-commercial); may be repeated")
    ap.add_argument("--limit", type=int, default=0, help="files per corpus part (for testing)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    seen: set[str] = set()
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    per_part: Counter[str] = Counter()
    t0 = time.time()
    cache = args.out.parent / "parsed"
    with tmp.open("w", encoding="utf-8") as fh:
        for part, style, path in sources():
            if (args.limit and per_part[part] >= args.limit) or args.only not in ("", part):
                continue
            if part in args.skip:
                continue
            per_part[part] += 1
            try:
                records = parse_file(part, style, path, cache)
            except Exception as exc:  # a broken file in the corpus: skip it, say so
                log.warning("cannot parse %s: %s", path.name, exc)
                skipped[part] += 1
                continue
            for rec in records:
                if rec.get("skip"):
                    skipped[part] += 1
                    continue
                digest = hashlib.sha1(json.dumps(rec["notes"]).encode()).hexdigest()
                if digest in seen:
                    skipped[part + " (duplicate)"] += 1
                    continue
                seen.add(digest)
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                counts[f"{part}/{rec['style']}"] += 1
            log.info("%s %s: %d kept so far (%.0f s)", part, path.name, sum(counts.values()),
                     time.time() - t0)
    tmp.replace(args.out)
    summary = {"kept": dict(sorted(counts.items())), "skipped": dict(sorted(skipped.items())),
               "seconds": round(time.time() - t0)}
    args.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
    log.info("wrote %s: %s", args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
