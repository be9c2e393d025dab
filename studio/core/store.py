"""A small keyed cache under Studio's cache folder, so engines never write files themselves.

Derived data that is costly to compute but can always be recomputed (GANSpace
directions, A1111 model hashes) lives here: one file per key, written atomically, and a
missing or unreadable entry reads as None (the caller recomputes it). Plain Python.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


class Store:
    """Entries of one kind (`name` is their folder under the cache; "" = the cache itself).

    The folder is looked up on every call, so a store made at import time follows a
    STUDIO_HOME set later (tests, a second profile).
    """

    def __init__(self, name: str = "") -> None:
        self.name = name

    @property
    def folder(self) -> Path:
        return paths.cache_dir() / self.name if self.name else paths.cache_dir()

    def path(self, key: str) -> Path:
        """Where the entry for `key` lives (a file name, no folders)."""
        if not key or "/" in key or "\\" in key or key in (".", ".."):
            raise ValueError(f"a store key must be a plain file name, not {key!r}")
        return self.folder / key

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except OSError:
            return None

    def write_bytes(self, key: str, data: bytes) -> bool:
        """Write atomically; False (logged) when the disk refuses: a cache is a convenience."""
        path = self.path(key)
        try:
            atomic_write_bytes(path, data)
        except OSError:
            log.warning("could not write %s", path, exc_info=True)
            return False
        return True

    def read_json(self, key: str) -> Any:
        raw = self.read_bytes(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("%s is not valid JSON; starting it afresh", self.path(key))
            return None

    def write_json(self, key: str, value: Any) -> bool:
        return self.write_bytes(key, json.dumps(value, indent=1).encode("utf-8"))
