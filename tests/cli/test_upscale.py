"""`studio upscale`: the written path printed, the recipe inside, bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.settings import Settings
from tests.engines.test_upscale import tiny_esrgan


def source(tmp_path: Path, size=(30, 20)) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_lanczos_x4_prints_the_path_and_info_replays_it(capsys, tmp_path):
    out = tmp_path / "out"
    code = main(["upscale", str(source(tmp_path)), "--model", "lanczos", "--scale", "4",
                 "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = [Path(line) for line in captured.out.splitlines()]
    assert path.is_file() and out in path.parents
    with Image.open(path) as im:
        assert im.size == (120, 80)
    assert main(["info", str(path)]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert request["kind"] == "upscale" and request["model"] == "builtin:lanczos"
    assert request["scale"] == 4
    assert Path(request["image"]).read_bytes() == (tmp_path / "photo.png").read_bytes()


def test_an_upscaler_is_found_by_name_in_the_model_folders(capsys, tmp_path):
    models = tmp_path / "models" / "ESRGAN"
    models.mkdir(parents=True)
    tiny_esrgan(models / "tiny-x2.safetensors")
    Settings(model_dirs=[str(tmp_path / "models")]).save()
    code = main(["upscale", str(source(tmp_path, (24, 16))), "--model", "tiny-x2",
                 "--scale", "2", "--tile", "0", "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = [Path(line) for line in captured.out.splitlines()]
    with Image.open(path) as im:
        assert im.size == (48, 32)


@pytest.mark.parametrize("args, words", [
    (["missing.png"], "There is no picture"),
    (["{notes}"], "not a picture"),
    (["{photo}", "--scale", "3"], "Scale must be 2 or 4"),
    (["{photo}", "--model", "no-such-upscaler"], "No upscaler named"),
    (["{photo}", "--tile", "64", "--tile-overlap", "40"], "overlap"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(capsys, tmp_path, args, words):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    photo = source(tmp_path)
    argv = [a.format(notes=notes, photo=photo) for a in args]
    out = tmp_path / "out"
    code = main(["upscale", *argv, "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert words in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "" and not any(out.rglob("*.png"))
