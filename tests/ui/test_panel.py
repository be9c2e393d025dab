"""The generate-panel base: a prompt box that takes any paste at once, and Cancel vs Cancel all."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QTextOption
from PySide6.QtWidgets import QLabel

from studio.core.requests import ImageRequest, Request
from studio.ui.panel import GeneratePanel, PromptEdit
from tests.ui import close_ctx, make_ctx, use_slow_engine


def test_pasting_a_megabyte_without_spaces_is_fast(qtbot):
    box = PromptEdit("Describe it", 4)
    qtbot.addWidget(box)
    box.resize(320, 200)
    box.show()
    qtbot.waitExposed(box)
    text = "x" * 1_000_000
    QGuiApplication.clipboard().setText(text)
    t0 = time.perf_counter()
    box.paste()
    QGuiApplication.processEvents()
    took = time.perf_counter() - t0
    assert box.toPlainText() == text
    assert took < 5.0, f"pasting 1 MB took {took:.1f} s"  # word-boundary wrapping: minutes
    assert box.wordWrapMode() == QTextOption.WrapMode.WrapAnywhere
    t0 = time.perf_counter()
    box.setPlainText("a short prompt with words")  # a fresh text wraps at words again
    QGuiApplication.processEvents()
    assert time.perf_counter() - t0 < 5.0
    assert box.wordWrapMode() == QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
    box.setPlainText("z" * 500_000)
    box.selectAll()
    t0 = time.perf_counter()
    qtbot.keyClick(box, Qt.Key.Key_Delete)  # emptied by hand: words wrap again, at once
    QGuiApplication.processEvents()
    assert time.perf_counter() - t0 < 5.0 and box.toPlainText() == ""
    assert box.wordWrapMode() == QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere


def test_setting_a_huge_unbroken_prompt_is_fast(qtbot):
    box = PromptEdit("Describe it", 4)
    qtbot.addWidget(box)
    box.show()
    t0 = time.perf_counter()
    box.setPlainText("word " * 10 + "y" * 300_000)
    QGuiApplication.processEvents()
    assert time.perf_counter() - t0 < 5.0


class SlowPanel(GeneratePanel):
    """The smallest real panel: a prompt and a step count, on the slow test engine."""

    modality = "image"
    noun = "pictures"
    request_type = ImageRequest

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.assemble(QLabel("canvas"))

    def request(self) -> Request:
        return ImageRequest(model="slow:40", prompt=self.prompt.toPlainText(), steps=25,
                            width=64, height=64, seed=self.seed.value())

    def fill(self, request: Request) -> None:
        pass


def test_cancel_stops_the_running_job_and_cancel_all_the_rest(qtbot, tmp_path, monkeypatch):
    use_slow_engine(monkeypatch)
    ctx = make_ctx(tmp_path)
    panel = SlowPanel(ctx)
    qtbot.addWidget(panel)
    panel.show()
    try:
        cancelled: list[tuple[int, bool]] = []
        finished: list[int] = []
        panel.jobs.cancelled.connect(lambda i, running: cancelled.append((i, running)))
        panel.jobs.finished.connect(lambda i, *_a: finished.append(i))
        panel.prompt.setPlainText("a")
        ids = [panel.generate() for _ in range(3)]
        assert all(isinstance(i, int) for i in ids)
        qtbot.waitUntil(lambda: panel.jobs.current == ids[0], timeout=20000)
        assert panel.generate_button.text() == "Generate  (+2 queued)"
        qtbot.keyClick(panel.prompt, Qt.Key.Key_Escape)  # Esc: only the running job
        qtbot.waitUntil(lambda: cancelled == [(ids[0], True)], timeout=20000)
        qtbot.waitUntil(lambda: panel.jobs.current == ids[1], timeout=20000)
        assert panel.jobs.ids == ids[1:]
        qtbot.mouseClick(panel.cancel_all_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.busy(), timeout=20000)
        assert sorted(i for i, _r in cancelled) == ids and finished == []
        assert panel.progress.status.text() == "Cancelled."
        assert not panel.cancel_button.isEnabled() and not panel.cancel_all_button.isEnabled()
        assert panel.generate_button.text() == "Generate"
    finally:
        panel.close()
        close_ctx(ctx, qtbot)


def test_a_bad_field_is_one_sentence_and_a_foreign_recipe_is_refused(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    panel = SlowPanel(ctx)
    qtbot.addWidget(panel)
    try:
        panel.seed.edit.setText("99999999999999999999")  # beyond 64 bits
        assert panel.generate() is None
        assert panel.message.text().startswith("The seed must be")
        assert "\n" not in panel.message.text() and not panel.busy()
        from studio.core.requests import TextRequest

        panel.apply_request(TextRequest(model="m", prompt="x"))
        assert panel.message.text() == "That recipe is for text generation, not for pictures."
    finally:
        close_ctx(ctx, qtbot)
