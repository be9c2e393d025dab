"""A dedicated inpainting checkpoint as ONE file in the original SD layout (the way most
inpainting models are shared), loaded with the app's loader and the shipped-style config.

The config folder is the regular family's (a 4-channel UNet, as `models/configs/sd1` is);
the loader builds the UNet with the 9 input channels the file's weights have.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.core import catalog, families
from studio.core.errors import ModelError
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine, detect_checkpoint
from tests.engines.test_image_single_file import pipeline_to_ldm
from tests.engines.test_inpaint import build_tiny_inpaint

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

W, H = 64, 64


@pytest.fixture(scope="module")
def inpaint_file(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """root/tiny-sd-inpainting.safetensors + root/configs/sd1 (the regular SD 1.x config);
    and the diffusers folder it was converted from."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("inpaint-models")
    folder = build_tiny_inpaint(tiny_sd, tmp_path_factory.mktemp("inpaint-folder"))
    save_file(pipeline_to_ldm(folder, "sd1"), str(root / "tiny-sd-inpainting.safetensors"))
    shutil.copytree(tiny_sd, root / "configs" / "sd1",
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return root / "tiny-sd-inpainting.safetensors", folder


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    y, x = np.mgrid[0:H, 0:W]
    init = np.stack([x * 255 / (W - 1), y * 255 / (H - 1), np.full_like(x, 90)], -1)
    Image.fromarray(init.astype(np.uint8)).save(folder / "init.png")
    mask = np.zeros((H, W), np.uint8)
    mask[24:40, 24:40] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return {"init": folder / "init.png", "mask": folder / "mask.png"}


def _load(model: Path) -> DiffusersImageEngine:
    return DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(), Events())


def _request(model: Path, **fields) -> ImageRequest:
    made = ImageRequest(model=str(model), **{
        "prompt": "a red fox", "seed": 3, "steps": 4, "width": W, "height": H,
        "scheduler": "Euler", "strength": 1.0, "mask_blur": 2, **fields})
    made.validate()
    return made


def test_a_single_file_inpainting_checkpoint_loads_and_inpaints(
        inpaint_file, pictures, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder = inpaint_file
    monkeypatch.setenv("STUDIO_MODELS", str(path.parent))
    entry = catalog.classify_file(path)
    assert entry is not None and entry.descriptor is families.SD1_INPAINT
    engine = _load(path)
    try:
        assert engine.source == "single file" and engine.family == "sd1"
        assert engine.inpainting_unet and engine.pipe.unet.config.in_channels == 9
        # every weight made the trip: the file's UNet is the folder's, bit for bit
        from diffusers import UNet2DConditionModel

        expected = UNet2DConditionModel.from_pretrained(folder, subfolder="unet").state_dict()
        got = engine.pipe.unet.state_dict()
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in got)

        made = engine.generate(_request(path, init_image=str(pictures["init"]),
                                        mask=str(pictures["mask"])), Events())
        (image,) = made.images
        init = np.asarray(Image.open(pictures["init"]).convert("RGB")).astype(int)
        diff = np.abs(image.astype(int) - init)
        far = np.ones((H, W), bool)
        far[24 - 8:40 + 8, 24 - 8:40 + 8] = False  # the mask plus its blur, with room
        assert diff[far].max() <= 2  # outside the mask the init stays
        assert diff[26:38, 26:38].mean() > 10  # inside it is repainted
        plain = engine.generate(_request(path), Events())  # text-to-image: a blank canvas
        assert plain.images[0].shape == (H, W, 3) and plain.images[0].std() > 0
        assert engine.mode_pipe().unet is engine.pipe.unet  # one copy of the weights
    finally:
        engine.unload()


def test_the_folder_and_the_single_file_inpaint_alike(
        inpaint_file, pictures, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder = inpaint_file
    monkeypatch.setenv("STUDIO_MODELS", str(path.parent))
    fields = {"init_image": str(pictures["init"]), "mask": str(pictures["mask"])}
    single, from_folder = _load(path), _load(folder)
    try:
        a = single.generate(_request(path, **fields), Events()).images[0]
        b = from_folder.generate(_request(folder, **fields), Events()).images[0]
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    finally:
        single.unload()
        from_folder.unload()


def test_other_channel_counts_are_refused_in_one_sentence() -> None:
    keys = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 8, 3, 3),
            "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.ones(1)}
    with pytest.raises(ModelError, match=r"^m is an image-editing model \(8 input channels\)"):
        detect_checkpoint("m", set(keys), lambda k: tuple(keys[k].shape), keys.__getitem__,
                          inpaint=True)
    nine = {**keys, "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 9, 3, 3)}
    found = detect_checkpoint("m", set(nine), lambda k: tuple(nine[k].shape),
                              nine.__getitem__, inpaint=True)
    assert found.family == "sd1" and found.inpaint


def test_an_sdxl_inpainting_single_file_loads_with_the_sdxl_config(
        tiny_sd: Path, tmp_path: Path, pictures, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for SDXL: two text encoders, the SDXL config (4 channels) beside it."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from safetensors.torch import save_file

    from tests.engines.test_image_single_file import build_tiny_sdxl

    regular = build_tiny_sdxl(tmp_path / "src", tiny_sd)
    pipe = StableDiffusionXLPipeline.from_pretrained(regular)
    torch.manual_seed(2)
    pipe.unet = UNet2DConditionModel.from_config({**dict(pipe.unet.config), "in_channels": 9})
    folder = tmp_path / "tiny-sdxl-inpainting"
    pipe.save_pretrained(folder, safe_serialization=True)
    path = tmp_path / "tiny-sdxl-inpainting.safetensors"
    save_file(pipeline_to_ldm(folder, "sdxl"), str(path))
    shutil.copytree(regular, tmp_path / "configs" / "sdxl",
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path))
    entry = catalog.classify_file(path)
    assert entry is not None and entry.descriptor is families.SDXL_INPAINT
    engine = _load(path)
    try:
        assert engine.family == "sdxl" and engine.inpainting_unet
        made = engine.generate(_request(path, init_image=str(pictures["init"]),
                                        mask=str(pictures["mask"])), Events()).images[0]
        init = np.asarray(Image.open(pictures["init"]).convert("RGB")).astype(int)
        diff = np.abs(made.astype(int) - init)
        assert diff[:8].max() <= 2 and diff[26:38, 26:38].mean() > 10
    finally:
        engine.unload()
