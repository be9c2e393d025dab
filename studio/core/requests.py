"""Requests: the whole recipe of a generation, validated before any work starts.

A request is plain data. Same request + same model + same device gives the same
output, and the request is saved beside every output so that it can be replayed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from studio.core.errors import RequestError
from studio.core.seeds import MAX_SEED, draw_seed, parse_seed

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


def _check_seed(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"The {name} must be a whole number.")
    if value != -1 and not 0 <= value <= MAX_SEED:
        raise RequestError(f"The {name} must be -1 (random) or between 0 and {MAX_SEED}.")


def _check_number(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number.")
    if not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number, not {value}.")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low:g} and {high:g}, not {value:g}.")


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number.")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, not {value}.")


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Coerce JSON-ish values (from recipes, CLI, widgets) into a field's type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, args[0], value)
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise RequestError(f"{name} must be a list.")
        (inner, *_rest) = typing.get_args(tp) or (Any,)
        return tuple(_coerce(name, inner, v) for v in value)
    try:
        if tp is int:
            if name.endswith("seed"):
                return parse_seed(value)
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                text = value.strip()
                try:
                    return int(text)
                except ValueError:
                    number = float(text)  # "20.0" from a form or a recipe is still 20
                    return int(number) if number.is_integer() else number
            return value
        if tp is float:
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                return float(value)
            return value
        if tp is str:
            return "" if value is None else str(value)
        if tp is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
    except ValueError as exc:
        label = name.replace("_", " ").capitalize()
        if name.endswith("seed"):
            raise RequestError(f"{label}: {exc}.") from None
        raise RequestError(f"{label} must be a number, not {value!r}.") from None
    return value


@dataclass(frozen=True)
class Request:
    """Base of every request: a model id and a seed, plus modality-specific fields."""

    kind: ClassVar[str] = ""
    model: str = ""
    prompt: str = ""
    seed: int = -1

    def validate(self) -> None:
        """Raise RequestError with one clear sentence for the first bad field."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise RequestError("Choose a model first.")
        if not isinstance(self.prompt, str):
            raise RequestError("The prompt must be text.")
        _check_seed("seed", self.seed)

    def resolved(self) -> Request:
        """A copy with every 'random' seed replaced by a drawn one (what gets recorded)."""
        changes = {
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
            f.name: _coerce(f.name, hints[f.name], data[f.name])
            for f in dataclasses.fields(target)
            if f.name in data
        }
        return target(**kwargs)


@dataclass(frozen=True)
class ImageRequest(Request):
    """Text-to-image with a diffusion pipeline."""

    kind: ClassVar[str] = "image"
    negative: str = ""
    steps: int = 20
    guidance: float = 7.0
    width: int = 512
    height: int = 512
    scheduler: str = "Euler a"
    batch_size: int = 1
    variation_seed: int = -1
    variation_strength: float = 0.0

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.negative, str):
            raise RequestError("The negative prompt must be text.")
        _check_int("Steps", self.steps, 1, 1000)
        _check_number("CFG scale", self.guidance, 0.0, 50.0)
        for name, side in (("Width", self.width), ("Height", self.height)):
            _check_int(name, side, 64, MAX_SIDE)
            if side % 8:
                raise RequestError(f"{name} must be a multiple of 8, not {side}.")
        if self.scheduler not in SCHEDULERS:
            raise RequestError(
                f"Unknown scheduler {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}."
            )
        _check_int("Batch size", self.batch_size, 1, MAX_BATCH)
        _check_seed("variation seed", self.variation_seed)
        _check_number("Variation strength", self.variation_strength, 0.0, 1.0)

    def _draws(self, name: str) -> bool:
        return name != "variation_seed" or self.variation_strength > 0


@dataclass(frozen=True)
class TextRequest(Request):
    """Text generation with a causal language model."""

    kind: ClassVar[str] = "text"
    system: str = ""
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    continuation: str = ""  # text already generated for this prompt, to be extended
    preset: str = ""  # a writing form (studio.core.presets): "haiku", "list:5", ...
    history: tuple[str, ...] = ()  # earlier chat turns, user first (studio.core.chat)

    def validate(self) -> None:
        super().validate()
        if not self.prompt.strip() and not self.continuation:
            raise RequestError("Write a prompt first.")
        if any(not isinstance(t, str) for t in self.history):
            raise RequestError("The turns of a conversation must be text.")
        from studio.core import presets

        preset = presets.get(self.preset)  # one sentence for an unknown preset
        if preset is not None:
            presets.check_stops(preset, self.stop)
        _check_int("Max new tokens", self.max_new_tokens, 1, 32768)
        _check_number("Temperature", self.temperature, 0.0, 5.0)
        _check_number("Top-p", self.top_p, 0.0, 1.0)
        _check_int("Top-k", self.top_k, 0, 100000)
        _check_number("Repetition penalty", self.repetition_penalty, 0.5, 5.0)
        if any(not isinstance(s, str) or s == "" for s in self.stop):
            raise RequestError("Stop strings must be non-empty text.")


@dataclass(frozen=True)
class MusicRequest(Request):
    """Text-to-music (MusicGen or the built-in composer)."""

    kind: ClassVar[str] = "music"
    duration: float = 10.0
    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    guidance: float = 3.0
    # Latent blend: 0 conditions on `prompt` only, 1 on `blend_prompt` only.
    blend_prompt: str = ""
    blend: float = 0.0

    def validate(self) -> None:
        super().validate()
        _check_number("Duration", self.duration, 0.5, 600.0)
        _check_number("Temperature", self.temperature, 0.0, 5.0)
        _check_int("Top-k", self.top_k, 0, 100000)
        _check_number("Top-p", self.top_p, 0.0, 1.0)
        _check_number("Guidance", self.guidance, 0.0, 50.0)
        if not isinstance(self.blend_prompt, str):
            raise RequestError("The blend prompt must be text.")
        _check_number("Blend", self.blend, 0.0, 1.0)
        if self.blend > 0 and not self.blend_prompt.strip():
            raise RequestError("Write a prompt to blend toward, or set the blend to 0.")


REQUEST_TYPES: dict[str, type[Request]] = {
    "image": ImageRequest,
    "text": TextRequest,
    "music": MusicRequest,
}


def register_request_type(cls: type[Request]) -> type[Request]:
    """Class decorator for request kinds defined outside this module (e.g. explorer)."""
    REQUEST_TYPES[cls.kind] = cls
    return cls


import studio.core.explore  # noqa: E402, F401  (registers the explorer's "explore" kind)
