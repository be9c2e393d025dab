"""Faults made on purpose: a disk that fills up on the Nth file, what a kill leaves behind.

`disk_full_on(monkeypatch, n)` makes the write of the nth temporary output file from now
on fail with ENOSPC after a few bytes, at the lowest level Studio writes through
(`os.fdopen` of the `.part` file in studio.core.atomic): exactly what a full disk does.
"""

from __future__ import annotations

import errno
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from studio.core import atomic

NUMBERED = re.compile(r"^(\d{5,})-")


class _FullFile:
    """A file object whose every write stores a few bytes, then fails like a full disk."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        self._f.write(bytes(data)[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *_exc: object) -> None:
        self._f.close()


def disk_full_on(monkeypatch: pytest.MonkeyPatch, nth: int) -> dict[str, int]:
    """Fail the nth temp output file written from now on; returns the live counter."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell output files from others")
    real = atomic.os.fdopen
    count = {"files": 0}

    def fdopen(fd: int, mode: str = "r", *args, **kwargs):
        f = real(fd, mode, *args, **kwargs)
        if "w" in mode and atomic.is_temp_name(Path(os.readlink(f"/proc/self/fd/{fd}")).name):
            count["files"] += 1
            if count["files"] == nth:
                return _FullFile(f)
        return f

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    return count


def temp_files(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if atomic.is_temp_name(p.name)]


def output_files(folder: Path) -> list[Path]:
    """Every complete output under folder (primary files, not companions or frames)."""
    from studio.core.history import ALL_SUFFIXES, FRAMES_SUFFIX

    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in ALL_SUFFIXES
                  and not p.name.startswith(".") and not p.parent.name.endswith(FRAMES_SUFFIX))


def assert_nothing_lost(folder: Path, history_path: Path):
    """The rule: after a start, every complete output is indexed, no temp file is left,
    and no number was used twice in a day folder. Returns what the recovery did."""
    from studio.core.history import History
    from studio.core.recovery import recover

    with History(history_path) as history:
        found = recover(history, [folder])  # what every start does
        indexed = {str(item.path) for item in history.recent(limit=100000)}
    assert temp_files(folder) == []
    files = output_files(folder)
    missing = [p for p in files if str(p.resolve()) not in indexed]
    assert missing == [], f"complete outputs the history does not know: {missing}"
    for day in {p.parent for p in files}:
        stems = {p.stem for p in day.iterdir() if NUMBERED.match(p.name)}
        numbers = Counter(NUMBERED.match(s).group(1) for s in stems)  # type: ignore[union-attr]
        assert [n for n, k in numbers.items() if k > 1] == [], f"a number used twice in {day}"
    return found
