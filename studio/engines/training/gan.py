"""The GAN recipe: a small DCGAN (generator + discriminator) from scratch on a folder of
images at 16–128 px.

The generator is the very module the built-in GANs use (`engines.gan.DCGANGenerator`),
so the exported model opens in the explorer like them (seeds → z of 100 numbers; pad,
directions, variation grid, walks). The discriminator mirrors it with strided convs and
GroupNorm (no running statistics: its loss on held-out images means the same in and out
of training).

The losses: the curve's "loss" is the discriminator's (real and fake images told apart,
binary cross-entropy); its "validation loss" is the same measure on held-out real images
and fixed fakes. When the discriminator starts to memorise the training images, the
first falls while the second rises: that is how a GAN overfits, and the Lab flags it.

Everything random draws from the recipe's own generators (data order, flips, z), kept in
`state_dict()`, so a paused or resumed run reaches the same weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from studio.engines.gan import DCGANGenerator, save_trained, to_uint8, trained_config
from studio.engines.latents import seed_noise
from studio.engines.training.base import Sample
from studio.engines.training.square import SquareImageRecipe

SIDES = (16, 32, 64, 128)
NZ = 100  # as the built-in GANs: the explorer's directions and seeds work the same
N_SAMPLES = 8  # the strip: seeds 0..7, the explorer's first seeds




def base_width(side: int) -> int:
    """Feature maps of the last generator block: DCGAN's 64 from 32 px up, 32 below."""
    return 64 if side >= 32 else 32


def generator_widths(side: int, width: int) -> tuple[int, ...]:
    """DCGAN widths for a side: 4 px after the first block, doubled by each (64 px with
    width 64 → (512, 256, 128, 64), the built-in faces' shape)."""
    blocks = int(math.log2(side)) - 2
    return tuple(width * 2 ** (blocks - 1 - i) for i in range(blocks))


class Discriminator(nn.Module):
    """Strided convs halving the side down to 4 px, then one 4×4 conv to a logit."""

    def __init__(self, side: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, s, w = 3, side, width
        first = True
        while s > 4:
            layers.append(nn.Conv2d(cin, w, 4, 2, 1, bias=first))
            if not first:
                layers.append(nn.GroupNorm(min(8, w), w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin, s, w, first = w, s // 2, w * 2, False
        layers.append(nn.Conv2d(cin, 1, 4, 1, 0))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).reshape(-1)


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GanRecipe(SquareImageRecipe):
    """A DCGAN from scratch (see the module docstring)."""

    id: ClassVar[str] = "gan"
    sides: ClassVar[tuple[int, ...]] = SIDES
    what: ClassVar[str] = "A GAN"
    #: generator/discriminator base width; None: `base_width(side)`
    width: ClassVar[int | None] = None

    # -- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        self._load_split()
        seed = self.config.seed
        torch.manual_seed(seed)
        width = self.width or base_width(self.side)
        self.widths = generator_widths(self.side, width)
        self.g = DCGANGenerator(NZ, self.widths).to(self.device)
        self.d = Discriminator(self.side, width).to(self.device)
        self.g.apply(init_weights)
        self.d.apply(init_weights)
        lr = self.config.lr
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(0.5, 0.999))
        self._start_batches()
        self.z_gen = torch.Generator().manual_seed(seed * 2 + 2)

    # -- steps ---------------------------------------------------------------------------
    def train_step(self) -> float:
        real = self._batch()
        z = torch.randn(len(real), NZ, generator=self.z_gen).to(self.device)
        fake = self.g(z)
        d_real, d_fake = self.d(real), self.d(fake.detach())
        loss_d = 0.5 * (bce(d_real, torch.ones_like(d_real))
                        + bce(d_fake, torch.zeros_like(d_fake)))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        out = self.d(fake)
        loss_g = bce(out, torch.ones_like(out))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.last_g_loss = float(loss_g.detach())
        return float(loss_d.detach())

    @torch.no_grad()
    def _fixed_fakes(self, n: int, offset: int) -> torch.Tensor:
        z = torch.stack([seed_noise(offset + i, (NZ,)) for i in range(n)]).to(self.device)
        was = self.g.training
        self.g.eval()
        try:
            return self.g(z)
        finally:
            self.g.train(was)

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if not len(self.val_data):
            return None
        real = (self.val_data[:64].float() / 127.5 - 1.0).to(self.device)
        fake = self._fixed_fakes(len(real), 1000)
        d_real, d_fake = self.d(real), self.d(fake)
        loss = 0.5 * (bce(d_real, torch.ones_like(d_real))
                      + bce(d_fake, torch.zeros_like(d_fake)))
        return float(loss)

    def samples(self) -> list[Sample]:
        frames = to_uint8(self._fixed_fakes(N_SAMPLES, 0).float().cpu())
        return [Sample("image", f, f"seed {i}") for i, f in enumerate(frames)]

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "data_gen": self.data_gen.get_state(), "z_gen": self.z_gen.get_state(),
            "order": self.order.clone(), "pos": self.pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.data_gen.set_state(state["data_gen"])
        self.z_gen.set_state(state["z_gen"])
        self.order = state["order"].clone()
        self.pos = int(state["pos"])

    def export(self, out_dir: Path) -> Path:
        """The generator alone, on the CPU in eval mode, as a model folder."""
        config = trained_config(self.g, self.widths, self.side, recipe=self.id,
                                name=self.config.name, seed=self.config.seed)
        net = DCGANGenerator(NZ, self.widths)
        net.load_state_dict({k: v.cpu() for k, v in self.g.state_dict().items()})
        return save_trained(Path(out_dir) / self.config.name, net.eval(), config)

    def card_facts(self) -> dict[str, Any]:
        g_params = sum(p.numel() for p in self.g.parameters())
        d_params = sum(p.numel() for p in self.d.parameters())
        return {
            "Architecture": f"DCGAN, {self.side}×{self.side} px, z of {NZ}",
            "Generator": f"{g_params:,} parameters (widths {', '.join(map(str, self.widths))})",
            "Discriminator": f"{d_params:,} parameters",
            "Loss": "the discriminator's (real vs generated, binary cross-entropy); "
                    "validation on held-out images",
        }
