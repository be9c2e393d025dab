"""Textual-inversion embeddings: the files A1111 reads, used when a prompt names them.

A1111 stores an embedding as `.safetensors` (`emb_params`; SDXL `clip_l` + `clip_g`)
or `.pt` (`string_to_param: {"*": tensor}`, pickled: only with pickled checkpoints
allowed, and then read as plain weights); diffusers' format (`{token: tensor}`) is read
too. The vectors replace the name's tokens at encode time (`prompt_encoding`), so the
tokenizer and the text encoder are never changed: a prompt without the name encodes
exactly as before.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.core import catalog
from studio.core.errors import RequestError
from studio.core.settings import Settings


@dataclass(frozen=True)
class Embedding:
    """One embedding: its name and its vectors per text-encoder width ({768: [n, 768]})."""

    name: str
    path: Path
    vectors: dict[int, torch.Tensor] = field(default_factory=dict)
    sha256: str = ""

    @property
    def short_hash(self) -> str:
        """What A1111 writes in `TI hashes`: the file's SHA-256, first 12 hex digits."""
        return self.sha256[:12]

    def for_width(self, width: int) -> torch.Tensor | None:
        return self.vectors.get(width)


def _vectors(data: object, name: str) -> dict[int, torch.Tensor]:
    """The tensors of an embedding file's data by width, whatever layout it uses."""
    if not isinstance(data, Mapping):
        raise RequestError(f"The embedding {name} does not hold a dictionary of tensors.")
    found: list[torch.Tensor] = []
    params = data.get("string_to_param")
    if isinstance(params, Mapping):  # A1111 .pt
        found += [v for v in params.values() if isinstance(v, torch.Tensor)]
    for key in ("emb_params", "clip_l", "clip_g"):
        if isinstance(data.get(key), torch.Tensor):
            found.append(data[key])
    if not found:  # diffusers: {token: tensor}
        found = [v for v in data.values() if isinstance(v, torch.Tensor)]
    out: dict[int, torch.Tensor] = {}
    for tensor in found:
        t = tensor.detach().float()
        t = t[None] if t.dim() == 1 else t
        if t.dim() != 2 or t.shape[0] == 0:
            continue
        out.setdefault(int(t.shape[1]), t)
    if not out:
        raise RequestError(f"The embedding {name} holds no vectors Studio can use.")
    return out


def read_embedding(name: str, path: Path, allow_pickle: bool) -> Embedding:
    """An embedding file, or one sentence saying why it cannot be used."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path))
        else:
            if not allow_pickle:
                raise RequestError(f"The embedding {path.name} is a pickled file, which can "
                                   "run code when opened; allow pickled checkpoints in "
                                   "Settings to use it (it is then read as plain weights).")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except RequestError:
        raise
    except pickle.UnpicklingError:
        raise RequestError(f"The embedding {path.name} holds more than plain weights, so "
                           "Studio will not open it.") from None
    except Exception as exc:
        raise RequestError(f"The embedding file {path.name} is damaged ({exc}).") from None
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return Embedding(name, path, _vectors(data, path.name), digest)


def named_in(text: str, name: str) -> bool:
    """Whether a prompt names an embedding as a word (A1111 matches its tokens)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


class EmbeddingShelf:
    """The embeddings found on disk, read when a prompt first names them (kept by file)."""

    def __init__(self) -> None:
        self._read: dict[tuple[str, int], Embedding] = {}

    def for_prompts(self, texts: list[str], settings: Settings) -> dict[str, Embedding]:
        """The embeddings the texts name, by name (none: {} and nothing is read)."""
        found = catalog.find_embeddings(settings)
        joined = "\n".join(texts)
        out: dict[str, Embedding] = {}
        for name, path in found.items():
            if not named_in(joined, name):
                continue
            stamp = (str(path), path.stat().st_mtime_ns)
            embedding = self._read.get(stamp)
            if embedding is None:
                embedding = read_embedding(name, path, settings.allow_pickle)
                self._read[stamp] = embedding
            out[name] = embedding
        return out
