"""Separate VAEs: where they are found, and which file or folder a request's name means.

A1111 keeps VAEs in `models/VAE` (and ComfyUI in `models/vae`); Studio looks in the
`VAE` (or `vae`) folder of every models folder (models/ and the folders chosen in
Settings) and in `models/VAE` under each of those (an A1111 or ComfyUI install chosen as
a whole). A VAE is a `.safetensors` file or a diffusers folder (a config.json naming an
AutoencoderKL). Plain Python: the engine loads what this finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.core.catalog import model_dirs
from studio.core.errors import RequestError
from studio.core.requests import is_own_vae
from studio.core.settings import Settings

#: what "the model's own VAE" is called in the form and in A1111 infotext
AUTOMATIC = "Automatic"
_SUBFOLDERS = ("VAE", "vae", "models/VAE", "models/vae")
#: weight files a VAE can be (pickled ones only with the pickled-checkpoint setting)
SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


@dataclass(frozen=True)
class VaeFile:
    """One VAE on disk: its name as the form and infotext show it, and its path."""

    name: str
    path: Path


def vae_dirs(settings: Settings) -> list[Path]:
    """The folders searched for VAEs, in order (only those that exist)."""
    found: list[Path] = []
    for root in model_dirs(settings):
        for sub in _SUBFOLDERS:
            folder = root / sub
            if folder.is_dir() and all(not _same(folder, f) for f in found):
                found.append(folder)
    return found


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def is_vae_folder(folder: Path) -> bool:
    """A diffusers AutoencoderKL folder (its config.json says so)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "AutoencoderKL"


def list_vaes(settings: Settings) -> list[VaeFile]:
    """Every VAE in the VAE folders, by name (the first of a name wins)."""
    out: dict[str, VaeFile] = {}
    for folder in vae_dirs(settings):
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            usable = (child.is_file() and child.suffix.lower() in SUFFIXES) or (
                child.is_dir() and is_vae_folder(child))
            if usable and child.name not in out:
                out[child.name] = VaeFile(child.name, child)
    return sorted(out.values(), key=lambda v: v.name.lower())


def find_vae(name: str, settings: Settings) -> Path | None:
    """The file or folder a request's VAE names: None for the model's own ("" or
    Automatic); an absolute path, or a name (with or without its extension) in a VAE
    folder. One sentence when there is no such VAE."""
    if is_own_vae(name):
        return None
    raw = Path(name.strip()).expanduser()
    if raw.is_absolute():
        if raw.exists():
            return raw
        raise RequestError(f"The VAE {raw} does not exist.")
    wanted = raw.name.lower()
    for vae in list_vaes(settings):
        if wanted in (vae.name.lower(), vae.path.stem.lower()):
            return vae.path
    places = ", ".join(str(d) for d in vae_dirs(settings)) or "no VAE folder exists yet"
    raise RequestError(f"VAE {name!r} was not found (looked in {places}); put it in "
                       "models/VAE, or choose Automatic.")


def display_name(path: Path) -> str:
    """How infotext names a VAE: the file's or folder's name, as A1111 writes it."""
    return path.name
