"""Deleting outputs into a trash folder, so that a delete can be undone.

A deleted output is moved, with the files that belong to it (the .mid beside a .wav,
sidecars such as `x.png.xmp`, a walk's `<stem>-frames/` folder), into its own folder
under `<output>/.trash/`, and its history row is removed; `restore` moves everything back
and puts the row back with its id, rating and date. A `trashed.json` in each trash folder
says where the files came from, so nothing is lost even when the program closes before
an Undo. Nothing here deletes a file: emptying the trash is the user's business.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.history import FRAMES_SUFFIX, History, HistoryItem

log = logging.getLogger(__name__)

TRASH_DIR = ".trash"
MANIFEST = "trashed.json"


@dataclass(frozen=True)
class Trashed:
    """One delete: where each file was and where it is now, and the history row removed.

    `path` is the output's own file, where it was (and will be again after `restore`);
    an output whose file was already gone has no moves and no folder, only its row.
    """

    path: Path
    folder: Path | None
    moves: tuple[tuple[Path, Path], ...]  # (original place, place in the trash)
    item: HistoryItem | None = None


def trash_folder(out_dir: str | Path) -> Path:
    return Path(out_dir) / TRASH_DIR


def companions(path: str | Path) -> list[Path]:
    """The output file first, then every file that belongs to it.

    A companion shares the output's stem with a single suffix (`x.mid` beside `x.wav`),
    or extends its full name (`x.png.xmp`), or is the `x-frames/` folder of a walk;
    `x.v2.png` is another output, not a companion.
    """
    path = Path(path)
    found = [path]
    folder, stem, name = path.parent, path.stem, path.name
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        if entry == path:
            continue
        other = entry.name
        if entry.is_dir():
            if other == stem + FRAMES_SUFFIX:
                found.append(entry)
            continue
        sidecar = other.startswith(name + ".")
        same_stem = other.startswith(stem + ".") and "." not in other[len(stem) + 1:]
        if sidecar or same_stem:
            found.append(entry)
    return found


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))


def _reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


def trash_output(path: str | Path, out_dir: str | Path,
                 history: History | None = None) -> Trashed:
    """Move an output and its companions into `<out_dir>/.trash/…` and forget its history
    row; returns what `restore` needs. StudioError (files left in place) when it cannot.

    When the file is already gone, only its history row is removed (and kept for Undo).
    """
    path = Path(path)
    if not path.exists():
        item = history.find_path(path) if history is not None else None
        if item is None or history is None:
            raise StudioError(f"{path.name} is not there any more: it was moved or deleted.")
        history.remove(item.id)
        return Trashed(path, None, (), item)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = trash_folder(out_dir)
    folder = base / f"{stamp}-{path.stem}"
    n = 1
    while folder.exists():
        n += 1
        folder = base / f"{stamp}-{path.stem}-{n}"
    moves = tuple((p, folder / p.name) for p in companions(path))
    item = history.find_path(path) if history is not None else None
    done: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True)
        for source, target in moves:
            _move(source, target)
            done.append((source, target))
        _write_manifest(folder, moves, item)
        if item is not None and history is not None:
            history.remove(item.id)
    except (OSError, StudioError) as exc:
        for source, target in reversed(done):
            try:
                _move(target, source)
            except OSError:
                log.error("trash: could not move %s back to %s", target, source)
        shutil.rmtree(folder, ignore_errors=True)
        reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
        raise StudioError(f"Could not move {path.name} to the trash: {reason}") from exc
    return Trashed(path, folder, moves, item)


def restore(trashed: Trashed, history: History | None = None) -> Path:
    """Undo a `trash_output`: the files back in place, the history row back. Returns the
    output's path. StudioError (nothing moved) when a file is gone or its place is taken."""
    for source, target in trashed.moves:
        if not target.exists():
            raise StudioError(f"{target.name} is no longer in the trash.")
        if source.exists():
            raise StudioError(f"Cannot put {source.name} back: a file of that name is "
                              "there now.")
    done: list[tuple[Path, Path]] = []
    try:
        for source, target in trashed.moves:
            _move(target, source)
            done.append((source, target))
    except OSError as exc:
        for source, target in reversed(done):
            try:
                _move(source, target)
            except OSError:
                log.error("trash: could not move %s back into the trash", source)
        raise StudioError(f"Could not restore {trashed.path.name}: {_reason(exc)}.") from exc
    if trashed.item is not None and history is not None:
        history.restore(trashed.item)
    if trashed.folder is not None:
        (trashed.folder / MANIFEST).unlink(missing_ok=True)
        try:
            trashed.folder.rmdir()
        except OSError:  # something else was put there: leave it
            log.debug("trash: %s is not empty after a restore", trashed.folder)
    return trashed.path


def _write_manifest(folder: Path, moves: tuple[tuple[Path, Path], ...],
                    item: HistoryItem | None) -> None:
    record = {
        "deleted": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "files": [{"from": str(source), "to": target.name} for source, target in moves],
        "history": ({**dataclasses.asdict(item), "path": str(item.path)}
                    if item is not None else None),
    }
    (folder / MANIFEST).write_text(json.dumps(record, indent=2, ensure_ascii=False,
                                              default=str), encoding="utf-8")
