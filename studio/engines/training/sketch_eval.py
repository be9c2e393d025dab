"""How well the sketch model follows a prompt: colour and object, measured on pixels.

- Colour: the dominant hue of an image's object pixels (not white background, saturated
  enough to have a hue), binned to the nearest of the named colours
  (`sketch_data.COLOURS`); a hit when it is the colour the prompt asked for. Chance is one
  in len(COLOURS).
- Object: a colour-blind shape descriptor (where the object is, and where its edges are,
  at 16×16) compared with the mean descriptor of each benchmark object's training emoji;
  a hit when the nearest is the object asked for. Chance is one in len(EVAL_OBJECTS).

Plain numpy: the benchmark (`benchmarks/sketch_adherence.py`) and the tests use it on
images made through the app's own image engine.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.engines.training import sketch_data

#: a pixel this far (0–255, largest channel distance) from white is part of the object
INK = 40
#: … and this saturated (HSV) to have a hue worth counting
CHROMA = 0.25


def _hues() -> dict[str, float]:
    return {name: colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0]
            for name, rgb in sketch_data.COLOURS.items()}


HUES = _hues()


def object_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that are not background white."""
    return (255 - image.astype(np.int16)).max(axis=-1) > INK


def dominant_colour(image: np.ndarray) -> str | None:
    """The named colour whose hue most of the object's coloured pixels are nearest to
    (weighted by saturation); None for an image with no coloured pixels."""
    rgb = image.astype(np.float32) / 255.0
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    keep = object_mask(image) & (sat > CHROMA) & (mx > 0.2)
    if keep.sum() < 4:
        return None
    r, g, b = rgb[keep].T
    delta = np.maximum(mx[keep] - mn[keep], 1e-6)
    m = mx[keep]
    hue = np.where(m == r, ((g - b) / delta) % 6, np.where(m == g, (b - r) / delta + 2,
                                                          (r - g) / delta + 4)) / 6.0
    names = list(HUES)
    ref = np.array([HUES[n] for n in names])
    dist = np.abs(hue[:, None] - ref[None, :])
    dist = np.minimum(dist, 1 - dist)
    votes = np.bincount(dist.argmin(axis=1), weights=sat[keep], minlength=len(names))
    return names[int(votes.argmax())]


def shape_descriptor(image: np.ndarray) -> np.ndarray:
    """Where the object and its edges are, 16×16 each, unit length (colour-blind)."""
    mask = object_mask(image).astype(np.float32)
    lum = image.astype(np.float32).mean(axis=-1) / 255.0
    gy, gx = np.gradient(lum)
    edges = np.hypot(gx, gy)
    edges = edges / max(float(edges.max()), 1e-6)
    k = mask.shape[0] // 16

    def pool(a: np.ndarray) -> np.ndarray:
        return a[:k * 16, :k * 16].reshape(16, k, 16, k).mean(axis=(1, 3))

    vec = np.concatenate([pool(mask).ravel(), pool(edges).ravel()])
    vec = vec - vec.mean()
    return vec / max(float(np.linalg.norm(vec)), 1e-6)


def benchmark_emoji() -> sketch_data.SketchData:
    """The benchmark objects' emoji alone, rendered (a second; no clip art, no cache)."""
    emoji = [cp for cps in sketch_data.EVAL_OBJECTS.values() for cp in cps]
    return sketch_data.build(Path("/nonexistent"), emoji, use_cache=False)


@dataclass
class ObjectJudge:
    """Nearest class mean of the benchmark objects' training images (shape only)."""

    names: list[str]
    means: np.ndarray  # (objects, features)

    @classmethod
    def from_data(cls, data: sketch_data.SketchData) -> ObjectJudge:
        names, means = [], []
        for noun, cps in sketch_data.EVAL_OBJECTS.items():
            rows = [i for i, s in enumerate(data.sources) if s in {f"emoji:{c}" for c in cps}]
            if not rows:
                continue
            feats = np.stack([shape_descriptor(data.images[i]) for i in rows])
            names.append(noun)
            means.append(feats.mean(axis=0))
        return cls(names, np.stack(means))

    @classmethod
    def default(cls) -> ObjectJudge:
        """From the benchmark objects' emoji alone (rendered in a second, no clip art)."""
        return cls.from_data(benchmark_emoji())

    def judge(self, image: np.ndarray) -> str:
        return self.names[int((self.means @ shape_descriptor(image)).argmax())]


def judge_ceiling(data: sketch_data.SketchData | None = None) -> float:
    """How often the judge names a real benchmark emoji right when that emoji is left out
    of its class mean: what a model that drew its training emoji exactly would score, the
    ceiling to read the model's object rate against. Objects with one emoji are judged
    against the other objects' means only (so they always miss), as a model's new drawing
    of them would be judged against means that never saw it."""
    if data is None:
        data = benchmark_emoji()
    rows: list[tuple[str, np.ndarray]] = []
    for noun, cps in sketch_data.EVAL_OBJECTS.items():
        wanted = {f"emoji:{c}" for c in cps}
        rows += [(noun, shape_descriptor(data.images[i]))
                 for i, s in enumerate(data.sources) if s in wanted]
    hits = 0
    for k, (noun, feat) in enumerate(rows):
        best, best_name = -np.inf, ""
        for name in sketch_data.EVAL_OBJECTS:
            others = [f for j, (n, f) in enumerate(rows) if n == name and j != k]
            if others and float(np.mean(others, axis=0) @ feat) > best:
                best, best_name = float(np.mean(others, axis=0) @ feat), name
        hits += best_name == noun
    return hits / max(len(rows), 1)


@dataclass
class Adherence:
    """Hit rates over a set of (prompt colour, prompt object, image) triples."""

    colour_hits: int
    object_hits: int
    total: int
    colours: int
    objects: int

    @property
    def colour_rate(self) -> float:
        return self.colour_hits / max(self.total, 1)

    @property
    def object_rate(self) -> float:
        return self.object_hits / max(self.total, 1)

    @property
    def colour_chance(self) -> float:
        return 1.0 / self.colours

    @property
    def object_chance(self) -> float:
        return 1.0 / self.objects

    def as_dict(self) -> dict[str, float | int]:
        return {"images": self.total, "colour_hit_rate": round(self.colour_rate, 4),
                "colour_chance": round(self.colour_chance, 4),
                "object_hit_rate": round(self.object_rate, 4),
                "object_chance": round(self.object_chance, 4)}


def score(items: Sequence[tuple[str, str, np.ndarray]], judge: ObjectJudge) -> Adherence:
    """items: (colour asked, object asked, image)."""
    colour_hits = sum(dominant_colour(im) == c for c, _o, im in items)
    object_hits = sum(judge.judge(im) == o for _c, o, im in items)
    return Adherence(colour_hits, object_hits, len(items), len(sketch_data.COLOURS),
                     len(judge.names))
