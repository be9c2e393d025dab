"""The Art panel's Grid section with real widgets and clicks: a 2×2 X/Y plot on the tiny
SD pipeline through the worker (progress per cell, the labelled grid in the view and in
the gallery with its plot recipe), A1111 ranges counted live, bad axes in one sentence,
the prompt matrix, and cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from studio.core.grid import plot_recipe
from studio.core.recipes import read_recipe
from tests.ui import PanelJobs, click_check, output_files, use_slow_engine
from tests.ui.test_art_panel import fill_form, window  # noqa: F401
from tests.ui.test_gallery import refresh, row_of


def open_grid(qtbot, art) -> None:
    if not art.grid_box.is_expanded():
        qtbot.mouseClick(art.grid_box.toggle, Qt.MouseButton.LeftButton)
    assert art.grid.isVisible()


def choose_axis(qtbot, art, which: int, field: str, values: str) -> None:
    row = art.grid.rows[which]
    row.field.setCurrentIndex(row.field.findData(field))
    row.values.setFocus()
    row.values.selectAll()
    qtbot.keyClicks(row.values, values)


def summary(qtbot, art, needle: str) -> str:
    qtbot.waitUntil(lambda: needle in art.grid.summary.text(), timeout=5000)
    return art.grid.summary.text()


def test_a_2x2_plot_renders_through_the_worker_and_lands_in_the_gallery(
        window, qtbot, tiny_sd):  # noqa: F811
    art, ctx = window.art, window.ctx
    fill_form(qtbot, art, str(tiny_sd), "a red fox", steps=2)
    open_grid(qtbot, art)
    choose_axis(qtbot, art, 0, "steps", "1-2")
    choose_axis(qtbot, art, 1, "scheduler", "Euler, DDIM")
    assert summary(qtbot, art, "= 4 pictures") == \
        "X Steps (2) × Y Sampler (2) = 4 pictures, and the grid image."
    jobs = PanelJobs(art)
    progress: list[str] = []
    ctx.jobs.job_progress.connect(
        lambda i, p: progress.append(p.text) if jobs.mine(i) else None)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=240000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.grid.run_button, Qt.MouseButton.LeftButton)
    _job, result, paths = sig.args
    assert len(jobs.ids) == 1  # the whole plot is one job
    assert len(result.images) == 5 and result.images[1].shape == (64, 64, 3)
    # progress runs over the whole plot (the worker throttles it: the first and last are sure)
    cells = [int(t.split()[1]) for t in progress if t.startswith("Cell ") and t.endswith("of 4")]
    assert cells[0] == 1 and cells[-1] == 4 and cells == sorted(cells)
    grid_path, cell_paths = paths[0], paths[1:]
    assert len(cell_paths) == 4 and all(p.exists() for p in paths)
    recipes = [read_recipe(p).request for p in cell_paths]
    assert sorted((r["steps"], r["scheduler"]) for r in recipes) == [
        (1, "DDIM"), (1, "Euler"), (2, "DDIM"), (2, "Euler")]
    assert len({r["seed"] for r in recipes}) == 1  # one seed drawn for the whole plot
    # the labelled grid: 2 columns and 2 rows of 64 px cells plus the label margins
    grid = np.asarray(Image.open(grid_path).convert("RGB"))
    assert grid.shape[1] > 128 and grid.shape[0] > 128
    assert grid.shape[1] < 128 + 200 and grid.shape[0] < 128 + 100
    assert (grid[:4, :4] == 255).all()  # the label margin is white
    recipe = plot_recipe(grid_path)
    assert [a["field"] for a in recipe["axes"]] == ["steps", "scheduler"]
    assert recipe["shape"] == [2, 2, 1]
    # the view shows the grid; the strip holds the grid and the four cells
    assert (art.view.image().width(), art.view.image().height()) == (grid.shape[1], grid.shape[0])
    assert art.strip.count() == 5 and art.strip.item(0).text() == "Grid"
    assert art.results()[0].path == grid_path
    assert art.progress.status.text().startswith("Grid 2×2: 4 pictures")
    assert len(output_files(ctx.settings.output_path)) == 5
    # the gallery lists the grid and its cells, and says what the plot was made of
    window.show_tab("gallery")
    gallery = window.gallery
    refresh(gallery, qtbot)
    assert gallery.item_count() == 5
    gallery.select_row(row_of(gallery, grid_path))
    qtbot.waitUntil(lambda: gallery.details.plot.isVisible(), timeout=10000)
    assert gallery.details.plot.text() == "2×2 plot: X Steps = 1-2 · Y Sampler = Euler, DDIM"


def test_ranges_are_counted_live_and_bad_axes_are_one_sentence(window, qtbot):  # noqa: F811
    art = window.art
    art.model.set_model("builtin:faces")
    art.prompt.setPlainText("a smiling face")
    open_grid(qtbot, art)
    choose_axis(qtbot, art, 0, "seed", "10-30 (+5)")
    assert summary(qtbot, art, "pictures") == "X Seed (5) = 5 pictures, and the grid image."
    choose_axis(qtbot, art, 1, "steps", "1-10 [4]")
    summary(qtbot, art, "= 20 pictures")
    type_count = art.grid.count
    type_count.setValue(2)
    summary(qtbot, art, "= 40 pictures (2 of each)")
    choose_axis(qtbot, art, 1, "steps", "5-1 (+1)")
    text = summary(qtbot, art, "gives no values")
    assert text == "The Y axis (Steps): the range '5-1 (+1)' gives no values."
    assert not art.grid.run_button.isEnabled()
    choose_axis(qtbot, art, 1, "prompt_sr", "cat, dog")
    assert summary(qtbot, art, "not in the prompt") == (
        "The Y axis (Prompt S/R): 'cat' is not in the prompt or the negative prompt.")
    art.prompt.setPlainText("a smiling cat")  # the prompt changed: counted again
    summary(qtbot, art, "= 20 pictures (2 of each)")
    assert art.grid.run_button.isEnabled()
    # ⋯ fills in every sampler
    choose_axis(qtbot, art, 2, "scheduler", "")
    qtbot.mouseClick(art.grid.rows[2].fill, Qt.MouseButton.LeftButton)
    from studio.core.requests import SCHEDULERS

    assert art.grid.rows[2].values.text() == ", ".join(SCHEDULERS)
    summary(qtbot, art, f"Z Sampler ({len(SCHEDULERS)})")


def test_the_prompt_matrix_and_cancel(window, qtbot, monkeypatch):  # noqa: F811
    use_slow_engine(monkeypatch)
    art, ctx = window.art, window.ctx
    art.model.set_model("slow:40")
    art.prompt.setPlainText("a cat | in the snow | at night")
    for box, value in ((art.width_box, 64), (art.height_box, 64), (art.steps, 5)):
        box.setValue(value)
    open_grid(qtbot, art)
    click_check(qtbot, art.grid.matrix)
    assert not art.grid.rows[0].field.isEnabled()
    assert summary(qtbot, art, "Prompt matrix") == (
        "Prompt matrix: X prompt parts (2) × Y prompt parts (2) = 4 pictures, "
        "and the grid image.")
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_started, timeout=30000, check_params_cb=jobs.mine):
        qtbot.mouseClick(art.grid.run_button, Qt.MouseButton.LeftButton)
    out = Path(ctx.settings.output_path)
    qtbot.waitUntil(lambda: len(output_files(out)) >= 1, timeout=30000)  # a cell is saved
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=30000, check_params_cb=jobs.mine):
        qtbot.mouseClick(art.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    made = output_files(out)
    assert 1 <= len(made) < 4  # the finished cells stay; no grid image
    assert all(read_recipe(p).request["prompt"].startswith("a cat") for p in made)
    assert not any(_has_plot(p) for p in made)
    assert not art.busy()


def _has_plot(path: Path) -> bool:
    try:
        plot_recipe(path)
    except Exception:
        return False
    return True
