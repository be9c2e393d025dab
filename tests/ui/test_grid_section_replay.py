"""A grid image back in the Art panel (File → Open / drop both reach `load_recipe_file`):
its plot fills the Grid section (axes, values, prompt matrix, batch count) and its base the
form, and Run renders the same plot again; LoRA-weight axes in the section's pickers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from studio.cli import main
from studio.core.grid import plot_recipe
from studio.core.recipes import read_recipe
from tests.ui import PanelJobs, make_ctx, shown_window
from tests.ui.test_art_panel import window  # noqa: F401
from tests.ui.test_grid_section import choose_axis, open_grid, summary
from tests.ui.test_lora_picker import lora_models  # noqa: F401
from tests.ui.test_main_window import drop_file


def run_plot(qtbot, window) -> tuple[object, list[Path]]:  # noqa: F811
    art, ctx = window.art, window.ctx
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=240000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.grid.run_button, Qt.MouseButton.LeftButton)
    _job, result, paths = sig.args
    return result, list(paths)


def load(qtbot, window, path: Path) -> None:  # noqa: F811
    with qtbot.waitSignal(window.recipe_loaded, timeout=20000):
        window.load_recipe_file(path)


def test_a_grid_image_fills_the_grid_section_and_runs_the_same_plot(
        window, qtbot):  # noqa: F811
    art = window.art
    art.model.set_model("builtin:faces")
    art.prompt.setPlainText("a smiling face")
    for box, value in ((art.width_box, 64), (art.height_box, 64)):
        box.setValue(value)
    art.seed.edit.setText("77")
    open_grid(qtbot, art)
    choose_axis(qtbot, art, 0, "seed", "10, 20")
    choose_axis(qtbot, art, 1, "variation_strength", "0, 0.5")
    art.grid.count.setValue(2)
    summary(qtbot, art, "= 8 pictures (2 of each)")
    first, first_paths = run_plot(qtbot, window)
    grid_path = first_paths[0]
    assert len(first_paths) == 1 + 8 and plot_recipe(grid_path)["count"] == 2

    # the form and the section are changed, then the grid image brings the plot back
    art.prompt.setPlainText("something else")
    art.grid.set_axis("X", "steps", "1-3")
    art.grid.set_axis("Y", "", "")
    art.grid.count.setValue(1)
    art.grid_box.set_expanded(False)
    window.show_tab("gallery")
    with qtbot.waitSignal(window.recipe_loaded, timeout=20000):  # dropped on the window
        assert drop_file(window.gallery, grid_path)
    assert window.current_tab() == "art" and art.grid_box.is_expanded()
    assert art.prompt.toPlainText() == "a smiling face"
    rows = art.grid.rows
    assert [(r.key(), r.values.text()) for r in rows] == [
        ("seed", "10, 20"), ("variation_strength", "0, 0.5"), ("", "")]
    assert rows[0].field.currentText() == "Seed" and not art.grid.matrix.isChecked()
    assert art.grid.count.value() == 2
    assert art.grid.summary.text() == (
        "X Seed (2) × Y Strength (2) = 8 pictures (2 of each), and the grid image.")
    assert art.grid.run_button.isEnabled()

    again, again_paths = run_plot(qtbot, window)
    assert len(again_paths) == len(first_paths) and not set(again_paths) & set(first_paths)
    assert len(again.images) == len(first.images) == 1 + 4
    assert [read_recipe(p).request for p in again_paths[1:]] == [
        read_recipe(p).request for p in first_paths[1:]]
    assert plot_recipe(again_paths[0]) == plot_recipe(grid_path)


def test_a_prompt_matrix_grid_image_checks_the_matrix_box_with_the_whole_prompt(
        window, qtbot, tmp_path, capsys, monkeypatch):  # noqa: F811
    assert main(["grid", "--model", "builtin:faces", "--width", "64", "--height", "64",
                 "--seed", "8", "--prompt", "a face | smiling | at night", "--matrix",
                 "--count", "3", "--out", str(tmp_path / "made"), "--quiet"]) == 0
    grid_path = Path(capsys.readouterr().out.split()[-1])
    art = window.art
    art.grid.set_axis("X", "steps", "1-3")  # a plot the matrix replaces
    # File → Open (the dialog answered with the grid image)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *_a, **_k: (str(grid_path), ""))
    with qtbot.waitSignal(window.recipe_loaded, timeout=20000):
        window.open_action.trigger()
    assert art.grid.matrix.isChecked() and not art.grid.rows[0].field.isEnabled()
    assert [r.key() for r in art.grid.rows] == ["", "", ""]
    assert art.prompt.toPlainText() == "a face | smiling | at night"
    assert art.grid.count.value() == 3
    assert summary(qtbot, art, "Prompt matrix") == (
        "Prompt matrix: X prompt parts (2) × Y prompt parts (2) = 12 pictures (3 of each), "
        "and the grid image.")


def test_a_plain_picture_leaves_the_grid_section_alone(
        window, qtbot, tmp_path, capsys):  # noqa: F811
    assert main(["gen", "image", "--model", "builtin:faces", "--seed", "3", "--out",
                 str(tmp_path / "one"), "--quiet"]) == 0
    picture = Path(capsys.readouterr().out.split()[-1])
    art = window.art
    art.grid.set_axis("X", "steps", "1-3")
    load(qtbot, window, picture)
    assert (art.grid.rows[0].key(), art.grid.rows[0].values.text()) == ("steps", "1-3")


@pytest.fixture
def lora_window(qtbot, tmp_path, tiny_sd, lora_models):  # noqa: F811
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent), str(lora_models)])
    # the catalog arrives after the window: the pickers follow it
    with shown_window(qtbot, ctx, scanned=True) as w:
        yield w


def test_the_axis_pickers_list_the_catalogs_loras_and_the_schedule(lora_window, qtbot,
                                                                   tiny_sd) -> None:
    art = lora_window.art
    art.model.set_model(str(tiny_sd))
    art.prompt.setPlainText("a red fox")
    open_grid(qtbot, art)
    row = art.grid.rows[0]
    labels = [row.field.itemText(i) for i in range(row.field.count())]
    assert "LoRA weight: inkwash" in labels and "LoRA weight: neon" in labels
    assert "Schedule type" in labels
    choose_axis(qtbot, art, 0, "lora:neon", "")
    qtbot.mouseClick(row.fill, Qt.MouseButton.LeftButton)  # ⋯: 0 to 1 in quarters
    assert row.values.text() == "0-1 (+0.25)"
    assert summary(qtbot, art, "pictures") == "X LoRA neon (5) = 5 pictures, and the grid image."
    assert [c.request.loras for c in art.grid.plan().cells] == [
        ("neon:0",), ("neon:0.25",), ("neon:0.5",), ("neon:0.75",), ("neon:1",)]
    choose_axis(qtbot, art, 1, "schedule", "")
    qtbot.mouseClick(art.grid.rows[1].fill, Qt.MouseButton.LeftButton)
    assert art.grid.rows[1].values.text() == "Automatic, SGM Uniform"  # what Euler a has
    summary(qtbot, art, "× Y Schedule (2) = 10 pictures")
    # a plot of a LoRA this catalog lacks still loads (the render would say it is missing)
    art.grid.load_recipe({"axes": [{"axis": "X", "field": "lora:gone", "values": "0, 1"}]})
    assert (row.key(), row.field.currentText()) == ("lora:gone", "LoRA weight: gone")
    assert summary(qtbot, art, "pictures") == "X LoRA gone (2) = 2 pictures, and the grid image."
