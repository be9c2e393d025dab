"""`studio grid` over a LoRA's weight on the tiny SD with a tiny LoRA: weight 0 is the base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.grid import plot_recipe
from studio.core.recipes import read_recipe
from tests.cli.test_gen_image_lora import models  # noqa: F401 - a models/Lora with inkwash

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


def _base(model: Path) -> list[str]:
    return ["--model", str(model), "--prompt", "a red fox", "--seed", "5", "--steps", "2",
            "--width", "64", "--height", "64", "--scheduler", "Euler", "--quiet"]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_1x3_lora_weight_grid_renders_and_weight_0_is_the_base_exactly(
        tiny_sd, models, tmp_path, capsys) -> None:  # noqa: F811
    out = tmp_path / "out"
    assert main(["grid", *_base(tiny_sd), "--x", "LoRA weight: inkwash", "0, 0.5, 1",
                 "--out", str(out)]) == 0
    paths = [Path(p) for p in capsys.readouterr().out.split()]
    assert len(paths) == 4
    cells, grid_path = paths[:3], paths[3]
    assert [read_recipe(p).request["loras"] for p in cells] == [
        ["inkwash:0"], ["inkwash:0.5"], ["inkwash:1"]]
    assert main(["gen", "image", *_base(tiny_sd), "--out", str(tmp_path / "plain")]) == 0
    (plain,) = [Path(p) for p in capsys.readouterr().out.split()]
    base = _pixels(plain)
    weights = [_pixels(p) for p in cells]
    assert np.array_equal(weights[0], base)
    assert not np.array_equal(weights[1], base) and not np.array_equal(weights[2], weights[1])
    grid = _pixels(grid_path)
    top = grid.shape[0] - 64
    assert grid.shape[1] == 3 * 64 and top > 8  # three columns under their labels
    for i, cell in enumerate(weights):
        assert np.array_equal(grid[top:, i * 64:(i + 1) * 64], cell)
    assert (grid[:top] < 100).any()  # the labels are drawn
    recipe = plot_recipe(grid_path)
    assert recipe["axes"] == [{"axis": "X", "field": "lora:inkwash", "values": "0, 0.5, 1"}]
    assert recipe["base"]["loras"] == []


def test_the_lora_flag_sets_the_base_and_the_axis_changes_its_weight(
        tiny_sd, models, tmp_path, capsys) -> None:  # noqa: F811
    out = tmp_path / "out"
    assert main(["grid", *_base(tiny_sd), "--lora", "inkwash:0.8", "--lora", "ink-kohya:0.2",
                 "--x", "lora weight:ink-kohya", "0-0.4 (+0.2)", "--out", str(out)]) == 0
    paths = [Path(p) for p in capsys.readouterr().out.split()]
    assert [read_recipe(p).request["loras"] for p in paths[:3]] == [
        ["inkwash:0.8", "ink-kohya:0"], ["inkwash:0.8", "ink-kohya:0.2"],
        ["inkwash:0.8", "ink-kohya:0.4"]]
    assert plot_recipe(paths[3])["base"]["loras"] == ["inkwash:0.8", "ink-kohya:0.2"]


def test_a_bad_lora_axis_is_one_line_and_writes_nothing(tiny_sd, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["grid", *_base(tiny_sd), "--x", "lora weight: inkwash", "none, 1",
                 "--out", str(out)]) == EXIT_BAD_INPUT
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["studio: The X axis (LoRA inkwash): a LoRA weight is a number, not "
                    "'none'."]
    assert not out.exists()
