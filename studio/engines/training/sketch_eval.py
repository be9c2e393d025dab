"""How well the sketch model follows a prompt: colour and object, measured on pixels.

- Colour: the dominant hue of an image's object pixels (not white background, saturated
  enough to have a hue), binned to the nearest of the named colours
  (`sketch_data.COLOURS`); a hit when it is the colour the prompt asked for. Chance is one
  in len(COLOURS).
- Object: the object of the nearest training image (1-NN) among every training image of
  the 12 benchmark objects (their emoji and the clip art whose noun is one of them, ~300),
  by a colour-blind shape feature: edge-orientation histograms (HOG-like) of the object's
  own shading in its bounding square. A hit when it is the object asked for. Chance is one
  in len(EVAL_OBJECTS); the judge's ceiling (`ceiling`) is its rate on real training
  images, each judged with its own source left out.

numpy, scipy and Pillow: the benchmark (`benchmarks/sketch_adherence.py`) and the tests
use it on images made through the app's own image engine.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.engines.training import sketch_data

#: a pixel this far (0–255, largest channel distance) from white is part of the object
INK = 40
#: … and this saturated (HSV) to have a hue worth counting
CHROMA = 0.25
#: training images whose object masks overlap this much (IoU) are one source image
SAME_SOURCE = 0.97
#: the shape feature's pyramid: HOG cells per side at each level, and orientation bins
HOG_CELLS = (2, 4, 8)
HOG_BINS = 9
#: a connected part of the object under this share of it is a speck (`object_box`)
SPECK = 0.02


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


def object_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the object, specks (parts under `SPECK` of it) left
    out so that a stray dot does not shrink the object; the whole image when it is empty."""
    from scipy import ndimage

    if not mask.any():
        return 0, 0, mask.shape[0], mask.shape[1]
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        big = 1 + np.nonzero(sizes >= max(4.0, SPECK * float(mask.sum())))[0]
        if big.size:
            mask = np.isin(labels, big)
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def shading(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's luminance over its own brightest tenth (0 off the object): the same for
    a drawing in any colour, as `sketch_data.recolour` keeps shading and swaps the hue."""
    lum = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return np.where(mask, sketch_data.shade(lum, mask, floor=0.05), 0.0).astype(np.float32)


def _square(a: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The box's contents centred in a square (aspect kept), resized to size × size."""
    from PIL import Image

    top, left, bottom, right = box
    h, w = bottom - top, right - left
    side = max(h, w)
    out = np.zeros((side, side), np.float32)
    out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = \
        a[top:bottom, left:right]
    resample = Image.Resampling.BILINEAR if side < size else Image.Resampling.BOX
    return np.asarray(Image.fromarray(out, mode="F").resize((size, size), resample))


def _hog(a: np.ndarray, cells: int) -> np.ndarray:
    """Edge-orientation histograms (unsigned, `HOG_BINS` bins, votes shared between the two
    nearest) of cells × cells cells, square-rooted and unit length."""
    gy, gx = np.gradient(a)
    mag = np.hypot(gx, gy).ravel()
    pos = (np.arctan2(gy, gx) % np.pi).ravel() / np.pi * HOG_BINS
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    lo %= HOG_BINS
    row = np.minimum(np.arange(a.shape[0]) * cells // a.shape[0], cells - 1)
    cell = (row[:, None] * cells + row[None, :]).ravel()
    hist = np.zeros((cells * cells, HOG_BINS))
    np.add.at(hist, (cell, lo), mag * (1 - frac))
    np.add.at(hist, (cell, (lo + 1) % HOG_BINS), mag * frac)
    vec = np.sqrt(hist).ravel()
    return vec / max(float(np.linalg.norm(vec)), 1e-6)


def shape_features(image: np.ndarray) -> np.ndarray:
    """Colour-blind shape of the object: HOG of its `shading` in its bounding square, at
    2×2, 4×4 and 8×8 cells (8 px each), each level unit length."""
    mask = object_mask(image)
    box = object_box(mask)
    shade = shading(image, mask)
    return np.concatenate([_hog(_square(shade, box, 8 * cells), cells) for cells in HOG_CELLS])


def benchmark_references(clipart: Path = sketch_data.CLIPART) -> sketch_data.SketchData:
    """Every training image of the benchmark objects: the emoji `sketch_data` names with one
    of their nouns and the clip art whose noun is one of them (~300; a few seconds),
    rendered by `sketch_data.build` itself, so pixel for pixel what the model trains on."""
    return _references(str(clipart))


@functools.lru_cache(maxsize=2)
def _references(clipart: str) -> sketch_data.SketchData:
    import shutil
    import tempfile

    nouns = set(sketch_data.EVAL_OBJECTS)
    emoji = [cp for cps in sketch_data.EVAL_OBJECTS.values() for cp in cps]
    if sketch_data.CLDR_EN.is_file():  # "black heart" is a heart too; build names them
        emoji += [cp for cp, (name, _kw) in sketch_data.cldr_annotations().items()
                  if cp not in emoji and nouns & set(name.lower().split())]
    root = Path(clipart)
    files = [p for p in sorted(root.rglob("*.png"))
             if sketch_data.clipart_caption(p, root)[1] in nouns] if root.is_dir() else []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:  # the same folders, so the same captions and nouns
            link = Path(tmp) / path.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                link.symlink_to(path)
            except OSError:  # a file system without symbolic links
                shutil.copyfile(path, link)
        return sketch_data.build(Path(tmp), emoji, use_cache=False, extras=False)


def source_groups(masks: np.ndarray) -> np.ndarray:
    """A group id per image: images whose object masks overlap by `SAME_SOURCE` (IoU) are
    one source (one file in two folders; the same glyph in other colours)."""
    flat = masks.reshape(len(masks), -1).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(axis=1)
    same = inter >= SAME_SOURCE * np.maximum(area[:, None] + area[None, :] - inter, 1.0)
    group = np.arange(len(masks))
    for _ in range(len(masks)):  # spread the smallest id through each connected set
        new = np.where(same, group[None, :], len(masks)).min(axis=1)
        if np.array_equal(new, group):
            break
        group = new
    return group


@dataclass
class ObjectJudge:
    """The benchmark object of the nearest training image (1-NN on `shape_features`).

    One neighbour, not a vote: more (k = 3, 5, 10 with each object's votes weighted down by
    its number of sources, so that 46 clip art trees do not outvote 8 umbrellas; or a
    kernel density per object, normalised by its count) scored lower on the
    leave-one-source-out ceiling, as most objects have a few dozen very unlike drawings,
    so the nearest one is the evidence. The price: objects with many references catch
    more of what resembles nothing (random blobs: bird 21 %, tree 14 %, chance 8 %)."""

    names: list[str]  # the objects it can name, in EVAL_OBJECTS' order
    features: np.ndarray  # (references, features)
    labels: np.ndarray  # (references,) index into names
    groups: np.ndarray  # (references,) source group (`source_groups`)
    emoji: np.ndarray  # (references,) bool: an emoji, not clip art
    images: np.ndarray  # (references, 64, 64, 3) uint8: to recolour for the ceiling
    masks: np.ndarray  # (references, 64, 64) bool

    @classmethod
    def from_data(cls, data: sketch_data.SketchData) -> ObjectJudge:
        """From the rows of `data` whose noun is a benchmark object."""
        rows = [i for i, n in enumerate(data.nouns) if n in sketch_data.EVAL_OBJECTS]
        names = [n for n in sketch_data.EVAL_OBJECTS if n in {data.nouns[i] for i in rows}]
        if not rows:
            raise ValueError("no training image of any benchmark object to judge by")
        images, masks = data.images[rows], data.masks[rows]
        return cls(names, np.stack([shape_features(im) for im in images]),
                   np.array([names.index(data.nouns[i]) for i in rows]),
                   source_groups(masks),
                   np.array([data.sources[i].startswith("emoji:") for i in rows]),
                   images, masks)

    @classmethod
    def default(cls) -> ObjectJudge:
        """From every training image of the benchmark objects (`benchmark_references`)."""
        return cls.from_data(benchmark_references())

    def nearest(self, features: np.ndarray, allowed: np.ndarray | None = None) -> int:
        """The label of the nearest reference (among `allowed` ones)."""
        dist = ((self.features - features[None, :]) ** 2).sum(axis=1)
        if allowed is not None:
            dist = np.where(allowed, dist, np.inf)
        return int(self.labels[int(dist.argmin())])

    def judge(self, image: np.ndarray) -> str:
        return self.names[self.nearest(shape_features(image))]


@dataclass
class Ceiling:
    """How often the judge names a training image's object right when that image's source
    (its copies and recoloured variants) is left out of the references; each image judged
    in its own colours and in each named colour, equally."""

    names: list[str]
    hits: np.ndarray  # (references,) share of its colourings judged right
    labels: np.ndarray
    emoji: np.ndarray
    confusion: dict[str, dict[str, int]]  # asked → judged → colourings

    def _rate(self, keep: np.ndarray) -> float:
        return float(self.hits[keep].mean()) if keep.any() else 0.0

    def by_object(self, emoji_only: bool = False) -> dict[str, float]:
        keep = self.emoji if emoji_only else np.ones_like(self.emoji)
        return {n: round(self._rate(keep & (self.labels == i)), 4)
                for i, n in enumerate(self.names) if (keep & (self.labels == i)).any()}

    @property
    def balanced(self) -> float:
        """The mean over objects: what the benchmark, asking each object equally often,
        would score from a model that drew its training images exactly."""
        rates = self.by_object()
        return sum(rates.values()) / max(len(rates), 1)

    @property
    def overall(self) -> float:
        """The mean over training images (objects with much clip art weigh more)."""
        return float(self.hits.mean()) if self.hits.size else 0.0

    @property
    def emoji_rate(self) -> float:
        """The mean over the emoji alone (the model is mostly asked emoji-like things)."""
        return self._rate(self.emoji)

    def as_dict(self) -> dict[str, object]:
        return {"balanced": round(self.balanced, 4), "overall": round(self.overall, 4),
                "emoji": round(self.emoji_rate, 4), "references": int(self.hits.size),
                "emoji_references": int(self.emoji.sum()), "by_object": self.by_object(),
                "emoji_by_object": self.by_object(emoji_only=True)}


def ceiling(judge: ObjectJudge) -> Ceiling:
    """The judge's leave-one-source-out ceiling (see `Ceiling`): what a model that drew its
    training images exactly, in any colour, would score; read the model's rate against it."""
    hits = np.zeros(len(judge.labels))
    confusion = {n: dict.fromkeys(judge.names, 0) for n in judge.names}
    for i, (image, mask) in enumerate(zip(judge.images, judge.masks, strict=True)):
        allowed = judge.groups != judge.groups[i]
        if not allowed.any():
            continue
        floats = image.astype(np.float32) / 255.0
        variants = [image] + [(sketch_data.recolour(floats, mask, c) * 255.0 + 0.5)
                              .astype(np.uint8) for c in sketch_data.COLOUR_NAMES]
        asked = judge.names[int(judge.labels[i])]
        for variant in variants:
            got = judge.nearest(shape_features(variant), allowed)
            confusion[asked][judge.names[got]] += 1
            hits[i] += got == judge.labels[i]
        hits[i] /= len(variants)
    return Ceiling(judge.names, hits, judge.labels, judge.emoji,
                   {a: {j: c for j, c in row.items() if c} for a, row in confusion.items()})


def judge_ceiling(data: sketch_data.SketchData | None = None) -> float:
    """The default judge's ceiling, the mean over objects (`Ceiling.balanced`); `data`:
    judge by these training images instead."""
    judge = ObjectJudge.default() if data is None else ObjectJudge.from_data(data)
    return ceiling(judge).balanced


def confusion(items: Sequence[tuple[str, str, np.ndarray]],
              judge: ObjectJudge) -> dict[str, dict[str, int]]:
    """asked → judged → images, for (colour asked, object asked, image) items."""
    out: dict[str, dict[str, int]] = {}
    for _c, asked, image in items:
        row = out.setdefault(asked, {})
        got = judge.judge(image)
        row[got] = row.get(got, 0) + 1
    return {a: dict(sorted(row.items(), key=lambda kv: -kv[1])) for a, row in out.items()}


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
