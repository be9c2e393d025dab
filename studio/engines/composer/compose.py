"""Sampling bars of events from the composer network under the token grammar.

Each step masks every token the grammar forbids: a position must move
forward inside the bar of the chosen metre, leaving at most a beat of
silence; a bar ends only when its notes sound to its end; a pitch is
followed by its duration; chord notes go downwards; the first bar starts on
its downbeat with notes of the tonic triad in the asked register. Then
temperature / top-k / top-p apply and a seeded CPU generator draws, so the
same seed gives the same notes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from studio.engines.composer.model import ComposerLM, KVCache
from studio.engines.composer.tokens import (
    DURATIONS,
    PITCH_MAX,
    PITCH_MIN,
    PREFIX_LEN,
    TICKS_PER_QUARTER,
    Note,
    Piece,
    Vocab,
    bar_ticks,
    beat_quarters,
    encode_piece,
)

NEG = float("-inf")


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    max_chord: int = 4  # notes per onset
    max_tokens_per_bar: int = 160


def filter_logits(logits: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """Top-k then top-p (nucleus) on one row of logits; masked entries stay -inf."""
    if p.top_k and 0 < p.top_k < logits.numel():
        kth = torch.topk(logits, p.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, NEG)
    if 0.0 < p.top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(-1)
        drop = cum - probs > p.top_p  # keep the smallest set whose mass reaches top_p
        sorted_logits = sorted_logits.masked_fill(drop, NEG)
        logits = torch.full_like(logits, NEG).scatter(0, idx, sorted_logits)
    return logits


class Grammar:
    """Which tokens may come next, given the bar/position/chord state."""

    def __init__(self, vocab: Vocab, ts: str, params: SamplingParams,
                 mode: str = "major", first_top: tuple[int, int] | None = None) -> None:
        self.v = vocab
        self.bar_len = bar_ticks(ts)
        self.beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
        self.sounding_until = 0  # absolute tick where the last note so far ends
        self.params = params
        n = len(vocab)
        self.bar = -1
        self.pos = -1
        self.last = vocab.bar
        self.last_pitch = 1000
        self.chord = 0
        self.tokens_in_bar = 0
        lo, hi = vocab.pos_range
        self.pos_ids = torch.arange(lo, hi)
        self.only_bar = self._mask([vocab.bar])
        self.pitch_mask = torch.full((n,), NEG)
        self.pitch_mask[vocab.pitch_range[0]:vocab.pitch_range[1]] = 0.0
        self.dur_mask = torch.full((n,), NEG)
        self.dur_mask[vocab.dur_range[0]:vocab.dur_range[1]] = 0.0
        # the opening onset sounds the tonic triad (C is the tonic of every piece)
        triad = (0, 4 if mode == "major" else 3, 7)
        self.triad_mask = torch.full((n,), NEG)
        for p in range(PITCH_MIN, PITCH_MAX + 1):
            if p % 12 in triad:
                self.triad_mask[vocab.pitch_id(p)] = 0.0
        # ...and its top note lies in the register asked for (the model drifts little after)
        self.first_mask = self.triad_mask.clone()
        if first_top is not None:
            lo, hi = max(PITCH_MIN, first_top[0]), min(PITCH_MAX, first_top[1])
            keep = self.first_mask[vocab.pitch_id(lo):vocab.pitch_id(hi) + 1].clone()
            self.first_mask.fill_(NEG)
            self.first_mask[vocab.pitch_id(lo):vocab.pitch_id(hi) + 1] = keep
            if not torch.isfinite(self.first_mask).any():
                self.first_mask = self.triad_mask

    def set_cadences(self, cadences: dict[int, tuple[int, ...]]) -> None:
        """Bars whose last beat must sound only these pitch classes (a phrase's cadence)."""
        self.cadences = dict(cadences)
        self.cadence_masks = {}
        for pcs in set(self.cadences.values()):
            m = torch.full((len(self.v),), NEG)
            for p in range(PITCH_MIN, PITCH_MAX + 1):
                if p % 12 in pcs:
                    m[self.v.pitch_id(p)] = 0.0
            self.cadence_masks[pcs] = m

    def _cadence(self) -> tuple[int, ...] | None:
        return getattr(self, "cadences", {}).get(self.bar)

    def _room(self, pitch: int) -> int | None:
        """Ticks a note of `pitch` starting now may last before it would sound into the
        last beat of a cadence whose chord it is not in (None: no limit)."""
        now = self.bar * self.bar_len + self.pos
        room: int | None = None
        for bar, pcs in getattr(self, "cadences", {}).items():
            last = bar * self.bar_len + self._last_beat()
            if last > now and pitch % 12 not in pcs:
                room = last - now if room is None else min(room, last - now)
        return room

    def _last_beat(self) -> int:
        return self.bar_len - self.beat if self.bar_len > self.beat else 0

    def _mask(self, allowed: list[int]) -> torch.Tensor:
        m = torch.full((len(self.v),), NEG)
        m[allowed] = 0.0
        return m

    def _pos_mask(self, after: int) -> torch.Tensor:
        """Onsets after `after` in this bar, leaving at most a beat of silence."""
        m = torch.full((len(self.v),), NEG)
        lo = self.v.pos_range[0]
        latest = min(self.bar_len - 1, self.sounding_until - self.bar * self.bar_len + self.beat)
        latest = min(self.bar_len - 1, max(latest, after + 1))  # never a dead end
        m[lo + after + 1: lo + latest + 1] = 0.0
        return m

    def bar_is_full(self) -> bool:
        """Notes sound to the end of the bar (a bar line never cuts a phrase short)."""
        return self.sounding_until >= (self.bar + 1) * self.bar_len

    def mask(self) -> torch.Tensor:
        v = self.v
        if self.last == v.bar:
            if self.bar == 0:
                return self._mask([v.pos_id(0)])  # no pickup: the music starts at once
            return self._pos_mask(-1)
        pcs = self._cadence()
        in_cadence = pcs is not None and self.pos >= self._last_beat()
        if v.is_pos(self.last):
            if in_cadence:
                return self.cadence_masks[pcs]  # type: ignore[index]
            return self.first_mask if self.bar == 0 and self.pos == 0 else self.pitch_mask
        if v.is_pitch(self.last):
            room = self._room(self.last_pitch)
            if room is not None:
                # a note outside the next cadence's chord stops before that last beat
                m = torch.full((len(v),), NEG)
                ok = [v.dur_id(d) for d in DURATIONS if d <= room] or [v.dur_id(DURATIONS[0])]
                m[ok] = 0.0
                return m
            return self.dur_mask
        # after a duration: another chord note (lower), a later onset, or the next bar
        if self.tokens_in_bar >= self.params.max_tokens_per_bar:
            return self.only_bar
        m = self._pos_mask(self.pos)
        if self.bar_is_full():
            m[v.bar] = 0.0
        if self.chord < self.params.max_chord and self.last_pitch > PITCH_MIN:
            lo = v.pitch_range[0]
            top = min(v.pitch_range[1], lo + self.last_pitch - PITCH_MIN)  # below the last
            m[lo:top] = 0.0
            if self.bar == 0 and self.pos == 0:
                m[lo:top] += self.triad_mask[lo:top]
            if in_cadence:
                m[lo:top] += self.cadence_masks[pcs][lo:top]  # type: ignore[index]
        return m

    def push(self, tok: int) -> None:
        v = self.v
        self.tokens_in_bar += 1
        if tok == v.bar:
            self.bar += 1
            self.pos = -1
            self.tokens_in_bar = 0
        elif v.is_pos(tok):
            self.pos = v.value(tok)
            self.chord = 0
            self.last_pitch = 1000
        elif v.is_pitch(tok):
            self.last_pitch = v.value(tok)
            self.chord += 1
        elif v.is_dur(tok):
            end = self.bar * self.bar_len + self.pos + v.value(tok)
            self.sounding_until = max(self.sounding_until, end)
        self.last = tok


@torch.no_grad()
def compose(
    model: ComposerLM,
    vocab: Vocab,
    piece: Piece,
    n_bars: int,
    params: SamplingParams,
    generator: torch.Generator,
    on_bar: Callable[[int, list[Note]], None] | None = None,
    check: Callable[[], None] | None = None,
    first_top: tuple[int, int] | None = None,
    prefix_embeds: torch.Tensor | None = None,
    primer: list[Note] | None = None,
    primer_bars: int = 0,
    cadences: dict[int, tuple[int, ...]] | None = None,
) -> list[Note]:
    """Sample `n_bars` bars after the piece's conditioning; returns their notes.

    on_bar(i, notes) is called when bar i is complete (its notes in hand);
    check() is called every token and may raise to cancel; first_top bounds the
    (tonic-normalised) top note of the opening chord; prefix_embeds (PREFIX_LEN,
    d_model), when given, is fed instead of the embeddings of the piece's own
    conditioning tokens (see `blend_prefix`), while the grammar follows `piece`.
    primer (the notes of bars 0..primer_bars-1) is music already written: the network
    reads it and the new bars are numbered after it (a repeat's varied bar, a motif, a
    piece being extended). cadences maps a bar to the pitch classes its last beat may
    sound (a phrase end).
    """
    model.eval()
    max_len = model.cfg.max_len
    params = SamplingParams(**{**params.__dict__, "max_tokens_per_bar": min(
        params.max_tokens_per_bar, (max_len - PREFIX_LEN) // 2 - 1)})
    prefix = vocab.encode(piece.prefix())
    grammar = Grammar(vocab, piece.ts, params, piece.mode, first_top)
    grammar.set_cadences(cadences or {})
    body: list[int] = []
    if primer_bars > 0:
        written = Piece(piece.style, piece.form, piece.mode, piece.ts, list(primer or []),
                        primer_bars)
        body = encode_piece(written, vocab, eos=False)[PREFIX_LEN:]
        for tok in body:
            grammar.push(tok)
        body = _recent_bars(body, vocab, (max_len - PREFIX_LEN) // 2)
    body.append(vocab.bar)
    grammar.push(vocab.bar)
    n_bars += primer_bars
    notes: list[Note] = []
    bar_notes: list[Note] = []
    pitch: int | None = None

    def prefill(tokens: list[int]) -> tuple[torch.Tensor, KVCache]:
        ids = torch.tensor([tokens], dtype=torch.long)
        if prefix_embeds is None:
            logits, cache = model(ids)
        else:
            rest = model.tok(ids[:, len(prefix):])
            embeds = torch.cat([prefix_embeds[None].to(rest.dtype), rest], dim=1)
            logits, cache = model(None, embeds=embeds)
        return logits[0, -1], cache

    logits, cache = prefill(prefix + body)
    length = len(prefix) + len(body)
    if n_bars <= primer_bars:
        return notes
    while True:
        if check is not None:
            check()
        mask = grammar.mask()
        scores = logits.float() + mask
        if params.temperature <= 0:
            tok = int(torch.argmax(scores))
        else:
            scores = filter_logits(scores / params.temperature, params)
            probs = torch.softmax(scores, dim=-1)
            tok = int(torch.multinomial(probs, 1, generator=generator))
        if tok == vocab.bar:
            notes.extend(bar_notes)
            if on_bar is not None:
                on_bar(grammar.bar, list(bar_notes))
            bar_notes = []
            if grammar.bar + 1 >= n_bars:
                break
        elif vocab.is_pitch(tok):
            pitch = vocab.value(tok)
        elif vocab.is_dur(tok) and pitch is not None:
            bar_notes.append(Note(grammar.bar, grammar.pos, pitch, vocab.value(tok)))
            pitch = None
        grammar.push(tok)
        body.append(tok)
        if length + 1 > max_len:
            # slide the window: conditioning + the most recent whole bars, half a context
            body = _recent_bars(body, vocab, (max_len - PREFIX_LEN) // 2)
            logits, cache = prefill(prefix + body)
            length = len(prefix) + len(body)
        else:
            out, cache = model(torch.tensor([[tok]], dtype=torch.long), cache)
            logits = out[0, -1]
            length += 1
    return notes


def _recent_bars(body: list[int], vocab: Vocab, budget: int) -> list[int]:
    """The most recent whole bars of a token body that fit in `budget` tokens."""
    bars = [i for i, t in enumerate(body) if t == vocab.bar]
    if not bars:
        return body[-budget:]
    keep = next((i for i in bars if len(body) - i <= budget), bars[-1])
    return body[keep:]


@torch.no_grad()
def blend_prefix(model: ComposerLM, vocab: Vocab, a: Piece, b: Piece,
                 weight: float) -> torch.Tensor:
    """Embeddings (PREFIX_LEN, d_model) of a's conditioning tokens lerped toward b's.

    Every piece's prefix is the same five slots (BOS, style, form, mode, metre), so
    slot i of one prompt blends with slot i of the other; torch.lerp is exact at
    weight 0 and 1, so the ends are the two prompts' own conditioning.
    """
    ids_a = torch.tensor(vocab.encode(a.prefix()), dtype=torch.long)
    ids_b = torch.tensor(vocab.encode(b.prefix()), dtype=torch.long)
    if ids_a.shape != ids_b.shape:
        raise ValueError("conditioning prefixes of different lengths cannot be blended")
    return torch.lerp(model.tok(ids_a), model.tok(ids_b), float(weight))
