"""The Settings dialog's CPU speed-ups for image models, with real widgets and clicks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.context import AppContext
from studio.ui.settings_dialog import SettingsDialog
from tests.ui import click_check


@pytest.fixture
def ctx(qtbot, tmp_path):
    context = AppContext(Settings(output_dir=str(tmp_path / "out")), History.open_default())
    yield context
    context.shutdown()
    context.history.close()


def test_runtime_fast_decode_and_bf16_are_saved_and_reach_the_worker(ctx, qtbot):
    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.runtime.currentData() == "pytorch"  # the default: no conversion surprise
    assert not dialog.fast_decode.isChecked() and not dialog.cpu_bf16.isChecked()
    assert [dialog.runtime.itemData(i) for i in range(dialog.runtime.count())] == [
        "auto", "pytorch", "openvino"]
    dialog.runtime.setCurrentIndex(dialog.runtime.findData("openvino"))
    click_check(qtbot, dialog.fast_decode)
    click_check(qtbot, dialog.cpu_bf16)
    with qtbot.waitSignal(ctx.settings_changed, timeout=10000):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
    s = ctx.settings
    assert (s.image_runtime, s.fast_decode, s.cpu_bf16) == ("openvino", True, True)
    assert ctx.jobs.settings is s  # the next job runs with them
    saved = Settings.load()
    assert (saved.image_runtime, saved.fast_decode, saved.cpu_bf16) == ("openvino", True, True)
    again = SettingsDialog(ctx)
    qtbot.addWidget(again)
    assert again.runtime.currentData() == "openvino" and again.fast_decode.isChecked()
