"""The diffusers image engine on a tiny real pipeline folder, loaded with the engine's loader.

Seeds and batches, variation noise, every scheduler, previews (linear and TAESD), cancel,
the clear errors, and the whole job path through the Runner to a PNG with its recipe.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from studio.core.errors import Cancelled, ModelError
from studio.core.requests import SCHEDULERS, ImageRequest
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.devices import module_bytes
from studio.engines.image_diffusers import DiffusersImageEngine, resolve_model_path
from studio.engines.latents import seed_noise, variation_noise
from studio.engines.previews import PreviewThrottle, X0Tap, derive_x0
from studio.engines.schedulers import SCHEDULER_MAP, build_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture(scope="module")
def engine(
    tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DiffusersImageEngine]:
    """The tiny model loaded once, with an empty models folder (so no TAESD is found)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        loaded = _load(tiny_sd)
    yield loaded
    loaded.unload()


def _load(model: Path | str, **settings) -> DiffusersImageEngine:
    spec = LoadSpec(str(model), "cpu", "float32")
    return DiffusersImageEngine.load(spec, Settings(**settings), Events())


def _request(model: Path | str, **fields) -> ImageRequest:
    fields = {"prompt": "a red fox", "seed": 1234, "steps": 3, "width": 96, "height": 64,
              "scheduler": "Euler", **fields}
    return ImageRequest(model=str(model), **fields)


class Recorder(Events):
    """Headless events that keep everything and can cancel at a given step."""

    def __init__(self, previews: bool = True, cancel_at: int | None = None) -> None:
        super().__init__(threading.Event())
        self.want = previews
        self.cancel_at = cancel_at
        self.progress_seen: list[Progress] = []
        self.previews: list[Preview] = []

    def wants_previews(self) -> bool:
        return self.want

    def on_progress(self, progress: Progress) -> None:
        self.progress_seen.append(progress)
        if self.cancel_at is not None and progress.step >= self.cancel_at:
            self.cancel_flag.set()  # the engine must notice on its next check

    def on_preview(self, preview: Preview) -> None:
        self.previews.append(preview)


def _run(engine: DiffusersImageEngine, events: Events | None = None, **fields):
    return engine.generate(_request(engine.spec.model, **fields), events or Events())


# ─── loading and basics ─────────────────────────────────────────────────────────────────


def test_load_folder_and_generate(engine: DiffusersImageEngine) -> None:
    result = _run(engine)
    assert result.modality == "image"
    (image,) = result.images
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 0  # a real decoded picture, not a constant
    assert result.info["seeds"] == [1234]
    assert result.info["model_name"] == "tiny-sd"
    assert result.info["family"] == "SD 1.x"
    assert set(result.info["timings"]) >= {"total_s", "steps_s", "decode_s", "it_per_s"}
    assert engine.describe()["source"] == "diffusers folder"
    parts = [m for m in engine.pipe.components.values() if isinstance(m, torch.nn.Module)]
    assert engine.memory_bytes() == module_bytes(*parts) > 0


def test_same_seed_same_pixels_and_different_seed_differs(engine: DiffusersImageEngine) -> None:
    a = _run(engine, seed=42, scheduler="Euler a").images[0]
    b = _run(engine, seed=42, scheduler="Euler a").images[0]
    c = _run(engine, seed=43, scheduler="Euler a").images[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_items_use_consecutive_seeds(engine: DiffusersImageEngine) -> None:
    """Batch item i is the picture seed+i makes alone (ancestral noise included)."""
    result = _run(engine, seed=10, batch_size=3, scheduler="Euler a")
    assert result.info["seeds"] == [10, 11, 12]
    assert len(result.images) == 3
    alone = _run(engine, seed=11, scheduler="Euler a").images[0]
    assert np.abs(result.images[1].astype(int) - alone.astype(int)).max() <= 1
    assert not np.array_equal(result.images[0], result.images[1])


def test_seeds_wrap_at_the_top_of_the_range(engine: DiffusersImageEngine) -> None:
    result = _run(engine, seed=2**64 - 1, batch_size=2, steps=1)  # seeds are 64-bit
    assert result.info["seeds"] == [2**64 - 1, 0]


def test_variation_seed(engine: DiffusersImageEngine) -> None:
    base = _run(engine, seed=5).images[0]
    other = _run(engine, seed=99).images[0]
    zero = _run(engine, seed=5, variation_seed=99, variation_strength=0.0)
    assert np.array_equal(zero.images[0], base)
    assert "variation_seeds" not in zero.info
    full = _run(engine, seed=5, variation_seed=99, variation_strength=1.0)
    assert np.array_equal(full.images[0], other)  # Euler adds no noise of its own
    half = _run(engine, seed=5, variation_seed=99, variation_strength=0.5)
    assert half.info["variation_seeds"] == [99]
    assert not np.array_equal(half.images[0], base)
    assert not np.array_equal(half.images[0], other)


def test_initial_latents_are_the_seed_noise(engine: DiffusersImageEngine) -> None:
    """What goes in as `latents=` is exactly seed_noise(seed) (unscaled: the pipeline
    multiplies by init_noise_sigma itself)."""
    seen: dict[str, torch.Tensor] = {}
    original = engine.pipe.prepare_latents

    def spy(*args, **kwargs):
        seen["given"] = kwargs.get("latents", args[-1] if args else None).clone()
        seen["scaled"] = original(*args, **kwargs)
        return seen["scaled"]

    engine.pipe.prepare_latents = spy
    try:
        _run(engine, seed=77, steps=1)
        expected = seed_noise(77, (1, 4, 8, 12))
        assert torch.equal(seen["given"], expected)
        sigma = engine.pipe.scheduler.init_noise_sigma
        assert torch.allclose(seen["scaled"], expected * sigma)
        _run(engine, seed=77, variation_seed=3, variation_strength=0.3, steps=1)
        assert torch.equal(seen["given"], variation_noise(77, 3, 0.3, (1, 4, 8, 12)))
    finally:
        del engine.pipe.prepare_latents


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_runs(engine: DiffusersImageEngine, name: str) -> None:
    events = Recorder(previews=False)
    result = _run(engine, events, scheduler=name, steps=4)
    assert result.images[0].shape == (64, 96, 3)
    assert [p.step for p in events.progress_seen] == [1, 2, 3, 4]
    assert type(engine.pipe.scheduler).__name__ == SCHEDULER_MAP[name][0]


def test_scheduler_map_matches_core_and_keeps_model_config() -> None:
    assert set(SCHEDULER_MAP) == set(SCHEDULERS)
    base = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
            "prediction_type": "v_prediction", "timestep_spacing": "trailing",
            "use_karras_sigmas": True, "skip_prk_steps": True}
    karras = build_scheduler("DPM++ 2M Karras", base)
    plain = build_scheduler("DPM++ 2M", base)
    assert karras.config.use_karras_sigmas and not plain.config.use_karras_sigmas
    assert plain.config.algorithm_type == "dpmsolver++"
    for name in SCHEDULERS:
        scheduler = build_scheduler(name, base)
        assert scheduler.config.prediction_type == "v_prediction"
        assert scheduler.config.timestep_spacing == "trailing"


# ─── previews ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
def every_step(engine: DiffusersImageEngine) -> Iterator[None]:
    engine.preview_interval, engine.preview_budget = 0.0, 1.0
    yield
    del engine.preview_interval, engine.preview_budget


@pytest.mark.parametrize("name", SCHEDULERS)
def test_previews_arrive_in_step_order(engine: DiffusersImageEngine, every_step: None,
                                       name: str) -> None:
    events = Recorder()
    _run(engine, events, scheduler=name, steps=4)
    assert [p.step for p in events.previews] == [1, 2, 3, 4]
    for preview in events.previews:
        assert preview.kind == "image" and preview.total == 4
        assert preview.data.shape == (8, 12, 3) and preview.data.dtype == np.uint8
        assert preview.info["decoder"] == "linear"


def test_batch_previews_are_lists(engine: DiffusersImageEngine, every_step: None) -> None:
    events = Recorder()
    _run(engine, events, batch_size=2, steps=2)
    assert len(events.previews) == 2
    assert all(isinstance(p.data, list) and len(p.data) == 2 for p in events.previews)


def test_no_previews_when_nobody_watches(engine: DiffusersImageEngine, every_step: None) -> None:
    events = Recorder(previews=False)
    _run(engine, events)
    assert events.previews == []
    assert "step" not in vars(engine.pipe.scheduler)  # the scheduler was not even tapped


def test_default_throttle_keeps_previews_rare(engine: DiffusersImageEngine) -> None:
    engine.preview_interval = 3600.0
    try:
        events = Recorder()
        _run(engine, events, steps=4)
    finally:
        del engine.preview_interval
    assert [p.step for p in events.previews] == [1]


def test_preview_throttle_budget() -> None:
    throttle = PreviewThrottle(interval=0.0, budget=0.5)
    assert throttle.due()
    throttle.spent, throttle.last = 10.0, throttle.start  # a preview that took 10 s
    assert not throttle.due()  # it used far more than half of the elapsed time
    throttle.start -= 30.0
    assert throttle.due()


@pytest.mark.parametrize("name", ["Euler", "Euler a", "DDIM"])
def test_x0_estimate_matches_the_scheduler(name: str) -> None:
    """The tap returns the scheduler's own x0; derive_x0 (the fallback) agrees with it."""
    config = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
              "num_train_timesteps": 1000, "clip_sample": False}
    for prediction in ("epsilon", "v_prediction"):
        scheduler = build_scheduler(name, {**config, "prediction_type": prediction})
        scheduler.set_timesteps(5)
        tap = X0Tap(scheduler)
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(1, 4, 8, 8, generator=generator) * scheduler.init_noise_sigma
        model_output = torch.randn(1, 4, 8, 8, generator=generator)
        t = scheduler.timesteps[1] if name == "DDIM" else scheduler.timesteps[0]
        if name != "DDIM":
            scheduler.scale_model_input(sample, t)
        out = scheduler.step(model_output, t, sample, generator=generator, return_dict=False)
        assert torch.equal(tap.estimate(), out[1])
        derived = derive_x0(scheduler, model_output, t, sample)
        assert torch.allclose(derived, out[1], atol=1e-5), (name, prediction)


def test_multistep_schedulers_expose_their_x0() -> None:
    config = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
    for name in ("DPM++ 2M", "UniPC"):
        scheduler = build_scheduler(name, config)
        scheduler.set_timesteps(4)
        tap = X0Tap(scheduler)
        sample = torch.randn(1, 4, 8, 8)
        scheduler.step(torch.randn(1, 4, 8, 8), scheduler.timesteps[0], sample)
        assert tap.estimate() is scheduler.model_outputs[-1]


def _save_tiny_taesd(folder: Path) -> None:
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4,
    ).save_pretrained(folder)


def test_taesd_previews_when_installed(tiny_sd: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    _save_tiny_taesd(models / "taesd")
    monkeypatch.setenv("STUDIO_MODELS", str(models))
    loaded = _load(tiny_sd)
    assert loaded.describe()["previews"] == "taesd"
    assert loaded.memory_bytes() > module_bytes(
        *[m for m in loaded.pipe.components.values() if isinstance(m, torch.nn.Module)])
    loaded.preview_interval, loaded.preview_budget = 0.0, 1.0
    events = Recorder()
    result = loaded.generate(_request(tiny_sd, steps=2), events)
    assert [p.step for p in events.previews] == [1, 2]
    assert all(p.data.shape == (64, 96, 3) and p.info["decoder"] == "taesd"
               for p in events.previews)
    assert result.info["preview_decoder"] == "taesd"


def test_broken_taesd_falls_back_to_linear(tiny_sd: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "models" / "taesd"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"_class_name": "AutoencoderTiny"}')  # no weights
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "models"))
    assert _load(tiny_sd).describe()["previews"] == "linear"


def test_lcm_pipeline_folder(tiny_sd: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An LCM folder loads as LatentConsistencyModelPipeline; it has no negative prompt
    (recorded as ignored) and samples only with the LCM scheduler (a clear error)."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler, UNet2DConditionModel

    from studio.core.errors import RequestError

    parts = StableDiffusionPipeline.from_pretrained(tiny_sd).components
    config = {**dict(parts["unet"].config), "time_cond_proj_dim": 16}
    torch.manual_seed(0)
    parts["unet"] = UNet2DConditionModel.from_config(config)
    parts["scheduler"] = LCMScheduler.from_config(parts["scheduler"].config)
    folder = tmp_path / "tiny-lcm"
    LatentConsistencyModelPipeline(**parts).save_pretrained(folder)
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "no-models"))
    loaded = _load(folder)
    assert type(loaded.pipe).__name__ == "LatentConsistencyModelPipeline"
    result = loaded.generate(_request(folder, scheduler="LCM", negative="blurry", guidance=2.0,
                                      steps=2), Events())
    assert result.images[0].shape == (64, 96, 3)
    assert result.info["ignored"] == ["negative prompt"]
    with pytest.raises(RequestError, match="LCM scheduler"):
        loaded.generate(_request(folder, scheduler="Euler a"), Events())


# ─── cancel ─────────────────────────────────────────────────────────────────────────────


def test_cancel_mid_job_raises_and_decodes_nothing(engine: DiffusersImageEngine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    decodes: list[int] = []
    original = engine.pipe.vae.decode
    monkeypatch.setattr(engine.pipe.vae, "decode",
                        lambda *a, **k: decodes.append(1) or original(*a, **k))
    events = Recorder(cancel_at=2)
    with pytest.raises(Cancelled):
        _run(engine, events, steps=5)
    assert [p.step for p in events.progress_seen] == [1, 2]
    assert decodes == []
    _run(engine, Events(), steps=1)  # the engine still works afterwards
    assert decodes == [1]


def test_cancel_before_start(engine: DiffusersImageEngine) -> None:
    events = Recorder()
    events.cancel_flag.set()
    with pytest.raises(Cancelled):
        _run(engine, events)
    assert events.progress_seen == []


# ─── errors ─────────────────────────────────────────────────────────────────────────────


def test_missing_model_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "bundled"))
    with pytest.raises(ModelError) as info:
        _load("no-such-model", model_dirs=[str(tmp_path / "mine")])
    message = str(info.value)
    assert "not found" in message and str(tmp_path / "bundled" / "no-such-model") in message
    assert str(tmp_path / "mine" / "no-such-model") in message
    assert "Settings" in message and "\n" not in message
    with pytest.raises(ModelError, match="not found"):
        _load(tmp_path / "absent.safetensors")


def test_model_names_resolve_inside_model_folders(tiny_sd: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "bundled"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "fox").symlink_to(tiny_sd)
    assert resolve_model_path("fox", Settings(model_dirs=[str(mine)])) == mine / "fox"


def test_folder_without_model_index(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"without model_index\.json"):
        _load(tmp_path)


def test_pickled_folder_needs_opt_in(tiny_sd: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled-sd"
    StableDiffusionPipeline.from_pretrained(tiny_sd).save_pretrained(
        pickled, safe_serialization=False)
    shutil.rmtree(pickled / "scheduler")
    shutil.copytree(tiny_sd / "scheduler", pickled / "scheduler")
    with pytest.raises(ModelError, match="pickled"):
        _load(pickled)
    assert _load(pickled, allow_pickle=True).generate(_request(pickled, steps=1), Events()).images


# ─── the real job path ──────────────────────────────────────────────────────────────────


def test_runner_writes_png_with_recipe(tiny_sd: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.core.history import History
    from studio.core.recipes import read_recipe
    from studio.core.requests import Request
    from studio.engines.registry import engine_class
    from studio.engines.runner import Runner

    assert engine_class("image", str(tiny_sd)) is DiffusersImageEngine
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "no-models"))
    settings = Settings(output_dir=str(tmp_path / "out"), device="cpu")
    runner = Runner(settings)
    request = _request(tiny_sd, seed=-1, batch_size=2, negative="blurry")
    result = runner.generate(request, Events())
    history = History(tmp_path / "history.sqlite")
    try:
        paths = runner.save(result, history)
    finally:
        history.close()
    assert len(paths) == 2 and all(p.suffix == ".png" and p.is_file() for p in paths)
    seeds = result.info["seeds"]
    assert seeds[1] == (seeds[0] + 1) % 2**64 and result.request.seed == seeds[0]
    from PIL import Image

    for path, seed, pixels in zip(paths, seeds, result.images, strict=True):
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), pixels)
        recipe = read_recipe(path)
        replay = Request.from_dict(recipe.request)
        assert isinstance(replay, ImageRequest)
        assert replay.seed == seed and replay.prompt == "a red fox"
        assert replay.negative == "blurry" and replay.scheduler == "Euler"
        assert (replay.width, replay.height, replay.steps) == (96, 64, 3)
    # replaying the second image's recipe alone gives the same picture (a batch of one
    # may round a few pixels differently from a batch of two: float sums in other orders)
    again = runner.generate(Request.from_dict(read_recipe(paths[1]).request), Events())
    assert np.abs(again.images[0].astype(int) - result.images[1].astype(int)).max() <= 1
    assert runner.cache.loads == 1
