"""Requests: the whole recipe of a generation, validated before any work starts.

A request is plain data. Same request + same model + same device gives the same
output, and the request is saved beside every output so that it can be replayed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from studio.core import music
from studio.core.errors import RequestError
from studio.core.fields import Meta, check, check_seed, check_text, coerce, param
from studio.core.seeds import draw_seed

SCHEDULERS: tuple[str, ...] = (
    "Euler",
    "Euler a",
    "DPM++ 2M",
    "DPM++ 2M Karras",
    "DDIM",
    "UniPC",
    "LCM",
)

MAX_SIDE = 4096
MAX_BATCH = 16

#: every request kind by name, for Request.from_dict; filled as the classes are defined.
#: `studio.core` imports the explorer's module, so its kind is here whatever imports first.
REQUEST_TYPES: dict[str, type[Request]] = {}


@dataclass(frozen=True)
class Request:
    """Base of every request: a model id and a seed, plus modality-specific fields."""

    kind: ClassVar[str] = ""
    model: str = ""
    prompt: str = ""
    seed: int = -1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:  # every kind registers itself, wherever it is defined (explore.py)
            REQUEST_TYPES[cls.kind] = cls

    def validate(self) -> None:
        """Raise RequestError with one clear sentence for the first bad field."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise RequestError("Choose a model first.")
        check_text(self.prompt, "The prompt")
        check_seed("seed", self.seed)

    def resolved(self) -> Request:
        """A copy with every 'random' seed replaced by a drawn one (what gets recorded)."""
        changes: dict[str, Any] = {
            f.name: draw_seed()
            for f in dataclasses.fields(self)
            if f.name.endswith("seed") and getattr(self, f.name) == -1 and self._draws(f.name)
        }
        return dataclasses.replace(self, **changes) if changes else self

    def _draws(self, name: str) -> bool:
        """Whether a -1 in this seed field should be drawn (overridden where optional)."""
        return True

    def replace(self, **changes: Any) -> Request:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        """Build (and coerce) a request from a dict; unknown keys are ignored."""
        kind = data.get("kind", cls.kind)
        target = REQUEST_TYPES.get(kind) if cls is Request else cls
        if target is None:
            raise RequestError(f"Unknown request kind {kind!r}.")
        hints = typing.get_type_hints(target)
        kwargs = {
            f.name: coerce(f.name, hints[f.name], data[f.name])
            for f in dataclasses.fields(target)
            if f.name in data
        }
        return target(**kwargs)


# Fields the image and explorer requests share (one range, label and tip for both).
STEPS = Meta(label="Steps", low=1, high=1000, step=1, flag="--steps",
             tip="Denoising steps: more is slower and usually finer")
CFG = Meta(label="CFG scale", short="CFG", low=0.0, high=50.0, step=0.5, decimals=1,
           flag="--guidance", tip="CFG scale: how closely to follow the prompt")
WIDTH = Meta(label="Width", low=64, high=MAX_SIDE, step=8, suffix=" px", flag="--width",
             tip="Width in pixels (a multiple of 8)")
HEIGHT = Meta(label="Height", low=64, high=MAX_SIDE, step=8, suffix=" px", flag="--height",
              tip="Height in pixels (a multiple of 8)")
SCHEDULER = Meta(label="Sampler", flag="--scheduler",
                 tip="The sampler (scheduler) that walks from noise to picture")
NEGATIVE = Meta(label="Negative prompt", flag="--negative", tip="What to avoid (optional)")


def check_side(name: str, side: int) -> None:
    """A picture side (already checked for range) must be a multiple of 8 (the VAE's)."""
    if side % 8:
        raise RequestError(f"{name} must be a multiple of 8, not {side}.")


def check_scheduler(scheduler: str) -> None:
    if scheduler not in SCHEDULERS:
        raise RequestError(
            f"Unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}."
        )


@dataclass(frozen=True)
class ImageRequest(Request):
    """Text-to-image with a diffusion pipeline."""

    kind: ClassVar[str] = "image"
    negative: str = param("", NEGATIVE)
    steps: int = param(20, STEPS)
    guidance: float = param(7.0, CFG)
    width: int = param(512, WIDTH)
    height: int = param(512, HEIGHT)
    scheduler: str = param("Euler a", SCHEDULER)
    batch_size: int = param(1, label="Batch size", short="Batch", low=1, high=MAX_BATCH,
                            flag="--batch", tip="How many pictures one click makes")
    variation_seed: int = param(-1, label="Variation seed", flag="--variation-seed",
                                tip="A second seed whose noise is blended in")
    variation_strength: float = param(
        0.0, label="Variation strength", short="Strength", low=0.0, high=1.0, step=0.05,
        flag="--variation-strength",
        tip="How much of the variation seed's noise: small gives close variations")

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.negative, str):
            raise RequestError("The negative prompt must be text.")
        check_text(self.negative, "The negative prompt")
        check(self, "steps")
        check(self, "guidance")
        for name in ("width", "height"):
            check(self, name)
            check_side(name.capitalize(), getattr(self, name))
        check_scheduler(self.scheduler)
        check(self, "batch_size")
        check_seed("variation seed", self.variation_seed)
        check(self, "variation_strength")

    def _draws(self, name: str) -> bool:
        return name != "variation_seed" or self.variation_strength > 0


@dataclass(frozen=True)
class TextRequest(Request):
    """Text generation with a causal language model."""

    kind: ClassVar[str] = "text"
    system: str = param("", label="System prompt", flag="--system",
                        tip="system prompt (instruct models)")
    max_new_tokens: int = param(256, label="Max new tokens", short="Max tokens", low=1,
                                high=32768, flag="--max-tokens",
                                tip="The most new tokens (word pieces) to write")
    temperature: float = param(0.7, label="Temperature", low=0.0, high=5.0, step=0.05,
                               flag="--temperature",
                               tip="Randomness: 0 always picks the likeliest word; "
                                   "higher is wilder")
    top_p: float = param(0.95, label="Top-p", low=0.0, high=1.0, step=0.01, flag="--top-p",
                         tip="Nucleus sampling: keep the likeliest words that add up to this "
                             "probability (1 = off)")
    top_k: int = param(50, label="Top-k", low=0, high=100000, flag="--top-k",
                       tip="Keep only this many likeliest words at each step (0 = off)")
    repetition_penalty: float = param(1.1, label="Repetition penalty", short="Repetition",
                                      low=0.5, high=5.0, step=0.05,
                                      flag="--repetition-penalty",
                                      tip="Above 1 discourages repeating words already used")
    stop: tuple[str, ...] = ()
    continuation: str = ""  # text already generated for this prompt, to be extended
    preset: str = ""  # a writing form (studio.core.presets): "haiku", "list:5", ...
    history: tuple[str, ...] = ()  # earlier chat turns, user first (studio.core.chat)

    def validate(self) -> None:
        super().validate()
        check_text(self.system, "The system prompt")
        check_text(self.continuation, "The text to continue")
        if not self.prompt.strip() and not self.continuation:
            raise RequestError("Write a prompt first.")
        if any(not isinstance(t, str) for t in self.history):
            raise RequestError("The turns of a conversation must be text.")
        from studio.core import presets

        preset = presets.get(self.preset)  # one sentence for an unknown preset
        if preset is not None:
            presets.check_stops(preset, self.stop)
        for name in ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty"):
            check(self, name)
        if any(not isinstance(s, str) or s == "" for s in self.stop):
            raise RequestError("Stop strings must be non-empty text.")
        for s in self.stop:
            check_text(s, "A stop string")


@dataclass(frozen=True)
class MusicRequest(Request):
    """Text-to-music (MusicGen or the built-in composer)."""

    kind: ClassVar[str] = "music"
    duration: float = param(10.0, label="Duration", low=0.5, high=600.0, step=1.0, decimals=1,
                            suffix=" s", flag="--seconds", tip="Length of the piece in seconds")
    temperature: float = param(1.0, label="Temperature", low=0.0, high=5.0, step=0.05,
                               flag="--temperature",
                               tip="Higher is more adventurous; 0 always picks the likeliest")
    top_k: int = param(250, label="Top-k", low=0, high=100000, flag="--top-k",
                       tip="Sample among the k likeliest tokens (0 = no limit)")
    top_p: float = param(0.0, label="Top-p", low=0.0, high=1.0, step=0.05, flag="--top-p",
                         tip="Nucleus sampling: keep the likeliest tokens up to this "
                             "probability mass (0 = off)")
    guidance: float = param(3.0, label="Guidance", low=0.0, high=50.0, step=0.5, decimals=1,
                            flag="--guidance",
                            tip="Guidance (CFG): how closely to follow the prompt; "
                                "1 or less turns it off (twice as fast)")
    # Latent blend: 0 conditions on `prompt` only, 1 on `blend_prompt` only.
    blend_prompt: str = param("", label="Blend prompt", short="Toward", flag="--blend-prompt",
                              tip="A second prompt to blend the conditioning toward")
    blend: float = param(0.0, label="Blend", low=0.0, high=1.0, step=0.01,
                         flag="--blend",
                         tip="0 % is only the prompt, 100 % only the blend prompt")
    # The composer's controls (studio/core/music.py): "auto" leaves each to the prompt
    # words and the seed; MusicGen reads only extend_from (and the prompt).
    key: str = param("auto", label="Key", flag="--key",
                     tip='Key and mode, e.g. "D minor" (auto: from the prompt)')
    meter: str = param("auto", label="Metre", flag="--meter",
                       tip="Time signature, e.g. 6/8 (auto: from the prompt or the form)")
    bpm: float = param(0.0, label="Tempo", low=0.0, high=300.0, step=1.0, decimals=0,
                       suffix=" bpm", flag="--bpm",
                       tip="Beats a minute of the conducted beat (0 = auto, from tempo words)")
    form: str = param("auto", label="Form", flag="--form",
                      tip="Phrase plan: AABB, AABA, AAB, ABAB, verse-chorus, phrases, through")
    style: str = param("auto", label="Style", flag="--style",
                       tip="chorale, fiddle, air, folksong or chinese (auto: from the prompt)")
    instruments: str = param("auto", label="Instruments", flag="--instruments",
                             tip="Comma-separated: the first plays the tune, e.g. violin,guitar")
    soundfont: str = param("auto", label="Soundfont", flag="--soundfont",
                           tip="A .sf2 in models/soundfonts (auto: FluidR3 when installed)")
    motif: str = param("", label="Motif", flag="--motif",
                       tip="A MIDI file whose notes the piece starts from and continues")
    extend_from: str = param("", label="Extend", flag="--extend",
                             tip="A Studio piece to continue; the duration is what is added")
    stems: bool = param(False, label="Stems", tip="Also write a WAV per instrument")

    def validate(self) -> None:
        super().validate()
        for name in ("duration", "temperature", "top_k", "top_p", "guidance"):
            check(self, name)
        if not isinstance(self.blend_prompt, str):
            raise RequestError("The blend prompt must be text.")
        check_text(self.blend_prompt, "The blend prompt")
        check(self, "blend")
        if self.blend > 0 and not self.blend_prompt.strip():
            raise RequestError("Write a prompt to blend toward, or set the blend to 0.")
        check(self, "bpm")
        music.check_controls(self.key, self.meter, self.bpm, self.form, self.style,
                             self.instruments, self.soundfont)
        music.check_source(self.motif, "motif", (".mid", ".midi"))
        music.check_source(self.extend_from, "piece to extend", (".wav", ".flac", ".mid"))
        if not isinstance(self.stems, bool):
            raise RequestError("Stems must be on or off.")


def register_request_type(cls: type[Request]) -> type[Request]:
    """Record a request kind for Request.from_dict (every subclass with a kind does this
    when it is defined; kept for explicit use)."""
    REQUEST_TYPES[cls.kind] = cls
    return cls
