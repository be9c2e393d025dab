"""Request fields that carry their own metadata: label, range, step, default, tip, CLI flag.

A request dataclass declares each tunable field once, with `param(...)`:

    steps: int = param(20, label="Steps", low=1, high=1000, tip="Denoising steps", flag="--steps")

and every place that needs to know about it reads `spec(ImageRequest, "steps")`: the
request's validation (`check(request, "steps")`, the same sentences as always), the
argparse flags of `studio gen ...` and the form widgets of the panels. The default,
range and tooltip are then written in one place instead of three.

Also here: the checks every request kind shares and the coercion of JSON-ish values
(recipes, CLI text, widgets) into a field's type. Plain Python, no Qt.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from studio.core.errors import RequestError
from studio.core.seeds import MAX_SEED, parse_seed

SPEC_KEY = "studio.field"  # where param() keeps its Meta in a dataclass field's metadata


@dataclass(frozen=True)
class Meta:
    """What param() records; `spec()` adds the field's name, type and default."""

    label: str  # the name in sentences: "CFG scale must be between 0 and 50, not 99."
    short: str = ""  # the form's label when shorter ("CFG"); defaults to label
    low: float | None = None
    high: float | None = None
    step: float | None = None  # a spin box's single step
    decimals: int = 2  # a float spin box's decimals
    suffix: str = ""  # " s", " px"
    tip: str = ""  # tooltip in the form, help text on the command line
    flag: str = ""  # "--guidance"; empty: not a command-line flag


@dataclass(frozen=True)
class FieldSpec:
    """Everything known about one request field."""

    name: str
    type: type
    default: Any
    label: str
    short: str
    low: float | None
    high: float | None
    step: float | None
    decimals: int
    suffix: str
    tip: str
    flag: str

    @property
    def is_int(self) -> bool:
        return self.type is int


def param(default: Any, shared: Meta | None = None, /, **meta: Any) -> Any:
    """A dataclass field with a default and its metadata: Meta's keywords, or a Meta that
    several request kinds share (keywords given too override its values)."""
    info = dataclasses.replace(shared, **meta) if shared is not None else Meta(**meta)
    return dataclasses.field(default=default, metadata={SPEC_KEY: info})


def spec(cls: type, name: str) -> FieldSpec:
    """The metadata of field `name` of request class `cls` (KeyError when it has none)."""
    return _specs(cls)[name]


def specs(cls: type) -> dict[str, FieldSpec]:
    """Every field of `cls` that carries metadata, in declaration order."""
    return dict(_specs(cls))


_cache: dict[type, dict[str, FieldSpec]] = {}


def _specs(cls: type) -> dict[str, FieldSpec]:
    found = _cache.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(SPEC_KEY)
            if isinstance(meta, Meta):
                values = dataclasses.asdict(meta)
                values["short"] = meta.short or meta.label
                found[f.name] = FieldSpec(name=f.name, type=hints[f.name], default=f.default,
                                          **values)
        _cache[cls] = found
    return found


def check(request: object, name: str) -> None:
    """Validate one field against its spec: a whole number or a finite number in range."""
    s = spec(type(request), name)
    value = getattr(request, name)
    low = s.low if s.low is not None else -math.inf
    high = s.high if s.high is not None else math.inf
    if s.is_int:
        check_int(s.label, value, int(low), int(high))
    else:
        check_number(s.label, value, low, high)


# ---------------------------------------------------------------- shared checks


def check_seed(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"The {name} must be a whole number.")
    if value != -1 and not 0 <= value <= MAX_SEED:
        raise RequestError(f"The {name} must be -1 (random) or between 0 and {MAX_SEED}.")


def check_number(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number.")
    if not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number, not {value}.")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low:g} and {high:g}, not {value:g}.")


def check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number.")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, not {value}.")


def check_text(value: object, what: str) -> None:
    """Text that can be written to any output: a str that UTF-8 can encode (no lone
    surrogates, which arrive from undecodable command-line bytes)."""
    if not isinstance(value, str):
        raise RequestError(f"{what} must be text.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{what} is not valid UTF-8 text.") from None


# ---------------------------------------------------------------- coercion


def coerce(name: str, tp: Any, value: Any) -> Any:
    """Coerce JSON-ish values (from recipes, CLI, widgets) into a field's type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return coerce(name, args[0], value)
    if origin in (tuple, list):
        if isinstance(value, str):  # "0,0,256,0" from the command line is a list of ints
            numeric = typing.get_args(tp)[:1] in ((int,), (float,))
            value = [v.strip() for v in value.split(",")] if numeric else [value]
        if not isinstance(value, (list, tuple)):
            raise RequestError(f"{name} must be a list.")
        (inner, *_rest) = typing.get_args(tp) or (Any,)
        return tuple(coerce(name, inner, v) for v in value)
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
