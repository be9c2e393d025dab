"""Output files: collision-free names, atomic writes, one writer per modality.

Names look like `outputs/2026-11-22/00012-1234567-a-red-fox.png`: a running
number per day folder, the seed, and a slug of the prompt. Files are written to
a temporary name and linked into place, so an existing file is never replaced
and a failure never leaves a partial file.

One rule for a save that fails part-way (a full disk on image 2 of 16, an MP4 that does
not fit after its GIF): every complete file is kept and indexed, and `SaveError` says
how many were saved and why the rest were not. No file is ever left that the history
does not know (files it could not index then are indexed on the next start, see
`studio.core.recovery`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from studio.core import prompts
from studio.core.atomic import atomic_write_bytes, claim, temp_file
from studio.core.environment import notices
from studio.core.errors import StudioError
from studio.core.history import INPUTS_FOLDER
from studio.core.results import Result

if TYPE_CHECKING:
    from studio.core.history import History

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


class SaveError(StudioError):
    """A save failed, maybe part-way; `paths` are the complete files it wrote (kept)."""

    def __init__(self, message: str, paths: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.paths = list(paths)


# The complete files written by the saves running on this thread (see save_result).
_written = threading.local()


@contextlib.contextmanager
def _collect() -> Iterator[list[Path]]:
    stack: list[list[Path]] = getattr(_written, "stack", None) or []
    _written.stack = stack
    files: list[Path] = []
    stack.append(files)
    try:
        yield files
    finally:
        stack.pop()


def _record(path: Path) -> Path:
    for files in getattr(_written, "stack", ()):
        files.append(path)
    return path


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
    slug = slugify(prompts.plain_text(prompt))  # `a-red-fox`, not `a-red-1-5-fox`
    with temp_file(folder, write, f"{slug}{suffix}") as tmp, _NAME_LOCK:
        number = _next_number(folder)
        for _attempt in range(10000):
            path = folder / f"{number:05d}-{seed}-{slug}{suffix}"
            try:
                return _record(claim(tmp, path))
            except FileExistsError:
                number += 1
    raise StudioError(f"Could not find a free file name in {folder}.")


def write_beside(main: Path, suffix: str, data: bytes) -> Path:
    """A companion file sharing the main output's stem (e.g. the .mid beside a .wav)."""
    return _record(atomic_write_bytes(main.with_suffix(suffix), data, overwrite=False))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc).strip().rstrip(".") or type(exc).__name__


def _partial_message(result: Result, written: list[Path], exc: BaseException) -> str:
    """How many files were saved, where, and why the rest were not (one sentence)."""
    folder = written[0].parent
    reason = _reason(exc)
    if result.modality == "image" and result.images:
        saved = sum(1 for p in written if p.suffix == ".png")
        return (f"Saved {saved} of {len(result.images)} images in {folder}; the rest could "
                f"not be written: {reason}.")
    names = ", ".join(p.name for p in written)
    return f"Saved only {names} in {folder}; the rest could not be written: {reason}."


#: request fields that name input files (img2img's init image, the inpainting mask,
#: MusicGen-Melody's melody reference)
INPUT_FIELDS = ("init_image", "mask", "melody")


def keep_inputs(result: Result, out_dir: Path) -> None:
    """Copy the input pictures a request names into `<day folder>/inputs/<sha1><suffix>`
    (content-named: the same picture is stored once) and point the result's request at
    the copies, so its recipe still reproduces the output when the originals move."""
    import dataclasses
    import hashlib

    request = result.request
    changes: dict[str, str] = {}
    for name in INPUT_FIELDS:
        source = getattr(request, name, "")
        if not source:
            continue
        data = Path(source).read_bytes()
        suffix = Path(source).suffix.lower() or ".png"
        kept = day_folder(out_dir) / INPUTS_FOLDER / f"{hashlib.sha1(data).hexdigest()}{suffix}"
        if not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another job stored it just now
                atomic_write_bytes(kept, data, overwrite=False)
        changes[name] = str(kept.resolve())
    if changes and dataclasses.is_dataclass(request):
        result.request = request.replace(**changes)


def save_result(result: Result, out_dir: Path) -> list[Path]:
    """Save every file of a result with the writer for its modality; returns the paths.

    Raises SaveError when anything fails; its `paths` are the complete files written
    before the failure, which are kept (see the module docstring). Input pictures are
    kept beside the outputs first (`keep_inputs`).
    """
    target = WRITERS.get(result.modality)
    if target is None:
        raise StudioError(f"No writer for {result.modality} outputs.")
    try:
        keep_inputs(result, Path(out_dir))
    except OSError as exc:
        raise SaveError(f"Could not keep the input pictures in {out_dir}: "
                        f"{_reason(exc)}.") from exc
    module, func = target.split(":")
    writer = getattr(importlib.import_module(module), func)
    with _collect() as written:
        try:
            return writer(result, Path(out_dir))
        except Exception as exc:
            if written:
                raise SaveError(_partial_message(result, written, exc), written) from exc
            if isinstance(exc, OSError):
                raise SaveError(f"Could not save the output in {out_dir}: "
                                f"{_reason(exc)}.") from exc
            raise


def index_outputs(paths: Sequence[Path], result: Result, history: History | None) -> str:
    """Add saved files to the history; returns "" or one sentence about what is not indexed.

    The files are safe on disk either way: recovery indexes them on the next start.
    """
    if history is None or not paths:
        return ""
    missed: list[Path] = []
    reason = ""
    for path in paths:
        try:
            history.add_output(path, result)
        except StudioError as exc:
            missed.append(path)
            reason = reason or str(exc).rstrip(".")
    if not missed:
        return ""
    what, it = (missed[0].name, "it") if len(missed) == 1 else (f"{len(missed)} files", "them")
    return (f"Saved {what} but could not add {it} to the history ({reason}); Studio "
            f"indexes {it} when it next starts.")


def save_and_index(result: Result, out_dir: Path, history: History | None) -> list[Path]:
    """Save a result and index every complete file, also when the save fails part-way.

    Returns the paths; raises SaveError (after indexing what was written) when the save
    failed. A file that could not be indexed is kept and logged as one warning.
    """
    try:
        paths = save_result(result, out_dir)
    except SaveError as exc:
        problem = index_outputs(exc.paths, result, history)
        if problem:
            notices.warning(problem)
        raise
    problem = index_outputs(paths, result, history)
    if problem:
        notices.warning(problem)
    return paths
