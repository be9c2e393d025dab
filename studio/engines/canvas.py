"""The pixel side of img2img, inpainting and outpainting: masks, crops, margins, blends.

Plain PIL/numpy, no torch: the image engine renders, this prepares what it renders and
pastes the result back. Masks are "L" images where 255 is repainted and 0 is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from studio.core.requests import ImageRequest


@dataclass
class Canvas:
    """The picture a job repaints, its mask (None: img2img) and notes for the result."""

    image: Image.Image
    mask: Image.Image | None
    notes: list[str] = field(default_factory=list)


def load_rgb(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def load_mask(path: str) -> Image.Image:
    """A mask as "L": its alpha when it has transparency (a painted overlay), else its grey."""
    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] < 255:
            return image.getchannel("A").copy()
        return image.convert("L")


def prepare(request: ImageRequest) -> Canvas:
    """The init image (at width×height for inpaint area "whole", at its own size for
    "masked"), its mask (resized to match, with a note), extended by the outpaint margins."""
    image = load_rgb(request.init_image)
    notes: list[str] = []
    mask = None
    if request.mask:
        mask = load_mask(request.mask)
        if mask.size != image.size:
            notes.append(f"The mask was {mask.width}×{mask.height} px; it was resized to "
                          f"{image.width}×{image.height} to match the init image.")
            mask = mask.resize(image.size, Image.Resampling.BILINEAR)
    if request.inpaint_area == "whole" or (mask is None and not any(request.outpaint)):
        size = (request.width, request.height)
        if image.size != size:
            image = image.resize(size, Image.Resampling.LANCZOS)
            mask = mask.resize(size, Image.Resampling.BILINEAR) if mask is not None else None
    if any(request.outpaint):
        image, mask = extend(image, mask, request.outpaint)
    return Canvas(image, mask, notes)


def extend(image: Image.Image, mask: Image.Image | None,
           margins: tuple[int, ...]) -> tuple[Image.Image, Image.Image]:
    """Grow the canvas by (left, top, right, bottom) px: the new area repeats the edge
    colours (so the model sees the picture's palette) and is masked for repainting."""
    left, top, right, bottom = margins
    array = np.asarray(image)
    grown = np.pad(array, ((top, bottom), (left, right), (0, 0)), mode="edge")
    new = np.full(grown.shape[:2], 255, dtype=np.uint8)
    old = np.asarray(mask) if mask is not None else np.zeros(array.shape[:2], np.uint8)
    new[top:top + array.shape[0], left:left + array.shape[1]] = old
    return Image.fromarray(grown), Image.fromarray(new)


def blurred(mask: Image.Image, radius: int) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


def crop_box(mask: Image.Image, padding: int, aspect: float) -> tuple[int, int, int, int]:
    """The region around the mask's painted pixels plus padding, widened to the render's
    aspect ratio (width / height) where the picture allows, clamped to the picture."""
    width, height = mask.size
    found = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    x0, y0, x1, y1 = found if found is not None else (0, 0, width, height)
    x0, y0 = max(0, x0 - padding), max(0, y0 - padding)
    x1, y1 = min(width, x1 + padding), min(height, y1 + padding)
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:  # too tall: widen
        grow = min(width, round(h * aspect)) - w
        x0 = max(0, min(x0 - grow // 2, width - (w + grow)))
        x1 = x0 + w + grow
    else:  # too wide: heighten
        grow = min(height, round(w / aspect)) - h
        y0 = max(0, min(y0 - grow // 2, height - (h + grow)))
        y1 = y0 + h + grow
    return x0, y0, x1, y1


def composite(base: Image.Image, rendered: Image.Image, mask: Image.Image,
              box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The rendered pixels where the (blurred) mask is painted, the original elsewhere;
    `rendered` is pasted at `box` (the crop it was rendered from) when given."""
    out = np.asarray(base, dtype=np.float32).copy()
    weight = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    if box is not None:
        x0, y0, x1, y1 = box
        part = rendered.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        w = weight[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - w) + np.asarray(part, np.float32) * w
    else:
        out = out * (1 - weight) + np.asarray(rendered, np.float32) * weight
    return np.clip(out.round(), 0, 255).astype(np.uint8)
