"""`studio explore walk --ray`: the frames of a latent walk rendered by Ray actors (on a
local cluster, 127.0.0.1, 2 CPUs) make the same walk as a local run, saved and indexed
once, by the driver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

ray = pytest.importorskip("ray")

from studio.cli import EXIT_FAILED, main  # noqa: E402
from studio.cluster import ray_pool  # noqa: E402
from studio.core.explore import ExploreRequest  # noqa: E402
from studio.core.history import History  # noqa: E402
from studio.core.recipes import read_recipe  # noqa: E402
from studio.engines.batch import walk_jobs  # noqa: E402

pytestmark = pytest.mark.slow

WALK = ["explore", "walk", "--model", "builtin:faces", "--anchors", "1,2,3", "--frames", "6",
        "--loop", "--size", "64", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("ray-home")
    env = ray_pool.local_runtime_env()
    env["env_vars"]["STUDIO_HOME"] = str(home)
    with ray_pool.keep_signals():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env=env, log_to_driver=False)
        yield
        ray.shutdown()


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def test_a_walk_on_two_actors_is_the_local_walk(tmp_path, capsys):
    assert main([*WALK, "--ray", "auto", "--actors", "2", "--out", str(tmp_path / "ray")]) == 0
    on_ray = sorted(Path(p) for p in capsys.readouterr().out.split())
    assert main([*WALK, "--out", str(tmp_path / "local")]) == 0
    local = sorted(Path(p) for p in capsys.readouterr().out.split())
    assert [p.suffix for p in on_ray] == [p.suffix for p in local] and on_ray
    gif, local_gif = (next(p for p in ps if p.suffix == ".gif") for ps in (on_ray, local))
    frames, expected = gif_frames(gif), gif_frames(local_gif)
    assert len(frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
    assert read_recipe(gif).request == read_recipe(local_gif).request
    with History.open_default() as history:
        indexed = {item.path for item in history.recent()}
    assert set(on_ray) & indexed  # the driver indexed the walk, once
    assert sorted(p for p in (tmp_path / "ray").rglob("*") if p.is_file()) == on_ray


def test_a_frame_that_fails_writes_no_walk(tmp_path, capsys):
    code = main(["explore", "walk", "--model", "builtin:composer", "--anchors", "1,2",
                 "--frames", "3", "--quiet", "--ray", "auto", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_FAILED, err
    assert err.startswith("studio: frame ")
    assert err.endswith("cannot be explored; choose a diffusion model or a GAN. The walk was "
                        "not written.")
    assert not (tmp_path / "o").exists()


def test_walk_jobs_are_the_walks_frames_in_order():
    request = ExploreRequest(model="builtin:faces", anchors=(1, -1), mode="walk", frames=4)
    resolved, jobs = walk_jobs(request)
    assert -1 not in resolved.anchors
    assert [j.tag for j in jobs] == [0, 1, 2, 3]
    assert [list(j.request.weights) for j in jobs] == resolved.frame_weights()
    assert all(j.request.mode == "point" and j.request.anchors == resolved.anchors
               for j in jobs)
    assert len({j.key for j in jobs}) == 4
