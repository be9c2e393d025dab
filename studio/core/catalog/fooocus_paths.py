"""Fooocus's `config.txt`: the folders a Fooocus install reads its models from.

Fooocus writes `config.txt` in its root, a JSON object whose `path_checkpoints`,
`path_loras` and `path_embeddings` name its model folders (a string, or a list of them
in newer versions); artists point them at a shared model store instead of Fooocus's own
`models/…`. Studio reads the folders it names too. A `config.txt` that is not a JSON
object is some other tool's file and is left alone; a Fooocus one whose path entries are
neither a string nor a list of strings is one sentence in the scan's issues.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

FILE_NAME = "config.txt"
MAX_BYTES = 1_000_000  # a settings file is a few kilobytes; anything bigger is not one
CHECKPOINTS, LORAS, EMBEDDINGS = "path_checkpoints", "path_loras", "path_embeddings"


def _values(value: object) -> list[str] | None:
    """The paths an entry names (one string or a list of them); None: not paths."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def config_paths(file: Path, keys: Sequence[str], issues: list[str] | None = None
                 ) -> list[Path]:
    """The folders a Fooocus config.txt names under these keys (`path_loras`, ...), as
    absolute paths (a relative one is taken from the file's folder), in the file's order;
    [] when the file is not Fooocus's, with one line in `issues` when an entry is bad."""
    file = Path(file)
    try:
        if file.stat().st_size > MAX_BYTES:
            return []
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []  # not readable as JSON: not Fooocus's settings
    if not isinstance(data, dict):
        return []
    out: list[Path] = []
    for key in keys:
        if key not in data:
            continue
        values = _values(data[key])
        if values is None:
            if issues is not None:
                line = (f"{file}: {key} should be a folder or a list of folders; Studio "
                        "leaves it out until it is fixed.")
                if line not in issues:
                    issues.append(line)
            continue
        for value in values:
            path = Path(os.path.normpath(file.parent / os.path.expanduser(value)))
            if path not in out:
                out.append(path)
    return out
