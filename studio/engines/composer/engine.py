"""builtin:composer — our own small symbolic music model, rendered with a GM soundfont.

generate(): prompt → controls (style, form, key, metre, tempo, instruments);
the tempo is nudged so a whole number of bars fills the requested duration;
the network samples every bar but the last, which is a cadence on the tonic;
each finished bar is arranged (key, accompaniment, accents), rendered at once
and, when previews are wanted, sent as the next audio chunk. The chunks are
exact slices of the final audio, so a player can start before the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core import paths
from studio.core.errors import ModelError, RequestError
from studio.core.requests import MusicRequest, Request
from studio.core.results import Preview, Result
from studio.core.settings import Settings
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.composer import arrange
from studio.engines.composer.compose import SamplingParams, blend_prefix, compose
from studio.engines.composer.model import WEIGHTS, ComposerLM, load_pretrained
from studio.engines.composer.prompt import (
    PITCH_NAMES,
    STYLE_DEFAULTS,
    Controls,
    model_form,
    parse_prompt,
    resolve,
)
from studio.engines.composer.render import (
    SAMPLE_RATE,
    PerfNote,
    StreamRenderer,
    fade_out,
    midi_bytes,
)
from studio.engines.composer.tokens import TICKS_PER_QUARTER, Note, Piece, Vocab, bar_ticks
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


def plan_bars(duration: float, ts: str, qpm: float) -> tuple[int, float]:
    """(bars, tempo) so that whole bars end a little before `duration` (the last one rings)."""
    ring = min(1.0, 0.1 * duration)
    room = max(0.2, duration - ring)
    bar_s = bar_ticks(ts) / TICKS_PER_QUARTER * 60.0 / qpm
    n = max(1, round(room / bar_s))
    tempo = qpm * n * bar_s / room
    return n, float(min(qpm * 1.25, max(qpm * 0.8, tempo)))


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
        folder = composer_dir()
        if not (folder / WEIGHTS).is_file():
            raise ModelError(
                f"The built-in composer has no weights in {folder}: {TRAIN_HINT}."
            )
        events.status("Loading the composer…")
        try:
            model, tokens, config = load_pretrained(folder)
            vocab = Vocab(tokens)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"The composer weights in {folder} cannot be read ({exc}); {TRAIN_HINT}."
            ) from exc
        if tokens != Vocab().tokens:
            raise ModelError(
                f"The composer weights in {folder} were trained for another event "
                f"vocabulary than this version of Studio; {TRAIN_HINT}."
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
        said = parse_prompt(request.prompt)
        c = resolve(said, request.seed)
        blend = self._blend(request, c)
        if blend is not None:
            c = blend[0]
        assert c.style and c.form and c.ts and c.mode and c.tonic is not None and c.qpm
        n_bars, qpm = plan_bars(request.duration, c.ts, c.qpm)
        total_s = float(request.duration)
        n_samples = round(total_s * SAMPLE_RATE)
        bar_s = bar_ticks(c.ts) / TICKS_PER_QUARTER * 60.0 / qpm
        chordal = c.style == "chorale"
        programs = {arrange.MELODY: int(c.program or 0)}
        if c.accompaniment and c.accomp_program is not None:
            programs[arrange.ACCOMP] = int(c.accomp_program)
        params = SamplingParams(temperature=request.temperature, top_k=request.top_k,
                                top_p=request.top_p, max_chord=4 if chordal else 2)
        levels = {ch: 1.0 if ch == arrange.MELODY else 0.6 for ch in programs}
        renderer = StreamRenderer(programs, levels=levels)
        articulation = {"fiddle": 0.9, "folksong": 0.95}.get(c.style, 1.0)
        perf: list[PerfNote] = []
        chunks: list[np.ndarray] = []
        written: list[Note] = []
        state = {"prev_root": 0}
        want_previews = events.wants_previews()

        def play(bar: int, bar_notes: list[Note], final: bool = False) -> None:
            written.extend(bar_notes)
            played = arrange.perform(
                bar_notes, ts=c.ts, qpm=qpm, tonic=c.tonic, program=programs[0],
                base_velocity=74 if chordal else 80, articulation=articulation,
                end_s=total_s)
            if final:
                played = hold_last(played, (bar + 1) * bar_s, total_s)
            if arrange.ACCOMP in programs:
                acc, state["prev_root"] = arrange.accompany_bar(
                    written, c.ts, c.mode, n_bars, bar, state["prev_root"],
                    sustained=c.style == "air")
                acc_played = arrange.perform(
                    acc, ts=c.ts, qpm=qpm, tonic=c.tonic, channel=arrange.ACCOMP,
                    program=programs[arrange.ACCOMP], base_velocity=56, end_s=total_s)
                if final:
                    acc_played = hold_last(acc_played, (bar + 1) * bar_s, total_s)
                played += acc_played
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
            events.progress(bar + 1, n_bars, f"bar {bar + 1} of {n_bars}")

        piece = Piece(c.style, model_form(c.form), c.mode, c.ts)
        prefix_embeds = None
        if blend is not None:
            prefix_embeds = blend_prefix(self.model, self.vocab, blend[1], blend[2],
                                         request.blend)
        lo, hi = STYLE_DEFAULTS[c.style]["register"]
        shift = arrange.tonic_offset(c.tonic)
        first_top = (lo - shift, hi - shift)  # the register is for the sounding key
        generator = cpu_generator(request.seed)
        events.progress(0, n_bars, "composing")
        try:
            with torch.inference_mode(), one_thread():
                notes = compose(self.model, self.vocab, piece, n_bars - 1, params, generator,
                                on_bar=play, check=events.check_cancelled, first_top=first_top,
                                prefix_embeds=prefix_embeds)
            ending = arrange.cadence(notes, n_bars - 1, c.ts, c.mode, chordal)
            play(n_bars - 1, ending, final=True)
        finally:
            renderer.close()
        audio = np.concatenate(chunks, axis=1)[:, :n_samples]
        audio = _pad(audio, n_samples)
        midi = midi_bytes(perf, programs, qpm, c.ts,
                          names={0: GM_NAMES.get(programs[0], "melody"),
                                 1: GM_NAMES.get(programs.get(1, 0), "accompaniment")})
        info = self._info(said, c, n_bars, qpm, written, renderer, time.perf_counter() - t0)
        if blend is not None:
            info["blend"] = {"toward": request.blend_prompt, "weight": request.blend}
        return Result(request=request, modality="music", audio=audio, sample_rate=SAMPLE_RATE,
                      extras={".mid": midi}, info=info)

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
            "style": c.style,
            "form": c.form,
            "key": f"{PITCH_NAMES[c.tonic or 0]} {c.mode}",
            "time_signature": c.ts,
            "tempo_qpm": round(qpm, 1),
            "bars": n_bars,
            "instrument": GM_NAMES.get(c.program or 0, f"GM program {c.program}"),
            "program": c.program,
            "accompaniment": (GM_NAMES.get(c.accomp_program or 0, str(c.accomp_program))
                              if c.accompaniment else None),
            "notes": len(notes),
            "from_prompt": heard,
            "soundfont": renderer.soundfont.name,
            "seconds": round(seconds, 2),
        }


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
