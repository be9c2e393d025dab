"""Reading a folder of images for training: what the image recipes (GAN, VAE, SD LoRA,
the built-in sketch model) share.

`scan_images()` only reads: it lists the images, opens each one (a corrupt or truncated
file is skipped with its reason), hashes the bytes (duplicates are used once), notes the
modes it will convert (RGBA, greyscale, CMYK, palette → RGB, and says so) and finds each
image's caption: a `.txt` sidecar of the same stem (the kohya convention, in whatever
encoding it was saved: UTF-8, UTF-8 or UTF-16 with a BOM, else cp1252, and says so), or
else the file name. The result is an `ImageSet` (the usable items) and a `DataReport`.

`load_rgb()` / `fit()` turn an item into pixels at a training size; `buckets()` and
`bucket_for()` sort images of different shapes into aspect-ratio buckets of about the
same area (what SD LoRA trainers do so that portraits are not cropped square).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.training import IMAGE_SUFFIXES, DataReport, TrainingError

#: modes that are converted to RGB, and how the report names them
MODE_NAMES = {
    "RGBA": "RGBA", "LA": "greyscale with alpha", "PA": "palette", "P": "palette",
    "L": "greyscale", "1": "black-and-white", "I": "greyscale", "I;16": "greyscale",
    "F": "greyscale", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV",
    "RGBX": "RGBX", "RGBa": "RGBA", "La": "greyscale with alpha",
}


@dataclass(frozen=True)
class ImageItem:
    """One usable image: where it is, its size and mode, its caption and where that came
    from ("sidecar" or "name")."""

    path: Path
    width: int
    height: int
    mode: str
    caption: str
    caption_source: str
    digest: str


@dataclass(frozen=True)
class ImageSet:
    """What a scan found usable, in a stable (sorted path) order."""

    folder: Path
    items: tuple[ImageItem, ...]

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- captions


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a caption file saved in any common encoding.

    A BOM says UTF-8 or UTF-16; without one, UTF-8 is tried, then cp1252 (Windows
    Notepad's old default); bytes cp1252 lacks fall back to Latin-1, which reads anything.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def caption_from_name(path: Path) -> str:
    """A caption from a file name: "red_circle-02.png" → "red circle 02"."""
    words = path.stem.replace("_", " ").replace("-", " ").split()
    return " ".join(words)


def read_caption(image: Path) -> tuple[str, str, str]:
    """(caption, source, encoding) for an image: its sidecar `.txt` when there is a
    non-empty one, else its file name (encoding "")."""
    sidecar = image.with_suffix(".txt")
    try:
        data = sidecar.read_bytes()
    except OSError:
        data = b""
    if data:
        text, encoding = decode_text(data)
        text = " ".join(text.split())
        if text:
            return text, "sidecar", encoding
    return caption_from_name(image), "name", ""


# --------------------------------------------------------------------------- the scan


def _list_images(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Image files under folder (subfolders too: kohya's "10_subject" layout), sorted;
    hidden files and folders are left out."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(tuple(suffixes)):
                found.append(Path(root) / name)
    return sorted(found)


def check_folder(folder: str | Path) -> Path:
    """The data folder as a Path, or one sentence when it is missing or unreadable."""
    if not str(folder).strip():
        raise TrainingError("Choose a data folder to train on.")
    path = Path(folder).expanduser()
    if not path.exists():
        raise TrainingError(f"The data folder {path} does not exist.")
    if not path.is_dir():
        raise TrainingError(f"{path} is a file, not a folder: choose the folder it is in.")
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError as exc:
        raise TrainingError(f"The data folder {path} cannot be read "
                            f"({exc.strerror or exc}).") from None
    return path


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def scan_images(folder: str | Path, *, min_side: int = 8,
                suffixes: Sequence[str] = IMAGE_SUFFIXES) -> tuple[ImageSet, DataReport]:
    """Read (never write) an image folder: the usable images and the report that says
    what was found, converted, captioned and skipped. Raises TrainingError only for a
    folder that is missing or unreadable; an empty one gives a report with 0 usable."""
    from PIL import Image, UnidentifiedImageError

    root = check_folder(folder)
    files = _list_images(root, suffixes)
    items: list[ImageItem] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    duplicates = 0
    modes: Counter[str] = Counter()
    encodings: Counter[str] = Counter()
    from_names = 0
    sizes: list[tuple[int, int]] = []
    for path in files:
        rel = str(path.relative_to(root))
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append((rel, f"cannot be read ({exc.strerror or exc})."))
            continue
        digest = hashlib.sha1(data).hexdigest()
        try:
            with Image.open(path) as im:
                im.load()  # a truncated file fails here, not half-way through training
                width, height, mode = im.width, im.height, im.mode
        except UnidentifiedImageError:
            skipped.append((rel, "not a readable image (unknown format or corrupt)."))
            continue
        except (OSError, ValueError, SyntaxError) as exc:
            skipped.append((rel, f"corrupt or truncated ({str(exc).splitlines()[0]})."))
            continue
        if min(width, height) < min_side:
            skipped.append((rel, f"too small ({width}×{height}; needs at least "
                                 f"{min_side} px on each side)."))
            continue
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        caption, source, encoding = read_caption(path)
        if source == "name":
            from_names += 1
        elif encoding not in ("utf-8", "utf-8-sig"):
            encodings[encoding] += 1
        if mode != "RGB":
            modes[MODE_NAMES.get(mode, mode)] += 1
        sizes.append((width, height))
        items.append(ImageItem(path, width, height, mode, caption, source, digest))
    notes: list[str] = []
    for name, n in sorted(modes.items()):
        notes.append(f"{_plural(n, name + ' image')} converted to RGB.")
    for encoding, n in sorted(encodings.items()):
        notes.append(f"{_plural(n, 'caption')} read as {encoding} (not UTF-8).")
    if from_names:
        notes.append(f"{_plural(from_names, 'caption')} from file names (no .txt beside "
                     f"{'it' if from_names == 1 else 'them'}).")
    report = DataReport(
        folder=str(root), found=len(files), usable=len(items), skipped=tuple(skipped),
        notes=tuple(notes), duplicates=duplicates, captions=len(items),
        sizes=size_range(sizes),
    )
    return ImageSet(root, tuple(items)), report


def size_range(sizes: Iterable[tuple[int, int]]) -> str:
    """ "64×64" or "32×32 to 1024×768" (smallest and largest by area)."""
    found = sorted(set(sizes), key=lambda s: (s[0] * s[1], s))
    if not found:
        return ""
    lo, hi = found[0], found[-1]
    return f"{lo[0]}×{lo[1]}" if lo == hi else f"{lo[0]}×{lo[1]} to {hi[0]}×{hi[1]}"


def require_usable(report: DataReport, what: str = "images") -> None:
    """One sentence when a scan found nothing to train on."""
    if report.usable:
        return
    if not report.found:
        raise TrainingError(f"No {what} found in {report.folder}.")
    name, why = report.skipped[0] if report.skipped else ("", "duplicates")
    more = f"; {len(report.skipped) - 1} more skipped" if len(report.skipped) > 1 else ""
    raise TrainingError(f"None of the {report.found} {what} in {report.folder} can be used "
                        f"({name}: {why.rstrip('.')}{more}).")


# --------------------------------------------------------------------------- pixels


def load_rgb(path: Path):  # -> PIL.Image.Image
    """The image as RGB: transparency goes onto white, CMYK/greyscale/palette converted."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            im.mode == "P" and "transparency" in im.info
        ):
            rgba = im.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            return canvas.convert("RGB")
        if im.mode in ("I", "I;16", "F"):
            arr = np.asarray(im, dtype=np.float64)
            hi = float(arr.max()) or 1.0
            return Image.fromarray((arr / hi * 255).round().astype(np.uint8)).convert("RGB")
        return im.convert("RGB")


def fit(image, width: int, height: int) -> np.ndarray:  # image: PIL.Image.Image
    """Scale to cover width×height (Lanczos), then centre-crop: HxWx3 uint8."""
    from PIL import Image

    w, h = image.size
    factor = max(width / w, height / h)
    sw, sh = max(width, round(w * factor)), max(height, round(h * factor))
    big = image.resize((sw, sh), Image.Resampling.LANCZOS) if (sw, sh) != (w, h) else image
    left, top = (sw - width) // 2, (sh - height) // 2
    return np.asarray(big.crop((left, top, left + width, top + height)), dtype=np.uint8)


def load_square(item: ImageItem | Path, side: int) -> np.ndarray:
    """An item's pixels at side×side (centre crop), HxWx3 uint8."""
    path = item.path if isinstance(item, ImageItem) else item
    return fit(load_rgb(path), side, side)


def split(n: int, val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: a seeded shuffle, at least one training item, and a
    validation item only when there are at least two items and a split asked for."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = round(n * val_split) if val_split > 0 and n >= 2 else 0
    n_val = min(max(n_val, 1 if val_split > 0 and n >= 2 else 0), n - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


# --------------------------------------------------------------------------- buckets


def buckets(resolution: int, step: int = 64, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """Aspect-ratio buckets: (width, height) multiples of `step` whose area is at most
    resolution², from tall (1:max_ratio) to wide (max_ratio:1), square included."""
    area = resolution * resolution
    found: set[tuple[int, int]] = set()
    w = step
    while w <= resolution * max_ratio:
        h = min(int(area // w) // step * step, int(resolution * max_ratio) // step * step)
        if h >= step and 1 / max_ratio <= w / h <= max_ratio:
            found.add((w, h))
            found.add((h, w))
        w += step
    side = max(step, resolution // step * step)
    found.add((side, side))
    return sorted(found, key=lambda s: (s[0] / s[1], s))


def bucket_for(width: int, height: int, options: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest an image's (log ratio), larger area on ties."""
    ratio = math.log(width / height)
    return min(options, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def assign_buckets(items: Sequence[ImageItem], resolution: int, step: int = 64,
                   max_ratio: float = 2.0) -> dict[tuple[int, int], list[int]]:
    """Bucket → indices of the items that go in it (only buckets with items)."""
    options = buckets(resolution, step, max_ratio)
    out: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        out.setdefault(bucket_for(item.width, item.height, options), []).append(i)
    return out
