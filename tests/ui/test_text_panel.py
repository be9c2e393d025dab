"""The Text panel with a real tiny GPT-2 through the real worker: clicks, keys, streaming."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.core.formats.text import read_recipe
from studio.core.requests import ImageRequest, TextRequest
from studio.ui.text_panel import TextPanel, format_stops, parse_stops
from tests.ui import close_ctx, make_ctx, output_files, scan


@pytest.fixture
def panel(qtbot, tmp_path, gpt2):
    ctx = make_ctx(tmp_path, model_dirs=[str(gpt2.parent)])
    scan(ctx, qtbot)
    p = TextPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.close()
    close_ctx(ctx, qtbot)


def choose(qtbot, panel: TextPanel, model: Path, prompt: str, *, tokens: int) -> None:
    """Pick the model in the combobox and type the prompt, as a person would."""
    index = panel.model.findData(str(model))
    assert index >= 0, panel.model.model_ids()
    panel.model.setCurrentIndex(index)
    panel.prompt.setFocus()
    qtbot.keyClicks(panel.prompt, prompt)
    panel.max_tokens.setValue(tokens)
    panel.temperature.setValue(1.0)
    panel.top_k.setValue(0)
    panel.seed.edit.setText("21")


def test_builtin_is_first_and_the_default(panel):
    assert panel.model.model_ids()[0] == "builtin:smollm2"
    assert panel.model.current_model() == "builtin:smollm2"
    assert panel.model_hint.isVisible()


def test_generate_streams_text_into_the_view(qtbot, panel, gpt2, monkeypatch):
    # the tiny model writes its 60 tokens in about 0.1 s on a fast machine: two of the
    # worker's 50 ms text windows. Every token is its own chunk here, so the test sees the
    # streaming on any machine; the coalescing is the worker's (tests/runtime/test_worker.py).
    monkeypatch.setattr("studio.runtime.worker.TEXT_FLUSH_INTERVAL", 0.0)
    ctx = panel.ctx
    choose(qtbot, panel, gpt2, "Once upon a time", tokens=60)
    seen: list[int] = []  # the view's length each time a chunk arrives
    finished_at: list[int] = []
    ctx.jobs.job_preview.connect(lambda _i, _p: seen.append(len(panel.view.toPlainText())))
    ctx.jobs.job_finished.connect(lambda *_a: finished_at.append(len(seen)))
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
        assert panel.cancel_button.isEnabled() and not panel.generate_button.isEnabled()
    _job, result, paths = sig.args
    # text arrived in several pieces, growing, before the job finished
    assert finished_at and finished_at[0] >= 3
    growing = [n for n in seen if n]
    assert len(growing) >= 3 and growing == sorted(growing) and growing[0] < growing[-1]
    assert panel.view.toPlainText() == result.text
    assert "tokens/s" in panel.progress.stats.text()
    assert panel.progress.status.text().startswith("Done")
    (path,) = [Path(p) for p in paths]
    assert path.suffix == ".md" and read_recipe(path).request["prompt"] == "Once upon a time"
    rows = ctx.history.recent(modality="text")
    assert [r.path for r in rows] == [path]
    assert panel.generate_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.seed.last_seed() == 21


def test_continue_extends_the_text_and_send_to_art(qtbot, panel, gpt2):
    ctx = panel.ctx
    choose(qtbot, panel, gpt2, "The sea", tokens=15)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000):
        qtbot.keyClick(panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    first = panel.view.toPlainText()
    assert first and panel.prompt.toPlainText() == "The sea"  # Ctrl+Enter typed no newline
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    result = sig.args[1]
    assert result.request.continuation == first
    assert panel.view.toPlainText() == first + result.text
    with qtbot.waitSignal(ctx.prompt_for_art, timeout=2000) as art:
        qtbot.mouseClick(panel.art_button, Qt.MouseButton.LeftButton)
    assert art.args == [(first + result.text).strip()]


def test_cancel_keeps_the_text_saves_nothing_until_asked(qtbot, panel, gpt2):
    ctx = panel.ctx
    choose(qtbot, panel, gpt2, "Once upon a time", tokens=900)
    chunks: list[str] = []
    ctx.jobs.job_preview.connect(lambda _i, p: chunks.append(p.data))
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(chunks) >= 2, timeout=120000)
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=30000):
        panel.prompt.setFocus()
        qtbot.keyClick(panel.prompt, Qt.Key.Key_Escape)
    kept = panel.view.toPlainText()
    assert kept and kept == "".join(chunks)
    assert "kept" in panel.progress.status.text()
    assert output_files(Path(ctx.settings.output_dir), ".md") == []
    assert panel.generate_button.isEnabled() and panel.save_button.isEnabled()
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(output_files(Path(ctx.settings.output_dir), ".md")),
                    timeout=10000)
    (path,) = output_files(Path(ctx.settings.output_dir), ".md")
    recipe = read_recipe(path)
    assert recipe.raw["text"] == kept and recipe.request["seed"] == 21
    assert recipe.raw["front_matter"]["info"]["cancelled"] is True
    qtbot.waitUntil(lambda: panel.message.text().startswith("Saved as"), timeout=5000)
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert panel.message.text().startswith("Already saved")


def test_bad_input_is_one_sentence_and_nothing_runs(qtbot, panel, gpt2):
    panel.model.set_model(str(gpt2))
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.message.text() == "Write a prompt first."
    assert panel.ctx.jobs.pending() == [] and panel.ctx.jobs.running() is None
    qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)  # disabled: no text
    assert not panel.busy()


def test_apply_request_fills_the_form(panel):
    request = TextRequest(model="/somewhere/else", prompt="A haiku", system="Be terse.",
                          seed=5, max_new_tokens=77, temperature=0.3, top_p=0.8, top_k=12,
                          repetition_penalty=1.3, stop=("\n\n", "a,b", " end "))
    panel.apply_request(request)
    assert panel.request() == request
    assert panel.system_section.is_expanded()
    assert panel.model.currentText() == "else (not found)"
    panel.apply_request(ImageRequest(model="m", prompt="x"))
    assert "not for text" in panel.message.text()


@pytest.mark.parametrize("stops", [(), ("\n\n",), ("a,b", "\\n", " x ", "\t"), (" ",)])
def test_stop_field_round_trips(stops):
    assert parse_stops(format_stops(stops)) == stops


def test_preset_picker_reaches_the_request_and_round_trips(panel):
    panel.prompt.setPlainText("Things to pack")
    assert panel.request().preset == ""
    panel.preset.setCurrentIndex(panel.preset.findData("list"))
    assert not panel.list_items.isHidden()
    panel.list_items.setValue(7)
    assert panel.request().preset == "list:7"
    panel.preset.setCurrentIndex(panel.preset.findData("haiku"))
    assert panel.request().preset == "haiku" and panel.list_items.isHidden()
    panel.apply_request(TextRequest(model="m", prompt="x", preset="list:4"))
    assert panel.preset_id() == "list:4" and panel.list_items.value() == 4


def test_send_to_art_with_the_image_prompt_preset_is_one_line(qtbot, panel):
    panel.preset.setCurrentIndex(panel.preset.findData("image-prompt"))
    panel.view.setPlainText('Prompt: "a lighthouse,  stormy sea, dusk"\n\nSure! Anything else?')
    with qtbot.waitSignal(panel.ctx.prompt_for_art, timeout=2000) as art:
        qtbot.mouseClick(panel.art_button, Qt.MouseButton.LeftButton)
    assert art.args == ["a lighthouse, stormy sea, dusk"]


def test_mode_switch_shows_the_chat(qtbot, panel):
    qtbot.mouseClick(panel.chat_mode, Qt.MouseButton.LeftButton)
    assert panel.mode() == "chat" and panel.stack.currentWidget() is panel.chat
    assert panel.prompt.isHidden() and panel.continue_button.isHidden()
    qtbot.mouseClick(panel.write_mode, Qt.MouseButton.LeftButton)
    assert panel.mode() == "write" and not panel.prompt.isHidden()
    assert panel.generate_button.text() == "Generate"
