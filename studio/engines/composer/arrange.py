"""From composed events to a performance: key, cadence, accompaniment, timing, dynamics.

Plain Python. The network writes tonic-normalised notes (tonic = C); here the
requested tonic is applied, the last bar becomes a cadence on the tonic, tunes
get a simple chord accompaniment (bass on the strong beat, chords after it,
chords chosen per half bar to fit the melody), and ticks become seconds with
metric accents.
"""

from __future__ import annotations

from collections.abc import Iterable

from studio.engines.composer.render import PerfNote
from studio.engines.composer.tokens import TICKS_PER_QUARTER, Note, bar_ticks, beat_quarters

MELODY, ACCOMP = 0, 1

# Diatonic triads (root, pitch classes) relative to the tonic, with a prior for each.
CHORDS = {
    "major": ((0, (0, 4, 7), 0.35), (7, (7, 11, 2), 0.25), (5, (5, 9, 0), 0.2),
              (9, (9, 0, 4), 0.05), (2, (2, 5, 9), 0.0)),
    "minor": ((0, (0, 3, 7), 0.35), (7, (7, 11, 2), 0.2), (5, (5, 8, 0), 0.2),
              (3, (3, 7, 10), 0.1), (10, (10, 2, 5), 0.1), (8, (8, 0, 3), 0.0)),
}
# Melody octave shifts for instruments that sound in another register.
OCTAVE_SHIFT = {32: -24, 33: -24, 43: -24, 58: -24, 42: -12, 57: -12, 70: -12, 72: 12}


def tonic_offset(tonic: int) -> int:
    """Semitones to move a C-tonic piece to `tonic`, the smaller way (-5..+6)."""
    return tonic if tonic <= 6 else tonic - 12


def cadence(notes: list[Note], bar: int, ts: str, mode: str, chordal: bool) -> list[Note]:
    """A final bar holding the tonic chord (or the tonic, for a tune) near the last notes."""
    length = bar_ticks(ts)
    third = 4 if mode == "major" else 3
    before = [n for n in notes if n.bar < bar]
    if not before:
        return [Note(bar, 0, 72, length)] if not chordal else [
            Note(bar, 0, p, length) for p in (72, 67, 64, 48)]
    last_onset = max((n.bar, n.pos) for n in before)
    last = sorted((n for n in before if (n.bar, n.pos) == last_onset), key=lambda n: -n.pitch)

    def nearest(p: int, pcs: Iterable[int]) -> int:
        options = [q for q in range(p - 7, p + 8) if q % 12 in pcs]
        return min(options, key=lambda q: (abs(q - p), q))

    if not chordal or len(last) == 1:
        return [Note(bar, 0, nearest(last[0].pitch, (0,)), length)]
    voices = [nearest(n.pitch, (0, third, 7)) for n in last[:-1]]
    voices[0] = nearest(last[0].pitch, (0, third))  # soprano ends on the tonic or third
    bass = nearest(last[-1].pitch, (0,))
    pitches = sorted({*voices, bass}, reverse=True)
    return [Note(bar, 0, p, length) for p in pitches]


def _unit_ticks(ts: str) -> int:
    """How long one chord lasts: half a bar in 4/4, 2/2, 6/8, 12/8, 6/4; a bar otherwise."""
    length = bar_ticks(ts)
    num = int(ts.split("/")[0])
    return length // 2 if num in (4, 6, 12) or ts == "2/2" else length


def choose_chords(melody: list[Note], ts: str, mode: str, n_bars: int,
                  bars: range | None = None, prev_root: int = 0,
                  cadence_roots: dict[int, int] | None = None) -> list[tuple[int, int]]:
    """(unit start tick, chord root) per harmonic unit of `bars`, fitted to the melody.

    Each unit scores every diatonic triad by how much of the melody's weight
    (longer and metrically stronger notes count more) it covers, minus what
    it clashes with, plus a prior favouring I, V and IV and a little inertia.
    The last unit is the tonic and the one before it a V or IV (or I); the last unit of
    a bar in `cadence_roots` (a phrase end) takes that root (V or I).
    """
    unit = _unit_ticks(ts)
    length = bar_ticks(ts)
    beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
    total = n_bars * length
    bars = bars if bars is not None else range(n_bars)
    chords: list[tuple[int, int]] = []
    for start in range(bars.start * length, min(total, bars.stop * length), unit):
        weights = [0.0] * 12
        for n in melody:
            t = n.bar * length + n.pos
            if start <= t < start + unit:
                strong = 2.0 if (t - start) == 0 else 1.3 if (t - start) % beat == 0 else 1.0
                weights[n.pitch % 12] += strong * min(n.dur, unit)
        total_w = sum(weights) or 1.0
        best, best_score = 0, -1e9
        for root, pcs, prior in CHORDS[mode]:
            fit = sum(weights[pc] for pc in pcs) / total_w
            clash = sum(w for pc, w in enumerate(weights) if pc not in pcs) / total_w
            score = fit - 0.5 * clash + prior + (0.1 if root == prev_root else 0.0)
            if start == 0 and root == 0:
                score += 0.5
            if score > best_score:
                best, best_score = root, score
        end_bar, end_pos = divmod(start + unit, length)
        if cadence_roots and end_pos == 0 and end_bar - 1 in cadence_roots:
            best = cadence_roots[end_bar - 1]
        if start + unit >= total:
            best = 0  # end on the tonic
        elif start + 2 * unit >= total and best not in (0, 7, 5):
            best = 7  # and arrive there from the dominant
        chords.append((start, best))
        prev_root = best
    return chords


def accompaniment(melody: list[Note], ts: str, mode: str, n_bars: int, sustained: bool,
                  bars: range | None = None, prev_root: int = 0,
                  cadence_roots: dict[int, int] | None = None) -> tuple[list[Note], int]:
    """Bass on each unit's first beat, the chord on the others (held, for airs).

    Returns the notes of `bars` and the last chord root (to continue from).
    """
    unit = _unit_ticks(ts)
    beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
    length = bar_ticks(ts)
    out: list[Note] = []
    for start, root in choose_chords(melody, ts, mode, n_bars, bars, prev_root, cadence_roots):
        prev_root = root
        pcs = next(pcs for r, pcs, _p in CHORDS[mode] if r == root)
        bass = 40 + (root - 40) % 12  # E2..D#3
        chord = sorted(55 + (pc - 55) % 12 for pc in pcs)  # close position, G3..F#4
        final = start + unit >= n_bars * length
        bar, pos = divmod(start, length)
        if sustained or final:
            out.append(Note(bar, pos, bass, unit))
            out += [Note(bar, pos, p, unit) for p in chord]
            continue
        if unit == beat:  # one beat per chord (6/8, 3/8): bass, then the chord after it
            split = beat * 2 // 3 if beat % 18 == 0 else beat // 2
            out.append(Note(bar, pos, bass, split))
            out += [Note(bar, pos + split, p, beat - split) for p in chord]
            continue
        out.append(Note(bar, pos, bass, beat))
        for b in range(beat, unit, beat):
            bar_b, pos_b = divmod(start + b, length)
            out += [Note(bar_b, pos_b, p, beat) for p in chord]
    return out, prev_root


def accompany_bar(melody: list[Note], ts: str, mode: str, n_bars: int, bar: int,
                  prev_root: int, sustained: bool) -> tuple[list[Note], int]:
    """The accompaniment of one finished bar (for incremental rendering)."""
    return accompaniment(melody, ts, mode, n_bars, sustained, range(bar, bar + 1), prev_root)


def velocity(pos: int, ts: str, base: int) -> int:
    """Metric accents: downbeat, other beats, offbeats."""
    beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
    if pos == 0:
        return min(127, base + 14)
    if pos % beat == 0:
        return min(127, base + 6)
    return base


def perform(
    notes: list[Note],
    *,
    ts: str,
    qpm: float,
    tonic: int,
    channel: int = MELODY,
    program: int = 0,
    base_velocity: int = 78,
    articulation: float = 1.0,
    end_s: float | None = None,
) -> list[PerfNote]:
    """Tonic-normalised notes → PerfNotes in seconds, in the requested key."""
    length = bar_ticks(ts)
    sec = 60.0 / (qpm * TICKS_PER_QUARTER)
    shift = tonic_offset(tonic) + (OCTAVE_SHIFT.get(program, 0) if channel == MELODY else 0)
    out = []
    for n in notes:
        start = (n.bar * length + n.pos) * sec
        end = start + max(1, n.dur) * sec * articulation
        if end_s is not None:
            if start >= end_s:
                continue
            end = min(end, end_s)
        pitch = min(127, max(0, n.pitch + shift))
        out.append(PerfNote(round(start, 6), round(end, 6), pitch,
                            velocity(n.pos, ts, base_velocity), channel))
    return _no_overlaps(out)


def _no_overlaps(notes: list[PerfNote]) -> list[PerfNote]:
    """A repeated pitch on one channel cuts the earlier note (MIDI can't overlap them)."""
    out: list[PerfNote] = []
    last: dict[tuple[int, int], int] = {}
    for n in sorted(notes):
        key = (n.channel, n.pitch)
        if key in last:
            i = last[key]
            prev = out[i]
            if prev.end > n.start:
                if prev.start == n.start:
                    continue  # the same note twice
                out[i] = PerfNote(prev.start, n.start, prev.pitch, prev.velocity, prev.channel)
        last[key] = len(out)
        out.append(n)
    return out
