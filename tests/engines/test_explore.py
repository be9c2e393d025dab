"""The explorer: its request and walk maths, GAN and diffusion backends, walks saved as video,
and the runner serving image and explore jobs from one loaded model."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from studio.core.errors import RequestError
from studio.core.explore import (
    DirectionNames,
    ExploreRequest,
    ease,
    grid_child_seed,
    pad_weights,
    parse_directions,
    resolve_direction_names,
    walk_weights,
)
from studio.core.requests import ImageRequest, Request
from studio.core.results import Result
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.explore import ExploreEngine
from studio.engines.gan import GanEngine

FACES = "builtin:faces"


@pytest.fixture(scope="module")
def faces() -> GanEngine:
    engine = ExploreEngine.load(LoadSpec(FACES, "cpu", "float32"), Settings(), Events())
    assert isinstance(engine, GanEngine)  # GANs serve both kinds themselves
    return engine


def point(**kw) -> ExploreRequest:
    base = {"model": FACES, "anchors": (1, 2), "width": 64, "height": 64}
    return ExploreRequest(**(base | kw)).resolved()


def own_image(engine, seed: int, prompt: str = "", **kw) -> np.ndarray:
    request = ImageRequest(model=engine.spec.model, seed=seed, prompt=prompt, **kw)
    return engine.generate(request, Events()).images[0]


# -- the request and its maths (plain Python) ------------------------------------------


def test_ease_keeps_endpoints_and_is_monotonic():
    for name in ("linear", "ease-in-out", "ease-in", "ease-out"):
        values = [ease(i / 20, name) for i in range(21)]
        assert values[0] == 0.0 and values[-1] == 1.0
        assert values == sorted(values)
    with pytest.raises(ValueError):
        ease(0.5, "bounce")


def test_pad_weights_put_each_anchor_on_its_corner():
    assert pad_weights(2, 0.0, 0.9) == [1.0, 0.0]
    assert pad_weights(2, 0.25, 0.1) == [0.75, 0.25]
    assert pad_weights(4, 1.0, 1.0) == [0.0, 0.0, 0.0, 1.0]
    assert pad_weights(3, 0.0, 1.0) == [0.0, 0.0, 1.0]
    assert pad_weights(3, 1.0, 1.0) == [0.0, 0.5, 0.5]  # the empty corner mixes 2 and 3
    for n in (2, 3, 4):
        assert sum(pad_weights(n, 0.37, 0.61)) == pytest.approx(1.0)


def test_walk_weights_start_and_end_on_anchors_and_loop_back():
    w = walk_weights(3, 9, loop=False, easing="linear")
    assert w[0] == [1.0, 0.0, 0.0] and w[-1] == [0.0, 0.0, 1.0] and w[4] == [0.0, 1.0, 0.0]
    loop = walk_weights(3, 6, loop=True, easing="linear")
    assert loop[0] == [1.0, 0.0, 0.0] and loop[2] == [0.0, 1.0, 0.0]
    assert loop[5][0] == pytest.approx(0.5) and loop[5][2] == pytest.approx(0.5)
    assert all(sum(x) == pytest.approx(1.0) for x in w + loop)
    with pytest.raises(ValueError):
        walk_weights(1, 5)


def test_request_round_trips_through_a_dict_and_json():
    r = point(directions={"pc1": 1.5, "3": -2}, weights=(0.3, 0.7), variation_seeds=(7,),
              variation_strengths=(0.2,), prompts=("blue", "green"))
    assert r.directions == {"pc1": 1.5, "pc3": -2.0}
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert isinstance(back, ExploreRequest) and back == r and hash(back) == hash(r)
    assert back.to_dict()["kind"] == "explore"


def test_resolved_draws_anchors_and_defaults_the_seed_to_anchor_one():
    r = ExploreRequest(model=FACES, anchors=(-1, 5)).resolved()
    assert r.anchors[0] != -1 and r.anchors[1] == 5 and r.seed == r.anchors[0]
    grid = ExploreRequest(model=FACES, anchors=(4,), mode="grid").resolved()
    assert grid.seed != -1


@pytest.mark.parametrize(("changes", "needle"), [
    ({"anchors": ()}, "at least one anchor"),
    ({"anchors": (1, 2, 3, 4, 5)}, "at most 4"),
    ({"mode": "walk", "anchors": (1,)}, "two anchors"),
    ({"prompts": ("a",)}, "one prompt per anchor"),
    ({"weights": (1.0,)}, "one weight per anchor"),
    ({"weights": (0.0, 0.0)}, "must not all be zero"),
    ({"weights": (-1.0, 2.0)}, "blend weight"),
    ({"pad_x": 1.5}, "Pad x"),
    ({"directions": {"pc1": 99}}, "between -10 and 10"),
    ({"directions": "pc1"}, "NAME=OFFSET"),
    ({"variation_seeds": (1,)}, "both a seed and a strength"),
    ({"mode": "spiral"}, "Unknown explorer mode"),
    ({"easing": "bounce"}, "Unknown easing"),
    ({"frames": 1}, "Frames"),
    ({"width": 100}, "multiple of 8"),
    ({"scheduler": "Nope"}, "Unknown scheduler"),
    ({"model": ""}, "Choose a model"),
])
def test_validation_says_what_is_wrong_in_one_sentence(changes, needle):
    with pytest.raises(RequestError, match=needle) as err:
        ExploreRequest(**({"model": FACES, "anchors": (1, 2)} | changes)).validate()
    assert "\n" not in str(err.value)


def test_parse_directions_accepts_cli_pairs():
    assert parse_directions(["pc2=0.5", "noise=-1"]) == {"pc2": 0.5, "noise": -1.0}
    with pytest.raises(RequestError, match="must be a number"):
        parse_directions(["pc2=abc"])


def test_direction_names_are_saved_and_resolved(studio_home):
    names = DirectionNames()
    names.rename(FACES, "pc3", "Smile")
    again = DirectionNames()
    assert again.name(FACES, "pc3") == "Smile" and again.name(FACES, "pc4") == "PC4"
    assert resolve_direction_names(FACES, {"smile": 1.0, "2": 0.5}, again) == {
        "pc3": 1.0, "pc2": 0.5}
    again.rename(FACES, "pc3", "")
    assert DirectionNames().for_model(FACES) == {}


# -- the GAN backend --------------------------------------------------------------------


def test_walk_endpoints_are_the_anchors_own_images(faces):
    walk = faces.generate(point(anchors=(11, 12, 13), mode="walk", frames=9), Events())
    assert walk.modality == "explore" and len(walk.images) == 9
    assert np.array_equal(walk.images[0], own_image(faces, 11, width=64, height=64))
    assert np.array_equal(walk.images[4], own_image(faces, 12, width=64, height=64))
    assert np.array_equal(walk.images[-1], own_image(faces, 13, width=64, height=64))


def test_walk_neighbours_are_closer_than_the_endpoints_and_replays_identically(faces):
    request = point(anchors=(21, 22), mode="walk", frames=12, easing="linear")
    frames = [f.astype(np.float64) for f in faces.generate(request, Events()).images]
    ends = np.abs(frames[0] - frames[-1]).mean()
    steps = [np.abs(a - b).mean() for a, b in pairwise(frames)]
    assert max(steps) < ends
    again = faces.generate(request, Events()).images
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))


def test_looped_walk_closes_the_circle(faces):
    walk = faces.generate(point(anchors=(3, 4), mode="walk", frames=8, loop=True), Events())
    first, last = (walk.images[i].astype(np.float64) for i in (0, -1))
    quarter = walk.images[2].astype(np.float64)
    assert np.abs(last - first).mean() < np.abs(quarter - first).mean()


def test_point_blend_weights_and_pad_agree(faces):
    by_pad = faces.generate(point(pad_x=0.25), Events()).images[0]
    by_weights = faces.generate(point(weights=(0.75, 0.25)), Events()).images[0]
    assert np.array_equal(by_pad, by_weights)
    corner = faces.generate(point(pad_x=1.0), Events()).images[0]
    assert np.array_equal(corner, own_image(faces, 2, width=64, height=64))


def test_grid_children_replay_as_points_and_anchor_mode_gives_thumbnails(faces):
    grid_req = point(mode="grid", seed=77, spread=0.4, directions={"pc2": 1.0})
    grid = faces.generate(grid_req, Events())
    assert len(grid.images) == 9 and grid.info["grid_seeds"][0] == grid_child_seed(77, 0)
    child = grid_req.with_child(2)
    assert child.variation_seeds == (grid_child_seed(77, 2),)
    assert np.array_equal(faces.generate(child, Events()).images[0], grid.images[2])
    centre = faces.generate(grid_req.with_child(4), Events()).images[0]
    assert np.array_equal(centre, grid.images[4])
    thumbs = faces.generate(point(anchors=(5, 6, 7), mode="anchors"), Events())
    assert np.array_equal(thumbs.images[1], own_image(faces, 6, width=64, height=64))


def test_result_info_describes_the_sliders(faces):
    info = faces.generate(point(), Events()).info
    keys = [d["key"] for d in info["directions"]]
    assert keys[:2] == ["pc1", "pc2"] and keys[-1] == "noise"
    assert info["native_size"] == [64, 64] and info["weights"] == [0.5, 0.5]


def test_unknown_directions_are_request_errors(faces):
    with pytest.raises(RequestError, match="no direction 'smile'"):
        faces.generate(point(directions={"smile": 1.0}), Events())
    with pytest.raises(RequestError, match="needs at least two anchors"):
        faces.generate(point(anchors=(1,), directions={"noise": 0.5}), Events())
    with pytest.raises(RequestError, match="no direction 'prompt'"):
        faces.generate(point(directions={"prompt": 0.5}), Events())


def test_noise_direction_turns_toward_anchor_two(faces):
    start = faces.generate(point(anchors=(31, 32), weights=(1, 0)), Events()).images[0]
    full = faces.generate(point(anchors=(31, 32), weights=(1, 0), directions={"noise": 1.0}),
                          Events()).images[0]
    target = own_image(faces, 32, width=64, height=64).astype(int)
    assert np.abs(full - target).mean() < np.abs(start.astype(int) - target).mean()


def test_eye_anchors_blend_their_colours():
    eyes = ExploreEngine.load(LoadSpec("builtin:eyes", "cpu", "float32"), Settings(), Events())
    base = {"model": "builtin:eyes", "anchors": (5, 5), "prompts": ("blue", "brown"),
            "width": 128, "height": 128}
    blue = eyes.generate(ExploreRequest(**base, weights=(1, 0)).resolved(), Events()).images[0]
    assert np.array_equal(blue, own_image(eyes, 5, "blue", width=128, height=128))
    mid = eyes.generate(ExploreRequest(**base, weights=(1, 1)).resolved(), Events()).images[0]
    assert not np.array_equal(mid, blue)
    shifted = eyes.generate(ExploreRequest(**base, weights=(1, 0), directions={"prompt": 0.5})
                            .resolved(), Events()).images[0]
    assert np.array_equal(shifted, mid)  # half-way along the colour difference


# -- runner: one loaded model answers both kinds ----------------------------------------------


def test_runner_serves_image_and_explore_jobs_from_one_cached_gan(tmp_path):
    from studio.engines.runner import Runner

    runner = Runner(Settings(output_dir=str(tmp_path), device="cpu"))
    image = runner.generate(ImageRequest(model=FACES, seed=8, width=64, height=64), Events())
    explored = runner.generate(point(anchors=(8, 9), weights=(1, 0)), Events())
    assert runner.cache.loads == 1
    assert np.array_equal(image.images[0], explored.images[0])
    paths = runner.save(explored, None)
    from studio.core.recipes import read_recipe

    replay = read_recipe(paths[0]).to_request()
    assert replay == explored.request


# -- walks saved as video -------------------------------------------------------------------


def walk_result(n: int = 6) -> Result:
    frames = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(n)]
    request = point(mode="walk", frames=n, fps=10)
    return Result(request, "explore", images=frames, info={"fps": 10})


def test_save_walk_writes_gif_and_mp4_with_the_recipe(tmp_path):
    from PIL import Image

    from studio.core.outputs import save_result
    from studio.core.recipes import read_recipe

    result = walk_result()
    paths = save_result(result, tmp_path)
    assert [p.suffix for p in paths] == [".gif", ".mp4"]
    assert paths[0].stem == paths[1].stem
    with Image.open(paths[0]) as gif:
        assert gif.n_frames == 6 and gif.info["loop"] == 0
    for path in paths:
        recipe = read_recipe(path)
        assert recipe.source == "studio" and recipe.to_request() == result.request
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(paths[1]))
    meta = next(reader)
    assert meta["size"] == (64, 64) and sum(1 for _ in reader) == 6
    from studio.core.history import History

    with History(tmp_path / "history.sqlite") as history:  # one gallery entry per walk
        ids = {history.add_output(p, result) for p in paths}
        assert len(ids) == 1
        item = history.get(ids.pop())
        assert item.path == paths[0] and item.modality == "explore"
        assert item.to_request() == result.request


def test_save_walk_falls_back_to_numbered_pngs_without_an_encoder(tmp_path):
    from studio.core.formats.video import save_walk

    paths = save_walk(walk_result(4), tmp_path, encoder=False)
    assert paths[0].suffix == ".gif"
    frames = paths[1:]
    assert [p.name for p in frames] == ["0001.png", "0002.png", "0003.png", "0004.png"]
    assert frames[0].parent.name == paths[0].stem + "-frames"


# -- diffusion models --------------------------------------------------------------------------


@pytest.mark.slow
def test_diffusers_explore_matches_images_previews_fast_and_walks_exactly(tiny_sd):
    from studio.engines.runner import Runner

    runner = Runner(Settings(device="cpu"))
    model = str(tiny_sd)
    common = {"steps": 3, "width": 128, "height": 128, "scheduler": "Euler"}
    image_a = runner.generate(ImageRequest(model=model, prompt="red fox", seed=5, **common),
                              Events())
    image_b = runner.generate(ImageRequest(model=model, prompt="cat", seed=6, **common),
                              Events())
    base = ExploreRequest(model=model, anchors=(5, 6), prompts=("red fox", "cat"), **common)
    walk = runner.generate(replace(base, mode="walk", frames=3), Events())
    assert runner.cache.loads == 1  # the image engine's pipeline drives the explorer too
    assert np.array_equal(walk.images[0], image_a.images[0])
    assert np.array_equal(walk.images[-1], image_b.images[0])
    previews = []

    class Watch(Events):
        def on_preview(self, preview):
            previews.append(preview)

    fast = runner.generate(replace(base, fast=True, preview_steps=2, preview_size=64,
                                   directions={"noise": 0.3, "prompt": 0.5}), Watch())
    assert fast.images[0].shape == (128, 128, 3)
    assert fast.info["fast"] is True and fast.info["render_size"] == [64, 64]
    assert previews and previews[-1].data.shape == (128, 128, 3)
    keys = [d["key"] for d in fast.info["directions"]]
    assert keys == ["noise", "prompt"]
