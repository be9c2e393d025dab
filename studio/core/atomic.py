"""Atomic file writing: write to a temporary name in the same folder, fsync, rename.

A crash or a full disk never leaves a partial file under the final name. With
`overwrite=False` an existing file is never replaced: the finished temporary file is
hard-linked into place (which fails if the name is taken); on file systems without
hard links (FAT, some network shares) the name is claimed with O_EXCL first.

Temporary files are hidden (`.NAME.XXXX.part`) and locked (flock) while their writer
lives, so a later start can tell a file left by a killed process (`is_stale_temp`)
from one that another process is writing right now.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: staleness falls back to the file's age
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
# Without flock, a temp file this old cannot belong to a save still in progress.
STALE_AGE_S = 3600.0


def _read_umask() -> int:
    """The process umask without the racy os.umask() set-and-restore dance."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


# mkstemp makes 0600 files; outputs should get the permissions any new file would.
_FILE_MODE = 0o666 & ~_read_umask()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); harmless to skip where unsupported."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def temp_file(
    folder: Path, write: Callable[[BinaryIO], object], name: str = "out"
) -> Iterator[Path]:
    """Write a finished, fsynced temporary file in `folder`; yield its path; always clean up.

    The body of the `with` moves it into place (see `claim`); if it does not, or anything
    raises, the temporary file is removed, so no partial file is ever left behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at import: most processes that read settings never write

    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{name[:64]}.", suffix=TEMP_SUFFIX,
                                    dir=folder)
    tmp = Path(tmp_name)
    lock = _lock(fd)  # held until the file is claimed or removed (released by a kill too)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, _FILE_MODE)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if lock is not None:
            os.close(lock)


def _lock(fd: int) -> int | None:
    """A duplicate of `fd` holding an exclusive flock on its file (None where unsupported).

    The duplicate shares the open file, so the lock outlives closing `fd` after writing.
    """
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.dup(fd)
    except OSError:
        return None


def is_temp_name(name: str) -> bool:
    """True for the names `temp_file` gives its temporary files."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def is_stale_temp(path: Path) -> bool:
    """True when no living process is writing this temporary file (its writer died)."""
    path = Path(path)
    if fcntl is None:
        try:
            return time.time() - path.stat().st_mtime > STALE_AGE_S
        except OSError:
            return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # locked: a save in progress in another process (or thread)
    else:
        return True
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files under `folder` that their killed writers left; returns them."""
    removed: list[Path] = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if is_temp_name(name) and is_stale_temp(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def claim(tmp: Path, path: Path) -> Path:
    """Move a finished temporary file to `path` unless `path` exists (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP,
                             errno.ENOSYS, errno.EXDEV, errno.EMLINK, errno.EINVAL):
            raise
        # No hard links here: reserve the name exclusively, then replace our own placeholder.
        placeholder = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        os.close(placeholder)
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def atomic_write(
    path: Path, write: Callable[[BinaryIO], object], *, overwrite: bool = True
) -> Path:
    """Call `write(f)` on a temp file beside `path`, then move it into place.

    With overwrite=False an existing `path` is never replaced (FileExistsError).
    """
    path = Path(path)
    with temp_file(path.parent, write, path.name) as tmp:
        if overwrite:
            os.replace(tmp, path)
            _fsync_dir(path.parent)
            return path
        return claim(tmp, path)


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    return atomic_write(path, lambda f: f.write(data), overwrite=overwrite)
