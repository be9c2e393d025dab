"""The upscaler's request: which picture, by how much, in tiles of what size.

An upscale job is a recipe like any other (saved beside its output, replayed by
`studio info`): the model ("builtin:lanczos" or an upscaler file), the source picture,
the scale, and the tiling that keeps a large picture within memory. Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from studio.core.errors import RequestError
from studio.core.fields import check, param
from studio.core.requests import Request

SCALES: tuple[int, ...] = (2, 4)
LANCZOS = "builtin:lanczos"


@dataclass(frozen=True)
class UpscaleRequest(Request):
    """Upscale one picture ×2 or ×4 with an upscaler model (or Lanczos).

    - image: the source picture's path (any format Pillow reads);
    - scale: 2 or 4 (a model made for another factor is resized to it with Lanczos);
    - tile: tile side in source pixels, 0 = the whole picture at once;
    - tile_overlap: source pixels each tile shares with its neighbours (blended).
    """

    kind: ClassVar[str] = "upscale"
    model: str = LANCZOS
    seed: int = 0  # nothing random: the seed only names the file
    image: str = param("", label="Image", flag="--image", tip="The picture to upscale")
    scale: int = param(4, label="Scale", low=2, high=4, flag="--scale",
                       tip="How many times larger: 2 or 4")
    tile: int = param(512, label="Tile", low=0, high=8192, step=32, suffix=" px",
                      flag="--tile",
                      tip="Tile side in source pixels, so a large picture fits in memory "
                          "(0 = the whole picture at once)")
    tile_overlap: int = param(32, label="Tile overlap", short="Overlap", low=0, high=512,
                              suffix=" px", flag="--tile-overlap",
                              tip="Pixels neighbouring tiles share, blended to hide seams")

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.image, str) or not self.image.strip():
            raise RequestError("Choose a picture to upscale.")
        check(self, "scale")
        if self.scale not in SCALES:
            raise RequestError(f"Scale must be 2 or 4, not {self.scale}.")
        check(self, "tile")
        check(self, "tile_overlap")
        if self.tile and self.tile_overlap * 2 >= self.tile:
            raise RequestError(f"The tile overlap ({self.tile_overlap} px) must be less than "
                               f"half the tile ({self.tile} px).")
