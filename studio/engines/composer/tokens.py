"""The composer's event vocabulary: what a piece looks like as a token sequence.

A piece is a conditioning prefix followed by bars of note events (a REMI-like
layout), all in tonic-normalised pitch (every piece is transposed so its tonic
is C; the requested tonic is applied when the MIDI is written):

    <bos> style:chorale form:none mode:minor ts:4/4
    <bar> pos:0 pitch:72 dur:12 pitch:67 dur:12 ... pos:12 pitch:74 dur:6 ... <bar> ... <eos>

Time is counted in ticks of 1/12 quarter note (so 16ths and triplet eighths
both land on the grid). `pos:` is the onset inside the bar; notes that share
an onset follow one `pos:` from the highest pitch down. Because positions are
bar-relative and the sampler only allows increasing positions inside the bar
length of the time signature, whatever the model writes is aligned to bars.

This module is plain Python (no torch) so that data preparation and tests can
use it without loading a model.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

# re-exported: the conducted beat lives with the controls, which core validates alone
from studio.core.music import beat_quarters as beat_quarters

TICKS_PER_QUARTER = 12

STYLES: tuple[str, ...] = ("chorale", "fiddle", "air", "folksong", "chinese")
FORMS: tuple[str, ...] = (
    "none", "reel", "jig", "slip_jig", "hornpipe", "strathspey", "march", "waltz", "polka",
)
MODES: tuple[str, ...] = ("major", "minor")
TIME_SIGNATURES: tuple[str, ...] = (
    "2/4", "3/4", "4/4", "5/4", "2/2", "3/2", "4/2", "6/4", "3/8", "6/8", "9/8", "12/8",
)
PITCH_MIN, PITCH_MAX = 21, 108  # piano range, after transposing the tonic to C
MAX_BAR_TICKS = 96  # 8 quarter notes: 4/2 is the longest bar we keep
DURATIONS: tuple[int, ...] = (
    1, 2, 3, 4, 6, 8, 9, 12, 15, 16, 18, 21, 24, 30, 32, 36, 42, 48, 54, 60, 72, 84, 96, 120,
    144, 192,
)

PAD, BOS, EOS, BAR = "<pad>", "<bos>", "<eos>", "<bar>"


def build_vocab() -> list[str]:
    """Every token string, in id order (the order is part of the trained weights)."""
    vocab = [PAD, BOS, EOS, BAR]
    vocab += [f"style:{s}" for s in STYLES]
    vocab += [f"form:{f}" for f in FORMS]
    vocab += [f"mode:{m}" for m in MODES]
    vocab += [f"ts:{t}" for t in TIME_SIGNATURES]
    vocab += [f"pos:{p}" for p in range(MAX_BAR_TICKS)]
    vocab += [f"pitch:{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
    vocab += [f"dur:{d}" for d in DURATIONS]
    return vocab


def bar_ticks(ts: str) -> int:
    """Length of one bar of a time signature such as "6/8", in ticks."""
    num, den = (int(x) for x in ts.split("/"))
    return num * TICKS_PER_QUARTER * 4 // den


def nearest_duration(ticks: int) -> int:
    """The closest duration of the vocabulary (ties go to the shorter one)."""
    i = bisect.bisect_left(DURATIONS, ticks)
    if i == 0:
        return DURATIONS[0]
    if i == len(DURATIONS):
        return DURATIONS[-1]
    lo, hi = DURATIONS[i - 1], DURATIONS[i]
    return lo if ticks - lo <= hi - ticks else hi


@dataclass(frozen=True, order=True)
class Note:
    """One note in tonic-normalised pitch: bar index, onset in the bar, pitch, duration."""

    bar: int
    pos: int
    pitch: int
    dur: int


@dataclass
class Piece:
    """Conditioning plus notes; what the tokenizer reads and writes."""

    style: str
    form: str
    mode: str
    ts: str
    notes: list[Note] = field(default_factory=list)
    n_bars: int = 0

    def prefix(self) -> list[str]:
        return [BOS, f"style:{self.style}", f"form:{self.form}", f"mode:{self.mode}",
                f"ts:{self.ts}"]


PREFIX_LEN = 5


class Vocab:
    """Token strings ↔ ids, and the grammar the sampler enforces."""

    def __init__(self, tokens: Sequence[str] | None = None) -> None:
        self.tokens: list[str] = list(tokens) if tokens is not None else build_vocab()
        self.ids: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise ValueError("duplicate tokens in the composer vocabulary")
        self.pad, self.bos, self.eos, self.bar = (self.ids[t] for t in (PAD, BOS, EOS, BAR))

        def span(prefix: str) -> tuple[int, int]:
            idx = [i for i, t in enumerate(self.tokens) if t.startswith(prefix)]
            return idx[0], idx[-1] + 1

        self.pos_range = span("pos:")
        self.pitch_range = span("pitch:")
        self.dur_range = span("dur:")

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self.ids[token]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.ids[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    # kinds of tokens by id
    def is_pos(self, i: int) -> bool:
        return self.pos_range[0] <= i < self.pos_range[1]

    def is_pitch(self, i: int) -> bool:
        return self.pitch_range[0] <= i < self.pitch_range[1]

    def is_dur(self, i: int) -> bool:
        return self.dur_range[0] <= i < self.dur_range[1]

    def pos_id(self, pos: int) -> int:
        return self.pos_range[0] + pos

    def pitch_id(self, pitch: int) -> int:
        return self.pitch_range[0] + pitch - PITCH_MIN

    def dur_id(self, dur: int) -> int:
        return self.ids[f"dur:{dur}"]

    def value(self, i: int) -> int:
        """The number carried by a pos/pitch/dur token."""
        return int(self.tokens[i].split(":", 1)[1])


def encode_piece(piece: Piece, vocab: Vocab, eos: bool = True) -> list[int]:
    """Tokens of a whole piece (prefix, bars, optional <eos>)."""
    out = vocab.encode(piece.prefix())
    by_bar: dict[int, list[Note]] = {}
    for note in piece.notes:
        by_bar.setdefault(note.bar, []).append(note)
    n_bars = max(piece.n_bars, max((n.bar + 1 for n in piece.notes), default=0))
    for b in range(n_bars):
        out.append(vocab.bar)
        last_pos = -1
        last_pitch = 1000
        for note in sorted(by_bar.get(b, []), key=lambda n: (n.pos, -n.pitch)):
            if note.pos != last_pos:
                out.append(vocab.pos_id(note.pos))
                last_pos, last_pitch = note.pos, 1000
            if note.pitch >= last_pitch:  # unison doubling: keep one
                continue
            out.append(vocab.pitch_id(note.pitch))
            out.append(vocab.dur_id(note.dur))
            last_pitch = note.pitch
    if eos:
        out.append(vocab.eos)
    return out


def decode_events(ids: Sequence[int], vocab: Vocab) -> list[Note]:
    """Notes from a token sequence (prefix optional); malformed pieces are skipped over."""
    notes: list[Note] = []
    bar, pos, pitch = -1, 0, None
    for i in ids:
        if i == vocab.bar:
            bar, pos, pitch = bar + 1, 0, None
        elif vocab.is_pos(i):
            pos, pitch = vocab.value(i), None
        elif vocab.is_pitch(i):
            pitch = vocab.value(i)
        elif vocab.is_dur(i) and pitch is not None and bar >= 0:
            notes.append(Note(bar, pos, pitch, vocab.value(i)))
            pitch = None
        elif i == vocab.eos:
            break
    return notes


def quantize(ql: Fraction | float) -> int:
    """Quarter lengths → ticks, rounded to the grid."""
    return round(float(ql) * TICKS_PER_QUARTER)
