"""Requests: the whole recipe of a generation, validated before any work starts.

A request is plain data. Same request + same model + same device gives the same
output, and the request is saved beside every output so that it can be replayed.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from studio.core import music
from studio.core.errors import RequestError
from studio.core.fields import Meta, check, check_seed, check_text, coerce, param
from studio.core.seeds import draw_seed

#: the samplers, by the names A1111 1.9 gives them (the schedule is a separate field)
SAMPLERS: tuple[str, ...] = (
    "Euler",
    "Euler a",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 3M SDE",
    "DDIM",
    "UniPC",
    "LCM",
)
#: names from before the schedule was its own field: still read (old recipes replay), and
#: they mean the sampler with that schedule when the schedule field says "Automatic"
LEGACY_SAMPLERS: dict[str, tuple[str, str]] = {"DPM++ 2M Karras": ("DPM++ 2M", "Karras")}
#: every sampler name a request accepts
SCHEDULERS: tuple[str, ...] = (*SAMPLERS, *LEGACY_SAMPLERS)
#: the schedule types, as A1111 1.9 names them. "Automatic" is the model's own timesteps
#: (its scheduler config); SGM Uniform spaces them from the last ("trailing")
SCHEDULES: tuple[str, ...] = ("Automatic", "Karras", "Exponential", "SGM Uniform")
#: samplers that only step on the model's timesteps: no Karras / Exponential sigmas
NO_SIGMA_SCHEDULES = frozenset({"Euler a", "DDIM", "LCM"})
#: the most CLIP layers clip skip may skip (SD 1.x's text encoder has 12)
MAX_CLIP_SKIP = 12

MAX_SIDE = 4096
MAX_BATCH = 16
#: the most pixels an init image may have (what fits in memory beside a model)
MAX_INIT_PIXELS = 8192 * 8192
INPAINT_AREAS = ("whole", "masked")
#: upscalers a hires fix always has; any other name is an upscaler model's id
BUILTIN_UPSCALERS = ("latent", "lanczos")
#: the audio a melody reference may be (what studio.core.formats.audio reads)
MELODY_SUFFIXES = (".wav", ".flac", ".ogg")

class RequestTypes(dict[str, "type[Request]"]):
    """Every request kind by name, for Request.from_dict; filled as the classes are defined.

    The kinds defined in their own modules (explorer, upscale) are imported the first time
    one is asked for, so every kind is known whatever imports first, and importing
    studio.core does not cost the explorer's module (start-up).
    """

    ELSEWHERE: ClassVar[dict[str, str]] = {"explore": "studio.core.explore",
                                           "upscale": "studio.core.upscale"}

    def __missing__(self, kind: str) -> type[Request]:
        module = self.ELSEWHERE.get(kind)
        if module is None:
            raise KeyError(kind)
        importlib.import_module(module)  # its class registers itself as it is defined
        return dict.__getitem__(self, kind)

    def get(self, kind: str, default: Any = None) -> Any:
        try:
            return self[kind]
        except KeyError:
            return default


REQUEST_TYPES: dict[str, type[Request]] = RequestTypes()


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
SCHEDULE = Meta(label="Schedule type", short="Schedule", flag="--schedule",
                tip="How the sampler spaces its noise levels: Automatic (the model's own), "
                    "Karras, Exponential or SGM Uniform")
CLIP_SKIP = Meta(label="Clip skip", low=1, high=MAX_CLIP_SKIP, step=1, flag="--clip-skip",
                 tip="Read the prompt from an earlier layer of the CLIP text encoder (2 for "
                     "many anime models); 1 is the last layer")
VAE = Meta(label="VAE", flag="--vae",
           tip="A separate VAE (a .safetensors file or a diffusers folder in models/VAE); "
               "Automatic: the model's own")
NEGATIVE = Meta(label="Negative prompt", flag="--negative", tip="What to avoid (optional)")


def check_side(name: str, side: int) -> None:
    """A picture side (already checked for range) must be a multiple of 8 (the VAE's)."""
    if side % 8:
        raise RequestError(f"{name} must be a multiple of 8, not {side}.")


def check_scheduler(scheduler: str, schedule: str = "Automatic") -> None:
    if scheduler not in SCHEDULERS:
        raise RequestError(
            f"Unknown scheduler {scheduler!r}; choose one of {', '.join(SAMPLERS)}."
        )
    if schedule not in SCHEDULES:
        raise RequestError(
            f"Unknown schedule type {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
    sampler, effective = sampling(scheduler, schedule)
    if sampler in NO_SIGMA_SCHEDULES and effective in ("Karras", "Exponential"):
        raise RequestError(f"{sampler} has no {effective} schedule; choose Automatic or SGM "
                           "Uniform, or another sampler.")


def sampling(scheduler: str, schedule: str = "Automatic") -> tuple[str, str]:
    """(sampler, schedule type) a request means: an old combined name such as
    "DPM++ 2M Karras" is its sampler with its schedule, unless a schedule is chosen."""
    legacy = LEGACY_SAMPLERS.get(scheduler)
    if legacy is not None and schedule == "Automatic":
        return legacy
    return (legacy[0] if legacy else scheduler), schedule


VAE_AUTOMATIC = ("", "automatic", "none")


def is_own_vae(vae: str) -> bool:
    """Whether a VAE field means the model's own VAE ("", Automatic or None)."""
    return vae.strip().lower() in VAE_AUTOMATIC


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
    schedule: str = param("Automatic", SCHEDULE)
    clip_skip: int = param(1, CLIP_SKIP)
    vae: str = param("", VAE)
    batch_size: int = param(1, label="Batch size", short="Batch", low=1, high=MAX_BATCH,
                            flag="--batch", tip="How many pictures one click makes")
    variation_seed: int = param(-1, label="Variation seed", flag="--variation-seed",
                                tip="A second seed whose noise is blended in")
    variation_strength: float = param(
        0.0, label="Variation strength", short="Strength", low=0.0, high=1.0, step=0.05,
        flag="--variation-strength",
        tip="How much of the variation seed's noise: small gives close variations")

    # img2img, inpainting, outpainting ("" init image: text-to-image)
    init_image: str = param("", label="Init image", flag="--init",
                            tip="A picture to start from (a path); empty: text to image")
    strength: float = param(0.75, label="Denoising strength", low=0.0, high=1.0, step=0.05,
                            flag="--strength",
                            tip="How much of the init image is repainted: 0 keeps it, 1 "
                                "replaces it")
    mask: str = param("", label="Mask", flag="--mask",
                      tip="A mask image (a path): white is repainted, black is kept")
    mask_blur: int = param(4, label="Mask blur", low=0, high=256, step=1, suffix=" px",
                           flag="--mask-blur", tip="Feathers the mask's edge by this many pixels")
    inpaint_area: str = param("whole", label="Inpaint area", flag="--inpaint-area",
                              tip="whole: repaint at the picture's size; masked: only a crop "
                                  "around the mask, rendered at the model's size")
    inpaint_padding: int = param(32, label="Inpaint padding", short="Padding", low=0,
                                 high=1024, step=8, suffix=" px", flag="--inpaint-padding",
                                 tip="Context around the mask when only the masked area is "
                                     "repainted")
    outpaint: tuple[int, ...] = param((0, 0, 0, 0), label="Outpaint", flag="--outpaint",
                                      tip="Extend the canvas by L,T,R,B pixels (multiples of "
                                          "8) and fill the new area")
    # hires fix: render at width×height, upscale, re-render at the larger size
    hires_scale: float = param(1.0, label="Hires upscale", low=1.0, high=4.0, step=0.25,
                               flag="--hires-scale",
                               tip="Hires fix: render, upscale by this factor, refine (1 = off)")
    hires_steps: int = param(0, label="Hires steps", low=0, high=1000, step=1,
                             flag="--hires-steps",
                             tip="Steps of the hires pass (0 = as many as the first pass)")
    hires_strength: float = param(0.5, label="Hires denoising strength",
                                  short="Hires strength", low=0.0, high=1.0, step=0.05,
                                  flag="--hires-strength",
                                  tip="How much the hires pass repaints the upscaled image")
    hires_upscaler: str = param("latent", label="Hires upscaler", flag="--upscaler",
                                tip="How the hires fix enlarges: latent, lanczos, or an "
                                    "upscaler model's id")
    # LoRAs picked beside the prompt (its `<lora:name:w>` tags work too): "name:weight"
    loras: tuple[str, ...] = param((), label="LoRAs", flag="--lora",
                                   tip="A LoRA and its weight, NAME:WEIGHT (repeatable); "
                                       "<lora:NAME:WEIGHT> in the prompt does the same")

    @property
    def mode(self) -> str:
        """"txt2img" | "img2img" | "inpaint" | "outpaint" (what the engine does)."""
        if not self.init_image:
            return "txt2img"
        if any(self.outpaint):
            return "outpaint"
        return "inpaint" if self.mask else "img2img"

    @property
    def hires(self) -> bool:
        return self.hires_scale > 1.0

    def hires_size(self) -> tuple[int, int]:
        """(width, height) of the hires pass: the base size scaled, down to multiples of 8."""
        return (int(self.width * self.hires_scale) // 8 * 8,
                int(self.height * self.hires_scale) // 8 * 8)

    def validate(self) -> None:
        self._validate_txt2img()
        for name in ("strength", "mask_blur", "inpaint_padding", "hires_scale", "hires_steps",
                     "hires_strength"):
            check(self, name)
        check_text(self.init_image, "The init image path")
        check_text(self.mask, "The mask path")
        check_text(self.hires_upscaler, "The upscaler")
        if self.inpaint_area not in INPAINT_AREAS:
            raise RequestError(f"Inpaint area must be whole or masked, not {self.inpaint_area!r}.")
        margins = self.outpaint
        if len(margins) != 4 or any(isinstance(m, bool) or not isinstance(m, int)
                                    for m in margins):
            raise RequestError("Outpaint takes four whole numbers of pixels: left, top, right, "
                               "bottom (like 0,0,256,0).")
        if any(m < 0 or m > MAX_SIDE or m % 8 for m in margins):
            raise RequestError(f"Outpaint margins must be multiples of 8 between 0 and "
                               f"{MAX_SIDE} px, not {','.join(map(str, margins))}.")
        if not self.hires_upscaler.strip():
            raise RequestError("Choose a hires upscaler: latent, lanczos or an upscaler model.")
        if self.hires:
            width, height = self.hires_size()
            if max(width, height) > MAX_SIDE:
                raise RequestError(
                    f"The hires fix would render {width}×{height} px, too large for memory "
                    f"(at most {MAX_SIDE} px a side); lower the hires scale or the size.")
            if self.init_image:
                raise RequestError("The hires fix refines text-to-image renders; clear the init "
                                   "image or set the hires scale to 1.")
        if not self.init_image:
            if self.mask:
                raise RequestError("A mask needs an init image to repaint; set one too.")
            if any(margins):
                raise RequestError("Outpainting needs an init image to extend; set one too.")
            return
        iw, ih = image_size(self.init_image, "init image")
        if iw * ih > MAX_INIT_PIXELS:
            raise RequestError(
                f"The init image {Path(self.init_image).name} is {iw}×{ih} px, too large for "
                f"memory; downscale it (at most {MAX_SIDE} px a side is rendered) or use "
                "inpaint area 'masked'.")
        if any(margins):
            width = self.width + margins[0] + margins[2]
            height = self.height + margins[1] + margins[3]
            if max(width, height) > MAX_SIDE:
                raise RequestError(
                    f"Outpainting would make a {width}×{height} px canvas, too large for "
                    f"memory (at most {MAX_SIDE} px a side); use smaller margins or size.")
        if self.mask:
            image_size(self.mask, "mask")
            if not mask_painted(self.mask):
                raise RequestError(f"The mask {Path(self.mask).name} has nothing painted; paint "
                                   "the area to repaint (white), or clear the mask.")

    def _validate_txt2img(self) -> None:
        Request.validate(self)
        if not isinstance(self.negative, str):
            raise RequestError("The negative prompt must be text.")
        check_text(self.negative, "The negative prompt")
        check(self, "steps")
        check(self, "guidance")
        for name in ("width", "height"):
            check(self, name)
            check_side(name.capitalize(), getattr(self, name))
        check_scheduler(self.scheduler, self.schedule)
        check(self, "clip_skip")
        check_text(self.vae, "The VAE")
        for entry in self.loras:
            parse_lora(entry)
        check(self, "batch_size")
        check_seed("variation seed", self.variation_seed)
        check(self, "variation_strength")

    def _draws(self, name: str) -> bool:
        return name != "variation_seed" or self.variation_strength > 0


def parse_lora(entry: object) -> tuple[str, float]:
    """"name:0.8" (the picker's and `--lora`'s spelling) → ("name", 0.8); no weight is 1."""
    if not isinstance(entry, str) or not entry.strip():
        raise RequestError("A LoRA is written NAME:WEIGHT, like style:0.8.")
    name, colon, weight = entry.strip().rpartition(":")
    if not colon:
        return weight.strip(), 1.0
    try:
        number = float(weight)
    except ValueError:
        raise RequestError(f"The LoRA weight {weight.strip()!r} in {entry.strip()!r} is not a "
                           "number.") from None
    if not math.isfinite(number):
        raise RequestError(f"The LoRA weight in {entry.strip()!r} is not a finite number.")
    if not name.strip():
        raise RequestError(f"{entry.strip()!r} names no LoRA; write NAME:WEIGHT.")
    return name.strip(), number


def lora_entry(name: str, weight: float) -> str:
    """("name", 0.8) → "name:0.8", the spelling `loras` holds."""
    return f"{name}:{weight:g}"


def image_size(path: str, what: str) -> tuple[int, int]:
    """(width, height) of an image file, or one sentence that names the file."""
    from PIL import Image, UnidentifiedImageError

    name = Path(path).name or path
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise RequestError(f"The {what} {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(f"The {what} {name} is not an image Studio can read.") from None


def mask_painted(path: str) -> bool:
    """Whether a mask has any pixel to repaint (white or grey; black is kept). A mask with
    transparency counts its opaque pixels, the way a painted overlay is saved."""
    from PIL import Image

    with Image.open(path) as image:
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        low = alpha.getextrema()[0] if alpha is not None else 255
        if alpha is not None and isinstance(low, int) and low < 255:
            gray = alpha
        else:
            gray = image.convert("L")
        return gray.getbbox() is not None


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
    melody: str = param("", label="Melody from", flag="--melody",
                        tip="An audio file (or a past piece) whose melody MusicGen-Melody "
                            "follows (its chroma: the strongest pitch class a frame)")
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
        music.check_source(self.melody, "melody reference", MELODY_SUFFIXES)
        if not isinstance(self.stems, bool):
            raise RequestError("Stems must be on or off.")


def register_request_type(cls: type[Request]) -> type[Request]:
    """Record a request kind for Request.from_dict (every subclass with a kind does this
    when it is defined; kept for explicit use)."""
    REQUEST_TYPES[cls.kind] = cls
    return cls
