"""Readers for the headers of weight files: the JSON of a safetensors file, the first
key-values of a GGUF file. They read a few bytes, never the weights, never torch."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100 * 1024 * 1024
#: what a bad header raises (the callers report it as one line)
HEADER_ERRORS = (OSError, ValueError, struct.error, UnicodeDecodeError)

def read_safetensors_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, metadata).

    Reads 8 bytes plus the header; raises ValueError with a reason for a file that
    is not safetensors or is cut short.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("the file is too short to be safetensors")
        (length,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if length < 2 or length > MAX_HEADER:
            raise ValueError("not a safetensors file (bad header length)")
        if 8 + length > size:
            raise ValueError("the file is truncated (is the download complete?)")
        raw = f.read(length)
    if not raw.lstrip().startswith(b"{"):
        raise ValueError("not a safetensors file (no JSON header)")
    try:
        header = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for non-UTF-8 bytes
        reason = getattr(exc, "msg", None) or getattr(exc, "reason", None) or str(exc)
        raise ValueError(f"the safetensors header is not valid JSON ({reason})") from None
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    end = 8 + length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise ValueError(f"tensor {name!r} has no data offsets")
        end = max(end, 8 + length + int(offsets[1]))
    if end > size:
        raise ValueError("the file is truncated (is the download complete?)")
    return header


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def _skip_gguf_array(f: Any) -> int:
    """Read past one GGUF array value (its element type, count, elements); its length."""
    (etype, count) = struct.unpack("<IQ", f.read(12))
    if etype == 8:  # strings: a length before each
        for _ in range(count):
            (slen,) = struct.unpack("<Q", f.read(8))
            if slen > 1 << 20:
                raise ValueError("the GGUF header is corrupt")
            f.seek(slen, os.SEEK_CUR)
    elif etype in _GGUF_SCALARS:
        f.seek(count * struct.calcsize(_GGUF_SCALARS[etype]), os.SEEK_CUR)
    else:  # arrays of arrays: not in any GGUF we read
        raise ValueError("the GGUF header holds an array of arrays")
    return int(count)


def read_gguf_metadata(path: str | os.PathLike, max_keys: int = 32,
                       arrays: bool = False) -> dict[str, Any]:
    """The first scalar/string key-values of a GGUF file (general.architecture, .name...).

    Stops at the first array (the tokenizer's) so it reads a few hundred bytes; with
    `arrays` it reads past them instead, and an array's value is its length (the
    vocabulary size for `tokenizer.ggml.tokens`), so keys after one are read too.
    """
    out: dict[str, Any] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        (version,) = struct.unpack("<I", f.read(4))
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        _tensors, n_kv = struct.unpack("<QQ", f.read(16))
        for _ in range(min(n_kv, max_keys)):
            (klen,) = struct.unpack("<Q", f.read(8))
            if klen > 65536:
                raise ValueError("the GGUF header is corrupt")
            key = f.read(klen).decode("utf-8", "replace")
            (vtype,) = struct.unpack("<I", f.read(4))
            if vtype == 8:
                (slen,) = struct.unpack("<Q", f.read(8))
                if slen > 1 << 20:
                    raise ValueError("the GGUF header is corrupt")
                out[key] = f.read(slen).decode("utf-8", "replace")
            elif vtype in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[vtype]
                (out[key],) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
            elif vtype == 9 and arrays:
                out[key] = _skip_gguf_array(f)
            else:  # arrays (tokenizer vocab) come after the general.* keys
                break
    return out


def json_file(path: Path) -> dict[str, Any]:
    """A small JSON config as a dict ({} when it is missing, unreadable or not an object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

