"""A voice-leading checker for four-part (SATB) writing: the faults a harmony teacher marks.

Counted faults: a note outside its voice's range; voice crossing (a lower voice above a
higher one); parallel (consecutive) fifths and octaves between any two voices that
both move; a final chord without its third; a cross-relation inside one chord (the
same letter name with two accidentals sounding together, such as F and F♯).
Voices are lists of (start, end, MIDI pitch) in any one time unit; pitch spelling is
relative to the key's tonic. Plain Python: the engine, the tests and the benchmark
read the same counts.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

VOICES = ("soprano", "alto", "tenor", "bass")
#: sounding ranges (MIDI), the usual textbook ones
RANGES: dict[str, tuple[int, int]] = {
    "soprano": (60, 81), "alto": (55, 74), "tenor": (48, 69), "bass": (40, 62),
}
# Letter of each pitch class above the tonic: 0 C, 1 C♯, 2 D, 3 E♭, 4 E, 5 F, 6 F♯, 7 G,
# 8 A♭, 9 A, 10 B♭, 11 B (C = tonic). Two sounding pitch classes with one letter clash.
LETTER = (0, 0, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6)
KINDS = ("range", "crossing", "parallel_fifths", "parallel_octaves", "final_no_third",
         "cross_relation")

Span = tuple[float, float, int]


@dataclass(frozen=True)
class Fault:
    kind: str
    time: float
    detail: str


def sonorities(voices: Sequence[Sequence[Span]]) -> list[tuple[float, tuple[int | None, ...]]]:
    """(time, the pitch each voice sounds then or None) at every onset of any voice."""
    times = sorted({round(s, 6) for v in voices for s, _e, _p in v})
    out = []
    for t in times:
        chord = tuple(next((p for s, e, p in v if s - 1e-6 <= t < e - 1e-6), None)
                      for v in voices)
        out.append((t, chord))
    return out


def check(voices: Sequence[Sequence[Span]], tonic: int, mode: str) -> list[Fault]:
    """Every fault of four voices (soprano first) in a key."""
    faults: list[Fault] = []
    for name, notes in zip(VOICES, voices, strict=False):
        lo, hi = RANGES[name]
        faults += [Fault("range", s, f"{name} {p}") for s, _e, p in notes if not lo <= p <= hi]
    chords = sonorities(voices)
    for t, chord in chords:
        for i in range(len(chord) - 1):
            hi_p, lo_p = chord[i], chord[i + 1]
            if hi_p is not None and lo_p is not None and lo_p > hi_p:
                faults.append(Fault("crossing", t, f"{VOICES[i + 1]} above {VOICES[i]}"))
        letters: dict[int, int] = {}
        for p in chord:
            if p is None:
                continue
            pc = (p - tonic) % 12
            if letters.setdefault(LETTER[pc], pc) != pc:
                faults.append(Fault("cross_relation", t, f"pitch classes {letters[LETTER[pc]]}"
                                                          f" and {pc} above the tonic"))
                break
    for (_t0, a), (t1, b) in itertools.pairwise(chords):
        for i in range(len(a)):
            for j in range(i + 1, len(a)):
                pa, qa, pb, qb = a[i], a[j], b[i], b[j]
                if None in (pa, qa, pb, qb) or pa == pb or qa == qb:
                    continue
                before, after = (pa - qa) % 12, (pb - qb) % 12  # type: ignore[operator]
                if before == after == 7:
                    faults.append(Fault("parallel_fifths", t1, f"{VOICES[i]}-{VOICES[j]}"))
                elif before == after == 0:
                    faults.append(Fault("parallel_octaves", t1, f"{VOICES[i]}-{VOICES[j]}"))
    if chords:
        t, last = chords[-1]
        third = (tonic + (4 if mode == "major" else 3)) % 12
        if not any(p is not None and p % 12 == third for p in last):
            faults.append(Fault("final_no_third", t, "the final chord has no third"))
    return faults


def counts(faults: Sequence[Fault]) -> dict[str, int]:
    """Faults by kind, every kind present (0 when none)."""
    c = Counter(f.kind for f in faults)
    return {k: c.get(k, 0) for k in KINDS}
