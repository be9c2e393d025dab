"""Inpainting and outpainting on the tiny SD pipeline, and a tiny 9-channel inpainting UNet.

Far outside the mask the pixels are the init's; inside they change; the "masked" inpaint
area touches only the crop around the mask; outpainting grows the canvas by its margins;
a dedicated inpainting checkpoint is its own family and runs through the same engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core import catalog, families
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

W, H = 96, 64


def _load(model: Path) -> DiffusersImageEngine:
    return DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(), Events())


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        loaded = _load(tiny_sd)
    yield loaded
    loaded.unload()


def build_tiny_inpaint(tiny_sd: Path, root: Path) -> Path:
    """The tiny SD pipeline with a 9-channel UNet (latents + mask + masked image latents),
    saved as a StableDiffusionInpaintPipeline folder, as real inpainting models come."""
    import torch
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    base = StableDiffusionPipeline.from_pretrained(str(tiny_sd), safety_checker=None,
                                                   requires_safety_checker=False)
    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_config({**dict(base.unet.config), "in_channels": 9})
    pipe = StableDiffusionInpaintPipeline(
        unet=unet, vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
        scheduler=base.scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    out = root / "tiny-sd-inpainting"
    pipe.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    y, x = np.mgrid[0:H, 0:W]
    init = np.stack([x * 255 / (W - 1), y * 255 / (H - 1), np.full_like(x, 90)], -1)
    Image.fromarray(init.astype(np.uint8)).save(folder / "init.png")
    mask = np.zeros((H, W), np.uint8)
    mask[24:40, 40:56] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(mask).resize((W // 2, H // 2), Image.Resampling.NEAREST).save(
        folder / "small-mask.png")
    return {"init": folder / "init.png", "mask": folder / "mask.png",
            "small": folder / "small-mask.png"}


def _request(engine: DiffusersImageEngine, **fields) -> ImageRequest:
    fields = {"prompt": "a red fox", "seed": 3, "steps": 4, "width": W, "height": H,
              "scheduler": "Euler", "strength": 1.0, "mask_blur": 2, **fields}
    made = ImageRequest(model=engine.spec.model, **fields)
    made.validate()
    return made


def _init(pictures) -> np.ndarray:
    return np.asarray(Image.open(pictures["init"]).convert("RGB")).astype(int)


def test_inpaint_keeps_the_outside_and_changes_the_inside(engine, pictures) -> None:
    result = engine.generate(_request(engine, init_image=str(pictures["init"]),
                                      mask=str(pictures["mask"])), Events())
    (image,) = result.images
    diff = np.abs(image.astype(int) - _init(pictures))
    far = np.ones((H, W), bool)
    far[24 - 8:40 + 8, 40 - 8:56 + 8] = False  # the mask plus its blur, with room
    assert diff[far].max() <= 2
    assert diff[26:38, 42:54].mean() > 10
    assert result.info["mode"] == "inpaint"


def test_masked_area_touches_only_the_crop(engine, tmp_path) -> None:
    y, x = np.mgrid[0:128, 0:192]
    init = np.stack([x * 255 / 191, y * 255 / 127, np.full_like(x, 90)], -1).astype(np.uint8)
    Image.fromarray(init).save(tmp_path / "big.png")
    mask = np.zeros((128, 192), np.uint8)
    mask[56:72, 120:136] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = engine.generate(_request(engine, init_image=str(tmp_path / "big.png"),
                                      mask=str(tmp_path / "mask.png"), inpaint_area="masked",
                                      inpaint_padding=8, width=64, height=64), Events())
    (image,) = result.images
    assert image.shape == (128, 192, 3)  # the picture keeps its size; only the crop renders
    x0, y0, x1, y1 = result.info["inpaint_crop"]
    assert (x0, y0, x1, y1) == (112, 48, 144, 80)  # mask + padding, at the render's aspect
    outside = np.ones((128, 192), bool)
    outside[y0:y1, x0:x1] = False
    diff = np.abs(image.astype(int) - init.astype(int))
    assert diff[outside].max() == 0
    assert diff[60:68, 124:132].mean() > 10


def test_a_mask_of_another_size_is_resized_and_said_so(engine, pictures) -> None:
    result = engine.generate(_request(engine, init_image=str(pictures["init"]),
                                      mask=str(pictures["small"])), Events())
    assert result.images[0].shape == (H, W, 3)
    (note,) = result.info["notes"]
    assert "48×32" in note and "96×64" in note


def test_outpaint_grows_the_canvas_by_the_margins(engine, pictures) -> None:
    result = engine.generate(_request(engine, init_image=str(pictures["init"]),
                                      outpaint=(16, 8, 32, 0)), Events())
    (image,) = result.images
    assert image.shape == (H + 8, W + 16 + 32, 3)
    assert result.info["mode"] == "outpaint"
    inner = image[8 + 8:8 + H - 8, 16 + 8:16 + W - 8].astype(int)
    assert np.abs(inner - _init(pictures)[8:-8, 8:-8]).max() <= 2  # the old picture stays
    assert image[:, :8].std() > 0  # the new strip is painted, not a flat edge colour


def test_inpainting_checkpoint_is_its_own_family_and_runs(tiny_sd, tmp_path, pictures) -> None:
    folder = build_tiny_inpaint(tiny_sd, tmp_path)
    entry = catalog.classify_folder(folder)
    assert entry is not None and entry.descriptor is families.SD1_INPAINT
    assert families.SD1_INPAINT.serves("image") and not families.SD1_INPAINT.explorable
    engine = _load(folder)
    try:
        assert engine.inpainting_unet and engine.family == "sd1"
        made = engine.generate(_request(engine, init_image=str(pictures["init"]),
                                        mask=str(pictures["mask"])), Events())
        diff = np.abs(made.images[0].astype(int) - _init(pictures))
        assert diff[:8].max() <= 2 and diff[26:38, 42:54].mean() > 10
        plain = engine.generate(_request(engine), Events())  # text-to-image: a blank canvas
        assert plain.images[0].shape == (H, W, 3) and plain.images[0].std() > 0
        assert engine.mode_pipe().unet is engine.pipe.unet
    finally:
        engine.unload()
