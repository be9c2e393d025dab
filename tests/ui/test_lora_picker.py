"""The Art panel's LoRA picker: found LoRAs, add/remove, a weight per LoRA, and a job that
uses them (real widgets and clicks, tiny SD, LoRA files made by tests/engines/test_lora)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from safetensors.torch import load_file

from studio.core.recipes import read_recipe
from studio.engines.lora import save_kohya
from studio.ui.lora_picker import EMPTY_TEXT, LoraPicker
from studio.ui.main_window import MainWindow
from tests.engines.test_lora import make_lora, save_peft
from tests.ui import PanelJobs, close_ctx, make_ctx, scan
from tests.ui.test_art_panel import fill_form, type_number


@pytest.fixture(scope="module")
def lora_models(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("picker-models")
    (root / "Lora").mkdir()
    peft_file = save_peft(root / "Lora", "inkwash", make_lora(tiny_sd, 1))
    save_kohya(root / "Lora" / "neon.safetensors", load_file(str(peft_file)), base="sd_v1")
    return root


@pytest.fixture
def ctx(qtbot, tmp_path, tiny_sd, lora_models):
    context = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent), str(lora_models)])
    scan(context, qtbot)
    yield context
    close_ctx(context, qtbot)


def test_the_picker_lists_adds_weighs_and_removes(qtbot, ctx) -> None:
    picker = LoraPicker(ctx)
    qtbot.addWidget(picker)
    picker.show()
    assert picker.names() == ["inkwash", "neon"]
    assert picker.choice.itemText(1) == "neon (SD 1.x)"  # the base the file says
    assert not picker.empty.isVisible()
    picker.choice.setCurrentIndex(1)
    with qtbot.waitSignal(picker.changed):
        qtbot.mouseClick(picker.add_button, Qt.MouseButton.LeftButton)
    assert picker.values() == ("neon:1",)
    row = picker.rows[0]
    row.slider.setValue(-35)  # the slider writes the box
    assert picker.values() == ("neon:-0.35",)
    type_number(qtbot, row.box, 3)  # past the slider's reach: the box keeps it
    assert picker.values() == ("neon:3",) and row.slider.value() == 200
    picker.choice.setCurrentIndex(0)
    qtbot.mouseClick(picker.add_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(picker.add_button, Qt.MouseButton.LeftButton)  # once only
    assert picker.values() == ("neon:3", "inkwash:1")
    qtbot.mouseClick(row.remove_button, Qt.MouseButton.LeftButton)
    assert picker.values() == ("inkwash:1",)
    picker.set_values(("gone:0.5", "neon:0.25", "bad:x"))  # a recipe's (bad ones skipped)
    assert picker.values() == ("gone:0.5", "neon:0.25")


def test_no_loras_says_where_to_put_them(qtbot, tmp_path) -> None:
    empty = make_ctx(tmp_path)
    picker = LoraPicker(empty)
    qtbot.addWidget(picker)
    picker.show()
    assert picker.empty.isVisible() and picker.empty.text() == EMPTY_TEXT
    assert not picker.add_button.isEnabled()
    close_ctx(empty, qtbot)


def test_a_picked_lora_renders_and_comes_back_with_the_recipe(qtbot, ctx, tiny_sd) -> None:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    art = window.art
    fill_form(qtbot, art, str(tiny_sd), "a red fox", steps=2)
    art.lora_section.set_expanded(True)
    art.loras.choice.setCurrentIndex(art.loras.choice.findData("inkwash"))
    qtbot.mouseClick(art.loras.add_button, Qt.MouseButton.LeftButton)
    art.loras.rows[0].slider.setValue(60)
    assert art.request().loras == ("inkwash:0.6",)
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    _job, result, paths = sig.args
    assert [lora["name"] for lora in result.info["loras"]] == ["inkwash"]
    with Image.open(paths[0]) as saved:
        text = saved.text["parameters"]
    assert text.startswith("a red fox <lora:inkwash:0.6>\n") and "Lora hashes" in text
    art.loras.set_values(())
    art.fill(read_recipe(paths[0]).to_request())
    assert art.loras.values() == ("inkwash:0.6",)
    window.close()
