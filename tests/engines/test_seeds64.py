"""64-bit seeds end to end: a ComfyUI / Fooocus seed goes request → engine → PNG recipe
and history → read back → the same seed and the same picture, never folded to 32 bits.
The job also records its sampler, schedule type, clip skip and VAE in the infotext."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.core.formats.png import PARAMETERS_KEY
from studio.core.history import History
from studio.core.metadata import parse_infotext
from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest, Request
from studio.core.settings import Settings
from studio.engines.base import Events
from studio.engines.devices import cpu_generator
from studio.engines.runner import Runner

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

COMFY_SEED = 1234567890123456789  # beyond 32 bits, as ComfyUI and Fooocus draw them


def test_the_generator_gets_the_whole_seed_and_draws_comfyuis_noise() -> None:
    """The generator is seeded with all 64 bits; the start noise is the one ComfyUI's
    prepare_noise draws for that seed (torch.manual_seed, then randn on the CPU), so the
    ComfyUI seed gives ComfyUI's noise. (torch's CPU mt19937 reads the low 32 bits of
    its seed, in ComfyUI as here; the recipe keeps every bit.)"""
    from studio.engines.latents import seed_noise

    assert cpu_generator(COMFY_SEED).initial_seed() == COMFY_SEED
    assert cpu_generator(2**64 - 1).initial_seed() == 2**64 - 1
    state = torch.random.get_rng_state()
    try:
        comfy = torch.randn((1, 4, 8, 8), generator=torch.manual_seed(COMFY_SEED))
    finally:
        torch.random.set_rng_state(state)
    assert torch.equal(seed_noise(COMFY_SEED, (1, 4, 8, 8)), comfy)


def test_a_64_bit_seed_survives_the_round_trip(tiny_sd: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    monkeypatch.setenv("STUDIO_MODELS", str(models))
    runner = Runner(Settings(output_dir=str(tmp_path / "out"), device="cpu"))
    request = ImageRequest(model=str(tiny_sd), prompt="a red fox", seed=COMFY_SEED, steps=3,
                           width=64, height=64, scheduler="DPM++ 2M SDE", schedule="Karras",
                           clip_skip=2, batch_size=2)
    result = runner.generate(request, Events())
    assert result.info["seeds"] == [COMFY_SEED, COMFY_SEED + 1]
    history = History(tmp_path / "history.sqlite")
    try:
        paths = runner.save(result, history)
        stored = {item.path.name: item.seed for item in history.recent()}
    finally:
        history.close()
    for path, seed in zip(paths, result.info["seeds"], strict=True):
        assert stored[path.name] == seed
        text = Image.open(path).info[PARAMETERS_KEY]
        params = parse_infotext(text)
        assert params["Seed"] == str(seed)
        assert (params["Sampler"], params["Schedule type"]) == ("DPM++ 2M SDE", "Karras")
        assert params["Clip skip"] == "2"
        record = json.loads(Image.open(path).info["studio"])
        assert record["request"]["seed"] == seed
        recipe = read_recipe(path)
        assert recipe.request["seed"] == seed and not recipe.notes
    replay = Request.from_dict(read_recipe(paths[0]).request)
    assert isinstance(replay, ImageRequest)
    assert (replay.seed, replay.scheduler, replay.schedule, replay.clip_skip) == \
        (COMFY_SEED, "DPM++ 2M SDE", "Karras", 2)
    again = runner.generate(replay, Events())
    assert np.abs(again.images[0].astype(int) - result.images[0].astype(int)).max() <= 1


def test_the_vae_lands_in_the_infotext_with_its_hash(tiny_sd: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import AutoencoderKL

    models = tmp_path / "models"
    monkeypatch.setenv("STUDIO_MODELS", str(models))
    AutoencoderKL.from_pretrained(str(tiny_sd / "vae")).save_pretrained(models / "VAE" / "kl")
    runner = Runner(Settings(output_dir=str(tmp_path / "out"), device="cpu"))
    request = ImageRequest(model=str(tiny_sd), prompt="fox", seed=5, steps=2, width=64,
                           height=64, vae="kl")
    result = runner.generate(request, Events())
    (path,) = runner.save(result, None)
    params = parse_infotext(Image.open(path).info[PARAMETERS_KEY])
    assert params["VAE"] == "kl" and len(params["VAE hash"]) == 10
    assert read_recipe(path).request["vae"] == "kl"
