"""Which model a panel starts on: the built-in sketch model when nothing is installed, an
installed Stable Diffusion model once one is found, and whatever the user picked after that."""

from __future__ import annotations

from pathlib import Path

from studio.ui.widgets import ModelPicker
from tests.ui import close_ctx, make_ctx, scan


def test_the_art_picker_starts_on_sketch_then_on_an_installed_sd_model(
        tmp_path: Path, qtbot, tiny_sd: Path) -> None:
    ctx = make_ctx(tmp_path)
    try:
        picker = ModelPicker(ctx, "image")
        qtbot.addWidget(picker)
        scan(ctx, qtbot)
        assert picker.current_model() == "builtin:sketch"  # nothing installed
        ctx.settings.model_dirs = [str(tiny_sd.parent)]
        scan(ctx, qtbot)
        assert picker.current_model() == str(tiny_sd)  # an SD model the user added
        faces = picker.findData("builtin:faces")
        picker.setCurrentIndex(faces)
        picker.activated.emit(faces)  # what a click on an item sends
        scan(ctx, qtbot)
        assert picker.current_model() == "builtin:faces"  # the user's choice stays
    finally:
        close_ctx(ctx, qtbot)
