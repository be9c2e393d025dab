"""`studio gen image --schedule/--clip-skip/--vae` and 64-bit `--seed`: the flags come from
the field metadata, a run records them in its infotext, and bad values are one line
(exit 2) with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, build_parser, gen_image, main
from studio.core.fields import spec
from studio.core.metadata import parse_infotext
from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

SEED = 1234567890123456789


def test_the_flags_come_from_the_field_metadata() -> None:
    assert [spec(ImageRequest, n).flag for n in ("schedule", "clip_skip", "vae")] == \
        ["--schedule", "--clip-skip", "--vae"]
    args = build_parser().parse_args([
        "gen", "image", "--model", "m", "--scheduler", "DPM++ SDE", "--schedule", "Karras",
        "--clip-skip", "2", "--vae", "kl-f8.safetensors", "--seed", str(2**64 - 1)])
    built = ImageRequest.from_dict({"model": "m", "seed": args.seed,
                                    **gen_image.field_values(args, gen_image.FIELDS)})
    assert (built.scheduler, built.schedule, built.clip_skip, built.vae, built.seed) == \
        ("DPM++ SDE", "Karras", 2, "kl-f8.safetensors", 2**64 - 1)
    built.validate()


def test_a_run_records_sampler_schedule_clip_skip_and_seed(tiny_sd: Path, tmp_path: Path,
                                                           capsys,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "models"))
    out = tmp_path / "out"
    code = main(["gen", "image", "--model", str(tiny_sd), "--prompt", "a red fox",
                 "--seed", str(SEED), "--steps", "3", "--width", "64", "--height", "64",
                 "--scheduler", "DPM++ 2M SDE", "--schedule", "Exponential",
                 "--clip-skip", "2", "--out", str(out), "--quiet"])
    assert code == 0
    (png,) = [Path(line) for line in capsys.readouterr().out.split()]
    params = parse_infotext(Image.open(png).text["parameters"])
    assert (params["Sampler"], params["Schedule type"], params["Clip skip"], params["Seed"]) \
        == ("DPM++ 2M SDE", "Exponential", "2", str(SEED))
    assert read_recipe(png).request["seed"] == SEED


@pytest.mark.parametrize(("extra", "needle"), [
    (["--schedule", "Beta"], "Unknown schedule type 'Beta'"),
    (["--scheduler", "DDIM", "--schedule", "Karras"], "DDIM has no Karras schedule"),
    (["--clip-skip", "13"], "Clip skip must be between 1 and 12"),
    (["--seed", str(2**64)], "seed must be -1 (random) or between 0 and"),
    (["--seed", "1e19"], "is not a whole number"),
])
def test_bad_values_are_one_line(extra, needle, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["gen", "image", "--model", "no-such-model", "--prompt", "x",
                 "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert needle in err and "\n" not in err
    assert not out.exists()
