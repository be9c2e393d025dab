"""A rule-based four-part harmoniser: the network's chorale soprano in, SATB voices out.

The composer network writes chorales as chords on one stream, and its voices cannot be
told apart (nor kept free of parallels). So the chorale's top line is kept as the
soprano and harmonised here, one chord a beat, by a shortest-path search over
(chord, voicing) pairs: every voicing keeps the voices in their ranges, uncrossed,
with the chord's root and third present and the bass on the root or third; the cost
adds voice motion, parallel fifths and octaves (prohibitive), overlaps, doubled
leading tones and weak progressions; phrase ends are cadences (V at a half cadence,
V–I at an authentic one, a complete root-position tonic to end). Tonic-normalised
pitch (tonic = C), as the network writes. Plain Python.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from studio.engines.composer.form import AUTHENTIC, FINAL, HALF
from studio.engines.composer.tokens import TICKS_PER_QUARTER, Note, bar_ticks, beat_quarters
from studio.engines.composer.voiceleading import LETTER, RANGES, VOICES

# (root, pitch classes, third) of the diatonic triads a chorale uses, by mode.
TRIADS: dict[str, tuple[tuple[int, tuple[int, int, int]], ...]] = {
    "major": ((0, (0, 4, 7)), (2, (2, 5, 9)), (4, (4, 7, 11)), (5, (5, 9, 0)),
              (7, (7, 11, 2)), (9, (9, 0, 4))),
    "minor": ((0, (0, 3, 7)), (3, (3, 7, 10)), (5, (5, 8, 0)), (7, (7, 11, 2)),
              (8, (8, 0, 3)), (10, (10, 2, 5))),
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}
# Root motion preferences (interval from the previous root, in semitones upward).
GOOD_MOTION = {5: -0.6, 7: -0.3, 2: -0.2, 9: -0.2}  # fourth up (fifth down), fifth up, …
BAD = 60.0
MAX_VOICINGS = 24


@dataclass(frozen=True)
class Slot:
    """One chord's time: its start tick, length, the soprano sounding then, the notes the
    soprano plays inside it, and what the harmony must be there (None: free)."""

    start: int
    length: int
    soprano: int
    melody_pcs: frozenset[int]
    must: tuple[int, ...] | None  # allowed chord roots
    prev_soprano: int | None  # the soprano just before the slot (for parallels)
    lowest: int = 0  # the soprano's lowest note inside the slot (the alto stays under it)


def soprano_line(notes: list[Note], ts: str, mode: str, lo: int, hi: int) -> list[Note]:
    """The highest sounding note at each onset, as a line: where the top note is held
    while lower voices move, the soprano holds too. In range and in the scale."""
    length = bar_ticks(ts)
    spans = sorted((n.bar * length + n.pos, n.bar * length + n.pos + n.dur, n.pitch)
                   for n in notes)
    times = sorted({a for a, _b, _p in spans})
    scale = SCALES[mode]
    line: list[list[int]] = []  # [start, end, pitch, note index]
    for t in times:
        sounding = [(p, i) for i, (a, b, p) in enumerate(spans) if a <= t < b]
        if not sounding:
            continue
        pitch, index = max(sounding)
        if line and line[-1][3] == index:
            continue  # the top note is held
        if line:
            line[-1][1] = min(line[-1][1], t)
        line.append([t, spans[index][1], pitch, index])
    out: list[Note] = []
    for i, (a, b, pitch, _index) in enumerate(line):
        if i + 1 < len(line):
            b = min(b, line[i + 1][0])
        if pitch % 12 not in scale:  # a chromatic note becomes its diatonic neighbour
            pitch = next(p for p in (pitch - 1, pitch + 1) if p % 12 in scale)
        while pitch > hi:
            pitch -= 12
        while pitch < lo:
            pitch += 12
        bar, pos = divmod(a, length)
        out.append(Note(bar, pos, pitch, max(1, b - a)))
    return out


def _slots(soprano: list[Note], ts: str, n_bars: int,
           cadences: dict[int, str]) -> list[Slot]:
    length = bar_ticks(ts)
    beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
    spans = [(n.bar * length + n.pos, n.bar * length + n.pos + n.dur, n.pitch) for n in soprano]
    slots: list[Slot] = []
    for bar in range(n_bars):
        kind = cadences.get(bar)
        starts = [0] if kind == FINAL else list(range(0, length, beat))
        for k, pos in enumerate(starts):
            t = bar * length + pos
            size = length if kind == FINAL else min(beat, length - pos)
            sounding = [p for s, e, p in spans if s <= t < e]
            inside = [p for s, _e, p in spans if t <= s < t + size]
            pitch = sounding[0] if sounding else (inside[0] if inside else None)
            if pitch is None:
                pitch = slots[-1].soprano if slots else 72
            before = [p for s, e, p in spans if s < t <= e]
            must: tuple[int, ...] | None = None
            last = k == len(starts) - 1
            if kind == HALF and last:
                must = (7,)
            elif kind in (AUTHENTIC, FINAL) and last:
                must = (0,)
            elif kind in (AUTHENTIC, FINAL) and k == len(starts) - 2:
                must = (7, 5, 2)  # a dominant (or pre-dominant) before the tonic
            slots.append(Slot(t, size, pitch, frozenset(p % 12 for p in [*inside, pitch]),
                              must, before[-1] if before else None, min([*inside, pitch])))
        if kind == FINAL and slots and len(slots) >= 2:
            prev = slots[-2]
            slots[-2] = Slot(prev.start, prev.length, prev.soprano, prev.melody_pcs, (7,),
                             prev.prev_soprano, prev.lowest)
    return slots


def _voicings(slot: Slot, root: int, pcs: tuple[int, int, int], mode: str,
              ranges: dict[str, tuple[int, int]]) -> list[tuple[float, tuple[int, int, int, int]]]:
    """(cost, (S, A, T, B)) for a chord under the soprano, best first."""
    s = slot.soprano
    third = pcs[1]
    final = slot.must == (0,)
    out = []

    def pitches(voice: str, top: int) -> list[int]:
        lo, hi = ranges[voice]
        return [p for p in range(lo, min(hi, top - 1) + 1) if p % 12 in pcs]

    for a in pitches("alto", min(s, slot.lowest or s)):
        if s - a > 12:
            continue
        for t in pitches("tenor", a):
            if a - t > 12:
                continue
            for b in pitches("bass", t):
                if t - b > 19 or b % 12 == pcs[2]:
                    continue  # no six-four chords
                present = {s % 12, a % 12, t % 12, b % 12}
                if root not in present or third not in present:
                    continue
                cost = 0.0 if b % 12 == root else 1.2
                if final and b % 12 != root:
                    continue
                doubled = [x % 12 for x in (s, a, t, b)]
                if doubled.count(11) > 1:
                    cost += 4.0  # a doubled leading tone
                if doubled.count(root) >= 2:
                    cost -= 0.3
                if pcs[2] not in present:
                    cost += 0.6  # the fifth left out
                if a - t > 9 or s - a > 9:
                    cost += 0.3
                out.append((cost, (s, a, t, b)))
    out.sort()
    return out[:MAX_VOICINGS]


def _motion(prev: tuple[int, int, int, int], cur: tuple[int, int, int, int],
            prev_s: int | None) -> float:
    before = (prev_s if prev_s is not None else prev[0], *prev[1:])
    cost = 0.0
    for i in range(1, 4):
        leap = abs(cur[i] - prev[i])
        cost += (0.15 if i == 3 else 0.3) * leap + (2.0 if leap > 7 and i < 3 else 0.0)
    for i, j in itertools.combinations(range(4), 2):
        pa, qa, pb, qb = before[i], before[j], cur[i], cur[j]
        if pa == pb or qa == qb:
            continue
        if (pa - qa) % 12 == (pb - qb) % 12 and (pb - qb) % 12 in (0, 7):
            cost += BAD
    for i in range(1, 4):  # overlap: a voice passes where its neighbour just was
        if cur[i] > before[i - 1] or (i < 3 and cur[i] < prev[i + 1]):
            cost += 1.5
    return cost


def _progression(prev_root: int, root: int) -> float:
    if prev_root == root:
        return 0.4
    if prev_root == 7 and root == 5:
        return 3.0  # V–IV
    return GOOD_MOTION.get((root - prev_root) % 12, 0.3)


def harmonise(soprano: list[Note], ts: str, mode: str, n_bars: int,
              cadences: dict[int, str], shift: int) -> list[list[Note]]:
    """Four voices (S, A, T, B) of tonic-normalised notes for a soprano line.

    `shift` is the semitones from tonic-normalised to sounding pitch, so that the voice
    ranges hold for what is heard.
    """
    ranges = {v: (lo - shift, hi - shift) for v, (lo, hi) in RANGES.items()}
    slots = _slots(soprano, ts, n_bars, cadences)
    if not slots:
        return [list(soprano), [], [], []]
    triads = TRIADS[mode]
    layers: list[list[tuple[int, tuple[int, int, int, int], float]]] = []
    for slot in slots:
        layer = []
        candidates = [(r, pcs) for r, pcs in triads if slot.soprano % 12 in pcs
                      and (slot.must is None or r in slot.must)]
        if not candidates:
            candidates = [(r, pcs) for r, pcs in triads if slot.soprano % 12 in pcs]
        for root, pcs in candidates:
            clash = sum(1 for pc in slot.melody_pcs for q in pcs
                        if pc != q and _same_letter(pc, q))
            found = _voicings(slot, root, pcs, mode, ranges)
            if not found:  # a low passing note: let the alto cross it rather than fail
                found = [(c + 3.0, v) for c, v in _voicings(replace(slot, lowest=0), root, pcs,
                                                             mode, ranges)]
            for cost, voicing in found:
                layer.append((root, voicing, cost + 5.0 * clash))
        if not layer:  # nothing fits (a soprano far off its range): hold an octave below
            s = slot.soprano
            layer.append((0, (s, s - 5, s - 12, s - 24), BAD))
        layers.append(layer)
    # shortest path
    best = [c for _r, _v, c in layers[0]]
    back: list[list[int]] = [[-1] * len(layers[0])]
    for i in range(1, len(layers)):
        prev_layer, layer = layers[i - 1], layers[i]
        prev_s = slots[i].prev_soprano
        row_cost, row_back = [], []
        for root, voicing, cost in layer:
            choice, value = 0, float("inf")
            for k, (proot, pvoicing, _pc) in enumerate(prev_layer):
                v = best[k] + _motion(pvoicing, voicing, prev_s) + _progression(proot, root)
                if v < value:
                    choice, value = k, v
            row_cost.append(value + cost)
            row_back.append(choice)
        best = row_cost
        back.append(row_back)
    k = min(range(len(best)), key=best.__getitem__)
    path: list[tuple[int, int, int, int]] = []
    for i in range(len(layers) - 1, -1, -1):
        path.append(layers[i][k][1])
        k = back[i][k]
    path.reverse()
    return _to_voices(soprano, slots, path, ts)


def _same_letter(a: int, b: int) -> bool:
    return LETTER[a] == LETTER[b]


def _to_voices(soprano: list[Note], slots: list[Slot], path: list[tuple[int, int, int, int]],
               ts: str) -> list[list[Note]]:
    """Alto, tenor and bass sing one note a chord (a repeated pitch is sung again, as in a
    hymn), under the soprano's own rhythm."""
    length = bar_ticks(ts)
    voices: list[list[Note]] = [list(soprano), [], [], []]
    for slot, voicing in zip(slots, path, strict=True):
        bar, pos = divmod(slot.start, length)
        for v in (1, 2, 3):
            voices[v].append(Note(bar, pos, voicing[v], slot.length))
    return voices


__all__ = ["VOICES", "harmonise", "soprano_line"]
