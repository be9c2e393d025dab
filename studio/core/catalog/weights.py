"""What loading a model will cost: the weight files a loader reads and their size once
loaded (from safetensors headers; no torch)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from studio.core.catalog.builtins import builtin_path
from studio.core.catalog.classify import WEIGHT_SUFFIXES
from studio.core.catalog.headers import json_file, read_safetensors_header

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def weight_files(model_id: str) -> list[Path]:
    """The files a loader would read for a model id (variants and unused duplicates left out)."""
    if model_id.startswith("builtin:"):
        path = builtin_path(model_id)
        if path is None or not path.exists():
            return []
        return [path] if path.is_file() else weight_files(str(path))
    path = Path(model_id)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    folders = [path]
    index = json_file(path / "model_index.json")
    if index:  # a pipeline: only the components it names (not a root single-file copy)
        folders = [path / k for k, v in index.items()
                   if not k.startswith("_") and isinstance(v, list) and v[0]]
    out: list[Path] = []
    for folder in folders:
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError:
            continue
        names = {p.name for p in files}
        has_safe = any(n.endswith(".safetensors") for n in names)
        for p in files:
            n = p.name
            if not n.endswith(WEIGHT_SUFFIXES):
                continue
            if has_safe and not n.endswith(".safetensors"):
                continue  # loaders prefer safetensors over .bin copies
            stem, dot, ext = n.rpartition(".")
            if "." in stem:  # a variant (model.fp16.safetensors): skip if the plain one exists
                plain = stem.rsplit(".", 1)[0] + dot + ext
                if plain in names:
                    continue
            out.append(p)
    return out


def estimate_memory(model_id: str, dtype_bytes: int = 4) -> int:
    """Bytes a model will take once loaded in a float dtype of `dtype_bytes`, from its files.

    safetensors headers give exact tensor sizes; GGUF files are dequantised on load
    (about 5× their size in fp32); other files count as stored.
    """
    total = 0
    for path in weight_files(model_id):
        try:
            if path.suffix == ".safetensors":
                header = read_safetensors_header(path)
                for name, info in header.items():
                    if name == "__metadata__" or not isinstance(info, dict):
                        continue
                    n = 1
                    for d in info.get("shape", []):
                        n *= int(d)
                    dt = str(info.get("dtype", "F32"))
                    total += n * (dtype_bytes if dt.startswith(("F", "BF")) else
                                  _DTYPE_BYTES.get(dt, 4))
            elif path.suffix == ".gguf":
                total += int(path.stat().st_size * 5 * dtype_bytes / 4)
            else:
                total += path.stat().st_size
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
    return total

