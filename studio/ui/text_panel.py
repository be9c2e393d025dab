"""The Text panel: write with a language model, watching the words arrive.

The form (model, prompt, an optional system prompt, sampling) is on the left; the text
fills in on the right as tokens stream from the worker, with a live tokens/s readout.
Generate starts afresh, Continue extends the text in the view (which the artist may edit
between runs), Cancel keeps what was written so far. Copy, Save and "Send to Art" act on
the text (on the selection, for Send to Art, when there is one).

A Preset (haiku, a list of N, a one-line image prompt, ...) becomes `TextRequest.preset`:
its system prompt and, on llama.cpp, a grammar make the form hold. The Write | Chat switch
shows either the writing view or the conversation (`studio.ui.chat_view`), which uses the
same model, system prompt, preset and sampling from the form. A recipe with `history` (a
saved chat) opens in Chat mode with its turns, the last message waiting to be sent again
with its seed.

Like every panel it talks only to ctx.jobs and listens to its signals for the job ids it
submitted; it never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core import chat, families, presets
from studio.core.requests import Request, TextRequest
from studio.core.results import Preview, Progress, Result
from studio.runtime.context import AppContext
from studio.runtime.saving import save_output
from studio.ui.chat_view import ChatView, art_line
from studio.ui.forms import FieldForm, field_grid
from studio.ui.panel import GeneratePanel, PromptEdit, action_button, canvas_column
from studio.ui.widgets import CollapsibleSection, copy_icon, guarded, section_label

BUILTIN = families.DEFAULT_BUILTIN["text"]
FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
VIEW_FONTS = ["Iowan Old Style", "Charter", "Georgia", "Noto Serif", "DejaVu Serif",
              "Liberation Serif", "serif"]

VIEW_STYLE = """
QPlainTextEdit#textView {
    background: #17181d; color: #ebe8e1; border: 1px solid #2c2d35; border-radius: 8px;
    padding: 10px 14px; selection-background-color: #7c5cff;
}
QPlainTextEdit#textView[busy="true"] { border: 1px solid #4b3f8a; }
"""


# ─── stop strings typed in one line ──────────────────────────────────────────────────


def parse_stops(text: str) -> tuple[str, ...]:
    r"""Stop strings from one line: comma-separated; `\n`, `\t`, `\,`, `\s` (a space)
    and `\\` are escapes. Plain spaces around the commas are only layout."""
    escapes = {"n": "\n", "t": "\t", ",": ",", "\\": "\\", "s": " "}
    items: list[list[tuple[str, bool]]] = [[]]  # (character, was escaped)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            items[-1].append((escapes[text[i + 1]], True))
            i += 2
            continue
        if ch == ",":
            items.append([])
        else:
            items[-1].append((ch, False))
        i += 1
    stops: list[str] = []
    for item in items:
        while item and item[0] == (" ", False):
            item.pop(0)
        while item and item[-1] == (" ", False):
            item.pop()
        if item:
            stops.append("".join(ch for ch, _escaped in item))
    return tuple(stops)


def format_stops(stops: tuple[str, ...] | list[str]) -> str:
    """The inverse of parse_stops (for filling the field from a recipe)."""
    def one(s: str) -> str:
        s = s.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")
        if s.startswith(" "):
            s = "\\s" + s[1:]
        if s.endswith(" "):
            s = s[:-1] + "\\s"
        return s

    return ", ".join(one(s) for s in stops)


def _rate_text(rate: float) -> str:
    return f"{rate:.1f} tokens/s" if rate < 100 else f"{rate:.0f} tokens/s"


class TextPanel(GeneratePanel):
    """Prompt → streaming text, with Continue, Cancel, Copy, Save and Send to Art."""

    modality = "text"
    noun = "text"
    request_type = TextRequest
    prompt_placeholder = ("What should it write? e.g. “Write a short poem about the sea.” "
                          "(Ctrl+Enter generates)")
    prompt_lines = 5
    model_tip = "The language model to write with"
    queues = False  # one text at a time: Continue extends what the last one wrote
    busy_message = "Still writing: cancel first, or wait for it to finish."

    generated = Signal(str)  # the text after a finished job (for whoever cares)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._request: TextRequest | None = None  # what the running (or last) job asked
        self._base = ""  # text in the view before the running job's first token
        self._streamed = 0  # characters appended by the running job
        self._rate = 0.0
        self._tokens = 0
        self._total = 0
        self._saved_text: str | None = None  # the view text as it was last saved
        self._saved_path: Path | None = None
        self._partial = False  # the text in the view ends with a cancelled run
        if self.model.findData(BUILTIN) >= 0 and not self.model.current_model():
            self.model.set_model(BUILTIN)
        self._build()
        self.assemble(self._page(), extra_actions=[self.continue_button], form_width=400)
        self._connect()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.system = PromptEdit("How the model should behave, e.g. “You are a songwriter "
                                 "who writes in rhyming couplets.”", 3)
        self.system_section = CollapsibleSection("System prompt", self.system)
        self.system_section.setToolTip("Instruct models read it before your prompt; "
                                       "base models get it as plain text in front")
        self.fields = FieldForm(TextRequest, FIELDS)
        self.max_tokens = self.fields["max_new_tokens"]
        self.temperature = self.fields["temperature"]
        self.top_p = self.fields["top_p"]
        self.top_k = self.fields["top_k"]
        self.repetition = self.fields["repetition_penalty"]
        self.stops = QLineEdit()
        self.stops.setPlaceholderText(r"e.g.  \n\n, THE END")
        self.stops.setToolTip(
            "Stop when the text reaches one of these (they are left out).\n"
            "Separate with commas; \\n is a newline, \\t a tab, \\, a comma, \\s a space.")
        self.generate_button.setToolTip("Write a new text (Ctrl+Enter)")
        self.continue_button = action_button(
            "Continue", "Extend the text on the right (edit it first if you like) "
                        "(Ctrl+Shift+Enter)")
        self.cancel_button.setToolTip("Stop writing; the text so far stays (Esc)")
        self.preset = QComboBox()
        self.preset.addItem("None: write freely", "")
        for preset in presets.all_presets():
            base_id = preset.id.partition(":")[0]
            self.preset.addItem("List of N items" if base_id == "list" else preset.name,
                                base_id)
        self.preset.setToolTip("A writing form: its instructions (and, on llama.cpp, a "
                               "grammar) make the text keep the shape")
        self.list_items = QSpinBox()
        self.list_items.setRange(presets.LIST_MIN, presets.LIST_MAX)
        self.list_items.setValue(presets.LIST_DEFAULT)
        self.list_items.setPrefix("N = ")
        self.list_items.setToolTip("How many items the list holds")
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset, 1)
        preset_row.addWidget(self.list_items)
        form = self.form
        form.addWidget(self.system_section)
        form.addSpacing(8)
        form.addWidget(section_label("Preset"))
        form.addLayout(preset_row)
        form.addSpacing(8)
        form.addWidget(section_label("Sampling"))
        pair = self.fields.pair
        form.addLayout(field_grid([
            [pair("max_new_tokens"), pair("temperature")],
            [pair("top_p"), pair("top_k")],
            [pair("repetition_penalty")],
            [("Seed", self.seed)],
            [("Stop at", self.stops)],
        ]))

    def _page(self) -> QWidget:
        # the writing column ---------------------------------------------------
        self.view = QPlainTextEdit()
        self.view.setObjectName("textView")
        self.view.setStyleSheet(VIEW_STYLE)
        self.view.setPlaceholderText(
            "Your text appears here as it is written.\n\n"
            "Lyrics, poems, stories, or a prompt for the Art panel: write what you want in "
            "the prompt box and press Generate. You can edit the text here and press "
            "Continue to carry on from it.")
        font = QFont()
        font.setFamilies(VIEW_FONTS)
        font.setStyleHint(QFont.StyleHint.Serif)
        font.setPointSizeF(max(12.0, QFont().pointSizeF() * 1.25))
        self.view.setFont(font)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.view.document().setDocumentMargin(12)
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        self.copy_button = QPushButton(copy_icon(), "Copy")
        self.copy_button.setToolTip("Copy the text to the clipboard")
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Save the text as it is now (a Markdown file with its "
                                    "recipe); finished texts are saved on their own")
        self.art_button = QPushButton("Send to Art")
        self.art_button.setToolTip("Use the text (or the selected part) as the Art prompt")
        head = QHBoxLayout()
        head.setSpacing(8)
        head.addWidget(section_label("Text"))
        head.addWidget(self.count_label)
        head.addStretch(1)
        head.addWidget(self.copy_button)
        head.addWidget(self.save_button)
        head.addWidget(self.art_button)
        self.write_page = QWidget()
        write = QVBoxLayout(self.write_page)
        write.setContentsMargins(0, 0, 0, 0)
        write.addLayout(head)
        write.addWidget(self.view, 1)
        self.chat = ChatView(self.ctx, lambda r: self.submit(r, save=False), self.request)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.write_page)
        self.stack.addWidget(self.chat)
        self.write_mode = QPushButton("Write")
        self.write_mode.setToolTip("Write one text from the prompt (and continue it)")
        self.chat_mode = QPushButton("Chat")
        self.chat_mode.setToolTip("A conversation: send messages, regenerate, edit, branch")
        self.modes = QButtonGroup(self)
        switch = QHBoxLayout()
        switch.setSpacing(0)
        for i, button in enumerate((self.write_mode, self.chat_mode)):
            button.setCheckable(True)
            self.modes.addButton(button, i)
            switch.addWidget(button)
        switch.addStretch(1)
        self.write_mode.setChecked(True)
        return canvas_column([switch, (self.stack, 1), self.progress])

    def _connect(self) -> None:
        self.continue_button.clicked.connect(self.continue_text)
        self.copy_button.clicked.connect(self.copy_text)
        self.save_button.clicked.connect(self.save_text)
        self.art_button.clicked.connect(self.send_to_art)
        self.view.textChanged.connect(self._text_changed)
        self._text_changed()
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self._preset_changed()
        self.modes.idToggled.connect(lambda i, on: on and self.set_mode("chat" if i else "write"))
        self.chat.stop_requested.connect(self.cancel)
        self.chat.notify.connect(self.message.show_error)
        self.chat.changed.connect(self.update_buttons)
        self.chat.saved.connect(self._chat_saved)
        self.chat.to_art.connect(self._send_line_to_art)
        self.add_shortcut("Ctrl+Shift+Return", self.continue_text)
        self.add_shortcut("Ctrl+Shift+Enter", self.continue_text)

    # ------------------------------------------------------------------ the form
    def request(self) -> TextRequest:
        """The form as a request (validated by submit)."""
        return TextRequest(
            **self.common_values(),  # type: ignore[arg-type]
            system=self.system.toPlainText().strip(),
            stop=parse_stops(self.stops.text()),
            preset=self.preset_id(),
            **self.fields.values(),
        )

    def preset_id(self) -> str:
        """What the picker names: "", "haiku", ..., "list:N"."""
        chosen = str(self.preset.currentData() or "")
        return f"list:{self.list_items.value()}" if chosen == "list" else chosen

    def set_preset(self, preset_id: str) -> None:
        name, _sep, count = (preset_id or "").partition(":")
        index = self.preset.findData(name)
        self.preset.setCurrentIndex(max(0, index))
        if name == "list":
            self.list_items.setValue(int(count) if count.isdigit() else presets.LIST_DEFAULT)

    def _preset_changed(self) -> None:
        self.list_items.setVisible(self.preset.currentData() == "list")

    # ------------------------------------------------------------------ modes
    def mode(self) -> str:
        return "chat" if self.stack.currentWidget() is self.chat else "write"

    def set_mode(self, mode: str) -> None:
        """Show the writing view or the conversation (the form serves both)."""
        chat_mode = mode == "chat"
        (self.chat_mode if chat_mode else self.write_mode).setChecked(True)
        self.stack.setCurrentWidget(self.chat if chat_mode else self.write_page)
        self.prompt.setVisible(not chat_mode)
        self._prompt_label().setVisible(not chat_mode)
        self.continue_button.setVisible(not chat_mode)
        self.generate_button.setText("Send" if chat_mode else "Generate")
        self.generate_button.setToolTip("Send the message (Ctrl+Enter)" if chat_mode
                                        else "Write a new text (Ctrl+Enter)")
        if chat_mode:
            self.chat.input.setFocus()
        self.update_buttons()

    def _prompt_label(self) -> QLabel:
        """The form's "Prompt" heading (Chat mode hides it with the prompt box)."""
        found = [w for w in self.form_widget.findChildren(QLabel)
                 if w.objectName() == "sectionLabel" and w.text() == "Prompt"]
        return found[0] if found else QLabel()

    def fill(self, request: Request) -> None:
        assert isinstance(request, TextRequest)
        self.system.setPlainText(request.system)
        self.system_section.set_expanded(bool(request.system.strip()))
        self.fields.set_values(request)
        self.stops.setText(format_stops(request.stop))
        self.set_preset(request.preset)
        if request.history and not self.busy():
            # a saved chat: its turns, and its last message to send again (with its seed)
            settings = request.replace(prompt="", history=(), continuation="")
            assert isinstance(settings, TextRequest)
            turns = [chat.Turn(chat.USER if i % 2 == 0 else chat.ASSISTANT, text)
                     for i, text in enumerate(request.history)]
            self.chat.load(chat.Conversation(settings, turns), request.prompt)
            self.prompt.setPlainText("")
            self.set_mode("chat")
        elif request.continuation and not self.busy():
            self.view.setPlainText(request.continuation)

    def on_model_changed(self, model: str) -> None:
        builtin = families.builtin(model)
        if builtin is not None:
            self.model_hint.setText("Built in and offline. Its first use loads it (about "
                                    "20 s on a small CPU); then it stays in memory.")
        else:
            self.model_hint.setText("")
        self.model_hint.setVisible(bool(self.model_hint.text()))

    # ------------------------------------------------------------------ actions
    def generate(self) -> int | None:
        """Write a new text from the prompt (the view is cleared when it starts); in Chat
        mode, send the message."""
        if self.mode() == "chat":
            return self.chat.send()
        return self._submit(continuation="")

    def continue_text(self) -> int | None:
        """Extend the text in the view (as edited) with the same prompt and settings."""
        text = self.view.toPlainText()
        if not text:
            self.message.show_info("Nothing to continue yet: generate a text first.")
            return None
        return self._submit(continuation=text)

    def _submit(self, continuation: str) -> int | None:
        # the seed is drawn here, so that Save after a cancel records the one that ran
        request = self.request().replace(continuation=continuation).resolved()
        job_id = self.submit(request)
        if job_id is None:
            return None
        self._request = request
        self._base = continuation
        self._streamed = 0
        self._tokens = self._total = 0
        self._rate = 0.0
        self._partial = False
        if not continuation:
            self.view.clear()
        self._set_busy(True)
        return job_id

    def text(self) -> str:
        return self.view.toPlainText()

    def copy_text(self) -> None:
        text = self.view.toPlainText()
        if not text:
            self.message.show_info("Nothing to copy yet.")
            return
        QGuiApplication.clipboard().setText(text)
        self.message.show_info("Text copied to the clipboard.")

    def send_to_art(self) -> None:
        """Put the selected text, or all of it, into the Art panel's prompt."""
        selected = self.view.textCursor().selectedText().replace("\u2029", "\n")
        text = (selected or self.view.toPlainText()).strip()
        if self.preset_id() == "image-prompt":
            text = art_line(text)
        self._send_line_to_art(text)

    def _send_line_to_art(self, text: str) -> None:
        if not text.strip():
            self.message.show_info("Nothing to send yet: generate a text first.")
            return
        self.ctx.prompt_for_art.emit(text.strip())
        self.message.show_info("Sent to the Art panel's prompt.")

    def _chat_saved(self, paths: list[Path]) -> None:
        if paths:
            self.progress.finish(f"{self.progress.status.text()} · saved {Path(paths[0]).name}")

    def save_text(self) -> None:
        """Save the view's text as a new .md output with its recipe (off the GUI thread)."""
        text = self.view.toPlainText()
        if not text:
            self.message.show_info("Nothing to save yet.")
            return
        if self.busy():
            self.message.show_info("Still writing: it is saved when it finishes.")
            return
        if self._saved_text == text and self._saved_path is not None:
            self.message.show_info(f"Already saved as {self._saved_path.name}.")
            return
        request = self._request or self.request().resolved()
        request = request.replace(continuation="")
        generated = self._saved_text is not None or self._partial
        info = {"saved_from": "text panel", "cancelled": self._partial,
                "edited": bool(generated and not self._partial)}
        result = Result(request, "text", text=text, info=info)
        self.save_button.setEnabled(False)
        save_output(self.ctx, result, guarded(self, lambda paths: self._saved(text, paths)),
                    guarded(self, self._save_failed))

    def _saved(self, text: str, paths: list[Path]) -> None:
        self.update_buttons()
        if paths:
            self._saved_text, self._saved_path = text, Path(paths[0])
            self._partial = False
            self.message.show_info(f"Saved as {self._saved_path.name}.")

    def _save_failed(self, message: str) -> None:
        self.update_buttons()
        self.message.show_error(f"Could not save: {message}")

    # ------------------------------------------------------------------ job signals
    def on_progress(self, job_id: int, progress: Progress) -> None:
        total = max(1, progress.total)
        self.progress.bar.setRange(0, total)
        self.progress.bar.setValue(min(progress.step, total))
        self._tokens, self._total = progress.step, progress.total
        if self.progress.status.text() != "Writing…":
            self.progress.set_status("Writing…")
        self._show_stats(progress.total)

    def on_preview(self, job_id: int, preview: Preview) -> None:
        if preview.kind != "text" or not preview.data:
            return
        rate = preview.info.get("tokens_per_s") if isinstance(preview.info, dict) else None
        if isinstance(rate, (int, float)):
            self._rate = float(rate)
        self._tokens = max(self._tokens, preview.step)
        if self.chat.owns(job_id):
            self.chat.on_preview(str(preview.data))
        else:
            self._append(str(preview.data))
        self._show_stats(preview.total)

    def _show_stats(self, total: int) -> None:
        parts = [f"{self._tokens} / {total} tokens"]
        if self._rate > 0:
            parts.append(_rate_text(self._rate))
        self.progress.stats.setText("  ·  ".join(parts))

    def _append(self, chunk: str) -> None:
        """Add streamed text at the end, following it only if the reader is at the bottom."""
        bar = self.view.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.view.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(chunk)
        self._streamed += len(chunk)
        if follow:
            bar.setValue(bar.maximum())

    def on_finished(self, job_id: int, result: Result, paths: list[Path]) -> None:
        if self.chat.owns(job_id):
            info = result.info if isinstance(result.info, dict) else {}
            self.chat.on_finished(result)
            self.update_buttons()
            self.progress.finish("Replied")
            self.progress.stats.setText(
                f"{info.get('tokens', 0)} tokens  ·  "
                f"{_rate_text(float(info.get('tokens_per_s', 0.0) or 0.0))}  ·  "
                f"seed {result.request.seed}")
            return
        self._set_busy(False)
        full = self._base + result.text
        if self.view.toPlainText() != full:  # streamed text is the final text; just in case
            self.view.setPlainText(full)
            self.view.moveCursor(QTextCursor.MoveOperation.End)
        self._request = result.request if isinstance(result.request, TextRequest) else None
        info = result.info if isinstance(result.info, dict) else {}
        seed = result.request.seed
        if paths:
            self._saved_text, self._saved_path = full, paths[0]
        tokens = int(info.get("tokens", self._tokens) or 0)
        rate = float(info.get("tokens_per_s", self._rate) or 0.0)
        self._tokens, self._rate = tokens, rate
        why = {"stop": "reached a stop string", "eos": "the model finished",
               "length": "reached max tokens"}.get(str(info.get("stopped_by")), "done")
        where = f" · saved {paths[0].name}" if paths else ""
        self.progress.finish(f"Done: {why}{where}")
        self.progress.stats.setText(f"{tokens} tokens  ·  {_rate_text(rate)}  ·  seed {seed}")
        self.generated.emit(full)

    def on_failed(self, job_id: int, message: str) -> None:
        if self.chat.owns(job_id):
            self.chat.on_ended()
        self._set_busy(False)
        super().on_failed(job_id, message)

    def on_cancelled(self, job_id: int, was_running: bool) -> None:
        if self.chat.owns(job_id):
            self.chat.on_ended()
            self.update_buttons()
            self.progress.reset("Stopped: the conversation so far is kept.")
            return
        self._partial = self._streamed > 0
        self._set_busy(False)
        # short enough for the status line: the old sentence was cut off at "Save ke…"
        self.progress.reset("Cancelled: the text so far is kept, not saved." if self._partial
                            else "Cancelled.")
        if self._tokens:
            self._show_stats(self._total or self.max_tokens.value())

    # ------------------------------------------------------------------ state
    def _set_busy(self, busy: bool) -> None:
        self.view.setReadOnly(busy)
        self.view.setProperty("busy", "true" if busy else "false")
        self.view.style().unpolish(self.view)
        self.view.style().polish(self.view)
        self.update_buttons()

    def update_buttons(self) -> None:
        super().update_buttons()
        busy = self.busy()
        has_text = bool(self.view.toPlainText())
        self.continue_button.setEnabled(not busy and has_text)
        self.copy_button.setEnabled(has_text)
        self.save_button.setEnabled(has_text and not busy)
        self.art_button.setEnabled(has_text)

    def _text_changed(self) -> None:
        text = self.view.toPlainText()
        words = len(text.split())
        self.count_label.setText(f"{words} words" if text else "")
        if not self.busy() or (text and not self.copy_button.isEnabled()):
            self.update_buttons()
