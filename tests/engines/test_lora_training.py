"""The Lab's LoRA-for-Stable-Diffusion recipe on the tiny SD pipeline: the data check, the
loss going down on a toy set, the same weights after a resume, and an exported LoRA that
the image engine loads at once (weight 0 = the base pixels); precision: float32 on the CPU
exactly as the plain loop, mixed precision (autocast, a half-precision base, float32 LoRA
weights, loss scaling for float16) run on the CPU's autocast, and on a GPU when there is
one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.core.training import TrainingError, config_for
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine
from studio.engines.training import recipe_class
from studio.engines.training.data import bucket_for, buckets, caption_from_name
from studio.engines.training.sd_lora import FP32, Precision, SdLoraRecipe, precision_for

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five warm-coloured blobs (one tall, one with a caption file), a broken file, a copy."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for i in range(4):
        y, x = np.mgrid[0:64, 0:64]
        blob = ((x - 20 - 6 * i) ** 2 + (y - 32) ** 2 < 300)[..., None]
        pixels = np.where(blob, [230, 90 + 20 * i, 30], [20, 30, 60 + 10 * i])
        pixels = (pixels + rng.integers(0, 8, pixels.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"orange_blob_{i}.png")
    Image.new("RGBA", (48, 96), (240, 120, 20, 255)).save(folder / "tall.png")
    (folder / "tall.txt").write_text("a tall orange bar\n", encoding="utf-16")
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "copy.png").write_bytes((folder / "orange_blob_0.png").read_bytes())
    return folder


def _config(toy: Path, base: Path, **values):
    return config_for("lora", data=str(toy), name="toy-style", base=str(base), steps=40,
                      lr=2e-3, batch=2, rank=4, alpha=4.0, resolution=64, val_split=0.2,
                      seed=0, trigger="zqx", **values)


def test_the_registry_names_this_recipe() -> None:
    assert recipe_class("lora") is SdLoraRecipe


def test_captions_and_buckets() -> None:
    assert caption_from_name(Path("/x/red_fox-02.png")) == "red fox"
    assert caption_from_name(Path("/x/a fox (3).jpg")) == "a fox"
    options = buckets(64, 8)
    assert (64, 64) in options and all(w * h <= 64 * 64 for w, h in options)
    assert all(w % 8 == 0 and h % 8 == 0 for w, h in options)
    assert options == [(48, 80), (56, 72), (64, 64), (72, 56), (80, 48)]  # 1:2 to 2:1
    assert (bucket_for(48, 96, options), bucket_for(96, 64, options)) == ((48, 80), (80, 48))


def test_the_data_check_says_what_is_used(toy: Path, tiny_sd: Path) -> None:
    report = SdLoraRecipe(_config(toy, tiny_sd)).check_data()
    assert (report.found, report.usable, report.duplicates) == (7, 5, 1)
    assert [name for name, _why in report.skipped] == ["broken.png"]
    assert any(note.startswith("4 captions from file names") for note in report.notes)
    assert "1 RGBA image converted to RGB." in report.notes
    with pytest.raises(TrainingError, match="does not exist"):
        SdLoraRecipe(_config(toy / "nope", tiny_sd)).check_data()


def test_training_lowers_the_loss_resumes_exactly_and_exports_a_lora_that_loads(
        toy: Path, tiny_sd: Path, tmp_path: Path) -> None:
    config = _config(toy, tiny_sd)
    recipe = SdLoraRecipe(config)
    recipe.check_data()
    recipe.setup()
    assert {item.size for item in recipe.train + recipe.val} >= {(64, 64)}
    assert len(recipe.val) == 1 and all(e.caption.startswith("zqx, ") for e in recipe.train)
    before = recipe.validation_loss()

    def fixed_loss() -> float:  # the training images under the same noise and timesteps
        fixed = torch.Generator().manual_seed(5)
        with torch.no_grad():
            return float(np.mean([float(recipe._loss([e], fixed)) for e in recipe.train]))

    train_before = fixed_loss()
    losses = [recipe.train_step() for _ in range(config.steps)]
    train_after = fixed_loss()
    assert all(np.isfinite(losses))
    assert train_after < train_before  # the same noise and timesteps: it learned
    assert recipe.validation_loss() != before
    checkpoint = recipe.state_dict()

    # a resumed run reaches the same weights as one that went on
    more = [recipe.train_step() for _ in range(3)]
    resumed = SdLoraRecipe(config)
    resumed.check_data()
    resumed.setup()
    resumed.load_state_dict(checkpoint)
    assert [resumed.train_step() for _ in range(3)] == more
    for key, value in recipe.lora_state().items():
        assert torch.equal(resumed.lora_state()[key], value)

    samples = recipe.samples()
    assert [s.kind for s in samples] == ["image", "image"] and samples[0].data.dtype == np.uint8
    facts = recipe.card_facts()
    assert facts["Trigger word"] == "zqx" and "rank 4" in facts["LoRA"]

    out = tmp_path / "models" / "Lora"
    out.mkdir(parents=True)
    path = recipe.export(out)
    assert path == out / "toy-style.safetensors"

    engine = DiffusersImageEngine.load(LoadSpec(str(tiny_sd), "cpu", "float32"),
                                       Settings(model_dirs=[str(tmp_path / "models")]), Events())

    def render(prompt: str) -> np.ndarray:
        request = ImageRequest(model=str(tiny_sd), prompt=prompt, seed=3, steps=2, width=64,
                               height=64, scheduler="Euler")
        return engine.generate(request, Events()).images[0]

    base = render("zqx, orange blob")
    assert not np.array_equal(render("zqx, orange blob <lora:toy-style:1>"), base)
    assert np.array_equal(render("zqx, orange blob <lora:toy-style:0>"), base)
    from studio.core import catalog

    assert catalog.lora_file(path).base is not None  # ss_base_model_version says SD 1.x
    engine.unload()


# ---------------------------------------------------------------------- precision


def ready(toy: Path, base: Path, device: str = "cpu", precision: Precision | None = None,
          **values) -> SdLoraRecipe:
    recipe = SdLoraRecipe(_config(toy, base, **values), device, precision)
    recipe.check_data()
    recipe.setup()
    return recipe


def lora_params(recipe: SdLoraRecipe) -> dict[str, torch.Tensor]:
    return {n: p for n, p in recipe.pipe.unet.named_parameters() if p.requires_grad}


def test_the_precision_rule() -> None:
    assert precision_for("cpu") == precision_for("mps") == FP32
    assert Precision(None, "float32", scaled=False) == FP32 and not FP32.mixed
    assert FP32.describe() == "float32"
    bf16 = precision_for("cuda", bf16=True)
    assert bf16 == Precision("bfloat16", "bfloat16", scaled=False) and bf16.mixed
    fp16 = precision_for("cuda:1", bf16=False)
    assert fp16 == Precision("float16", "float16", scaled=True)
    assert fp16.describe() == ("mixed: float16 autocast for the UNet, base model in float16, "
                               "LoRA weights in float32, loss scaling")
    if not torch.cuda.is_available():  # the GPU's own answer, where there is none
        assert precision_for("cuda") == Precision("float16", "float16", scaled=True)


def test_float32_on_the_cpu_is_the_plain_loop(toy: Path, tiny_sd: Path) -> None:
    """The default on a CPU: no autocast, no scaler, every weight float32, and two steps
    reach the very weights of the loop written plainly (loss, backward, AdamW step)."""
    recipe = ready(toy, tiny_sd)
    assert recipe.precision == FP32 and recipe.scaler is None
    assert all(p.dtype == torch.float32 for p in recipe.pipe.unet.parameters())
    assert recipe.card_facts()["Precision"] == "float32"
    losses = [recipe.train_step() for _ in range(2)]

    plain = ready(toy, tiny_sd)
    unet, scheduler = plain.pipe.unet, plain.noise_scheduler
    assert plain.optimizer is not None
    unet.train()
    for expected in losses:
        batch = plain._next_batch()
        latents = torch.stack([b.latents for b in batch])
        noise = torch.randn(latents.shape, generator=plain.generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(batch),),
                          generator=plain.generator)
        noisy = scheduler.add_noise(latents, noise, t)
        embeds = torch.stack([b.embeds for b in batch])
        pred = unet(noisy, t, encoder_hidden_states=embeds).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        plain.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        plain.optimizer.step()
        assert float(loss.detach()) == expected
    mine, theirs = lora_params(recipe), lora_params(plain)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_bfloat16_autocast_with_a_half_precision_base(toy: Path, tiny_sd: Path) -> None:
    """What a bf16 GPU runs, on the CPU's autocast: the base loaded in bfloat16, the LoRA
    weights and the optimizer in float32, finite losses, weights that move."""
    recipe = ready(toy, tiny_sd, precision=Precision("bfloat16", "bfloat16"))
    unet = recipe.pipe.unet
    assert unet.conv_in.weight.dtype == torch.bfloat16
    assert recipe.pipe.text_encoder.dtype == torch.bfloat16
    assert all(e.latents.dtype == torch.float32 for e in recipe.train)
    params = lora_params(recipe)
    assert params and all(p.dtype == torch.float32 for p in params.values())
    before = {k: v.detach().clone() for k, v in params.items()}
    losses = [recipe.train_step() for _ in range(2)]
    assert all(np.isfinite(losses))
    assert all(p.dtype == torch.float32 for p in lora_params(recipe).values())
    assert any(not torch.equal(before[k], p) for k, p in lora_params(recipe).items())
    val = recipe.validation_loss()
    assert val is not None and np.isfinite(val)
    # the same first step in float32 gives a near but different loss: autocast ran
    exact = ready(toy, tiny_sd).train_step()
    assert losses[0] != exact and abs(losses[0] - exact) < 0.1 * exact
    assert recipe.card_facts()["Precision"] == ("mixed: bfloat16 autocast for the UNet, base "
                                                "model in bfloat16, LoRA weights in float32")
    assert all(v.dtype == torch.float32 for v in recipe.lora_state().values())


def test_float16_autocast_scales_the_loss_and_resumes_the_scale(toy: Path,
                                                                 tiny_sd: Path) -> None:
    recipe = ready(toy, tiny_sd, precision=Precision("float16", "float32", scaled=True))
    assert isinstance(recipe.scaler, torch.amp.GradScaler)
    losses = [recipe.train_step() for _ in range(2)]
    assert all(np.isfinite(losses))
    state = recipe.state_dict()
    assert state["scaler"]["scale"] == recipe.scaler.get_scale() > 1
    more = [recipe.train_step() for _ in range(2)]
    resumed = ready(toy, tiny_sd, precision=Precision("float16", "float32", scaled=True))
    resumed.load_state_dict(state)
    assert resumed.scaler is not None
    assert resumed.scaler.get_scale() == state["scaler"]["scale"]
    assert [resumed.train_step() for _ in range(2)] == more


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_on_a_gpu(toy: Path, tiny_sd: Path) -> None:
    recipe = ready(toy, tiny_sd, device="cuda")
    precision = recipe.precision
    assert precision.mixed and precision == precision_for("cuda")
    half = getattr(torch, precision.base)
    assert recipe.pipe.unet.conv_in.weight.dtype == half
    assert (recipe.scaler is not None) == (half == torch.float16)
    before = {k: v.detach().clone() for k, v in lora_params(recipe).items()}
    losses = [recipe.train_step() for _ in range(3)]
    assert all(np.isfinite(losses))
    after = lora_params(recipe)
    assert all(p.dtype == torch.float32 and p.is_cuda for p in after.values())
    assert any(not torch.equal(before[k], p) for k, p in after.items())
    val = recipe.validation_loss()
    assert val is not None and np.isfinite(val)
    assert recipe.card_facts()["Precision"].startswith(f"mixed: {precision.compute}")
