"""Explorer walks as animations: a GIF (always) and an MP4 (when an encoder is installed).

The GIF is written with Pillow; the MP4 with imageio-ffmpeg's bundled ffmpeg (H.264,
yuv420p, so every player opens it). Without an ffmpeg the frames go to a numbered PNG
folder beside the GIF instead. Both files carry the walk's recipe (our JSON record) in
their comment metadata, so `studio info walk.gif` replays it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from studio.core import metadata
from studio.core.atomic import atomic_write_bytes
from studio.core.errors import RecipeError, StudioError
from studio.core.outputs import write_beside, write_new_output
from studio.core.recipes import Recipe
from studio.core.results import Result

log = logging.getLogger(__name__)

FRAMES_SUFFIX = "-frames"


def _frames(images: Sequence[Any]) -> list[np.ndarray]:
    frames = []
    for i, image in enumerate(images):
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise StudioError(f"Frame {i + 1} is not an 8-bit RGB picture; cannot save the walk.")
        frames.append(np.ascontiguousarray(arr))
    if not frames:
        raise StudioError("The walk has no frames to save.")
    if any(f.shape != frames[0].shape for f in frames):
        raise StudioError("The walk's frames differ in size; cannot save it as a video.")
    return frames


def recipe_json(result: Result) -> str:
    """Our record for the walk (request + facts), as one line of JSON."""
    record = metadata.studio_record(result.request, result.modality,
                                    info=metadata.json_safe(result.info))
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def gif_bytes(frames: Sequence[np.ndarray], fps: int, comment: str = "") -> bytes:
    """An endlessly looping GIF (one adaptive palette per frame)."""
    import io

    from PIL import Image

    pictures = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    pictures[0].save(
        buf, format="GIF", save_all=True, append_images=pictures[1:],
        duration=max(20, round(1000 / max(fps, 1))), loop=0, optimize=False,
        comment=comment.encode("utf-8"),
    )
    return buf.getvalue()


def ffmpeg_exe() -> str | None:
    """The ffmpeg that imageio-ffmpeg bundles (or finds), or None when there is none."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # not installed, or no binary for this platform
        log.info("no video encoder: %s", exc)
        return None


def mp4_bytes(frames: Sequence[np.ndarray], fps: int, comment: str = "") -> bytes:
    """H.264 MP4 bytes (the recipe in its `comment` tag); raises StudioError on failure."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        params = ["-movflags", "+faststart"]
        if comment:
            params += ["-metadata", f"comment={comment}"]
        writer = imageio_ffmpeg.write_frames(
            tmp, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=7,
            macro_block_size=2, output_params=params, ffmpeg_log_level="error",
        )
        writer.send(None)
        for f in frames:
            writer.send(f)
        writer.close()
        return Path(tmp).read_bytes()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise StudioError(f"Could not encode the MP4: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_png_folder(folder: Path, frames: Sequence[np.ndarray]) -> Path:
    """Numbered PNGs (0001.png …) in a new folder (fallback when no video encoder exists).

    The folder is named after the GIF, which was just claimed under a fresh number, so
    the name is free; exist_ok=False makes sure no earlier frames are ever mixed in.
    """
    import io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=False)
    for i, f in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        atomic_write_bytes(folder / f"{i + 1:04d}.png", buf.getvalue(), overwrite=False)
    return folder


def _slug_text(result: Result) -> str:
    request = result.request
    prompt = getattr(request, "prompt", "") or ""
    if not prompt:
        prompts = [p for p in getattr(request, "prompts", ()) if p]
        prompt = " to ".join(prompts[:2])
    model = getattr(request, "model", "") or ""
    name = model.removeprefix("builtin:") if model.startswith("builtin:") else Path(model).name
    return f"{name} walk {prompt}".strip()


def save_walk(result: Result, out_dir: Path, *, encoder: bool | None = None) -> list[Path]:
    """Write a walk: GIF, then MP4 beside it (or a numbered PNG folder); returns the paths.

    `encoder=False` forces the PNG-folder fallback (tests; machines without ffmpeg).
    """
    frames = _frames(result.images)
    request = result.request
    fps = int(result.info.get("fps") or getattr(request, "fps", 12) or 12)
    comment = recipe_json(result)
    seed = getattr(request, "seed", -1)
    data = gif_bytes(frames, fps, comment)

    def write(f: BinaryIO) -> None:
        f.write(data)

    gif = write_new_output(Path(out_dir), seed, _slug_text(result), ".gif", write)
    paths = [gif]
    exe = ffmpeg_exe() if encoder is not False else None
    if exe is not None:
        try:
            paths.append(write_beside(gif, ".mp4", mp4_bytes(frames, fps, comment)))
            return paths
        except StudioError as exc:
            log.warning("MP4 encoding failed (%s); writing PNG frames instead", exc)
    folder = write_png_folder(gif.with_name(gif.stem + FRAMES_SUFFIX), frames)
    return paths + sorted(folder.glob("*.png"))  # files, so the history can index them


# -- reading recipes back ------------------------------------------------------------------


def _gif_comment(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "GIF":
                raise RecipeError(f"{path.name} is not a GIF.")
            comment = im.info.get("comment", b"")
    except (UnidentifiedImageError, OSError) as exc:
        raise RecipeError(f"{path.name} is not a readable GIF ({exc}).") from None
    return comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)


def _unescape_ffmetadata(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _mp4_comment(path: Path) -> str:
    exe = ffmpeg_exe()
    if exe is None:
        raise RecipeError(f"Reading {path.name} needs ffmpeg (pip install imageio-ffmpeg).")
    try:
        proc = subprocess.run(
            [exe, "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
            capture_output=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RecipeError(f"Could not read {path.name}: {exc}.") from None
    if proc.returncode != 0:
        raise RecipeError(f"{path.name} is not a readable video.")
    # our comment is one line of JSON (json.dumps escapes newlines), so one line holds it
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("comment="):
            return _unescape_ffmetadata(line[len("comment="):])
    return ""


def read_recipe(path: Path) -> Recipe:
    """The walk recipe stored in a GIF's or MP4's comment."""
    path = Path(path)
    suffix = path.suffix.lower()
    comment = _gif_comment(path) if suffix == ".gif" else _mp4_comment(path)
    try:
        record = json.loads(comment) if comment.strip() else None
    except ValueError:
        record = None
    request = metadata.record_request(record)
    if request is None or not isinstance(record, dict):
        raise RecipeError(f"{path.name} holds no recipe (no generation settings were found in it).")
    modality = str(record.get("modality") or request.get("kind") or "explore")
    return Recipe("studio", modality, dict(request), "", {"format": suffix.lstrip(".").upper()})
