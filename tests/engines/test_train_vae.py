"""The VAE recipe: it learns coloured shapes, resumes exactly, and its export opens as a
model of its own family (catalog, Runner, the explorer) like the built-in GANs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core import catalog, paths
from studio.core.errors import RequestError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.core.training import config_for
from studio.engines.base import Events
from studio.engines.training import recipe_class
from studio.engines.training.trainer import Trainer
from studio.engines.training.vae import VaeRecipe
from tests.training_toys import mean_colour, shapes, snapshot

pytestmark = pytest.mark.usefixtures("one_thread")


def config(data: Path, **values: object):
    values = {"steps": 40, "lr": 2e-3, "batch": 8, "resolution": 32, "val_split": 0.25,
              "seed": 1, "save_every": 20, "sample_every": 20, "eval_every": 10, **values}
    return config_for("vae", data=str(data), name="shapes-vae", **values)


def test_loss_goes_down_on_coloured_shapes_and_reconstructions_look_like_them(
        tmp_path: Path):
    data = shapes(tmp_path / "shapes", n=16, side=32)
    assert recipe_class("vae") is VaeRecipe
    r = VaeRecipe(config(data, lr=5e-3))
    report = r.check_data()
    assert (report.found, report.usable) == (16, 16)
    r.setup()
    assert (len(r.train_data), len(r.val_data)) == (12, 4)
    val_before = r.validation_loss()
    losses = [r.train_step() for _ in range(120)]
    val_after = r.validation_loss()
    assert val_before is not None and val_after is not None
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    # measured (150 steps): train 0.43 → 0.033, validation 0.44 → 0.064
    assert last < 0.2 * first and val_after < 0.3 * val_before
    made = r.samples()
    assert [s.label for s in made[:4]] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    pair = made[4].data  # the original beside its reconstruction
    assert made[4].label.startswith("reconstruction of shape_") and pair.shape == (32, 64, 3)
    original, decoded = pair[:, :32].astype(float), pair[:, 32:].astype(float)
    assert np.abs(original - decoded).mean() < 20  # of 255 (measured 8.7)
    # decodes of random latents have the data's colours (measured within 15 of its mean)
    decoded_mean = np.mean([m.data.reshape(-1, 3).mean(0) for m in made[:4]], axis=0)
    assert np.abs(decoded_mean - mean_colour(data)).max() < 30


def test_resuming_from_a_checkpoint_reaches_the_same_weights(tmp_path: Path):
    data = shapes(tmp_path / "shapes", n=8, side=32)
    whole = Trainer(config(data, steps=12, save_every=6), root=tmp_path / "a",
                    models_dir=tmp_path / "ma", threads=1)
    whole.run()
    half = Trainer(config(data, steps=6, save_every=6), root=tmp_path / "b",
                   models_dir=tmp_path / "mb", threads=1)
    half.run()
    again = Trainer(config(data, steps=12, save_every=6), root=tmp_path / "b",
                    models_dir=tmp_path / "mb", threads=1)
    again.run(resume=True)
    assert whole.recipe is not None and again.recipe is not None
    a, b = whole.recipe.model.state_dict(), again.recipe.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_export_is_a_lab_vae_the_runner_and_the_explorer_run(tmp_path: Path):
    from studio.engines.runner import Runner

    data = shapes(tmp_path / "shapes", n=12, side=32)
    before = snapshot(data)
    model = Trainer(config(data, steps=20), threads=1).run()
    assert snapshot(data) == before  # the data folder is only read
    assert model.parent == paths.trained_dir("vae")
    assert {p.name for p in model.iterdir()} >= {"config.json", "model.safetensors", "card.md"}
    settings = Settings(output_dir=str(tmp_path / "out"), device="cpu", model_dirs=[])
    entry = catalog.find(catalog.scan(settings), str(model))
    assert entry is not None, "the catalog does not list the VAE"
    assert (entry.family_id, entry.modality, entry.explorable) == ("lab-vae-32", "image", True)
    assert entry.name == "shapes-vae" and entry.descriptor.native_size == (32, 32)
    assert entry in catalog.for_modality(catalog.scan(settings), "image", settings)

    runner = Runner(settings)
    one = runner.generate(ImageRequest(model=str(model), seed=3, width=64, height=64),
                          Events())
    two = runner.generate(ImageRequest(model=str(model), seed=3, width=128, height=128,
                                       batch_size=2), Events())
    assert one.images[0].shape == (64, 64, 3) and two.images[1].shape == (128, 128, 3)
    assert one.info["native_size"] == [32, 32] and one.info["upscaled"]
    point = runner.generate(ExploreRequest(model=str(model), anchors=(3,), width=64,
                                           height=64), Events())
    assert np.array_equal(point.images[0], one.images[0])  # a seed is the same picture
    assert any(d["key"] == "pc1" for d in point.info["directions"])
    moved = runner.generate(ExploreRequest(model=str(model), anchors=(3,), width=64,
                                           height=64, directions={"pc1": 2.0}), Events())
    assert not np.array_equal(moved.images[0], point.images[0])
    walk = runner.generate(ExploreRequest(model=str(model), anchors=(3, 4), mode="walk",
                                          frames=4, width=64, height=64), Events())
    assert walk.modality == "explore" and len(walk.images) == 4
    assert runner.cache.loads == 1  # one loaded model answers the Art panel and explorer


def test_sizes_the_vae_cannot_build_are_one_sentence(tmp_path: Path):
    data = shapes(tmp_path / "shapes", n=2, side=32)
    with pytest.raises(RequestError, match="32, 64 or 128 px, not 48 px"):
        VaeRecipe(config(data, resolution=48)).check_data()
