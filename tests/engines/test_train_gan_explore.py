"""A GAN trained in the Lab is a model like the built-in ones: the catalog lists it with its
own family (native size from its config), the Runner makes images from it, and the explorer
drives it (pad blends, principal directions, the variation grid, walks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core import catalog, families
from studio.core.errors import ModelError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.core.training import config_for
from studio.engines.base import Events, LoadSpec
from studio.engines.gan import GanEngine, load_trained, resize, to_uint8
from studio.engines.latents import seed_noise
from studio.engines.runner import Runner
from studio.engines.training.trainer import Trainer
from tests.training_toys import shapes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 px GAN trained for a few steps, exported into a models folder."""
    root = tmp_path_factory.mktemp("lab")
    config = config_for("gan", data=str(shapes(root / "shapes", n=8)), name="doodles",
                        steps=6, resolution=16, batch=4, lr=2e-3, save_every=6,
                        sample_every=6, eval_every=3)
    return Trainer(config, device="cpu", root=root / "lab", models_dir=root / "models" /
                   "trained", threads=1).run()


def test_the_catalog_lists_it_with_its_own_family(trained: Path) -> None:
    settings = Settings(model_dirs=[str(trained.parent.parent)])
    entry = next(e for e in catalog.scan(settings) if e.id == str(trained))
    assert entry.name == "doodles" and entry.modality == "image" and entry.explorable
    assert entry.family == "trained GAN" and entry.family_id == "gan-trained-16"
    assert entry.format == "safetensors" and entry.role == "generate"
    family = entry.descriptor
    assert family is not None and family.native_size == (16, 16) and family.fixed_size
    assert family.explore is families.Explore.GAN_LATENT and not family.conditional
    assert entry in catalog.for_modality(catalog.scan(settings), "image", settings)


def test_a_model_of_another_size_gets_that_native_size(trained: Path, tmp_path: Path) -> None:
    other = tmp_path / "big"
    other.mkdir()
    (other / "model.safetensors").write_bytes((trained / "model.safetensors").read_bytes())
    config = json.loads((trained / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "resolution": 32}))
    entry = catalog.classify(other)
    assert entry is not None and entry.descriptor is not None
    assert entry.descriptor.native_size == (32, 32)
    with pytest.raises(ModelError, match="says 32 px but its widths make 16 px"):
        load_trained(other)  # the config must agree with the weights


def test_the_runner_makes_its_images(trained: Path, tmp_path: Path) -> None:
    runner = Runner(Settings(output_dir=str(tmp_path), device="cpu"))
    result = runner.generate(ImageRequest(model=str(trained), seed=5, width=64, height=64,
                                          batch_size=2), Events())
    assert len(result.images) == 2 and result.images[0].shape == (64, 64, 3)
    _spec, net = load_trained(trained)
    with torch.no_grad():
        expected = to_uint8(net(seed_noise(5, (100,)).reshape(1, -1)))[0]
    # seed 5 is the sample strip's seed 5, scaled up from the native 16 px
    assert np.array_equal(result.images[0], resize(expected, 64, 64))
    assert result.info["native_size"] == [16, 16] and result.info["upscaled"]
    assert not np.array_equal(result.images[0], result.images[1])
    assert runner.save(result, None)


def test_the_explorer_drives_it(trained: Path) -> None:
    engine = GanEngine.load(LoadSpec(str(trained), "cpu", "float32"), Settings(), Events())
    assert engine.native_size == 16 and engine.family.id == "gan-trained-16"
    base = {"model": str(trained), "anchors": (3, 4), "width": 16, "height": 16}
    one = engine.generate(ExploreRequest(**base, weights=(1, 0)).resolved(), Events())
    alone = engine.generate(ImageRequest(model=str(trained), seed=3, width=16, height=16),
                            Events()).images[0]
    assert np.array_equal(one.images[0], alone)  # a pad corner is the anchor's own image
    info = one.info
    keys = [d["key"] for d in info["directions"]]
    assert keys[0] == "pc1" and "noise" in keys
    assert info["native_size"] == [16, 16] and info["family"] == "trained GAN"
    moved = engine.generate(ExploreRequest(**base, weights=(1, 0), directions={"pc1": 2.0})
                            .resolved(), Events()).images[0]
    assert not np.array_equal(moved, one.images[0])
    grid = engine.generate(ExploreRequest(**base, mode="grid", seed=9).resolved(), Events())
    assert len(grid.images) == 9
    walk = engine.generate(ExploreRequest(**base, mode="walk", frames=5).resolved(), Events())
    assert len(walk.images) == 5 and np.array_equal(walk.images[0], alone)


def test_a_folder_that_is_not_a_trained_gan_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelError, match="is not a GAN trained in Studio's Lab"):
        GanEngine.load(LoadSpec(str(tmp_path), "cpu", "float32"), Settings(), Events())


def test_a_model_the_lab_exports_is_in_the_default_catalog(tmp_path: Path) -> None:
    config = config_for("gan", data=str(shapes(tmp_path / "shapes", n=4)), name="mine",
                        steps=2, resolution=16, batch=2, val_split=0.0)
    model = Trainer(config, device="cpu", threads=1).run()
    listed = [e for e in catalog.scan(Settings()) if e.id == str(model)]
    assert [e.family_id for e in listed] == ["gan-trained-16"]
