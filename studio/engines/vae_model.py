"""VAEs trained in the Lab: a small convolutional autoencoder whose decoder is a generator.

A trained VAE is a folder (`engines/training/vae.py` writes it):

    config.json        {"studio_model": "vae", "architecture": "conv-vae-v1", "size": 64,
                        "nz": 32, "width": 32, ...}
    model.safetensors  "enc.*" and "dec.*" tensors (the encoder is kept for reconstructions)

The catalog files it under a "lab-vae-<size>" family (`core/catalog/classify.py`); this engine
loads the decoder, and `gan.DecoderEngine` serves it as it serves the GANs: seeds → z ~ N(0, I)
→ a picture,
and the explorer's pad, directions (GANSpace on the decoder's first block), variation
grids and walks, since `z` is the same standard Gaussian latent a GAN has.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core import families
from studio.core.errors import ModelError
from studio.core.settings import Settings
from studio.core.text import first_line
from studio.engines.base import Events, LoadSpec
from studio.engines.gan import DecoderEngine

ARCHITECTURE = "conv-vae-v1"
WEIGHTS = "model.safetensors"
SIZES = (32, 64, 128)


@dataclass(frozen=True)
class VaeConfig:
    """The shape of a Lab VAE: square images of `size` px, `nz` latent numbers, feature
    maps `width`, 2×, 4×, ... (at most 8×) down to 4×4."""

    size: int = 64
    nz: int = 32
    width: int = 32
    channels: int = 3

    @property
    def blocks(self) -> int:
        return int(math.log2(self.size // 4))

    def widths(self) -> list[int]:
        return [self.width * min(2**i, 8) for i in range(self.blocks)]

    def to_json(self) -> dict[str, Any]:
        return {"studio_model": "vae", "architecture": ARCHITECTURE, "size": self.size,
                "nz": self.nz, "width": self.width, "channels": self.channels}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VaeConfig:
        if data.get("studio_model") != "vae" or data.get("architecture") != ARCHITECTURE:
            raise ValueError(f"not a Lab VAE of architecture {ARCHITECTURE}")
        cfg = cls(int(data["size"]), int(data["nz"]), int(data["width"]),
                  int(data.get("channels", 3)))
        if cfg.size not in SIZES or cfg.nz < 1 or cfg.width < 1:
            raise ValueError(f"size {cfg.size}, nz {cfg.nz}, width {cfg.width} is not a "
                             "shape this version builds")
        return cfg


class Encoder(nn.Module):
    """image (B, 3, S, S) in [-1, 1] → (mu, logvar), each (B, nz)."""

    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = cfg.channels
        for w in cfg.widths():
            layers += [nn.Conv2d(cin, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            cin = w
        self.main = nn.Sequential(*layers)
        self.fc = nn.Linear(cin * 16, 2 * cfg.nz)
        self.nz = cfg.nz

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.main(x).flatten(1))
        return h[:, : self.nz], h[:, self.nz:].clamp(-12.0, 8.0)


class Decoder(nn.Module):
    """z (B, nz) → image (B, 3, S, S) in [-1, 1]. `main[0]` is the first layer (the
    directions' cache key reads its weights) and `features` what GANSpace looks at."""

    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        widths = cfg.widths()[::-1]
        self.nz = cfg.nz
        self.n_labels = 0
        self.first = widths[0]
        layers: list[nn.Module] = [nn.Linear(cfg.nz, widths[0] * 16), nn.ReLU(True)]
        self.head = nn.Sequential(*layers)
        ups: list[nn.Module] = []
        for i, w in enumerate(widths):
            last = i == len(widths) - 1
            cout = cfg.channels if last else widths[i + 1]
            ups += [nn.ConvTranspose2d(w, cout, 4, 2, 1), nn.Tanh() if last else nn.ReLU(True)]
        self.ups = nn.Sequential(*ups)

    @property
    def main(self) -> nn.Sequential:
        return self.head

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(z.reshape(z.shape[0], self.nz))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(z).reshape(z.shape[0], self.first, 4, 4)
        return self.ups(h)


class VAE(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc = Encoder(cfg)
        self.dec = Decoder(cfg)

    def forward(self, x: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); `noise` ~ N(0, I) is passed in so the caller's
        generator decides it (reproducible training)."""
        mu, logvar = self.enc(x)
        z = mu + noise * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def save_vae(folder: Path, model: VAE, extra: dict[str, Any] | None = None) -> None:
    """config.json + model.safetensors (float32) into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": ARCHITECTURE})
    config = {**model.cfg.to_json(), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def load_decoder(folder: Path) -> tuple[Decoder, VaeConfig, dict[str, Any]]:
    """The decoder of a Lab VAE folder (eval mode, frozen); ModelError when unreadable."""
    from safetensors.torch import load_file

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        cfg = VaeConfig.from_json(config)
        state = load_file(str(folder / WEIGHTS))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{folder.name} is not a readable Lab VAE ({first_line(exc)}).") \
            from None
    net = Decoder(cfg)
    dec = {k.removeprefix("dec."): v.float() for k, v in state.items() if k.startswith("dec.")}
    try:
        net.load_state_dict(dec)
    except RuntimeError as exc:
        raise ModelError(f"The weights in {folder.name} do not match its config.json: "
                         f"{first_line(exc)}") from None
    net.eval()
    net.requires_grad_(False)
    return net, cfg, config


@dataclass(frozen=True)
class VaeShape:
    """What GANSpace needs to know about the latent (directions.GanShape)."""

    model: str
    nz: int
    n_labels: int = 0


class VaeEngine(DecoderEngine):
    """A loaded Lab VAE's decoder; DecoderEngine serves its image requests and the
    explorer, as it does a GAN's."""

    def __init__(self, spec: LoadSpec, net: Decoder, cfg: VaeConfig, folder: Path,
                 config: dict[str, Any]) -> None:
        super().__init__(spec, VaeShape(spec.model, cfg.nz), net, families.lab_vae(cfg.size))
        self.cfg = cfg
        self.folder = folder
        self.config = config

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> VaeEngine:
        folder = Path(spec.model).expanduser()
        if not (folder / "config.json").is_file():
            raise ModelError(f"Lab VAE not found: looked for {folder / 'config.json'}.")
        net, cfg, config = load_decoder(folder)
        return cls(LoadSpec(spec.model, "cpu", "float32"), net, cfg, folder, config)

    @property
    def native_size(self) -> int:
        return self.cfg.size

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.folder.name)
