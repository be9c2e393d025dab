"""The latent explorer's request, plus the walk/easing maths (plain Python, no torch).

An ExploreRequest is the whole recipe of a point in a model's latent space: the anchors
(seeds, and prompts where the model has a text condition), how they are blended (pad
position or explicit weights), the Artbreeder-style variation steps taken from there,
and the offsets along named directions. Saved beside every explorer output, it replays
the frame exactly (`studio info`, "use these settings").
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from studio.core import paths
from studio.core.atomic import atomic_write_bytes
from studio.core.errors import RequestError
from studio.core.fields import check, check_number, check_seed, check_text, param
from studio.core.requests import (
    CFG,
    HEIGHT,
    MAX_SIDE,
    NEGATIVE,
    SCHEDULER,
    STEPS,
    WIDTH,
    Request,
    check_scheduler,
    check_side,
)
from studio.core.seeds import draw_seed

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("point", "walk", "grid", "anchors")
EASINGS: tuple[str, ...] = ("linear", "ease-in-out", "ease-in", "ease-out")
MAX_ANCHORS = 4
MAX_FRAMES = 1000
MAX_OFFSET = 10.0
GRID_SIZE = 9  # a 3×3 variation grid; index 4 is the centre


def ease(t: float, easing: str = "linear") -> float:
    """Map t in [0, 1] through an easing curve (endpoints stay exactly 0 and 1)."""
    t = min(max(float(t), 0.0), 1.0)
    if easing == "linear" or t in (0.0, 1.0):
        return t
    if easing == "ease-in-out":  # cosine: slow at both anchors, fastest between them
        return 0.5 - 0.5 * math.cos(math.pi * t)
    if easing == "ease-in":
        return 1.0 - math.cos(0.5 * math.pi * t)
    if easing == "ease-out":
        return math.sin(0.5 * math.pi * t)
    raise ValueError(f"unknown easing {easing!r}")


def pad_weights(n_anchors: int, x: float, y: float) -> list[float]:
    """Blend weights of the anchors for a pad position (x, y in [0, 1], y down).

    Corners: anchor 1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right. With two
    anchors the pad blends left→right; with three, the empty bottom-right corner is the
    even mix of anchors 2 and 3, so every anchor's corner is still exact.
    """
    x = min(max(float(x), 0.0), 1.0)
    y = min(max(float(y), 0.0), 1.0)
    if n_anchors <= 1:
        return [1.0] * max(n_anchors, 0)
    if n_anchors == 2:
        return [1.0 - x, x]
    tl, tr, bl, br = (1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y
    if n_anchors == 3:
        return [tl, tr + br / 2, bl + br / 2]
    return [tl, tr, bl, br]


def walk_weights(
    n_anchors: int, frames: int, loop: bool = False, easing: str = "linear"
) -> list[list[float]]:
    """Per-frame anchor weights for a walk through the anchors in order.

    Without loop the first frame is anchor 1 and the last is the last anchor, exactly;
    with loop the path returns toward anchor 1 and stops one step short of it, so the
    animation repeats seamlessly. Easing applies within each segment (the walk slows
    down at every anchor).
    """
    if n_anchors < 2:
        raise ValueError("a walk needs at least two anchors")
    if frames < 2:
        raise ValueError("a walk needs at least two frames")
    segments = n_anchors if loop else n_anchors - 1
    out: list[list[float]] = []
    for i in range(frames):
        u = i / frames if loop else i / (frames - 1)
        s = u * segments
        k = min(math.floor(s), segments - 1)
        t = ease(s - k, easing)
        w = [0.0] * n_anchors
        a, b = k % n_anchors, (k + 1) % n_anchors
        w[a] += 1.0 - t
        w[b] += t
        out.append(w)
    return out


def _normalise_key(key: Any) -> str:
    """Direction keys are strings; a bare number k means the k-th principal direction."""
    text = str(key).strip()
    if re.fullmatch(r"\d+", text):
        return f"pc{int(text)}"
    return text


def parse_directions(value: Any) -> dict[str, float]:
    """{key: offset} from a dict, or from "K=V" strings (CLI); raises RequestError."""
    if value is None:
        return {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, str | list | tuple):
        pairs = [value] if isinstance(value, str) else list(value)
        parsed = []
        for pair in pairs:
            if not isinstance(pair, str) or "=" not in pair:
                raise RequestError(f"A direction must look like NAME=OFFSET, not {pair!r}.")
            k, v = pair.split("=", 1)
            parsed.append((k, v))
        items = parsed
    else:
        raise RequestError("Directions must be a mapping of name to offset.")
    out: dict[str, float] = {}
    for k, v in items:
        key = _normalise_key(k)
        if not key:
            raise RequestError("A direction needs a name.")
        try:
            offset = float(v)
        except (TypeError, ValueError):
            raise RequestError(f"The offset of direction {key!r} must be a number.") from None
        out[key] = offset
    return out


@dataclass(frozen=True)
class ExploreRequest(Request):
    """A point, walk or variation grid in a model's latent space.

    - anchors: 1–4 seeds (-1 = draw one); prompts: one per anchor, or none (then every
      anchor uses `prompt`). Built-in GANs ignore prompts except the eye model, which
      reads eye colours from them.
    - weights: explicit blend weights (one per anchor); empty means "from the pad".
    - pad_x, pad_y: position on the pad (0–1, y down), see `pad_weights`.
    - variation_seeds/variation_strengths: Artbreeder steps taken from the blend, each
      a slerp toward that seed's noise by that strength (the variation grid adds one).
    - directions: {key: offset}: "pc1"… (GAN principal directions, offsets in σ), or
      "noise" / "prompt" for diffusion models (fractions of the anchor 1→2 distance).
    - mode: "point" one frame, "walk" `frames` frames through the anchors (loop,
      easing, fps), "grid" the 3×3 variations at `spread` (children drawn from `seed`),
      "anchors" one frame per anchor (thumbnails).
    - width, height: the frame size. Diffusion renders at that size; the built-in GANs
      render at their native 64²/128² and are upscaled (Lanczos) to it when it differs.
    - diffusion only: negative, steps, guidance, scheduler; fast=True renders a quick
      preview (preview_steps, longest side preview_size, cheap latent→RGB decode).
    """

    kind: ClassVar[str] = "explore"
    anchors: tuple[int, ...] = ()
    prompts: tuple[str, ...] = ()
    negative: str = param("", NEGATIVE)
    weights: tuple[float, ...] = ()
    pad_x: float = param(0.5, label="Pad x", low=0.0, high=1.0, step=0.01)
    pad_y: float = param(0.5, label="Pad y", low=0.0, high=1.0, step=0.01)
    variation_seeds: tuple[int, ...] = ()
    variation_strengths: tuple[float, ...] = ()
    directions: dict[str, float] = field(default_factory=dict)
    mode: str = "point"
    frames: int = param(48, label="Frames", low=2, high=MAX_FRAMES, flag="--frames",
                        tip="number of frames of a walk")
    loop: bool = False
    easing: str = "ease-in-out"
    fps: int = param(12, label="Frames per second", short="FPS", low=1, high=60, flag="--fps",
                     tip="frames per second of a walk")
    spread: float = param(0.3, label="Spread", low=0.0, high=1.0, step=0.05,
                          tip="How far the variation grid's children are from the centre")
    steps: int = param(20, STEPS)
    guidance: float = param(7.0, CFG)
    width: int = param(512, WIDTH)
    height: int = param(512, HEIGHT)
    scheduler: str = param("Euler a", SCHEDULER)
    fast: bool = False
    preview_steps: int = param(4, label="Preview steps", low=1, high=1000)
    preview_size: int = param(256, label="Preview size", low=64, high=MAX_SIDE, step=8)

    def __post_init__(self) -> None:
        # Recipes and the CLI give lists and "K=V" strings: keep a plain {str: float}.
        raw = self.directions
        try:
            value = parse_directions(raw)
        except RequestError:
            value = raw  # validate() reports it with a clear sentence
        object.__setattr__(self, "directions", value)

    def __hash__(self) -> int:  # the dict field makes the generated hash fail
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    # -- validation ------------------------------------------------------------------
    def validate(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise RequestError("Choose a model first.")
        check_text(self.prompt, "The prompt")
        check_seed("seed", self.seed)
        if self.mode not in MODES:
            raise RequestError(
                f"Unknown explorer mode {self.mode!r}; choose one of {', '.join(MODES)}."
            )
        n = len(self.anchors)
        if n == 0:
            raise RequestError("Pick at least one anchor (a seed) to explore from.")
        if n > MAX_ANCHORS:
            raise RequestError(f"The explorer blends at most {MAX_ANCHORS} anchors, not {n}.")
        for s in self.anchors:
            check_seed("anchor seed", s)
        if self.mode == "walk" and n < 2:
            raise RequestError("A walk needs at least two anchors.")
        if self.prompts and len(self.prompts) != n:
            raise RequestError(
                f"Give one prompt per anchor ({n}), or none; got {len(self.prompts)}."
            )
        if any(not isinstance(p, str) for p in self.prompts) or not isinstance(
            self.negative, str
        ):
            raise RequestError("Prompts must be text.")
        for p in (*self.prompts, self.negative):
            check_text(p, "A prompt")
        if self.weights:
            if len(self.weights) != n:
                raise RequestError(
                    f"Give one weight per anchor ({n}), or none; got {len(self.weights)}."
                )
            for w in self.weights:
                check_number("A blend weight", w, 0.0, 1e6)
            if sum(self.weights) <= 0:
                raise RequestError("The blend weights must not all be zero.")
        check(self, "pad_x")
        check(self, "pad_y")
        if len(self.variation_seeds) != len(self.variation_strengths):
            raise RequestError("Each variation step needs both a seed and a strength.")
        for s in self.variation_seeds:
            check_seed("variation seed", s)
            if s == -1:
                raise RequestError("Variation steps need fixed seeds, not -1.")
        for st in self.variation_strengths:
            check_number("A variation strength", st, 0.0, 1.0)
        if not isinstance(self.directions, dict):
            parse_directions(self.directions)  # raises the sentence that says what is wrong
            raise RequestError("Directions must be a mapping of name to offset.")
        for key, off in self.directions.items():
            if not isinstance(key, str) or not key:
                raise RequestError("Every direction needs a name.")
            check_number(f"The offset of direction {key!r}", off, -MAX_OFFSET, MAX_OFFSET)
        check(self, "frames")
        if self.easing not in EASINGS:
            raise RequestError(
                f"Unknown easing {self.easing!r}; choose one of {', '.join(EASINGS)}."
            )
        for name in ("fps", "spread", "steps", "preview_steps", "guidance"):
            check(self, name)
        for name in ("width", "height"):
            check(self, name)
            check_side(name.capitalize(), getattr(self, name))
        check(self, "preview_size")
        check_scheduler(self.scheduler)

    # -- seeds -------------------------------------------------------------------------
    def resolved(self) -> ExploreRequest:
        """Draw every -1 anchor; the seed (grid children, file names) defaults to anchor 1."""
        anchors = tuple(draw_seed() if s == -1 else s for s in self.anchors)
        seed = self.seed
        if seed == -1:
            seed = draw_seed() if self.mode == "grid" or not anchors else anchors[0]
        if anchors == self.anchors and seed == self.seed:
            return self
        return self.replace(anchors=anchors, seed=seed)  # type: ignore[return-value]

    # -- derived -----------------------------------------------------------------------
    def anchor_prompts(self) -> list[str]:
        """The prompt of each anchor (the shared prompt when none are given)."""
        return list(self.prompts) if self.prompts else [self.prompt] * len(self.anchors)

    def blend_weights(self) -> list[float]:
        """Normalised anchor weights: the explicit ones, else the pad's."""
        raw = list(self.weights) if self.weights else pad_weights(
            len(self.anchors), self.pad_x, self.pad_y
        )
        total = sum(raw)
        return [w / total for w in raw]

    def frame_weights(self) -> list[list[float]]:
        """Weights of every frame this request renders (one for a point or grid)."""
        if self.mode == "walk":
            return walk_weights(len(self.anchors), self.frames, self.loop, self.easing)
        if self.mode == "anchors":
            n = len(self.anchors)
            return [[1.0 if i == j else 0.0 for i in range(n)] for j in range(n)]
        return [self.blend_weights()]

    def with_child(self, index: int) -> ExploreRequest:
        """The point of grid child `index` (0–8, 4 is the centre) as a new point request."""
        if not 0 <= index < GRID_SIZE:
            raise RequestError(f"A grid child is numbered 0 to {GRID_SIZE - 1}, not {index}.")
        base = self.replace(mode="point")
        if index == GRID_SIZE // 2:
            return base  # type: ignore[return-value]
        return base.replace(  # type: ignore[return-value]
            variation_seeds=(*self.variation_seeds, grid_child_seed(self.seed, index)),
            variation_strengths=(*self.variation_strengths, self.spread),
        )

    def describe(self) -> str:
        """A one-line human description (status bars, the CLI)."""
        w = ", ".join(f"{x:.2f}" for x in self.blend_weights())
        parts = [f"{self.mode} on {self.model}", f"anchors {list(self.anchors)}", f"weights [{w}]"]
        if self.variation_seeds:
            parts.append(f"{len(self.variation_seeds)} variation step(s)")
        if self.directions:
            parts.append(", ".join(f"{k}={v:+.2f}" for k, v in self.directions.items()))
        return "; ".join(parts)


def grid_child_seed(seed: int, index: int) -> int:
    """The seed of grid child `index`: derived from the grid's seed, stable across runs."""
    return (int(seed) * 9 + index + 1) % (2**32)


# -- direction names: the artist's own labels for principal directions -------------------


def names_path() -> Path:
    return paths.studio_home() / "explorer" / "direction-names.json"


class DirectionNames:
    """Artist-chosen names for a model's directions ({model: {key: name}}), kept as JSON.

    Recipes always store stable keys ("pc3"); names are only labels, so renaming never
    changes what a saved recipe renders.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or names_path()
        self._data: dict[str, dict[str, str]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._data = {
                    str(m): {str(k): str(v) for k, v in d.items()}
                    for m, d in data.items()
                    if isinstance(d, dict)
                }
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("explorer: could not read %s (%s)", self.path, exc)

    def for_model(self, model: str) -> dict[str, str]:
        return dict(self._data.get(model, {}))

    def name(self, model: str, key: str, default: str = "") -> str:
        return self._data.get(model, {}).get(key, default or key.upper())

    def rename(self, model: str, key: str, name: str) -> None:
        """Set (or with an empty name, clear) a label, and save at once."""
        names = self._data.setdefault(model, {})
        name = name.strip()
        if name and name != key.upper():
            names[key] = name
        else:
            names.pop(key, None)
        self.save()

    def resolve(self, model: str, key: str) -> str:
        """A key for a name the artist gave (case-insensitive), or the key itself."""
        wanted = _normalise_key(key)
        for k, v in self._data.get(model, {}).items():
            if v.lower() == str(key).strip().lower():
                return k
        return wanted

    def save(self) -> None:
        data = json.dumps(self._data, indent=2, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.path, data)


def resolve_direction_names(
    model: str, directions: Mapping[str, float], names: DirectionNames | None = None
) -> dict[str, float]:
    """Replace artist-given names by their stable keys (for the CLI's --direction)."""
    names = names or DirectionNames()
    return {names.resolve(model, k): float(v) for k, v in directions.items()}


def split_list(values: Sequence[str] | str | None) -> list[str]:
    """"1,2,3" or ["1", "2,3"] → ["1", "2", "3"] (CLI convenience)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return out
