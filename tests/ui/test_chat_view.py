"""Chat mode of the Text panel with a real tiny GPT-2 through the real worker: send,
history, regenerate, edit-and-branch, clear, the context meter, saving and reopening."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from studio.core import chat
from studio.core.formats.text import read_recipe
from studio.core.requests import TextRequest
from studio.ui.chat_view import art_line
from studio.ui.text_panel import TextPanel
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
    qtbot.waitActive(p, timeout=10000)  # Ctrl+Enter and Esc need the active window
    p.model.set_model(str(gpt2))
    p.max_tokens.setValue(8)
    p.top_k.setValue(0)
    p.seed.edit.setText("7")
    qtbot.mouseClick(p.chat_mode, Qt.MouseButton.LeftButton)
    yield p
    p.close()
    close_ctx(ctx, qtbot)


#: the saves run on the thread pool after each reply: on a busy machine (a fresh CI runner)
#: a few of them can take well over ten seconds, so wait for the files, not for a guess
SAVE_WAIT = 120000


def say(qtbot, panel: TextPanel, text: str):
    """Type a message and press Ctrl+Enter; the finished job's result."""
    view = panel.chat
    assert QApplication.activeWindow() is panel  # no bubble pops up as a window of its own
    view.input.setFocus()
    qtbot.keyClicks(view.input, text)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.keyClick(view.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    return sig.args[1]


def texts(panel: TextPanel) -> list[tuple[str, str]]:
    return [(b.role, b.text()) for b in panel.chat.bubbles]


def test_two_messages_carry_the_first_turn_and_save_the_conversation(qtbot, panel):
    assert panel.mode() == "chat" and not panel.prompt.isVisible()
    assert panel.generate_button.text() == "Send"
    previews: list[str] = []
    panel.ctx.jobs.job_preview.connect(
        lambda _i, _p: previews.append(panel.chat.bubbles[-1].text()))
    first = say(qtbot, panel, "Hello there")
    assert first.request.history == ()
    assert previews and previews == sorted(previews, key=len)  # the bubble grew
    second = say(qtbot, panel, "And then?")
    assert second.request.history == ("Hello there", first.text)
    assert second.request.prompt == "And then?"
    assert texts(panel) == [(chat.USER, "Hello there"), (chat.ASSISTANT, first.text),
                            (chat.USER, "And then?"), (chat.ASSISTANT, second.text)]
    assert panel.chat.input.toPlainText() == ""
    meter = panel.chat.meter_label.text()
    assert meter.startswith("Context: ") and meter.endswith(" / 1024 tokens"), meter
    used = int(meter.split()[1])
    assert used == second.info["prompt_tokens"] + second.info["tokens"] > 0
    assert not panel.chat.policy_label.isVisible()
    # every finished reply saved the conversation so far (chat front matter, history),
    # as ONE file rewritten as it grows (issue 13: one history row, not one per reply)
    out = Path(panel.ctx.settings.output_dir)
    qtbot.waitUntil(lambda: len(output_files(out, ".md")) == 1 and chat.Conversation.from_file(
        output_files(out, ".md")[0]).turns[-1].text == second.text, timeout=10000)
    newest = max(output_files(out, ".md"), key=lambda p: p.stat().st_mtime_ns)
    conversation = chat.Conversation.from_file(newest)
    assert [t.text for t in conversation.turns] == [t for _r, t in texts(panel)]
    assert read_recipe(newest).request["history"] == ["Hello there", first.text]
    assert len(panel.ctx.history.recent(modality="text")) == 1
    # the file's recipe opens the conversation again, the last message ready to resend
    panel.chat.clear()
    assert panel.chat.bubbles == []
    panel.set_mode("write")
    request = TextRequest.from_dict(read_recipe(newest).request)
    panel.apply_request(request)
    assert panel.mode() == "chat"
    assert texts(panel) == [(chat.USER, "Hello there"), (chat.ASSISTANT, first.text)]
    assert panel.chat.input.toPlainText() == "And then?"
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert sig.args[1].text == second.text  # same seed, same reply


def test_regenerate_replaces_the_last_reply(qtbot, panel):
    panel.temperature.setValue(1.5)
    panel.seed.edit.setText("-1")
    first = say(qtbot, panel, "Write something")
    old = panel.chat.bubbles[-1]
    assert not old.regen_button.isHidden() and panel.chat.regen_button.isEnabled()
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.chat.regen_button, Qt.MouseButton.LeftButton)
    again = sig.args[1]
    assert again.request.history == () and again.request.prompt == "Write something"
    assert again.request.seed != first.request.seed
    assert texts(panel) == [(chat.USER, "Write something"), (chat.ASSISTANT, again.text)]
    assert len(panel.chat.conversation.turns) == 2


def test_edit_the_first_message_branches(qtbot, panel):
    say(qtbot, panel, "First")
    say(qtbot, panel, "Second")
    assert len(panel.chat.bubbles) == 4
    qtbot.mouseClick(panel.chat.bubbles[0].edit_button, Qt.MouseButton.LeftButton)
    assert panel.chat.edit_bar.isVisible()
    assert panel.chat.input.toPlainText() == "First"
    panel.chat.input.setPlainText("Changed")
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
    reply = sig.args[1]
    assert reply.request.history == () and reply.request.prompt == "Changed"
    assert texts(panel) == [(chat.USER, "Changed"), (chat.ASSISTANT, reply.text)]
    assert not panel.chat.edit_bar.isVisible()


def test_clear_copy_and_an_empty_message(qtbot, panel):
    qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
    assert panel.message.text() == "Write a message first."
    assert panel.ctx.jobs.running() is None and panel.chat.bubbles == []
    reply = say(qtbot, panel, "Hi")
    qtbot.mouseClick(panel.chat.bubbles[1].copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == reply.text
    qtbot.mouseClick(panel.chat.clear_button, Qt.MouseButton.LeftButton)
    assert panel.chat.bubbles == [] and panel.chat.conversation.turns == []
    assert panel.chat.meter_label.text() == "" and not panel.chat.clear_button.isEnabled()


def test_stop_keeps_the_conversation_and_the_message(qtbot, panel):
    first = say(qtbot, panel, "Hello")
    panel.max_tokens.setValue(900)
    chunks: list[str] = []
    panel.ctx.jobs.job_preview.connect(lambda _i, p: chunks.append(p.data))
    panel.chat.input.setPlainText("Go on for long")
    qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(chunks) >= 2, timeout=120000)
    assert panel.chat.busy() and panel.chat.stop_button.isEnabled()
    assert not panel.chat.send_button.isEnabled()
    panel.chat.input.setFocus()
    with qtbot.waitSignal(panel.ctx.jobs.job_cancelled, timeout=30000):
        qtbot.keyClick(panel.chat.input, Qt.Key.Key_Escape)
    assert texts(panel) == [(chat.USER, "Hello"), (chat.ASSISTANT, first.text)]
    assert panel.chat.input.toPlainText() == "Go on for long"
    assert panel.chat.send_button.isEnabled() and "kept" in panel.progress.status.text()


def test_a_long_conversation_states_the_policy(qtbot, panel):
    panel.chat.show_meter({"context_length": 100, "prompt_tokens": 90, "tokens": 8,
                           "dropped_turns": 2})
    assert panel.chat.meter_label.text() == "Context: 98 / 100 tokens"
    assert panel.chat.meter.value() == 98
    assert "oldest turns" in panel.chat.policy_label.text()
    assert "system prompt is kept" in panel.chat.policy_label.text()
    assert panel.chat.policy_label.isVisible()


def test_preset_reaches_the_chat_request_and_send_to_art_is_one_line(qtbot, panel):
    panel.preset.setCurrentIndex(panel.preset.findData("image-prompt"))
    panel.max_tokens.setValue(16)
    reply = say(qtbot, panel, "A lighthouse")
    assert reply.request.preset == "image-prompt"
    with qtbot.waitSignal(panel.ctx.prompt_for_art, timeout=2000) as art:
        qtbot.mouseClick(panel.chat.art_button, Qt.MouseButton.LeftButton)
    (line,) = art.args
    assert "\n" not in line and line == art_line(reply.text)


@pytest.mark.parametrize(("text", "line"), [
    ("  misty harbor,  golden light \n\nmore", "misty harbor, golden light"),
    ('\n"Prompt: a red fox, snow, dusk"', "a red fox, snow, dusk"),
    ("", ""),
])
def test_art_line(text, line):
    assert art_line(text) == line


def test_opening_a_saved_chat_in_the_window_restores_every_turn(qtbot, panel):
    """File → Open / a drop of a saved conversation: every turn back, in Chat mode."""
    from studio.ui.main_window import MainWindow

    first = say(qtbot, panel, "Hello there")
    out = Path(panel.ctx.settings.output_dir)
    qtbot.waitUntil(lambda: len(output_files(out, ".md")) == 1, timeout=10000)
    saved = output_files(out, ".md")[0]
    window = MainWindow(panel.ctx)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
        window.load_recipe_file(saved)
    assert window.text.mode() == "chat"
    assert [(b.role, b.text()) for b in window.text.chat.bubbles] == [
        (chat.USER, "Hello there"), (chat.ASSISTANT, first.text)]
    window.close()


def test_three_replies_make_one_file_and_a_branch_a_second(qtbot, panel):
    out = Path(panel.ctx.settings.output_dir)
    replies = [say(qtbot, panel, m) for m in ("One", "Two", "Three")]
    qtbot.waitUntil(lambda: output_files(out, ".md") and len(chat.Conversation.from_file(
        output_files(out, ".md")[0]).turns) == 6, timeout=SAVE_WAIT)
    files = output_files(out, ".md")
    assert len(files) == 1
    saved = chat.Conversation.from_file(files[0])
    assert [t.text for t in saved.turns] == [t for _r, t in texts(panel)]
    assert saved.turns[-1].text == replies[-1].text
    assert len(panel.ctx.history.recent(modality="text")) == 1
    qtbot.mouseClick(panel.chat.bubbles[2].edit_button, Qt.MouseButton.LeftButton)
    panel.chat.input.setPlainText("Deux")
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000):
        qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(output_files(out, ".md")) == 2, timeout=SAVE_WAIT)
    branch = next(p for p in output_files(out, ".md") if p != files[0])
    qtbot.waitUntil(lambda: panel.chat.conversation.file.path == branch, timeout=SAVE_WAIT)
    assert [t.text for t in chat.Conversation.from_file(branch).turns][:3] == [
        "One", replies[0].text, "Deux"]
    assert len(chat.Conversation.from_file(files[0]).turns) == 6  # the original stays
    qtbot.waitUntil(lambda: len(panel.ctx.history.recent(modality="text")) == 2, timeout=SAVE_WAIT)


def test_use_these_settings_on_a_saved_chat_restores_every_turn(qtbot, panel):
    """The gallery's "Use these settings" opens a chat as File → Open does: every turn,
    the last reply included, and going on rewrites that same file."""
    from studio.ui.main_window import MainWindow

    first = say(qtbot, panel, "Hello there")
    second = say(qtbot, panel, "And then?")
    out = Path(panel.ctx.settings.output_dir)
    qtbot.waitUntil(lambda: len(chat.Conversation.from_file(
        output_files(out, ".md")[0]).turns) == 4, timeout=10000)
    saved = output_files(out, ".md")[0]
    window = MainWindow(panel.ctx)
    qtbot.addWidget(window)
    window.show_tab("gallery")
    gallery = window.gallery
    with qtbot.waitSignal(gallery.refreshed, timeout=10000):
        gallery.refresh()
    gallery.select_row(gallery.row_of_path(saved.resolve()))
    qtbot.waitUntil(lambda: gallery.details.use_button.isEnabled(), timeout=5000)
    with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
        qtbot.mouseClick(gallery.details.use_button, Qt.MouseButton.LeftButton)
    text = window.text
    assert window.current_tab() == "text" and text.mode() == "chat"
    assert [(b.role, b.text()) for b in text.chat.bubbles] == [
        (chat.USER, "Hello there"), (chat.ASSISTANT, first.text),
        (chat.USER, "And then?"), (chat.ASSISTANT, second.text)]
    assert text.chat.input.toPlainText() == ""  # nothing to resend: ready to go on
    assert not text.chat.bubbles[-1].regen_button.isHidden()
    text.model.set_model(panel.model.current_model())
    text.max_tokens.setValue(8)
    text.chat.input.setPlainText("More?")
    with qtbot.waitSignal(text.chat.saved, timeout=120000) as sig:
        qtbot.mouseClick(text.chat.send_button, Qt.MouseButton.LeftButton)
    assert [Path(p) for p in sig.args[0]] == [saved]
    assert len(chat.Conversation.from_file(saved).turns) == 6
    window.close()
