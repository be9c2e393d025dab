"""builtin:composer — our own small symbolic music model, rendered with a GM soundfont.

generate(): prompt → controls (style, form, key, metre, tempo, instruments);
the tempo is nudged so a whole number of bars fills the requested duration;
the network samples every bar but the last, which is a cadence on the tonic;
each finished bar is arranged (key, accompaniment, accents), rendered at once
and, when previews are wanted, sent as the next audio chunk. The chunks are
exact slices of the final audio, so a player can start before the end.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core import music, paths
from studio.core.composer_prompt import (
    PITCH_NAMES,
    STYLE_DEFAULTS,
    Controls,
    describe,
    model_form,
    parse_prompt,
    resolve,
    understand,
)
from studio.core.errors import ModelError, RequestError
from studio.core.midi import MARKER, MidiData, read_midi, read_notes
from studio.core.requests import MusicRequest, Request
from studio.core.results import Preview, Result
from studio.core.settings import Settings
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.composer import arrange, form, satb, voiceleading
from studio.engines.composer.compose import SamplingParams, blend_prefix, compose
from studio.engines.composer.model import WEIGHTS, ComposerLM, load_pretrained
from studio.engines.composer.render import (
    SAMPLE_RATE,
    PerfNote,
    StreamRenderer,
    fade_out,
    midi_bytes,
)
from studio.engines.composer.tokens import (
    PITCH_MAX,
    PITCH_MIN,
    TICKS_PER_QUARTER,
    Note,
    Piece,
    Vocab,
    bar_ticks,
    beat_quarters,
    nearest_duration,
)
from studio.engines.devices import cpu_generator, module_bytes

TRAIN_HINT = (
    "train it with `python models/composer/prepare.py` and then "
    "`python models/composer/train.py` (about half an hour on two CPU cores)"
)

GM_NAMES = {
    0: "piano", 1: "bright piano", 4: "electric piano", 6: "harpsichord", 19: "church organ",
    20: "reed organ", 21: "accordion", 22: "harmonica", 24: "nylon guitar", 25: "steel guitar",
    40: "violin", 41: "viola", 42: "cello", 43: "contrabass", 46: "harp", 48: "strings",
    52: "choir", 53: "voice", 56: "trumpet", 60: "french horn", 68: "oboe", 70: "bassoon",
    71: "clarinet", 72: "piccolo", 73: "flute", 74: "recorder", 75: "pan flute",
    78: "whistle", 105: "banjo", 107: "koto", 109: "bagpipe", 110: "fiddle",
}


def composer_dir() -> Path:
    return paths.bundled_models_dir() / "composer"


def plan_bars(duration: float, ts: str, qpm: float, slack: float = 0.25,
              multiple: int = 1) -> tuple[int, float]:
    """(bars, tempo) so that whole bars end a little before `duration` (the last one rings).

    The tempo moves by at most `slack` (0.25: from 0.8x to 1.25x; 0: the tempo asked,
    exactly) and, where the piece is long enough, the bars are a whole number of the
    form's sections.
    """
    ring = min(1.0, 0.1 * duration)
    room = max(0.2, duration - ring)
    bar_s = bar_ticks(ts) / TICKS_PER_QUARTER * 60.0 / qpm
    n = max(1, math.floor(room / bar_s + 1e-9) if slack == 0 else round(room / bar_s))
    if multiple > 1 and n >= multiple:
        n = (n // multiple if slack == 0 else max(1, round(n / multiple))) * multiple
    tempo = qpm * n * bar_s / room
    tempo = float(min(qpm * (1 + slack), max(qpm / (1 + slack), tempo)))
    while n > 1 and n * bar_s * qpm / tempo > duration - 0.05:
        n -= multiple if n > multiple else 1  # the tempo could not stretch that far
    return n, tempo


class ComposerEngine(Engine):
    """A ~1 M-parameter event transformer; always runs on the CPU (it is tiny)."""

    kinds = ("music",)

    def __init__(self, spec: LoadSpec, model: ComposerLM, vocab: Vocab,
                 config: dict[str, Any], folder: Path) -> None:
        super().__init__(spec)
        self.model = model
        self.vocab = vocab
        self.config = config
        self.folder = folder

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> ComposerEngine:
        # the built-in's folder, or a composer fine-tuned in the Lab (a folder of the same
        # files: engines/training/composer.py)
        builtin = spec.model.startswith("builtin:")
        folder = composer_dir() if builtin else Path(spec.model).expanduser()
        hint = TRAIN_HINT if builtin else "train it again in the Lab"
        if not (folder / WEIGHTS).is_file():
            what = "The built-in composer" if builtin else f"The composer {folder.name}"
            raise ModelError(f"{what} has no weights in {folder}: {hint}.")
        events.status("Loading the composer…")
        try:
            model, tokens, config = load_pretrained(folder)
            vocab = Vocab(tokens)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"The composer weights in {folder} cannot be read ({exc}); {hint}."
            ) from exc
        if tokens != Vocab().tokens:
            raise ModelError(
                f"The composer weights in {folder} were trained for another event "
                f"vocabulary than this version of Studio; {hint}."
            )
        return cls(LoadSpec(spec.model, "cpu", "float32"), model, vocab, config, folder)

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def unload(self) -> None:
        self.model = None  # type: ignore[assignment]

    def generate(self, request: Request, events: Events) -> Result:
        if not isinstance(request, MusicRequest):
            raise RequestError(wrong_kind(self.spec.model, request.kind, "music"))
        t0 = time.perf_counter()
        soundfont = music.soundfont_path(request.soundfont)
        source = read_source(request) if request.extend_from.strip() else None
        blend = None
        if source is not None:
            said, c = source.controls, source.controls
        else:
            said, c = understand(request)
            c = self._data_controls(said, c, request.seed)
            blend = self._blend(request, c)
            if blend is not None:
                c = blend[0]
        motif = read_motif(request, said, c) if request.motif.strip() else None
        if motif is not None:
            c = motif.controls
        assert c.style and c.form and c.ts and c.mode and c.tonic is not None and c.qpm
        # a tempo asked for (bpm, a tempo word, a motif, a piece to extend) is kept exactly
        exact_tempo = c.bpm is not None or c.tempo_word is not None or source is not None
        plan_s = float(request.duration)
        start_bar = 0
        bar_s = bar_ticks(c.ts) / TICKS_PER_QUARTER * 60.0 / c.qpm
        if source is not None:  # the new bars start after the piece's own end
            start_bar = math.ceil(source.duration / bar_s - 1e-6)
            plan_s = max(0.5, source.duration + request.duration - start_bar * bar_s)
        n_new, qpm = plan_bars(plan_s, c.ts, c.qpm, slack=0.0 if exact_tempo else 0.25,
                               multiple=form.bar_multiple(c.structure or "through", c.ts))
        total_s = float(request.duration) + (source.duration if source else 0.0)
        n_samples = round(total_s * SAMPLE_RATE)
        n_bars = start_bar + n_new
        bar_s = bar_ticks(c.ts) / TICKS_PER_QUARTER * 60.0 / qpm
        chordal = c.style == "chorale"
        layout = plan_layout(c, chordal)
        params = SamplingParams(temperature=request.temperature, top_k=request.top_k,
                                top_p=request.top_p, max_chord=4 if chordal else 2)
        prefix_embeds = None
        if blend is not None:
            prefix_embeds = blend_prefix(self.model, self.vocab, blend[1], blend[2],
                                         request.blend)
        shape = form.plan(c.structure or "through", n_new, c.ts)
        given: dict[int, list[Note]] = {}
        if source is not None:
            given = source.melody_bars(c, qpm)
        elif motif is not None:
            given = {b: ns for b, ns in motif.bars.items() if b < n_new - 1}
        lo, hi = STYLE_DEFAULTS[c.style]["register"]
        shift = arrange.tonic_offset(c.tonic)
        generator = cpu_generator(request.seed)
        events.progress(0, n_bars, "composing")
        with torch.inference_mode(), one_thread():
            bars = self._compose(c, shape, start_bar, given, params, generator, events,
                                 (lo - shift, hi - shift), prefix_embeds, chordal, n_bars)
        melody = [n for b in sorted(bars) for n in bars[b]]
        cadences = {start_bar + b.index: b.cadence for b in shape.bars if b.cadence}
        if chordal:
            sop_range = voiceleading.RANGES["soprano"]
            soprano = satb.soprano_line([n for n in melody if n.bar >= start_bar], c.ts,
                                        c.mode, sop_range[0] - shift, sop_range[1] - shift)
            voices = satb.harmonise(_rebar(soprano, -start_bar), c.ts, c.mode, n_new,
                                    {b - start_bar: k for b, k in cadences.items()}, shift)
            parts = {ch: _rebar(v, start_bar) for ch, v in enumerate(voices)}
        else:
            parts = {arrange.MELODY: [n for n in melody if n.bar >= start_bar]}
        renderer = StreamRenderer(layout.programs, soundfont=soundfont, levels=layout.levels)
        perf: list[PerfNote] = list(source.perf) if source is not None else []
        try:
            audio = self._render(c, qpm, layout, parts, melody, cadences, start_bar, n_bars,
                                 total_s, renderer, perf, events, chordal, source)
        finally:
            renderer.close()
        audio = _pad(audio, n_samples)
        marker = make_marker(c, qpm, n_bars, total_s, layout)
        midi = midi_bytes(perf, layout.programs, qpm, c.ts, names=layout.names,
                          key=(c.tonic, c.mode), marker=marker)
        extras: dict[str, bytes] = {".mid": midi}
        if request.stems:
            extras.update(stems(perf, layout, total_s, soundfont))
        info = self._info(said, c, n_bars, qpm, melody, renderer, time.perf_counter() - t0)
        info.update(form_info(shape, bars, start_bar, c.mode, c.ts, layout, parts, c.tonic, qpm))
        if blend is not None:
            info["blend"] = {"toward": request.blend_prompt, "weight": request.blend}
        if source is not None:
            info["extended"] = {"from": request.extend_from, "seconds": request.duration,
                                "original_seconds": round(source.duration, 3),
                                "first_new_bar": start_bar}
        if motif is not None:
            info["motif"] = {"file": request.motif, "bars": len(given)}
        return Result(request=request, modality="music", audio=audio, sample_rate=SAMPLE_RATE,
                      extras=extras, info=info)

    def _compose(self, c: Controls, shape: form.Plan, start_bar: int,
                 given: dict[int, list[Note]], params: SamplingParams,
                 generator: torch.Generator, events: Events, first_top: tuple[int, int],
                 prefix_embeds: torch.Tensor | None, chordal: bool,
                 n_bars: int) -> dict[int, list[Note]]:
        """The notes of every bar (tonic-normalised), bar by bar through the form's plan:
        given bars as they are, copies from their source, new and varied bars sampled
        with the music before them as context, cadences constrained, the last bar the
        final cadence."""
        assert c.style and c.ts and c.mode
        piece = Piece(c.style, model_form(c.form), c.mode, c.ts)
        bars: dict[int, list[Note]] = {}
        plan_bars_ = shape.bars
        done = 0

        def put(index: int, notes: list[Note]) -> None:
            nonlocal done
            bars[index] = [replace(n, bar=index) for n in notes]
            done += 1
            events.progress(start_bar + done, n_bars, f"bar {start_bar + done} of {n_bars}")

        for b, notes in given.items():
            if b < start_bar:
                bars[b] = notes  # the piece being extended: its bars, not counted again
        i = 0
        while i < len(plan_bars_):
            bp = plan_bars_[i]
            at = start_bar + bp.index
            events.check_cancelled()
            if at in given and at >= start_bar:
                put(at, given[at])
                i += 1
                continue
            if bp.cadence == form.FINAL:
                before = [n for k in sorted(bars) for n in bars[k]]
                put(at, arrange.cadence(before, at, c.ts, c.mode, chordal))
                i += 1
                continue
            if bp.kind == "copy":
                assert bp.source is not None
                put(at, bars.get(start_bar + bp.source, []))
                i += 1
                continue
            j = i
            while (j < len(plan_bars_) and plan_bars_[j].kind != "copy"
                   and plan_bars_[j].cadence != form.FINAL
                   and start_bar + plan_bars_[j].index not in given):
                j += 1
            cadences = {start_bar + plan_bars_[k].index:
                        form.cadence_pcs(plan_bars_[k].cadence or "", c.mode)
                        for k in range(i, j) if plan_bars_[k].cadence}
            primer = [n for k in sorted(bars) if k < at for n in bars[k]]
            new = compose(self.model, self.vocab, piece, j - i, params, generator,
                          check=events.check_cancelled,
                          first_top=first_top if at == 0 else None,
                          prefix_embeds=prefix_embeds, primer=primer, primer_bars=at,
                          cadences=cadences)
            by_bar: dict[int, list[Note]] = {}
            for n in new:
                by_bar.setdefault(n.bar, []).append(n)
            for k in range(i, j):
                put(start_bar + plan_bars_[k].index, by_bar.get(start_bar + plan_bars_[k].index,
                                                                 []))
            i = j
        return bars

    def _render(self, c: Controls, qpm: float, layout: Layout, parts: dict[int, list[Note]],
                melody: list[Note], cadences: dict[int, str], start_bar: int, n_bars: int,
                total_s: float, renderer: StreamRenderer, perf: list[PerfNote],
                events: Events, chordal: bool, source: SourcePiece | None) -> np.ndarray:
        """Perform and render bar by bar; each bar's audio is a preview chunk."""
        assert c.ts and c.mode and c.tonic is not None
        bar_s = bar_ticks(c.ts) / TICKS_PER_QUARTER * 60.0 / qpm
        want_previews = events.wants_previews()
        articulation = {"fiddle": 0.9, "folksong": 0.95}.get(c.style or "", 1.0)
        roots = {b: (7 if k == form.HALF else 0) for b, k in cadences.items()}
        chunks: list[np.ndarray] = []
        prev_root = 0
        renderer.add(perf)  # the piece being extended, note for note
        by_part = {ch: _by_bar(notes) for ch, notes in parts.items()}
        for bar in range(start_bar, n_bars):
            events.check_cancelled()
            final = bar == n_bars - 1
            played: list[PerfNote] = []
            for ch, notes in by_part.items():
                program = layout.programs[ch] if not chordal else -1
                p = arrange.perform(notes.get(bar, []), ts=c.ts, qpm=qpm, tonic=c.tonic,
                                    channel=ch, program=program,
                                    base_velocity=74 if chordal else 80,
                                    articulation=articulation, end_s=total_s)
                played += hold_last(p, (bar + 1) * bar_s, total_s) if final else p
            if arrange.ACCOMP in layout.programs and not chordal:
                acc, prev_root = arrange.accompaniment(
                    melody, c.ts, c.mode, n_bars, c.style == "air", range(bar, bar + 1),
                    prev_root, cadence_roots=roots)
                acc_played = arrange.perform(
                    acc, ts=c.ts, qpm=qpm, tonic=c.tonic, channel=arrange.ACCOMP,
                    program=layout.programs[arrange.ACCOMP], base_velocity=56, end_s=total_s)
                played += hold_last(acc_played, (bar + 1) * bar_s, total_s) if final \
                    else acc_played
            perf.extend(played)
            renderer.add(played)
            horizon = total_s if final else min(total_s, (bar + 1) * bar_s)
            chunk = renderer.render_until(horizon)
            if final:
                chunk = fade_out(chunk, SAMPLE_RATE)
            chunks.append(chunk)
            if want_previews and chunk.shape[1]:
                events.preview(Preview("audio", chunk, step=bar + 1, total=n_bars,
                                       sample_rate=SAMPLE_RATE))
        if not chunks:
            chunks.append(fade_out(renderer.render_until(total_s), SAMPLE_RATE))
        return np.concatenate(chunks, axis=1)

    def _data_controls(self, said: Controls, c: Controls, seed: int) -> Controls:
        """A Lab fine-tune plays what its data played where the prompt leaves a control
        open: style, metre, key and mode of one of its pieces, drawn by the seed with the
        data's own frequencies (the built-in keeps its style defaults)."""
        table = (self.config.get("data") or {}).get("controls") \
            if self.config.get("fine_tuned_from") else None
        if not table:
            return c
        rng = random.Random(f"composer-data-{seed}")
        (style, ts, tonic, mode), = rng.choices([row[0] for row in table],
                                                 weights=[row[1] for row in table])
        # a dance or an instrument named picks its own style (and a dance its metre)
        style = said.style or (None if said.program is not None or said.form else style)
        filled = replace(said, style=style, ts=said.ts or (None if said.form else ts),
                         tonic=said.tonic if said.tonic is not None else int(tonic),
                         mode=said.mode or mode)
        return resolve(filled, seed)

    @staticmethod
    def _blend(request: MusicRequest, a: Controls) -> tuple[Controls, Piece, Piece] | None:
        """(controls to play, prompt's piece, blend prompt's piece), or None for no blend.

        The conditioning tokens are blended in embedding space (see `blend_prefix`); the
        discrete choices (style, key, metre, instruments) cannot be, so they come from
        the prompt with the larger weight (the first prompt at exactly 0.5), and the
        tempo is interpolated, as a number of quarter notes a minute.
        """
        w = float(request.blend)
        if w <= 0 or not request.blend_prompt.strip():
            return None
        b = resolve(parse_prompt(request.blend_prompt), request.seed)
        assert a.qpm and b.qpm
        chosen = b if w > 0.5 else a
        qpm = (1.0 - w) * a.qpm + w * b.qpm  # exactly a's at 0 and b's at 1
        pieces = [Piece(x.style or "", model_form(x.form), x.mode or "", x.ts or "")
                  for x in (a, b)]
        return replace(chosen, qpm=round(qpm, 2)), pieces[0], pieces[1]

    def _info(self, said: Controls, c: Controls, n_bars: int, qpm: float, notes: list[Note],
              renderer: StreamRenderer, seconds: float) -> dict[str, Any]:
        heard = {k: v for k, v in said.to_dict().items()
                 if v is not None and not (k == "tempo_factor" and v == 1.0)}
        return {
            "engine": "composer",
            "understood": describe(replace(c, qpm=qpm)),
            "style": c.style,
            "dance": c.form,
            "form": c.structure,
            "key": f"{PITCH_NAMES[c.tonic or 0]} {c.mode}",
            "time_signature": c.ts,
            "tempo_qpm": round(qpm, 1),
            "bpm": round(qpm / beat_quarters(c.ts or "4/4"), 1),
            "bars": n_bars,
            "instrument": GM_NAMES.get(c.program or 0, f"GM program {c.program}"),
            "program": c.program,
            "accompaniment": (GM_NAMES.get(c.accomp_program or 0, str(c.accomp_program))
                              if c.accompaniment else None),
            "instruments": [GM_NAMES.get(p, f"GM program {p}") for p in
                            dict.fromkeys(c.voices or tuple(
                                p for p in (c.program, c.accomp_program if c.accompaniment
                                            else None) if p is not None))],
            "notes": len(notes),
            "from_prompt": heard,
            "soundfont": renderer.soundfont.name,
            "seconds": round(seconds, 2),
        }


VOICE_NAMES = ("soprano", "alto", "tenor", "bass")


@dataclass(frozen=True)
class Layout:
    """The tracks of a piece: MIDI channel → program, loudness and track name."""

    programs: dict[int, int]
    levels: dict[int, float]
    names: dict[int, str]


def plan_layout(c: Controls, chordal: bool) -> Layout:
    if chordal:
        voices = c.voices or (int(c.program or 19),) * 4
        return Layout({i: int(p) for i, p in enumerate(voices)},
                      {i: 1.0 if i == 0 else 0.75 for i in range(4)},
                      dict(enumerate(VOICE_NAMES)))
    programs = {arrange.MELODY: int(c.program or 0)}
    if c.accompaniment and c.accomp_program is not None:
        programs[arrange.ACCOMP] = int(c.accomp_program)
    names = {arrange.MELODY: GM_NAMES.get(programs[0], "melody")}
    if arrange.ACCOMP in programs:
        names[arrange.ACCOMP] = GM_NAMES.get(programs[arrange.ACCOMP], "accompaniment")
    return Layout(programs, {ch: 1.0 if ch == arrange.MELODY else 0.6 for ch in programs},
                  names)


def make_marker(c: Controls, qpm: float, n_bars: int, total_s: float, layout: Layout) -> str:
    """The text event that lets a piece be extended: every control that shaped it."""
    programs = ",".join(str(layout.programs[ch]) for ch in sorted(layout.programs))
    return (f"{MARKER} style={c.style} dance={c.form} form={c.structure} tonic={c.tonic} "
            f"mode={c.mode} ts={c.ts} qpm={qpm:.6f} bars={n_bars} duration={total_s:.6f} "
            f"programs={programs}")


@dataclass
class SourcePiece:
    """A composer piece being extended: its controls, notes as played, and length."""

    controls: Controls
    perf: list[PerfNote]
    duration: float
    midi: MidiData

    def melody_bars(self, c: Controls, qpm: float) -> dict[int, list[Note]]:
        """Its tune (track 0) as tonic-normalised bars: what the continuation reads."""
        assert c.ts and c.tonic is not None
        melody = self.midi.tracks[0].notes if self.midi.tracks else []
        octave = 0 if c.style == "chorale" else arrange.OCTAVE_SHIFT.get(c.program or 0, 0)
        shift = arrange.tonic_offset(c.tonic) + octave
        return _quantise([(n.start, n.end, n.pitch - shift) for n in melody], qpm, c.ts)


def read_source(request: MusicRequest) -> SourcePiece:
    """The composer piece `extend_from` names (its .mid, or the .mid beside its audio)."""
    path = Path(request.extend_from).expanduser()
    mid = path if path.suffix.lower() == ".mid" else path.with_suffix(".mid")
    if not mid.is_file():
        raise RequestError(
            f"{path.name} is not a composer piece from Studio (there is no {mid.name} beside "
            f"it), so the composer cannot extend it.")
    data = read_midi(mid)
    f = data.marker_fields()
    try:
        programs = tuple(int(x) for x in f["programs"].split(","))
        c = Controls(style=f["style"], form=f["dance"], tonic=int(f["tonic"]),
                     mode=f["mode"], ts=f["ts"], qpm=float(f["qpm"]),
                     bpm=float(f["qpm"]) / beat_quarters(f["ts"]), program=programs[0],
                     accomp_program=programs[1] if len(programs) == 2 else None,
                     accompaniment=len(programs) == 2, structure=f["form"],
                     voices=programs if f["style"] == "chorale" else ())
        duration = float(f["duration"])
    except (KeyError, ValueError, IndexError):
        raise RequestError(
            f"{mid.name} is not a composer piece from Studio (it has no Studio marker), so "
            f"the composer cannot extend it.") from None
    perf = [PerfNote(n.start, n.end, n.pitch, n.velocity, ch)
            for ch, track in enumerate(data.tracks) for n in track.notes]
    return SourcePiece(c, perf, duration, data)


@dataclass
class Motif:
    controls: Controls
    bars: dict[int, list[Note]]


def read_motif(request: MusicRequest, said: Controls, c: Controls) -> Motif:
    """The motif's notes as the opening bars; an open key, metre or tempo comes from it."""
    assert c.ts and c.qpm
    data = read_notes(Path(request.motif).expanduser())
    track = max((t for t in data.tracks if not t.is_drum and t.notes),
                key=lambda t: (len(t.notes), -t.notes[0].pitch if t.notes else 0), default=None)
    if track is None:
        raise RequestError(f"The MIDI file {Path(request.motif).name} has no notes.")
    changes: dict[str, Any] = {}
    if said.tonic is None:
        if data.key is not None:
            changes.update(tonic=data.key[0], mode=said.mode or data.key[1])
        else:  # the tune's last note is its tonic; its third says the mode
            tonic = track.notes[-1].pitch % 12
            pcs = [n.pitch % 12 for n in track.notes]
            minor = pcs.count((tonic + 3) % 12) > pcs.count((tonic + 4) % 12)
            changes.update(tonic=tonic, mode=said.mode or ("minor" if minor else "major"))
    if said.ts is None and data.time_signature in music.METERS:
        changes["ts"] = data.time_signature
    if said.bpm is None and said.tempo_word is None:
        ts = changes.get("ts", c.ts)
        changes.update(qpm=round(data.tempo_qpm, 3), bpm=data.tempo_qpm / beat_quarters(ts))
    c = replace(c, **changes)
    assert c.ts and c.tonic is not None and c.qpm
    octave = 0 if c.style == "chorale" else arrange.OCTAVE_SHIFT.get(c.program or 0, 0)
    shift = arrange.tonic_offset(c.tonic) + octave
    spans = [(n.start, n.end, n.pitch - shift) for n in track.notes]
    bars = _quantise(spans, data.tempo_qpm, c.ts, from_first=True)
    keep = sorted(bars)[:MOTIF_BARS]
    return Motif(c, {b: bars[b] for b in keep})


MOTIF_BARS = 8


def _quantise(spans: list[tuple[float, float, int]], qpm: float, ts: str,
              from_first: bool = False) -> dict[int, list[Note]]:
    """(start s, end s, pitch) → tonic-normalised Notes on the tick grid, by bar."""
    length = bar_ticks(ts)
    per_s = qpm / 60.0 * TICKS_PER_QUARTER
    ticks = [(round(a * per_s), round(b * per_s), p) for a, b, p in spans]
    offset = (min(t for t, _e, _p in ticks) // length) * length if from_first and ticks else 0
    out: dict[int, list[Note]] = {}
    for a, b, p in ticks:
        bar, pos = divmod(a - offset, length)
        pitch = min(PITCH_MAX, max(PITCH_MIN, p))
        out.setdefault(bar, []).append(Note(bar, pos, pitch, nearest_duration(max(1, b - a))))
    return out


def stems(perf: list[PerfNote], layout: Layout, total_s: float,
          soundfont: Path | None) -> dict[str, bytes]:
    """A WAV per track, rendered with the mix's own levels (so the stems add up to it)."""
    from studio.core.formats.audio import wav_bytes

    out: dict[str, bytes] = {}
    for ch in sorted(layout.programs):
        renderer = StreamRenderer(layout.programs, soundfont=soundfont, levels=layout.levels)
        try:
            renderer.add(n for n in perf if n.channel == ch)
            audio = fade_out(_pad(renderer.render_until(total_s), round(total_s * SAMPLE_RATE)),
                             SAMPLE_RATE)
        finally:
            renderer.close()
        slug = re.sub(r"[^a-z0-9]+", "-", layout.names.get(ch, f"track {ch}").lower()).strip("-")
        out[f".{ch + 1}-{slug or 'track'}.wav"] = wav_bytes(audio, SAMPLE_RATE)
    return out


def form_info(shape: form.Plan, bars: dict[int, list[Note]], start_bar: int, mode: str,
              ts: str, layout: Layout, parts: dict[int, list[Note]], tonic: int,
              qpm: float) -> dict[str, Any]:
    """The form as played and measured on the notes: repeats kept, cadences hit, and for a
    chorale its voices and their voice-leading faults."""
    def same(a: int, b: int) -> bool:
        key = lambda ns: sorted((n.pos, n.pitch, n.dur) for n in ns)  # noqa: E731
        return key(bars.get(a, [])) == key(bars.get(b, []))

    length = bar_ticks(ts)
    beat = round(beat_quarters(ts) * TICKS_PER_QUARTER)
    exact = sum(1 for b in shape.bars if b.kind == "copy" and b.source is not None
                and same(start_bar + b.index, start_bar + b.source))
    ends = [b for b in shape.bars if b.cadence]
    hits = 0
    for b in ends:
        last_beat = (start_bar + b.index) * length + max(0, length - beat)
        sounding = [n for k in (start_bar + b.index - 1, start_bar + b.index)
                    for n in bars.get(k, [])
                    if n.bar * length + n.pos + n.dur > last_beat]
        pcs = form.cadence_pcs(b.cadence or "", mode)
        hits += bool(sounding) and all(n.pitch % 12 in pcs for n in sounding)
    info: dict[str, Any] = {
        "form": shape.form,
        "sections": "".join(x if len(x) == 1 else "|" for x in shape.letters)
        if all(len(x) == 1 for x in shape.letters) else f"{len(shape.letters)} phrases",
        "section_bars": shape.section_length,
        "repeat_bars": len(shape.repeated()),
        "repeated_exactly": exact,
        "varied_bars": sum(1 for b in shape.bars if b.kind == "vary"),
        "cadences": len(ends),
        "cadence_hits": hits,
    }
    if len(layout.programs) == 4 and len(parts) == 4:
        sec = 60.0 / (qpm * TICKS_PER_QUARTER)
        shift = arrange.tonic_offset(tonic)
        spans = [[((n.bar * length + n.pos) * sec, (n.bar * length + n.pos + n.dur) * sec,
                   n.pitch + shift) for n in parts[ch]] for ch in range(4)]
        info["voices"] = {VOICE_NAMES[ch]: GM_NAMES.get(p, f"GM program {p}")
                          for ch, p in layout.programs.items()}
        info["voice_leading"] = voiceleading.counts(voiceleading.check(spans, tonic, mode))
    return info


def _rebar(notes: list[Note], delta: int) -> list[Note]:
    return [replace(n, bar=n.bar + delta) for n in notes]


def _by_bar(notes: list[Note]) -> dict[int, list[Note]]:
    out: dict[int, list[Note]] = {}
    for n in notes:
        out.setdefault(n.bar, []).append(n)
    return out


def hold_last(notes: list[PerfNote], bar_end: float, total_s: float) -> list[PerfNote]:
    """Let the notes that close the piece ring on (a fermata) until just before the end."""
    hold = max(total_s - 0.15, 0.0)
    return [PerfNote(n.start, max(n.end, hold), n.pitch, n.velocity, n.channel)
            if n.end >= min(bar_end, total_s) - 1e-3 else n for n in notes]


@contextmanager
def one_thread() -> Iterator[None]:
    """Sample on one thread: for a model this small, more threads only wait on each other
    (10x slower on a busy machine), and a fixed count keeps a seed's notes the same."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _pad(audio: np.ndarray, n: int) -> np.ndarray:
    """Exactly n samples: zero-padded or trimmed."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.concatenate([audio, np.zeros((audio.shape[0], n - audio.shape[1]),
                                           dtype=np.float32)], axis=1)
