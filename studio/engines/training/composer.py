"""The composer fine-tune: the built-in composer learns from a folder of MIDI or ABC tunes.

What the composer learns and what it decides by rule (`engines/composer/`): its network
predicts the next note event (onset in the bar, pitch, duration) of tonic-normalised
music after a conditioning prefix (style, form, mode, metre); the key, the metre, the
form plan, cadences, harmony and the arrangement are rules. So a fine-tune teaches the
network the tunes' melodies and rhythms, and the exported model also carries the data's
controls (style, metre, key, mode of each piece): where a prompt leaves one open, the
fine-tuned composer draws it from that distribution instead of the style's defaults.

Reading the data: MIDI through `core.midi` (pretty_midi), ABC through music21 (one piece
per tune); each piece is transposed to C, quantised to the composer's grid (12 ticks a
quarter note) and tokenised with the composer's own vocabulary (`tokens.encode_piece`). A
file that cannot be read, has no notes, is in a metre the composer does not write or is
shorter than two bars is skipped with that reason. The loss is the network's own
(next-token cross-entropy on the music, not on the conditioning the user gives).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from studio.core.errors import RequestError
from studio.core.training import DataReport, TrainConfig, TrainingError
from studio.engines.composer.compose import SamplingParams, compose
from studio.engines.composer.model import load_pretrained, save_pretrained
from studio.engines.composer.render import PerfNote, midi_bytes
from studio.engines.composer.tokens import (
    PITCH_MAX,
    PITCH_MIN,
    PREFIX_LEN,
    TICKS_PER_QUARTER,
    TIME_SIGNATURES,
    Note,
    Piece,
    Vocab,
    bar_ticks,
    encode_piece,
    nearest_duration,
)
from studio.engines.training.base import Recipe, Sample
from studio.engines.training.data import check_folder
from studio.engines.training.data import split as split_items
from studio.engines.training.export import publish_folder

SUFFIXES = (".mid", ".midi", ".abc")
SAMPLE_BARS = 4
SAMPLE_SEEDS = (0, 1)
# Krumhansl-Kessler key profiles: the key of a tune whose file does not say it
_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass
class Tune:
    """One usable piece: its name, its composer piece (tonic C) and its original tonic."""

    name: str
    piece: Piece
    tonic: int

    def controls(self) -> tuple[str, str, int, str]:
        return (self.piece.style, self.piece.ts, self.tonic, self.piece.mode)


# --------------------------------------------------------------------------- reading


def key_of(events: list[tuple[float, float, int]]) -> tuple[int, str]:
    """(tonic pitch class, mode) by the key profile most like the duration-weighted
    pitch-class histogram."""
    hist = np.zeros(12)
    for _onset, dur, pitch in events:
        hist[pitch % 12] += dur
    best = (-2.0, 0, "major")
    for tonic in range(12):
        rolled = np.roll(hist, -tonic)
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(rolled, profile)[0, 1]) if hist.std() > 0 else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def make_tune(name: str, events: list[tuple[float, float, int]], ts: str,
              key: tuple[int, str] | None) -> Tune:
    """A Tune from notes in quarter notes (onset, duration, MIDI pitch); ValueError with
    the reason it cannot be used."""
    if not events:
        raise ValueError("it has no notes")
    if ts not in TIME_SIGNATURES:
        raise ValueError(f"it is in {ts}, a metre the composer does not write")
    tonic, mode = key if key is not None else key_of(events)
    shift = (-tonic) % 12
    if shift > 6:
        shift -= 12
    length = bar_ticks(ts)
    notes: list[Note] = []
    for onset, dur, pitch in events:
        p = pitch + shift
        while p < PITCH_MIN:
            p += 12
        while p > PITCH_MAX:
            p -= 12
        tick = round(onset * TICKS_PER_QUARTER)
        bar, pos = divmod(tick, length)
        notes.append(Note(bar, pos, p, nearest_duration(max(1, round(dur * TICKS_PER_QUARTER)))))
    notes.sort()
    n_bars = max(n.bar for n in notes) + 1
    if n_bars < 2:
        raise ValueError("it is shorter than two bars")
    per_onset = Counter((n.bar, n.pos) for n in notes)
    style = "chorale" if np.mean(list(per_onset.values())) >= 2.5 else "folksong"
    return Tune(name, Piece(style, "none", mode, ts, notes, n_bars), tonic % 12)


def midi_tunes(path: Path, name: str) -> Iterator[Tune]:
    from studio.core.midi import read_midi

    try:
        data = read_midi(path)
    except RequestError as exc:
        raise ValueError(str(exc).rstrip(".").replace(f"{path.name} is ", "it is ")) from None
    per_s = data.tempo_qpm / 60.0
    events = [(n.start * per_s, (n.end - n.start) * per_s, n.pitch)
              for t in data.tracks if not t.is_drum for n in t.notes]
    yield make_tune(name, events, data.time_signature, data.key)


def abc_tunes(path: Path, name: str) -> Iterator[Tune | tuple[str, str]]:
    """Every tune of an ABC file (music21), or (name, reason) for one that is unusable."""
    try:
        from music21 import converter, key, meter, stream
    except ImportError:
        raise ValueError("reading ABC needs the music21 package") from None
    try:
        parsed = converter.parse(str(path), format="abc")
    except Exception as exc:  # music21 raises many kinds for a file it cannot read
        raise ValueError(f"it is not readable ABC ({type(exc).__name__})") from None
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    for i, score in enumerate(scores):
        label = name if len(scores) == 1 else f"{name} #{i + 1}"
        try:
            sigs = list(score.recurse().getElementsByClass(meter.TimeSignature))
            ts = sigs[0].ratioString if sigs else "4/4"
            ts = {"C": "4/4", "C|": "2/2"}.get(ts, ts)
            parts = list(score.parts) or [score]
            measures = list(parts[0].getElementsByClass("Measure"))
            pad = float(measures[0].paddingLeft) if measures else 0.0
            events = [(float(n.getOffsetInHierarchy(score)) + pad, float(n.quarterLength),
                       int(p.midi))
                      for n in score.recurse().notes
                      if not n.duration.isGrace and n.quarterLength > 0 for p in n.pitches]
            keys = list(score.recurse().getElementsByClass(key.Key))
            found = (keys[0].tonic.pitchClass, keys[0].mode) if keys else None
            if found is not None and found[1] not in ("major", "minor"):
                found = None
            yield make_tune(label, events, ts, found)
        except ValueError as exc:
            yield (label, str(exc))


def read_tunes(folder: Path) -> tuple[list[Tune], DataReport]:
    """The usable tunes of a data folder and the report on them (reads only)."""
    root = check_folder(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and p.suffix.lower() in SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    tunes: list[Tune] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    duplicates = 0
    for path in files:
        name = str(path.relative_to(root))
        try:
            found = list(abc_tunes(path, name) if path.suffix.lower() == ".abc"
                         else midi_tunes(path, name))
        except ValueError as exc:
            skipped.append((name, f"{exc}."))
            continue
        for item in found:
            if isinstance(item, tuple):
                skipped.append((item[0], f"{item[1]}."))
                continue
            notes = [astuple(n) for n in item.piece.notes]
            digest = hashlib.sha1(json.dumps([item.piece.ts, notes]).encode()).hexdigest()
            if digest in seen:
                duplicates += 1
                continue
            seen.add(digest)
            tunes.append(item)
    metres = Counter(t.piece.ts for t in tunes)
    keys = Counter(f"{PITCH_NAMES[t.tonic]} {t.piece.mode}" for t in tunes)
    notes = []
    if metres:
        notes.append("Metres: " + ", ".join(f"{m} ({n})" for m, n in metres.most_common())
                     + ".")
        notes.append("Keys: " + ", ".join(f"{k} ({n})" for k, n in keys.most_common()) + ".")
    bars = sum(t.piece.n_bars for t in tunes)
    report = DataReport(str(root), len(files), len(tunes), tuple(skipped), tuple(notes),
                        duplicates, 0, f"{len(tunes)} tunes, {bars} bars" if tunes else "")
    return tunes, report


# --------------------------------------------------------------------------- the recipe


def base_folder(base: str) -> Path:
    """The folder of the composer a fine-tune starts from: the built-in or another one."""
    from studio.engines.composer.engine import composer_dir

    if base == "builtin:composer":
        return composer_dir()
    if base.startswith("builtin:"):
        raise TrainingError(f"{base} is not a composer: the composer fine-tune starts from "
                            "builtin:composer or a composer trained in the Lab.")
    return Path(base).expanduser()


class ComposerRecipe(Recipe):
    """Fine-tune the composer's network on a folder of tunes (see the module docstring)."""

    id: ClassVar[str] = "composer"

    def __init__(self, config: TrainConfig, device: str = "cpu") -> None:
        super().__init__(config, device)
        self.tunes: list[Tune] | None = None

    def check_data(self) -> DataReport:
        self.tunes, report = read_tunes(Path(self.config.data).expanduser())
        if not self.tunes:
            first = f" ({report.skipped[0][0]}: {report.skipped[0][1].rstrip('.')})" \
                if report.skipped else ""
            raise TrainingError(f"No usable MIDI or ABC tune in {report.folder}: "
                                f"{report.found} files found{first}.")
        return report

    def setup(self) -> None:
        if self.tunes is None:
            self.check_data()
        assert self.tunes is not None
        cfg = self.config
        folder = base_folder(cfg.base)
        try:
            self.model, tokens, self.base_config = load_pretrained(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise TrainingError(f"The composer in {folder} cannot be read ({exc}).") from None
        self.vocab = Vocab(tokens)
        if tokens != Vocab().tokens:
            raise TrainingError(f"The composer in {folder} uses another event vocabulary "
                                "than this version of Studio.")
        self.model.to(self.device)
        self.ctx = min(self.model.cfg.max_len, max(PREFIX_LEN + 8, cfg.resolution))
        train_idx, val_idx = split_items(len(self.tunes), cfg.val_split, cfg.seed)
        self.train_ids = [self._encode(self.tunes[i]) for i in train_idx]
        self.val_ids = [self._encode(self.tunes[i]) for i in val_idx]
        self.val_batch = torch.stack([self._window(ids, 0) for ids in self.val_ids]) \
            if self.val_ids else None
        torch.manual_seed(cfg.seed)  # dropout draws from the global generator
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                           betas=(0.9, 0.98), weight_decay=0.01)
        self.data_gen = torch.Generator().manual_seed(cfg.seed * 2 + 1)
        # the most common controls: what the samples and the exported defaults play
        self.common = Counter((t.piece.style, t.piece.ts, t.piece.mode)
                              for t in self.tunes).most_common(1)[0][0]

    def _encode(self, tune: Tune) -> tuple[torch.Tensor, list[int]]:
        ids = encode_piece(tune.piece, self.vocab)
        body = torch.tensor(ids[PREFIX_LEN:], dtype=torch.long)
        bars = [i for i, t in enumerate(body.tolist()) if t == self.vocab.bar]
        return torch.cat([torch.tensor(ids[:PREFIX_LEN]), body]), bars

    def _window(self, item: tuple[torch.Tensor, list[int]], start: int) -> torch.Tensor:
        """The prefix, then ctx + 1 - PREFIX_LEN tokens of the music from a bar line
        (padded with <pad> = 0, which the loss ignores)."""
        ids, _bars = item
        body = ids[PREFIX_LEN + start: PREFIX_LEN + start + self.ctx + 1 - PREFIX_LEN]
        seq = torch.zeros(self.ctx + 1, dtype=torch.long)
        seq[:PREFIX_LEN] = ids[:PREFIX_LEN]
        seq[PREFIX_LEN:PREFIX_LEN + len(body)] = body
        return seq

    def _batch(self) -> torch.Tensor:
        rows = []
        for _ in range(self.config.batch):
            k = int(torch.randint(len(self.train_ids), (1,), generator=self.data_gen))
            item = self.train_ids[k]
            bars = item[1]
            start = 0
            if bars and float(torch.rand((), generator=self.data_gen)) >= 0.25:
                start = bars[int(torch.randint(len(bars), (1,), generator=self.data_gen))]
            rows.append(self._window(item, start))
        return torch.stack(rows)

    def _loss(self, seq: torch.Tensor) -> torch.Tensor:
        """Next-token loss on the music, not on the conditioning (the user gives that)."""
        seq = seq.to(self.device)
        x, y = seq[:, :-1], seq[:, 1:].clone()
        y[:, : PREFIX_LEN - 1] = 0
        logits, _ = self.model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=0)

    def train_step(self) -> float:
        self.model.train()
        loss = self._loss(self._batch())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if self.val_batch is None:
            return None
        self.model.eval()
        loss = float(self._loss(self.val_batch))
        self.model.train()
        return loss

    @torch.no_grad()
    def bars(self, seed: int, n_bars: int = SAMPLE_BARS, piece: Piece | None = None
             ) -> list[Note]:
        """`n_bars` bars the network writes now, from a seed (tonic C)."""
        style, ts, mode = self.common
        piece = piece or Piece(style, "none", mode, ts)
        self.model.eval()
        try:
            return compose(self.model, self.vocab, piece, n_bars,
                           SamplingParams(max_chord=4 if piece.style == "chorale" else 2),
                           torch.Generator().manual_seed(seed))
        finally:
            self.model.train()

    def samples(self) -> list[Sample]:
        _style, ts, mode = self.common
        qpm = 100.0
        out = []
        for seed in SAMPLE_SEEDS:
            notes = self.bars(seed)
            sec = 60.0 / (qpm * TICKS_PER_QUARTER)
            length = bar_ticks(ts)
            perf = [PerfNote((n.bar * length + n.pos) * sec,
                             (n.bar * length + n.pos + n.dur) * sec, n.pitch, 80)
                    for n in notes]
            data = midi_bytes(perf, {0: 0}, qpm, ts, key=(0, mode))
            out.append(Sample("midi", data, f"seed {seed}: {SAMPLE_BARS} bars, {ts}, C {mode}"))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "torch_rng": torch.get_rng_state(), "data_gen": self.data_gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.model.head.weight = self.model.tok.weight  # keep the tie
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.data_gen.set_state(state["data_gen"])

    def data_summary(self) -> dict[str, Any]:
        assert self.tunes is not None
        return {
            "pieces": len(self.tunes),
            "by_time_signature": dict(Counter(t.piece.ts for t in self.tunes)),
            "by_mode": dict(Counter(t.piece.mode for t in self.tunes)),
            "by_key": dict(Counter(f"{PITCH_NAMES[t.tonic]} {t.piece.mode}"
                                   for t in self.tunes)),
            # what an open control is drawn from (engines/composer/engine.py)
            "controls": [[list(c), n] for c, n in
                         sorted(Counter(t.controls() for t in self.tunes).items())],
        }

    def export(self, out_dir: Path) -> Path:
        cfg = self.config
        meta = {"name": cfg.name, "fine_tuned_from": cfg.base, "recipe": self.id,
                "fine_tune": {"steps": cfg.steps, "lr": cfg.lr, "batch": cfg.batch,
                              "ctx": self.ctx, "seed": cfg.seed},
                "data": self.data_summary()}
        model = copy.deepcopy(self.model).cpu().eval()
        return publish_folder(out_dir, cfg.name,
                              lambda tmp: save_pretrained(tmp, model, self.vocab.tokens, meta))

    def card_facts(self) -> dict[str, Any]:
        summary = self.data_summary()
        return {
            "Network": f"{self.model.num_params():,} parameters, context {self.ctx} events",
            "Metres": ", ".join(f"{k} ({v})" for k, v in summary["by_time_signature"].items()),
            "Keys": ", ".join(f"{k} ({v})" for k, v in summary["by_key"].items()),
            "Learned vs rules": "the network learns the notes and rhythms; key, metre, form "
                                "and harmony stay rules (open ones follow the data)",
        }

