"""A1111 1.9's samplers and schedule types, clip skip and a separate VAE, on the tiny SD
pipeline loaded with the engine's own loader.

Every sampler renders and is deterministic for a seed (the ancestral and SDE samplers
draw their noise from the job's generators, the Brownian tree of DPM++ SDE from the
item seeds); a batch item is the picture its seed makes alone; the schedule types
change the noise levels; clip skip reads an earlier CLIP layer; a VAE swaps in without
reloading the base model and Automatic gives the model's own pixels back exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import ModelError, RequestError
from studio.core.metadata import format_infotext, infotext_to_request_dict, parse_infotext
from studio.core.requests import NO_SIGMA_SCHEDULES, SAMPLERS, SCHEDULES, ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine
from studio.engines.schedulers import SCHEDULER_MAP, build_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

NEW = ("LMS", "Heun", "DPM2", "DPM2 a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE")
STOCHASTIC = ("Euler a", "DPM2 a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty models folder, where the VAE tests put their VAEs."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, models: Path) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(models))
        loaded = DiffusersImageEngine.load(LoadSpec(str(tiny_sd), "cpu", "float32"),
                                           Settings(), Events())
        yield loaded
    loaded.unload()


def _run(engine: DiffusersImageEngine, **fields):
    fields = {"prompt": "a red fox", "seed": 1234, "steps": 3, "width": 64, "height": 64,
              "scheduler": "Euler", **fields}
    return engine.generate(ImageRequest(model=engine.spec.model, **fields), Events())


# ─── samplers and schedules ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", NEW)
def test_each_new_sampler_renders_deterministically(engine: DiffusersImageEngine,
                                                    name: str) -> None:
    a = _run(engine, scheduler=name)
    b = _run(engine, scheduler=name)
    other = _run(engine, scheduler=name, seed=99)
    assert type(engine.pipe.scheduler).__name__ == SCHEDULER_MAP[name][0]
    assert a.images[0].shape == (64, 64, 3) and a.images[0].std() > 0
    assert np.array_equal(a.images[0], b.images[0])
    assert not np.array_equal(a.images[0], other.images[0])
    assert a.info["sampler"] == name and a.info["schedule"] == "Automatic"


def test_samplers_differ_from_each_other(engine: DiffusersImageEngine) -> None:
    # 5 steps: with fewer, the 3M solver's warm-up and final lower orders leave no room
    # for a third-order step, and it is the 2M one
    pictures = {name: _run(engine, scheduler=name, steps=5).images[0] for name in SAMPLERS
                if name != "LCM"}
    seen: list[np.ndarray] = []
    for name, picture in pictures.items():
        assert not any(np.array_equal(picture, p) for p in seen), name
        seen.append(picture)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_sampler_noise_comes_from_the_seed(engine: DiffusersImageEngine, name: str) -> None:
    """Batch item i is what seed+i makes alone, and the noise added while sampling is the
    seed's: the same start noise with another generator seed gives another picture."""
    batch = _run(engine, scheduler=name, seed=500, batch_size=2)
    alone = _run(engine, scheduler=name, seed=501)
    assert batch.info["seeds"] == [500, 501]
    assert np.abs(batch.images[1].astype(int) - alone.images[0].astype(int)).max() <= 1


def test_sde_brownian_tree_is_seeded_per_item() -> None:
    base = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
    sampler = build_scheduler("DPM++ SDE", base, seeds=[7, 2**64 - 1])
    assert sampler.config.noise_sampler_seed == [7, 2**64 - 1]
    assert build_scheduler("Euler a", base, seeds=[7]).config.get("noise_sampler_seed") is None


@pytest.mark.parametrize("schedule", SCHEDULES[1:])
def test_schedule_types_change_the_noise_levels(engine: DiffusersImageEngine,
                                                schedule: str) -> None:
    plain = _run(engine, scheduler="DPM++ 2M SDE", steps=4)
    scheduled = _run(engine, scheduler="DPM++ 2M SDE", schedule=schedule, steps=4)
    again = _run(engine, scheduler="DPM++ 2M SDE", schedule=schedule, steps=4)
    assert not np.array_equal(plain.images[0], scheduled.images[0])
    assert np.array_equal(scheduled.images[0], again.images[0])
    config = engine.pipe.scheduler.config
    assert config.use_karras_sigmas == (schedule == "Karras")
    assert config.use_exponential_sigmas == (schedule == "Exponential")
    assert (config.timestep_spacing == "trailing") == (schedule == "SGM Uniform")
    assert scheduled.info["schedule"] == schedule


def test_old_combined_name_is_dpm_2m_with_karras(engine: DiffusersImageEngine) -> None:
    old = _run(engine, scheduler="DPM++ 2M Karras")
    new = _run(engine, scheduler="DPM++ 2M", schedule="Karras")
    assert np.array_equal(old.images[0], new.images[0])
    assert old.info["sampler"] == "DPM++ 2M" and old.info["schedule"] == "Karras"


@pytest.mark.parametrize("name", sorted(NO_SIGMA_SCHEDULES))
def test_samplers_without_sigma_schedules_say_so(name: str) -> None:
    request = ImageRequest(model="m", scheduler=name, schedule="Karras")
    with pytest.raises(RequestError, match=f"^{name} has no Karras schedule"):
        request.validate()
    ImageRequest(model="m", scheduler=name, schedule="SGM Uniform").validate()


def test_unknown_schedule_is_one_sentence() -> None:
    with pytest.raises(RequestError, match="Unknown schedule type 'Beta'; choose one of"):
        ImageRequest(model="m", schedule="Beta").validate()


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_infotext_round_trips_every_sampler_and_schedule(name: str, schedule: str) -> None:
    if name in NO_SIGMA_SCHEDULES and schedule in ("Karras", "Exponential"):
        return  # refused above
    request = ImageRequest(model="m.safetensors", prompt="fox", seed=3, scheduler=name,
                           schedule=schedule)
    text = format_infotext(request)
    assert f"Sampler: {name}," in text
    if schedule != "Automatic":
        assert f"Schedule type: {schedule}," in text
    back = infotext_to_request_dict(parse_infotext(text))
    assert (back["scheduler"], back["schedule"]) == (name, schedule)
    assert "notes" not in back


# ─── clip skip ──────────────────────────────────────────────────────────────────────────


def test_clip_skip_reads_an_earlier_layer(engine: DiffusersImageEngine) -> None:
    last = _run(engine)
    skipped = _run(engine, clip_skip=2)
    assert not np.array_equal(last.images[0], skipped.images[0])
    assert np.array_equal(skipped.images[0], _run(engine, clip_skip=2).images[0])
    assert skipped.info["clip_skip"] == 2 and "clip_skip" not in last.info
    with pytest.raises(RequestError, match="Clip skip 3 is more than this text encoder's 2"):
        _run(engine, clip_skip=3)  # the tiny encoder has two layers


def test_clip_skip_in_infotext_round_trips() -> None:
    request = ImageRequest(model="m", prompt="fox", clip_skip=2)
    text = format_infotext(request)
    assert "Clip skip: 2," in text
    back = infotext_to_request_dict(parse_infotext(text))
    assert back["clip_skip"] == 2 and "notes" not in back
    assert "Clip skip" not in format_infotext(ImageRequest(model="m", prompt="fox"))


# ─── a separate VAE ─────────────────────────────────────────────────────────────────────


def _tiny_vae(engine: DiffusersImageEngine, seed: int) -> torch.nn.Module:
    """A VAE of the tiny model's architecture with other weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_config(engine.vae_swap.own.config)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return vae.eval()


def test_a_vae_folder_swaps_in_and_automatic_restores_the_own(
        engine: DiffusersImageEngine, models: Path) -> None:
    own = engine.pipe.vae
    unet, text = engine.pipe.unet, engine.pipe.text_encoder
    base = _run(engine)
    _tiny_vae(engine, 1).save_pretrained(models / "VAE" / "other-vae")
    swapped = _run(engine, vae="other-vae")
    assert not np.array_equal(base.images[0], swapped.images[0])
    assert engine.pipe.vae is not own
    assert engine.pipe.unet is unet and engine.pipe.text_encoder is text  # no reload
    assert swapped.info["vae"] == "other-vae"
    assert len(swapped.info["vae_hash"]) == 10
    assert engine.memory_bytes() > 0
    back = _run(engine, vae="Automatic")
    assert engine.pipe.vae is own
    assert np.array_equal(back.images[0], base.images[0])
    assert "vae" not in back.info


def test_a_vae_file_and_the_img2img_pipeline(engine: DiffusersImageEngine, models: Path,
                                             tmp_path: Path) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    folder = models / "VAE"
    folder.mkdir(exist_ok=True)
    vae = _tiny_vae(engine, 2)
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()},
              str(folder / "fine.safetensors"))
    base = _run(engine)
    swapped = _run(engine, vae="fine.safetensors")
    by_stem = _run(engine, vae="fine")
    assert not np.array_equal(base.images[0], swapped.images[0])
    assert np.array_equal(swapped.images[0], by_stem.images[0])
    init = tmp_path / "init.png"
    Image.fromarray(base.images[0]).save(init)
    repainted = _run(engine, vae="fine", init_image=str(init), strength=0.5)
    assert engine.mode_pipe().vae is engine.pipe.vae is not engine.vae_swap.own
    assert repainted.info["vae"] == "fine.safetensors"
    _run(engine, vae="")
    assert engine.mode_pipe().vae is engine.vae_swap.own
    assert np.array_equal(_run(engine).images[0], base.images[0])


def test_vae_infotext_round_trips() -> None:
    request = ImageRequest(model="m", prompt="fox", vae="/some/where/kl-f8.safetensors")
    text = format_infotext(request, extras={"VAE hash": "735e4c3a44"})
    assert "Model: m, VAE hash: 735e4c3a44, VAE: kl-f8.safetensors," in text
    back = infotext_to_request_dict(parse_infotext(text))
    assert back["vae"] == "kl-f8.safetensors" and "notes" not in back
    assert "VAE" not in format_infotext(ImageRequest(model="m", vae="Automatic"))


def test_bad_vaes_are_one_sentence(engine: DiffusersImageEngine, models: Path) -> None:
    with pytest.raises(RequestError, match=r"^VAE 'nowhere' was not found"):
        _run(engine, vae="nowhere")
    folder = models / "VAE"
    folder.mkdir(exist_ok=True)
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match=r"^The VAE broken\.safetensors could not be loaded"):
        _run(engine, vae="broken")
    from safetensors.torch import save_file

    save_file({"encoder.down_blocks.0.resnets.0.conv1.weight": torch.zeros(8, 8, 3, 3)},
              str(folder / "half.safetensors"))
    with pytest.raises(ModelError, match=r"^The VAE half\.safetensors does not fit"):
        _run(engine, vae="half")
    assert engine.pipe.vae is engine.vae_swap.own  # a failed swap keeps the model's own


def _ldm_layout(state: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """A diffusers VAE state dict in the original (A1111 / CompVis) key layout, the way
    most VAE files on Civitai come (written out here: diffusers reads only that way)."""
    out: dict[str, torch.Tensor] = {}
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                 "to_out.0": "proj_out"}
    for key, value in state.items():
        new = key
        for part in ("encoder", "decoder"):
            new = new.replace(f"{part}.conv_norm_out", f"{part}.norm_out")
            for r in (0, 1):
                new = new.replace(f"{part}.mid_block.resnets.{r}.", f"{part}.mid.block_{r + 1}.")
            if f"{part}.mid_block.attentions.0." in new:
                rest = new.split(f"{part}.mid_block.attentions.0.")[1]
                name, kind = rest.rsplit(".", 1)
                new = f"{part}.mid.attn_1.{attention[name]}.{kind}"
                if kind == "weight" and value.ndim == 2:
                    value = value[:, :, None, None]
        for i in range(blocks):
            new = new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            new = new.replace(f"encoder.down_blocks.{i}.downsamplers.0.",
                              f"encoder.down.{i}.downsample.")
            up = blocks - 1 - i
            new = new.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{up}.block.")
            new = new.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{up}.upsample.")
        out[new.replace("conv_shortcut", "nin_shortcut")] = value.contiguous()
    return out


def test_an_a1111_layout_vae_file_decodes_like_its_diffusers_folder(
        engine: DiffusersImageEngine, models: Path) -> None:
    from safetensors.torch import save_file

    vae = _tiny_vae(engine, 3)
    folder = models / "VAE"
    vae.save_pretrained(folder / "three-folder")
    blocks = len(vae.config.down_block_types)
    ldm = _ldm_layout(vae.state_dict(), blocks)
    assert not any("down_blocks" in k or "up_blocks" in k for k in ldm)
    save_file(ldm, str(folder / "three-a1111.safetensors"))
    as_folder = _run(engine, vae="three-folder")
    as_file = _run(engine, vae="three-a1111")
    assert np.array_equal(as_folder.images[0], as_file.images[0])
    assert not np.array_equal(as_file.images[0], _run(engine).images[0])
