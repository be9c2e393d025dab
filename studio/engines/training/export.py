"""Writing a finished model folder so that a reader never sees half of it.

The recipes that export a folder (VAE, composer, text LoRA) fill a hidden temporary
folder beside the destination (the catalog skips names starting with "."), then rename
it into place; a model of the same name from an earlier run is replaced only after the
new one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.training import TrainingError


def folder_name(name: str) -> str:
    """A run name as a folder name (the names core.training accepts are already safe)."""
    return re.sub(r"[^A-Za-z0-9 _.-]+", "-", name).strip(" .") or "model"


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def publish_folder(out_dir: Path, name: str, fill: Callable[[Path], None]) -> Path:
    """`fill(tmp)` writes the model's files into a temporary folder, which then becomes
    `out_dir/name`; returns that path. An OSError (a full disk) is one sentence and the
    previous model of that name stays as it was."""
    final = out_dir / folder_name(name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=out_dir))
    except OSError as exc:
        raise TrainingError(f"Could not write the model into {out_dir}: "
                            f"{exc.strerror or exc}.") from None
    old: Path | None = None
    try:
        fill(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():
            old.rename(final)
        raise TrainingError(f"Could not write the model into {final}: "
                            f"{exc.strerror or exc}.") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
