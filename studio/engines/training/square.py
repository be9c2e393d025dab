"""What the from-scratch image recipes (GAN, VAE) share: a folder's images at side×side,
split into training and validation, and seeded batches drawn from them.

The pixels are kept as uint8 tensors (N, 3, side, side) on the CPU; a batch is a seeded
permutation epoch after epoch, each image flipped by a seeded coin, in [-1, 1]. Everything
random draws from `data_gen`, whose state the recipes save, so a resumed run draws the same
batches as an uninterrupted one.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from studio.core.errors import RequestError
from studio.core.training import DataReport, TrainConfig
from studio.engines.training.base import Recipe
from studio.engines.training.data import ImageSet, load_square, require_usable, scan_images
from studio.engines.training.data import split as split_items


class SquareImageRecipe(Recipe):
    """A recipe that learns square pictures of one of `sides` px from scratch."""

    sides: ClassVar[tuple[int, ...]]
    what: ClassVar[str]  # "A GAN": the subject of the one sentence for a wrong size
    flip: ClassVar[bool] = True  # horizontal flips double a small set

    def __init__(self, config: TrainConfig, device: str = "cpu") -> None:
        super().__init__(config, device)
        self.side = config.resolution
        self.images: ImageSet | None = None
        self.report: DataReport | None = None

    @classmethod
    def check_side(cls, side: int) -> int:
        if side not in cls.sides:
            listing = ", ".join(str(s) for s in cls.sides[:-1]) + f" or {cls.sides[-1]}"
            raise RequestError(f"{cls.what} trains at {listing} px, not {side} px.")
        return side

    def check_data(self) -> DataReport:
        self.check_side(self.side)
        self.images, self.report = scan_images(self.config.data,
                                               min_side=max(8, self.side // 2))
        require_usable(self.report)
        return self.report

    def _pixels(self, indices: list[int]) -> torch.Tensor:
        assert self.images is not None
        arrays = [load_square(self.images.items[i], self.side) for i in indices]
        if not arrays:
            return torch.zeros((0, 3, self.side, self.side), dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def _load_split(self) -> tuple[list[int], list[int]]:
        """Read the pixels of the seeded split into train_data / val_data; the indices."""
        if self.images is None:
            self.check_data()
        assert self.images is not None
        train_idx, val_idx = split_items(len(self.images), self.config.val_split,
                                         self.config.seed)
        self.train_data = self._pixels(train_idx)  # uint8 (N, 3, S, S), CPU
        self.val_data = self._pixels(val_idx)
        return train_idx, val_idx

    def _start_batches(self) -> None:
        self.data_gen = torch.Generator().manual_seed(self.config.seed * 2 + 1)
        self.order = torch.randperm(len(self.train_data), generator=self.data_gen)
        self.pos = 0

    def _batch(self) -> torch.Tensor:
        """The next `batch` training images in [-1, 1]: epochs of seeded permutations,
        each image flipped by a seeded coin."""
        picked: list[torch.Tensor] = []
        need = self.config.batch
        while need > 0:
            if self.pos >= len(self.order):
                self.order = torch.randperm(len(self.train_data), generator=self.data_gen)
                self.pos = 0
            take = self.order[self.pos:self.pos + need]
            self.pos += len(take)
            need -= len(take)
            picked.append(take)
        idx = torch.cat(picked)
        x = self.train_data[idx].float() / 127.5 - 1.0
        if self.flip:
            coins = torch.rand(len(idx), generator=self.data_gen) < 0.5
            x = torch.where(coins[:, None, None, None], x.flip(3), x)
        return x.to(self.device)
