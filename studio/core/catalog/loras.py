"""LoRAs and textual-inversion embeddings: where they live, what base model they are for.

Artists keep these files where AUTOMATIC1111, ComfyUI, Fooocus or InvokeAI put them.
Studio looks in `models/Lora` (and `loras`, `LyCORIS`) and `models/embeddings` under each
models folder, and next to a chosen folder that is itself a checkpoints folder
(`…/models/Stable-diffusion` → `…/models/Lora`; A1111 keeps embeddings in its root,
`…/embeddings`); in InvokeAI's per-base folders (`models/sd-1/lora`, `models/sdxl/embedding`);
and in the folders a ComfyUI root's `extra_model_paths.yaml` names (`comfy_paths`).
Subfolders count, as in A1111; a LoRA is named by its file's stem.

The base family a LoRA is for comes from what the file says: kohya's
`ss_base_model_version` / `ss_v2`, the modelspec architecture, or the shapes of its
layers (a 768-wide text encoder is SD 1.x, 1024 SD 2.x, two encoders SDXL; a UNet that
reads 384-wide MiniLM states is the built-in sketch model, whose Lab LoRAs say
`ss_base_model_version` "studio_sketch_v1"). A file that says none of it takes the base
its InvokeAI folder names (`models/sdxl/lora/…` is for SDXL). The engine refuses a LoRA of
another family than the model's (`engines/lora.check_base`). Plain Python: only
safetensors headers are read.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.core.catalog.classify import (
    EMBEDDING_SUFFIXES,
    embedding_layout,
    invoke_base,
    lora_base,
)
from studio.core.catalog.headers import HEADER_ERRORS, read_safetensors_header
from studio.core.catalog.scan import embedding_dirs, lora_dirs
from studio.core.errors import RequestError
from studio.core.families import Family
from studio.core.settings import Settings
from studio.core.store import Store

LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
PICKLED = (".pt", ".ckpt", ".bin")
WHERE = ("put the file in models/Lora (or the LoRA folder of an A1111, ComfyUI, Fooocus or "
         "InvokeAI models folder)")


@dataclass(frozen=True)
class LoraFile:
    """One LoRA on disk: its name (what `<lora:NAME:w>` says), path and base family."""

    name: str
    path: Path
    base: Family | None = None  # None: the file does not say
    pickled: bool = False

    @property
    def base_name(self) -> str:
        return self.base.name if self.base is not None else ""


def _files(folders: Sequence[Path], suffixes: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """(name, path) of the files under the folders (subfolders too); the name is the stem,
    or `sub/stem` inside a subfolder (both are accepted when looked up)."""
    for folder in folders:
        for root, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(files):
                path = Path(root) / file
                if path.suffix.lower() in suffixes and not file.startswith("."):
                    yield path.stem, path


def lora_file(path: Path, name: str | None = None) -> LoraFile:
    """A LoRA file with its base family; a file that cannot be read is a RequestError."""
    path = Path(path)
    name = name or path.stem
    if path.suffix.lower() in PICKLED:  # cannot say without unpickling: the folder may
        return LoraFile(name, path, invoke_base(path), pickled=True)
    try:
        header = read_safetensors_header(path)
    except HEADER_ERRORS as exc:
        raise RequestError(f"The LoRA file {path.name} is damaged or not a safetensors "
                           f"file ({exc}).") from None
    return LoraFile(name, path, lora_base(header) or invoke_base(path))


# ------------------------------------------------------------------ finding by name


def find_loras(settings: Settings) -> list[LoraFile]:
    """Every LoRA in the LoRA folders, by name (unreadable files are left out)."""
    out: list[LoraFile] = []
    names: set[str] = set()
    for name, path in _files(lora_dirs(settings), LORA_SUFFIXES):
        if name in names:
            continue
        try:
            found = lora_file(path, name)
        except RequestError:
            continue
        names.add(name)
        out.append(found)
    return out


def _lookup(name: str, files: Iterator[tuple[str, Path]]) -> Path | None:
    """The file named `name` (its stem, or `sub/stem` inside a subfolder); an exact match
    before one that differs only in case."""
    wanted = "/" + name.strip().replace("\\", "/").lstrip("/")
    folded: Path | None = None
    for _stem, path in files:
        spelled = "/" + path.with_suffix("").as_posix().lstrip("/")
        if spelled.endswith(wanted):
            return path
        if folded is None and spelled.lower().endswith(wanted.lower()):
            folded = path
    return folded


def find_lora(name: str, settings: Settings) -> LoraFile:
    """The LoRA a prompt or the picker names; one sentence when there is none."""
    raw = Path(name).expanduser()
    if raw.is_absolute() and raw.is_file():
        return lora_file(raw)
    path = _lookup(name, _files(lora_dirs(settings), LORA_SUFFIXES))
    if path is None:
        folders = ", ".join(str(d) for d in lora_dirs(settings)) or "no LoRA folder exists yet"
        raise RequestError(f"LoRA {name!r} was not found (looked in {folders}); {WHERE}.")
    return lora_file(path, name)


def resolve(names: Sequence[str], hashes: Mapping[str, str], settings: Settings
            ) -> dict[str, str]:
    """The local name of each LoRA a recipe names: by its name, else by its A1111 short
    hash (as A1111 finds a renamed file); names found neither way are left out."""
    files = list(_files(lora_dirs(settings), LORA_SUFFIXES))
    out: dict[str, str] = {}
    for name in names:
        if _lookup(name, iter(files)) is not None:
            out[name] = name
            continue
        wanted = (hashes.get(name) or "").lower()
        if len(wanted) < 8:
            continue
        for stem, path in files:
            try:
                if lora_hash(path).startswith(wanted):
                    out[name] = stem
                    break
            except (OSError, RequestError):
                continue
    return out


def find_embeddings(settings: Settings) -> dict[str, Path]:
    """Textual-inversion embeddings by name (the file's stem, as A1111 names them).

    A safetensors file whose header says it is something else (a LoRA saved in the wrong
    folder) is left out, as the Models tab leaves it out: its name is often a plain word
    ("detail"), and every prompt with that word would fail on it. A damaged file stays:
    a prompt that names it gets the sentence that says so."""
    out: dict[str, Path] = {}
    for name, path in _files(embedding_dirs(settings), EMBEDDING_SUFFIXES):
        if name not in out and not _something_else(path):
            out[name] = path
    return out


def _something_else(path: Path) -> bool:
    """Whether a file in an embeddings folder is readable and not an embedding."""
    if path.suffix.lower() != ".safetensors":
        return False  # pickled: it cannot say without unpickling
    try:
        stat = path.stat()
    except OSError:
        return False
    return _header_is_something_else(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _header_is_something_else(path: str, _size: int, _mtime_ns: int) -> bool:
    """Kept by size and modification time: prompts look embeddings up on every job."""
    try:
        return embedding_layout(read_safetensors_header(Path(path))) is None
    except HEADER_ERRORS:
        return False


# ------------------------------------------------------------------ A1111's LoRA hash

#: LoRA hashes by resolved path, with the size and mtime they were computed for
_HASHES = Store()
_HASHES_KEY = "lora-hashes.json"


def lora_hash(path: Path) -> str:
    """A1111's hash of a LoRA file (its `Lora hashes` take the first 12 hex digits).

    For .safetensors it is the "addnet" hash A1111 uses: the SHA-256 of the tensor bytes
    after the JSON header (so editing metadata keeps it), unless kohya's `sshs_model_hash`
    metadata gives it; for other files, the SHA-256 of the whole file. Cached by path,
    size and modification time, so each file is read for it once.
    """
    path = Path(path)
    stat = path.stat()
    key = os.path.realpath(path)
    stamp = [stat.st_size, stat.st_mtime_ns]
    cache = _HASHES.read_json(_HASHES_KEY)
    cache = cache if isinstance(cache, dict) else {}
    entry = cache.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return str(entry["sha256"])
    digest = _compute_hash(path)
    cache[key] = {"stamp": stamp, "sha256": digest}
    _HASHES.write_json(_HASHES_KEY, cache)
    return digest


def _compute_hash(path: Path) -> str:
    safetensors = path.suffix.lower() == ".safetensors"
    if safetensors:
        try:
            meta = read_safetensors_header(path).get("__metadata__") or {}
        except HEADER_ERRORS as exc:
            raise RequestError(f"The LoRA file {path.name} is damaged or not a safetensors "
                               f"file ({exc}).") from None
        given = str(meta.get("sshs_model_hash", "")) if isinstance(meta, dict) else ""
        if re.fullmatch(r"[0-9a-fA-F]{64}", given):
            return given.lower()
    import hashlib  # here, not at import: OpenSSL's hashlib is not needed to start the window

    digest = hashlib.sha256()
    with path.open("rb") as f:
        if safetensors:
            length = int.from_bytes(f.read(8), "little")
            f.seek(8 + length)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(path: Path) -> str:
    """The 12 hex digits A1111 writes in `Lora hashes`."""
    return lora_hash(path)[:12]
