"""Latent statistics of sketch autoencoders on the same training images, to tell whether a
run's UNet had harder latents to learn than another's (a sharper or noisier code costs a
6 M-parameter UNet more than its validation loss shows).

    python benchmarks/sketch_latents.py models/sketch ~/Studio/models/trained/NAME

For each pipeline folder: the latent scaling factor; the share of the scaled latents'
energy above their 4×4-cell means (the fine detail the UNet has to draw); and the spread
and mean of the latent cells that lie wholly on the white background (a background with
no fixed code is noise the UNet must learn to reproduce).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.engines.training import sketch_data


def latent_stats(folder: Path, pixels: np.ndarray, masks: np.ndarray) -> dict[str, object]:
    """`pixels` as the recipe feeds its autoencoder (`SketchData.sample_pixels`)."""
    import torch
    from diffusers import AutoencoderKL

    x = torch.from_numpy(pixels)
    white = torch.from_numpy(~masks).float()[:, None]
    white = torch.nn.functional.avg_pool2d(white, 4)[:, 0] > 0.99  # cells wholly on white
    vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    coarse = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(z, 4),
                                             scale_factor=4)
    background = z.permute(0, 2, 3, 1)[white]
    return {"scale": round(float(vae.config.scaling_factor), 3),
            "fine_share": round(float(((z - coarse) ** 2).mean() / (z ** 2).mean()), 3),
            "background_spread": round(float(background.std(0).mean()), 3),
            "background_mean": [round(v, 2) for v in background.mean(0).tolist()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args(argv)
    data = sketch_data.build()
    rows = np.sort(np.random.default_rng(0).choice(len(data.images), args.images,
                                                   replace=False))
    pixels = data.sample_pixels(rows, np.full(len(rows), -1))  # in their own colours
    for folder in args.models:
        print(folder, latent_stats(folder.expanduser(), pixels, data.masks[rows]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
