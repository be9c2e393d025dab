"""img2img and the hires fix on the tiny SD pipeline, through the engine's one denoise loop.

Strength 0 is the VAE round trip of the init; the mode pipeline shares every module of the
loaded one (same UNet object, same memory); seeds, previews, progress and cancel work as for
text-to-image; the hires fix makes one output at the target size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import Cancelled, StudioError
from studio.core.requests import ImageRequest
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        loaded = DiffusersImageEngine.load(LoadSpec(str(tiny_sd), "cpu", "float32"),
                                           Settings(), Events())
    yield loaded
    loaded.unload()


@pytest.fixture(scope="module")
def init_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smooth picture (gradients), which even the tiny random VAE keeps recognisable."""
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([x * 255 / 95, y * 255 / 63, np.full_like(x, 128)], -1).astype(np.uint8)
    path = tmp_path_factory.mktemp("inputs") / "init.png"
    Image.fromarray(image).save(path)
    return path


class Recorder(Events):
    def __init__(self, cancel_at: int | None = None) -> None:
        super().__init__(threading.Event())
        self.cancel_at = cancel_at
        self.steps: list[Progress] = []
        self.previews: list[Preview] = []

    def wants_previews(self) -> bool:
        return True

    def on_progress(self, progress: Progress) -> None:
        self.steps.append(progress)
        if self.cancel_at is not None and progress.step >= self.cancel_at:
            self.cancel_flag.set()

    def on_preview(self, preview: Preview) -> None:
        self.previews.append(preview)


def request(engine: DiffusersImageEngine, **fields) -> ImageRequest:
    fields = {"prompt": "a red fox", "seed": 7, "steps": 4, "width": 96, "height": 64,
              "scheduler": "Euler", **fields}
    made = ImageRequest(model=engine.spec.model, **fields)
    made.validate()
    return made


def test_strength_zero_is_the_vae_round_trip_of_the_init(engine, init_png) -> None:
    result = engine.generate(request(engine, init_image=str(init_png), strength=0.0), Events())
    (image,) = result.images
    trip = engine._round_trip(Image.open(init_png).convert("RGB"), 96, 64, 1)
    expected = (np.clip(trip[0], 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(image, expected)
    assert result.info["mode"] == "img2img"


def test_strength_changes_the_picture_and_seeds_reproduce(engine, init_png) -> None:
    low = engine.generate(request(engine, init_image=str(init_png), strength=0.25), Events())
    high = engine.generate(request(engine, init_image=str(init_png), strength=1.0), Events())
    again = engine.generate(request(engine, init_image=str(init_png), strength=1.0), Events())
    other = engine.generate(request(engine, init_image=str(init_png), strength=1.0, seed=8),
                            Events())
    assert np.array_equal(high.images[0], again.images[0])
    assert not np.array_equal(high.images[0], other.images[0])
    assert not np.array_equal(low.images[0], high.images[0])


def test_switching_modes_keeps_one_copy_of_the_weights(engine, init_png, tmp_path) -> None:
    unet, vae = engine.pipe.unet, engine.pipe.vae
    before = engine.memory_bytes()
    engine.generate(request(engine), Events())
    engine.generate(request(engine, init_image=str(init_png), strength=0.5), Events())
    mask = np.zeros((64, 96), np.uint8)
    mask[20:40, 30:60] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    engine.generate(request(engine, init_image=str(init_png), mask=str(tmp_path / "mask.png")),
                    Events())
    mode = engine.mode_pipe()
    assert mode is engine.mode_pipe()  # made once
    assert mode.unet is unet and mode.vae is vae and mode.text_encoder is engine.pipe.text_encoder
    assert engine.pipe.unet is unet
    assert engine.memory_bytes() == before


def test_progress_previews_and_cancel(engine, init_png) -> None:
    events = Recorder()
    engine.generate(request(engine, init_image=str(init_png), strength=0.5, steps=8), events)
    assert [p.step for p in events.steps] == [1, 2, 3, 4]  # 8 steps × strength 0.5
    assert events.steps[-1].total == 4
    assert events.previews and events.previews[0].data.shape[-1] == 3
    stop = Recorder(cancel_at=1)
    with pytest.raises(Cancelled):
        engine.generate(request(engine, init_image=str(init_png), strength=1.0), stop)


def test_hires_fix_makes_one_output_at_the_target_size(engine) -> None:
    events = Recorder()
    result = engine.generate(request(engine, hires_scale=1.5, hires_steps=4,
                                     hires_strength=0.5), events)
    (image,) = result.images
    assert image.shape == (96, 144, 3)
    assert result.info["hires"] == {"size": [144, 96], "upscaler": "latent", "steps": 4,
                                    "strength": 0.5}
    assert events.steps[-1].step == events.steps[-1].total == 4 + 2  # one bar, both passes
    lanczos = engine.generate(request(engine, hires_scale=2, hires_upscaler="lanczos",
                                      batch_size=2), Events())
    assert [a.shape for a in lanczos.images] == [(128, 192, 3)] * 2
    assert not np.array_equal(lanczos.images[0], lanczos.images[1])  # seeds 7 and 8


def test_unknown_upscaler_model_is_one_sentence(engine) -> None:
    with pytest.raises(StudioError) as caught:
        engine.generate(request(engine, hires_scale=2, hires_upscaler="/nowhere/x.pth"),
                        Events())
    assert "\n" not in str(caught.value)
