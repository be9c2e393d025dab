"""`studio gen image --init/--mask/--outpaint/--hires-scale`: the flags, the recipe that
keeps its input pictures beside the output, and bad input as one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, build_parser, main
from studio.core.fields import spec
from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

FLAGS = {"init_image": "--init", "strength": "--strength", "mask": "--mask",
         "mask_blur": "--mask-blur", "inpaint_area": "--inpaint-area",
         "outpaint": "--outpaint", "hires_scale": "--hires-scale",
         "hires_steps": "--hires-steps", "hires_strength": "--hires-strength",
         "hires_upscaler": "--upscaler"}


@pytest.fixture()
def pictures(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    y, x = np.mgrid[0:64, 0:96]
    init = np.stack([x * 255 / 95, y * 255 / 63, np.full_like(x, 90)], -1).astype(np.uint8)
    Image.fromarray(init).save(folder / "init.png")
    mask = np.zeros((64, 96), np.uint8)
    mask[24:40, 40:56] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.new("L", (96, 64), 0).save(folder / "empty.png")
    (folder / "notes.txt").write_text("not a picture")
    return {p.stem: p for p in folder.iterdir()}


def _base(model: Path | str, out: Path) -> list[str]:
    return ["gen", "image", "--model", str(model), "--prompt", "a red fox", "--seed", "5",
            "--steps", "3", "--width", "96", "--height", "64", "--scheduler", "Euler",
            "--out", str(out), "--quiet"]


def test_the_mode_flags_come_from_the_field_metadata() -> None:
    for name, flag in FLAGS.items():
        assert spec(ImageRequest, name).flag == flag
    args = build_parser().parse_args([
        "gen", "image", "--model", "m", "--init", "a.png", "--strength", "0.3", "--mask",
        "b.png", "--mask-blur", "6", "--inpaint-area", "masked", "--outpaint", "8,0,16,0",
        "--hires-scale", "1.5", "--hires-steps", "7", "--hires-strength", "0.4",
        "--upscaler", "lanczos"])
    from studio.cli import gen_image

    built = ImageRequest.from_dict({"model": "m", **gen_image.field_values(
        args, gen_image.MODE_FIELDS), "outpaint": args.outpaint})
    assert (built.init_image, built.strength, built.mask, built.mask_blur) == \
        ("a.png", 0.3, "b.png", 6)
    assert built.inpaint_area == "masked" and built.outpaint == (8, 0, 16, 0)
    assert (built.hires_scale, built.hires_steps, built.hires_strength,
            built.hires_upscaler) == (1.5, 7, 0.4, "lanczos")


def test_inpaint_recipe_keeps_its_inputs_and_reproduces_the_pixels(
        tiny_sd, pictures, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    args = [*_base(tiny_sd, out), "--init", str(pictures["init"]), "--mask",
            str(pictures["mask"]), "--strength", "0.8", "--mask-blur", "2"]
    assert main(args) == 0
    (png,) = [Path(line) for line in capsys.readouterr().out.split()]
    assert main(args) == 0  # the same inputs again: stored once
    capsys.readouterr()
    inputs = sorted(png.parent.glob("inputs/*"))
    assert len(inputs) == 2 and all(len(p.stem) == 40 for p in inputs)

    assert main(["info", str(png)]) == 0
    record = json.loads(capsys.readouterr().out)
    request = record["request"]
    assert Path(request["init_image"]).parent == png.parent / "inputs"
    assert Path(request["mask"]).read_bytes() == pictures["mask"].read_bytes()
    assert request["strength"] == 0.8 and request["mask_blur"] == 2

    recipe = read_recipe(png)
    parameters = Image.open(png).text["parameters"]
    assert "Denoising strength: 0.8" in parameters and "Mask blur: 2" in parameters
    pictures["init"].unlink()  # the recipe no longer needs the original
    from studio.core.settings import Settings
    from studio.engines.base import Events
    from studio.engines.runner import Runner

    again = Runner(Settings(output_dir=str(tmp_path / "again"))).generate(
        recipe.to_request(), Events())
    assert np.array_equal(again.images[0], np.asarray(Image.open(png).convert("RGB")))


def test_outpaint_and_hires_through_the_cli(tiny_sd, pictures, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main([*_base(tiny_sd, out), "--init", str(pictures["init"]),
                 "--outpaint", "0,0,32,8"]) == 0
    (grown,) = [Path(line) for line in capsys.readouterr().out.split()]
    assert Image.open(grown).size == (96 + 32, 64 + 8)
    assert main([*_base(tiny_sd, out), "--hires-scale", "1.5", "--hires-steps", "2",
                 "--upscaler", "lanczos"]) == 0
    (large,) = [Path(line) for line in capsys.readouterr().out.split()]
    assert Image.open(large).size == (144, 96)
    text = Image.open(large).text["parameters"]
    assert "Hires upscale: 1.5, Hires steps: 2, Hires upscaler: Lanczos" in text


@pytest.mark.parametrize(("extra", "needle"), [
    (["--init", "{notes}"], "notes.txt is not an image"),
    (["--init", "{init}", "--mask", "{notes}"], "mask notes.txt is not an image"),
    (["--init", "{init}", "--mask", "{empty}"], "nothing painted"),
    (["--init", "{init}", "--strength", "1.5"], "Denoising strength must be between 0 and 1"),
    (["--init", "{init}", "--inpaint-area", "around"], "Inpaint area"),
    (["--init", "{init}", "--outpaint", "3,0,0,0"], "multiples of 8"),
    (["--mask", "{mask}"], "needs an init image"),
    (["--hires-scale", "4", "--width", "2048"], "too large for memory"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(extra, needle, pictures, tmp_path,
                                                      capsys) -> None:
    out = tmp_path / "out"
    filled = [a.format(**{k: str(v) for k, v in pictures.items()}) for a in extra]
    code = main([*_base("no-such-model", out), *filled])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert needle in err and "\n" not in err
    assert not out.exists()
