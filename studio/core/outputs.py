"""Output files: collision-free names, atomic writes, one writer per modality.

Names look like `outputs/2026-11-22/00012-1234567-a-red-fox.png`: a running
number per day folder, the seed, and a slug of the prompt. Files are written to
a temporary name and linked into place, so an existing file is never replaced
and a failure never leaves a partial file.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import re
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from studio.core.atomic import atomic_write_bytes, claim, temp_file
from studio.core.errors import StudioError
from studio.core.results import Result

SLUG_MAX = 48
_NUMBER = re.compile(r"^(\d{5,})-")

# modality -> "module:function" with signature (result, out_dir) -> list[Path]
WRITERS: dict[str, str] = {
    "image": "studio.core.formats.png:save_images",
    "text": "studio.core.formats.text:save_text",
    "music": "studio.core.formats.audio:save_audio",
    "explore": "studio.core.formats.video:save_walk",
}


def slugify(prompt: str, max_len: int = SLUG_MAX) -> str:
    """A file-name-safe slug for any prompt in any script ("untitled" when nothing is left).

    Letters, digits and combining marks of every script are kept (so Devanagari or Thai
    words stay whole); everything else (spaces, punctuation, slashes, dots, emoji) becomes
    a single dash, so `../` tricks or separators can never reach the file name.
    """
    text = unicodedata.normalize("NFKC", prompt or "").lower()
    chars: list[str] = []
    for c in text:
        kind = unicodedata.category(c)[0]
        if kind in "LN" or (kind == "M" and chars and chars[-1] != "-"):
            chars.append(c)  # a mark only when it belongs to a kept letter (not to an emoji)
        elif chars and chars[-1] != "-":
            chars.append("-")
    kept = "".join(chars)[:max_len].strip("-")
    return kept or "untitled"


def day_folder(out_dir: Path, when: _dt.datetime | None = None) -> Path:
    when = when or _dt.datetime.now()
    return Path(out_dir) / when.strftime("%Y-%m-%d")


def _next_number(folder: Path) -> int:
    best = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            m = _NUMBER.match(entry.name)
            if m:
                best = max(best, int(m.group(1)))
    return best + 1


# Numbers are picked and claimed under this lock so that threads of one process never
# share a number (names already never collide: a taken name is never replaced).
_NAME_LOCK = threading.Lock()


def write_new_output(
    out_dir: Path,
    seed: int,
    prompt: str,
    suffix: str,
    write: Callable[[BinaryIO], None],
    when: _dt.datetime | None = None,
) -> Path:
    """Write a new output under a fresh name (never overwriting) and return its path.

    The data is written and fsynced under a temporary name first (outside the lock, so
    slow encoders run in parallel); only picking the number and linking it into place
    is serialised. If `write` raises, nothing is left behind.
    """
    folder = day_folder(out_dir, when)
    slug = slugify(prompt)
    with temp_file(folder, write, f"{slug}{suffix}") as tmp, _NAME_LOCK:
        number = _next_number(folder)
        for _attempt in range(10000):
            path = folder / f"{number:05d}-{seed}-{slug}{suffix}"
            try:
                return claim(tmp, path)
            except FileExistsError:
                number += 1
    raise StudioError(f"Could not find a free file name in {folder}.")


def write_beside(main: Path, suffix: str, data: bytes) -> Path:
    """A companion file sharing the main output's stem (e.g. the .mid beside a .wav)."""
    return atomic_write_bytes(main.with_suffix(suffix), data, overwrite=False)


def save_result(result: Result, out_dir: Path) -> list[Path]:
    """Save every file of a result with the writer for its modality; returns the paths."""
    target = WRITERS.get(result.modality)
    if target is None:
        raise StudioError(f"No writer for {result.modality} outputs.")
    module, func = target.split(":")
    writer = getattr(importlib.import_module(module), func)
    try:
        return writer(result, Path(out_dir))
    except OSError as exc:
        reason = exc.strerror or exc
        raise StudioError(f"Could not save the output in {out_dir}: {reason}.") from exc
