"""The Art panel tells the user what of the prompt was not honoured (real clicks, tiny SD)."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from studio.core.recipes import read_recipe
from tests.ui import PanelJobs, make_ctx, shown_window
from tests.ui.test_art_panel import fill_form


@pytest.fixture
def window(qtbot, tmp_path, tiny_sd):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent)])
    with shown_window(qtbot, ctx, scanned=True) as w:
        yield w


def test_a_lora_tag_is_reported_in_the_finish_line_and_the_recipe(window, qtbot, tiny_sd):
    art, ctx = window.art, window.ctx
    fill_form(qtbot, art, str(tiny_sd), "a (red:1.2) fox <lora:foxy:0.8>", steps=2)
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    _job, result, paths = sig.args
    warning = "LoRA foxy was not found in the LoRA folders; it was left out."
    assert result.info["prompt_warnings"] == [warning]
    status = art.progress.status.text()
    assert status.startswith("Done in") and warning in status and "seed 12345" in status
    assert paths[0].name.endswith("-12345-a-red-fox.png")
    recipe = read_recipe(paths[0])
    assert recipe.request["prompt"] == "a (red:1.2) fox <lora:foxy:0.8>"
    with Image.open(paths[0]) as saved:  # the Studio record holds the result's info
        record = json.loads(saved.text["studio"])
    assert record["info"]["notes"] == [warning]
