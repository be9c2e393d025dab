"""A separate VAE per generation, swapped into a loaded pipeline without reloading it.

The pipeline's own VAE module is kept aside (never copied, never freed) while another
one decodes, so choosing Automatic again puts back exactly the module that was loaded:
the pixels are those of the model alone. One separate VAE is kept loaded at a time (the
last one used), keyed by its path, size and modification time, so a changed file is
read again. A single file (A1111 or diffusers key layout) is built with the model's own
VAE config, since a VAE is made for a family and has its architecture; a folder is a
diffusers AutoencoderKL with its own config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.core import vaes
from studio.core.errors import ModelError, RequestError
from studio.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadedVae:
    """A separate VAE in memory, with what names it in infotext."""

    key: tuple[str, int, int]
    module: torch.nn.Module
    name: str
    hash: str | None


def vae_hash(path: Path, sha256: Callable[[Path], str]) -> str | None:
    """A1111's "VAE hash": the first 10 hex digits of the file's SHA-256 (for a folder,
    of its weight file); `sha256` is the engine's cached file hash."""
    if path.is_dir():
        weights = sorted(p for p in path.iterdir() if p.suffix.lower() in vaes.SUFFIXES)
        if not weights:
            return None
        path = weights[0]
    return sha256(path)[:10]


def load_vae(path: Path, own: Any, *, allow_pickle: bool = False) -> torch.nn.Module:
    """An AutoencoderKL from a diffusers folder, or from a single file in either layout
    (A1111/original `encoder.down.*` keys, converted by diffusers, or diffusers keys),
    built with the model's own VAE config; on the own VAE's device and dtype."""
    from diffusers import AutoencoderKL

    param = next(own.parameters())
    try:
        if path.is_dir():
            if not vaes.is_vae_folder(path):
                raise ModelError(f"{path.name} is not a VAE folder (its config.json does not "
                                 "name an AutoencoderKL).")
            vae = AutoencoderKL.from_pretrained(str(path), dtype=param.dtype,
                                                local_files_only=True)
        else:
            state = _read_weights(path, allow_pickle)
            config = dict(own.config)
            if not any(k.startswith(("encoder.down_blocks.", "decoder.up_blocks."))
                       for k in state):
                from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

                state = convert_ldm_vae_checkpoint(state, config)
            vae = AutoencoderKL.from_config(config)
            missing, _unexpected = vae.load_state_dict(state, strict=False)
            if missing:
                raise ModelError(f"The VAE {path.name} does not fit this model ({len(missing)} "
                                 "of its weights are missing); choose a VAE made for it.")
    except (ModelError, RequestError):
        raise
    except RuntimeError as exc:  # shapes that differ: a VAE of another architecture
        raise ModelError(f"The VAE {path.name} does not fit this model's VAE "
                         f"({str(exc).splitlines()[0]}).") from exc
    except Exception as exc:
        raise ModelError(f"The VAE {path.name} could not be loaded ({exc}).") from exc
    return vae.to(device=param.device, dtype=param.dtype).eval()


def _read_weights(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """The tensors of a VAE file (safetensors; pickled files only when allowed, read as
    plain weights)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if not allow_pickle:
        raise ModelError(f"{path.name} is a pickled VAE, which can run code when opened; use "
                         "a .safetensors VAE, or allow pickled checkpoints in Settings.")
    data = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} does not hold a state dict of weights.")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


class VaeSwap:
    """Which VAE a loaded pipeline decodes with, job by job."""

    def __init__(self, own: Any, sha256: Callable[[Path], str]) -> None:
        self.own = own  # the pipeline's own VAE, exactly as loaded
        self.sha256 = sha256
        self.loaded: LoadedVae | None = None  # the last separate VAE used
        self.active: LoadedVae | None = None  # the one in use now (None: the own)

    def choose(self, name: str, settings: Settings, pipes: list[Any]) -> LoadedVae | None:
        """Make every pipe in `pipes` decode with the VAE `name` names (the own one for ""
        or Automatic); returns the separate VAE in use, or None."""
        try:
            self.active = self._load(name, settings)
        except BaseException:
            self.active = None  # a VAE that failed leaves the model's own in place
            raise
        finally:
            module = self.active.module if self.active is not None else self.own
            for pipe in pipes:
                if pipe is not None and getattr(pipe, "vae", None) is not module:
                    pipe.vae = module
        return self.active

    def _load(self, name: str, settings: Settings) -> LoadedVae | None:
        path = vaes.find_vae(name, settings)
        if path is None:
            return None
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if self.loaded is None or self.loaded.key != key:
            self.loaded = None  # the old one goes before the new one is read
            module = load_vae(path, self.own, allow_pickle=settings.allow_pickle)
            self.loaded = LoadedVae(key, module, vaes.display_name(path),
                                    vae_hash(path, self.sha256))
            log.info("loaded the VAE %s", path)
        return self.loaded

    def extra_modules(self) -> list[torch.nn.Module]:
        """Modules held besides the pipeline's components (for the memory budget)."""
        if self.loaded is None:
            return []
        return [self.own if self.active is not None else self.loaded.module]

    def record(self) -> dict[str, Any]:
        """What a job's info says about its VAE (empty for the model's own)."""
        if self.active is None:
            return {}
        out: dict[str, Any] = {"vae": self.active.name}
        if self.active.hash:
            out["vae_hash"] = self.active.hash
        return out
