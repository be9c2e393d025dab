"""`studio grid`: every cell a normal output with its recipe, plus a labelled grid that replays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.grid import GridPlan, plot_recipe
from studio.core.history import History
from studio.core.recipes import read_recipe

FACES = ["--model", "builtin:faces", "--width", "64", "--height", "64", "--seed", "8"]


def run_grid(capsys, *args: str) -> tuple[list[Path], str]:
    code = main(["grid", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [Path(p) for p in captured.out.split()], captured.err


def test_a_plot_saves_every_cell_and_a_labelled_grid_with_its_recipe(tmp_path, capsys):
    out = tmp_path / "out"
    paths, _err = run_grid(capsys, *FACES, "--x", "seed", "1-3", "--y", "var. strength", "0, 0.5",
                           "--out", str(out))
    assert len(paths) == 7
    cells, grid_path = paths[:6], paths[6]
    assert sorted(p for p in out.rglob("*.png")) == sorted(paths)
    recipes = [read_recipe(p).request for p in cells]
    assert [(r["seed"], r["variation_strength"]) for r in recipes] == [
        (1, 0.0), (2, 0.0), (3, 0.0), (1, 0.5), (2, 0.5), (3, 0.5)]
    assert all(r["variation_seed"] != -1 for r in recipes[3:])  # drawn, recorded

    grid = np.asarray(Image.open(grid_path).convert("RGB"))
    height, width = grid.shape[:2]
    left, top = width - 3 * 64, height - 2 * 64
    assert left > 20 and top > 8  # row and column labels
    for i, cell in enumerate(cells):
        x, y = i % 3, i // 3
        picture = np.asarray(Image.open(cell).convert("RGB"))
        assert (grid[top + y * 64:top + (y + 1) * 64, left + x * 64:left + (x + 1) * 64]
                == picture).all()
    assert (grid[:top, left:] < 100).any() and (grid[top:, :left] < 100).any()

    recipe = plot_recipe(grid_path)
    assert recipe["axes"] == [{"axis": "X", "field": "seed", "values": "1-3"},
                              {"axis": "Y", "field": "variation_strength", "values": "0, 0.5"}]
    assert recipe["shape"] == [3, 2, 1] and recipe["base"]["seed"] == 8
    assert main(["info", str(grid_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert json.loads(shown["raw"]["chunks"]["studio"])["info"]["grid"] == recipe
    with History.open_default() as history:
        assert {item.path for item in history.recent()} == set(paths)

    # the grid replays: the same cells again, under new names
    again, _ = run_grid(capsys, "--from", str(grid_path), "--out", str(out), "--quiet")
    assert len(again) == 7 and not set(again) & set(paths)
    assert [read_recipe(p).request for p in again[:6]] == recipes
    assert GridPlan.from_recipe(plot_recipe(again[6])).recipe() == recipe


def test_batch_count_and_a_z_axis_make_sub_grids(tmp_path, capsys):
    paths, _ = run_grid(capsys, *FACES, "--x", "seed", "1, 5", "--z", "var. strength", "0, 1",
                        "--count", "2", "--out", str(tmp_path))
    assert len(paths) == 2 * 2 * 2 + 1
    seeds = [read_recipe(p).request["seed"] for p in paths[:-1]]
    assert seeds == [1, 2, 5, 6, 1, 2, 5, 6]  # each cell twice, a seed apart, x fastest
    grid = Image.open(paths[-1])
    assert (grid.width - 16) // 2 == 2 * 64  # two sub-grids, no row labels
    assert grid.height > 64 + 20  # X labels and, above them, Z labels


def test_cells_with_the_same_recipe_are_rendered_once_and_drawn_twice(tmp_path, capsys):
    paths, _ = run_grid(capsys, *FACES, "--x", "seed", "4, 4, 7", "--out", str(tmp_path))
    assert [read_recipe(p).request["seed"] for p in paths[:-1]] == [4, 7]
    grid = np.asarray(Image.open(paths[-1]).convert("RGB"))
    top = grid.shape[0] - 64
    assert grid.shape[1] == 3 * 64
    assert (grid[top:, 0:64] == grid[top:, 64:128]).all()
    assert not (grid[top:, 0:64] == grid[top:, 128:192]).all()


def test_a_prompt_matrix_renders_each_combination(tmp_path, capsys):
    paths, _ = run_grid(capsys, *FACES, "--prompt", "a face | smiling | at night", "--matrix",
                        "--out", str(tmp_path))
    prompts = [read_recipe(p).request["prompt"] for p in paths[:-1]]
    assert prompts == ["a face", "a face, smiling", "a face, at night",
                       "a face, smiling, at night"]
    assert plot_recipe(paths[-1])["prompt_matrix"] == "a face | smiling | at night"


def test_a_diffusion_plot_over_steps_and_sampler(tiny_sd, tmp_path, capsys):
    paths, _ = run_grid(capsys, "--model", str(tiny_sd), "--prompt", "a red fox", "--width", "64",
                        "--height", "64", "--x", "steps", "1-2", "--y", "sampler", "Euler, DDIM",
                        "--out", str(tmp_path))
    recipes = [read_recipe(p).request for p in paths[:-1]]
    assert [(r["steps"], r["scheduler"]) for r in recipes] == [
        (1, "Euler"), (2, "Euler"), (1, "DDIM"), (2, "DDIM")]
    assert len({r["seed"] for r in recipes}) == 1  # one seed for the whole plot
    assert Image.open(paths[-1]).width > 2 * 64


def test_bad_axes_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    for args, needle in (
        (["--x", "bogus", "1, 2"], "Unknown grid axis field 'bogus'"),
        (["--x", "steps", "9-3"], "the range '9-3' gives no values"),
        (["--x", "steps", ""], "has no values"),
        ([], "at least one axis"),
        (["--matrix"], "optional parts"),
    ):
        code = main(["grid", *FACES, *args, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT, args
        assert err.count("\n") == 1 and needle in err
    code = main(["grid", "--from", str(tmp_path / "none.png"), "--out", str(tmp_path)])
    assert code == EXIT_BAD_INPUT and "No such file" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.png"))


def test_a_music_plot_from_a_recipe_saves_the_cells_and_says_there_is_no_grid(tmp_path, capsys):
    assert main(["gen", "music", "--model", "builtin:composer", "--seconds", "1", "--seed", "4",
                 "--out", str(tmp_path / "first")]) == 0
    wav = next(Path(p) for p in capsys.readouterr().out.split() if p.endswith(".wav"))
    code = main(["grid", "--base", str(wav), "--x", "seconds", "1, 2", "--out",
                 str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = [Path(p) for p in captured.out.split()]
    wavs = [p for p in paths if p.suffix == ".wav"]
    assert [read_recipe(p).request["duration"] for p in wavs] == [1.0, 2.0]
    assert {read_recipe(p).request["seed"] for p in wavs} == {4}
    assert "No grid image for music outputs" in captured.err
    assert not list((tmp_path / "out").rglob("*.png"))
