"""The VAE recipe: a small convolutional variational autoencoder from scratch on a folder
of images at 32, 64 or 128 px.

The loss is the usual evidence bound per pixel: the squared reconstruction error (images
in [-1, 1]) plus the KL divergence of the encoder's Gaussian from N(0, I), both summed
over an image and divided by its number of values; the validation loss is the same on
the held-out images with the mean latent (no sampling), so it is steady between steps.
Samples are decodes of fixed latents (seeds 0..3: what the explorer shows first for those
seeds) and reconstructions of a few training images beside their originals.

The export is a model folder (`engines/vae_model.py`: config.json + model.safetensors)
whose decoder the app runs like a GAN generator: the explorer opens its latent space.
Everything random draws from the recipe's own generators (data order, flips, the
reparameterisation noise), kept in `state_dict()`, so a paused or resumed run reaches the
same weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.engines.gan import to_uint8
from studio.engines.latents import seed_noise
from studio.engines.training.base import Sample
from studio.engines.training.export import publish_folder
from studio.engines.training.square import SquareImageRecipe
from studio.engines.vae_model import SIZES, VAE, VaeConfig, save_vae

NZ = 32  # latent numbers: enough for a folder of one artist's images, smooth to explore
N_DECODES = 4
N_RECONSTRUCTIONS = 4




def base_width(side: int) -> int:
    """Feature maps of the first encoder block: 32 (16 at 32 px, where 3 blocks suffice)."""
    return 16 if side <= 32 else 32


class VaeRecipe(SquareImageRecipe):
    """A convolutional VAE from scratch (see the module docstring)."""

    id: ClassVar[str] = "vae"
    sides: ClassVar[tuple[int, ...]] = tuple(SIZES)
    what: ClassVar[str] = "A VAE"

    # -- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        train_idx, _val_idx = self._load_split()
        assert self.images is not None
        seed = self.config.seed
        self.train_names = [self.images.items[i].path.name for i in train_idx]
        torch.manual_seed(seed)
        self.cfg = VaeConfig(self.side, NZ, base_width(self.side))
        self.model = VAE(self.cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        self._start_batches()
        self.noise_gen = torch.Generator().manual_seed(seed * 2 + 2)

    def _loss(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        recon, mu, logvar = self.model(x, noise)
        values = x[0].numel()
        sse = (recon - x).pow(2).flatten(1).sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return ((sse + kl) / values).mean()

    # -- steps ---------------------------------------------------------------------------
    def train_step(self) -> float:
        x = self._batch()
        noise = torch.randn(len(x), NZ, generator=self.noise_gen).to(self.device)
        self.model.train()
        loss = self._loss(x, noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if not len(self.val_data):
            return None
        self.model.eval()
        x = (self.val_data[:64].float() / 127.5 - 1.0).to(self.device)
        loss = self._loss(x, torch.zeros(len(x), NZ, device=self.device))
        self.model.train()
        return float(loss)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        try:
            return self.model.dec(latents.to(self.device)).float().cpu()
        finally:
            self.model.train()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoded mean latent of images in [-1, 1]."""
        self.model.eval()
        try:
            mu, _logvar = self.model.enc(x.to(self.device))
            return self.model.dec(mu).float().cpu()
        finally:
            self.model.train()

    def samples(self) -> list[Sample]:
        z = torch.stack([seed_noise(i, (NZ,)) for i in range(N_DECODES)])
        out = [Sample("image", f, f"seed {i}") for i, f in enumerate(to_uint8(self.decode(z)))]
        real = self.train_data[:N_RECONSTRUCTIONS].float() / 127.5 - 1.0
        if len(real):
            pairs = torch.cat([real, self.reconstruct(real)], dim=3)  # original | decoded
            for name, pair in zip(self.train_names, to_uint8(pairs), strict=False):
                out.append(Sample("image", pair, f"reconstruction of {name}"))
        return out

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": _clone(self.optimizer.state_dict()),
            "data_gen": self.data_gen.get_state(), "noise_gen": self.noise_gen.get_state(),
            "order": self.order.clone(), "pos": self.pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state["noise_gen"])
        self.order = state["order"].clone()
        self.pos = int(state["pos"])

    def export(self, out_dir: Path) -> Path:
        """The whole VAE on the CPU (the app runs its decoder; the encoder is kept for
        reconstructions) as a model folder the catalog lists as a Lab VAE."""
        net = VAE(self.cfg)
        net.load_state_dict({k: v.cpu() for k, v in self.model.state_dict().items()})
        extra = {"name": self.config.name, "recipe": self.id, "seed": self.config.seed,
                 "images": len(self.train_data) + len(self.val_data)}
        return publish_folder(Path(out_dir), self.config.name,
                              lambda tmp: save_vae(tmp, net.eval(), extra))

    def card_facts(self) -> dict[str, Any]:
        enc = sum(p.numel() for p in self.model.enc.parameters())
        dec = sum(p.numel() for p in self.model.dec.parameters())
        return {
            "Architecture": f"convolutional VAE, {self.side}×{self.side} px, z of {NZ} "
                            f"(widths {', '.join(map(str, self.cfg.widths()))})",
            "Encoder": f"{enc:,} parameters",
            "Decoder": f"{dec:,} parameters (what the explorer runs)",
            "Loss": "squared reconstruction error + KL divergence, per pixel value",
            "Config": json.dumps(self.cfg.to_json()),
        }


def _clone(value: Any) -> Any:
    """A deep copy of an optimizer state (Adam updates its tensors in place)."""
    import copy

    return copy.deepcopy(value)
