"""What loading a model will cost: the weight files a loader reads and their size once
loaded (from safetensors and GGUF headers; no torch)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from studio.core.catalog.builtins import builtin_path
from studio.core.catalog.classify import WEIGHT_SUFFIXES
from studio.core.catalog.headers import (
    HEADER_ERRORS,
    json_file,
    read_gguf_metadata,
    read_safetensors_header,
)

#: the largest context (tokens) the llama.cpp runtime sizes its KV cache for; models
#: trained on more read this much (a 128k-token cache for a 7B model would need many GB)
LLAMA_CONTEXT_CAP = 4096
#: prompt tokens llama.cpp reads per step (its compute buffer grows with it)
LLAMA_BATCH = 256
_KV_BYTES = 2  # llama.cpp keeps K and V in f16
_GGUF_KEYS = 4096  # enough for every key of a GGUF header, arrays read past

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


def gguf_memory(path: Path) -> int:
    """Bytes llama.cpp holds for a GGUF, quantised as stored: the file (its tensors are
    mapped as they are), the KV cache for the context it is given (layers × context ×
    K/V width × 2 × f16; grouped-query models have fewer K/V heads), and the compute
    and output buffers. Measured: the built-in SmolLM2-135M Q4_1 (94 MB) is estimated at
    240 MiB, llama.cpp reported 232 MiB; the tests' tiny GPT-2 GGUF 3.7 against 3.8 MiB."""
    size = path.stat().st_size
    try:
        meta = read_gguf_metadata(path, max_keys=_GGUF_KEYS, arrays=True)
    except HEADER_ERRORS:
        return size

    def number(key: str) -> int:
        value = meta.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int) and value > 0 else 0

    arch = str(meta.get("general.architecture") or "")
    layers, width = number("block_count"), number("embedding_length")
    heads = number("attention.head_count")
    kv_heads = number("attention.head_count_kv") or heads
    trained = number("context_length")
    context = min(trained, LLAMA_CONTEXT_CAP) if trained else LLAMA_CONTEXT_CAP
    head_k = number("attention.key_length") or (width // heads if heads else 0)
    head_v = number("attention.value_length") or head_k
    kv = layers * context * kv_heads * (head_k + head_v) * _KV_BYTES
    vocab = meta.get("tokenizer.ggml.tokens")
    vocab = vocab if isinstance(vocab, int) else 0
    batch = min(LLAMA_BATCH, context)
    # the compute buffer: a batch of f32 logits, or (larger on small-vocabulary models
    # without flash attention) a batch of attention scores over the context
    compute = batch * (max(vocab * 4, context * heads * 6) + width * 16)
    return size + kv + compute


def estimate_memory(model_id: str, dtype_bytes: int = 4) -> int:
    """Bytes a model will take once loaded in a float dtype of `dtype_bytes`, from its files.

    safetensors headers give exact tensor sizes; GGUF files run quantised on llama.cpp
    (`gguf_memory`: the file plus its KV cache; the dtype does not apply); other files
    count as stored.
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
                total += gguf_memory(path)
            else:
                total += path.stat().st_size
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
    return total

