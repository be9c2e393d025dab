"""Tiny data sets the Lab's tests make: coloured shapes in a folder, and a snapshot of a
folder to prove that a data check or a training run never changed it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = (20, 40, 200)  # blue
SHAPE = (230, 50, 30)  # red


def shapes(folder: Path, n: int = 16, side: int = 32, seed: int = 0) -> Path:
    """n red circles at random places on blue, side×side PNGs named shape_00.png ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r = side * 7 // 16
    for i in range(n):
        im = Image.new("RGB", (side, side), BACKGROUND)
        x, y = (int(v) for v in rng.integers(1, side - r - 1, 2))
        ImageDraw.Draw(im).ellipse([x, y, x + r, y + r], fill=SHAPE)
        im.save(folder / f"shape_{i:02d}.png")
    return folder


def mean_colour(folder: Path) -> np.ndarray:
    """The mean RGB of every PNG in a folder."""
    arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64)
              for p in sorted(folder.glob("*.png"))]
    return np.concatenate([a.reshape(-1, 3) for a in arrays]).mean(0)


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under `folder` → (mtime_ns, sha1 of its bytes or "dir")."""
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(folder.rglob("*")):
        digest = "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
        out[str(p.relative_to(folder))] = (p.stat().st_mtime_ns, digest)
    out["."] = (folder.stat().st_mtime_ns, "dir")
    return out
