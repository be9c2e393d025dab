"""`studio explore walk|point`: files written with their recipes, paths printed, bad input
reported in one line before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.explore import DirectionNames, ExploreRequest


def printed_paths(out: str) -> list[Path]:
    return [Path(line) for line in out.splitlines() if line.strip()]


def test_walk_writes_gif_and_mp4_and_prints_their_paths(capsys, tmp_path):
    code = main(["explore", "walk", "--model", "builtin:faces", "--frames", "6",
                 "--anchors", "1,2", "--anchors", "3", "--loop", "--fps", "8",
                 "--out", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = printed_paths(captured.out)
    assert [p.suffix for p in paths] == [".gif", ".mp4"]
    assert all(p.is_file() and tmp_path in p.parents for p in paths)
    with Image.open(paths[0]) as gif:
        assert gif.n_frames == 6 and gif.size == (256, 256)  # 64² frames saved ×4
    assert main(["info", str(paths[0])]) == 0
    info = json.loads(capsys.readouterr().out)
    request = info["request"]
    assert request["kind"] == "explore" and request["anchors"] == [1, 2, 3]
    assert request["loop"] is True and request["frames"] == 6 and request["fps"] == 8


def test_point_writes_one_png_that_replays_exactly(capsys, tmp_path):
    DirectionNames().rename("builtin:faces", "pc2", "Light")
    code = main(["explore", "point", "--model", "builtin:faces", "--anchors", "4,5,6",
                 "--weights", "0.2,0.3,0.5", "--direction", "pc1=1.5", "--direction",
                 "light=-1", "--variation", "77:0.25", "--size", "64",
                 "--out", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = printed_paths(captured.out)
    assert path.suffix == ".png"
    assert main(["info", str(path)]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert request["directions"] == {"pc1": 1.5, "pc2": -1.0}  # the name became its key
    assert request["weights"] == [0.2, 0.3, 0.5]
    assert request["variation_seeds"] == [77] and request["variation_strengths"] == [0.25]
    from studio.core.requests import Request
    from studio.core.settings import Settings
    from studio.engines.base import Events, LoadSpec
    from studio.engines.gan import GanEngine

    replay = Request.from_dict(request)
    assert isinstance(replay, ExploreRequest)
    engine = GanEngine.load(LoadSpec("builtin:faces", "cpu", "float32"), Settings(), Events())
    pixels = engine.generate(replay, Events()).images[0]
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), pixels)


@pytest.mark.parametrize(("args", "needle"), [
    (["walk", "--anchors", "5"], "two anchors"),
    (["point", "--anchors", "1,2", "--weights", "1"], "one weight per anchor"),
    (["point", "--anchors", "1,x"], "Anchors must be a number"),
    (["point", "--direction", "pc1"], "NAME=OFFSET"),
    (["point", "--pad", "0.5"], "--pad needs 2 numbers"),
    (["point", "--size", "100"], "multiple of 8"),
    (["walk", "--frames", "1"], "Frames"),
    (["walk", "--easing", "bounce"], "Unknown easing"),
    (["point", "--variation", "abc"], "SEED:STRENGTH"),
    (["point", "--anchors", "1,2", "--prompts", "only one"], "one prompt per anchor"),
])
def test_bad_input_is_one_line_and_writes_nothing(args, needle, capsys, tmp_path):
    code = main(["explore", *args, "--model", "builtin:faces", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.startswith("studio: ") and err.count("\n") == 1
    assert needle in err
    assert not any(tmp_path.rglob("*.*"))


def test_unknown_direction_is_reported_after_loading(capsys, tmp_path):
    code = main(["explore", "point", "--model", "builtin:faces", "--anchors", "1",
                 "--direction", "smile=1", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "no direction 'smile'" in err
    assert not any(tmp_path.rglob("*.png"))


def test_bad_input_fails_before_importing_torch(tmp_path):
    code = (
        "import sys; from studio.cli import main; "
        f"rc = main(['explore', 'point', '--model', 'builtin:faces', '--size', '12', "
        f"'--out', {str(tmp_path)!r}]); print('torch' in sys.modules, rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["False", str(EXIT_BAD_INPUT)]
    assert "Width must be between 64" in proc.stderr


def test_default_frame_size_comes_from_the_family_descriptor():
    from studio.cli.explore import default_size
    from studio.core import families

    assert default_size("builtin:faces") == (256, 256)  # 64² native, saved ×4
    assert default_size("builtin:eyes") == (512, 512)
    assert default_size("/models/any-diffusers-folder") == (512, 512)
    family = families.register(families.Family(
        "test-strip", "Strip", "image", ("image", "explore"), "tests.nowhere:Engine",
        native_size=(32, 48), fixed_size=True, explore=families.Explore.GAN_LATENT))
    families.register_builtin(families.Builtin("builtin:strip", "Strip", family.id, None, "x"))
    try:
        assert default_size("builtin:strip") == (128, 192)
    finally:
        families.unregister_builtin("builtin:strip")
        families.unregister(family.id)
