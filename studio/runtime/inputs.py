"""Pictures a panel hands to a job as files: the canvas's init image and mask.

A request names its inputs by path (it is the whole recipe), so the Art panel's canvas
is written to disk before the job is queued. Files are named by their content (SHA-256),
so the same init image is stored once however often it is used, and written atomically
(a temporary name, then a link into place) so a job never reads half a file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from studio.core import paths
from studio.core.atomic import atomic_write_bytes


def inputs_dir() -> Path:
    """Where canvas inputs are kept (inside the Studio home, beside the cache)."""
    return paths.studio_home() / "inputs"


def save_input(data: bytes, kind: str, suffix: str = ".png", folder: Path | None = None) -> Path:
    """The path of `data` stored as `<kind>-<hash><suffix>`; an identical file is reused."""
    digest = hashlib.sha256(data).hexdigest()[:20]
    path = (folder or inputs_dir()) / f"{kind}-{digest}{suffix}"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return atomic_write_bytes(path, data, overwrite=False)
    except FileExistsError:  # another save of the same content won the race
        return path
