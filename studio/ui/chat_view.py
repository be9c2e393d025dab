"""The Text panel's Chat mode: a conversation as message bubbles.

The conversation itself is `studio.core.chat.Conversation` (the terminal chat uses the
same one): this view only shows its turns, turns what the writer does into the requests
the Conversation makes (a new message, regenerate the last reply, an edited earlier
message = a branch) and records a reply once its job finished. Until then nothing of the
conversation changes, so a failed or stopped reply loses nothing; the message that was
being answered goes back into the message box.

The panel owns the jobs: the view asks it through `submit(request)` (the job id, or None
when it was refused) and `settings()` (the form as a TextRequest: model, system prompt,
preset, sampling, seed), and the panel hands the job's previews and its end back to
`on_preview`, `on_finished`, `on_failed` and `on_cancelled`. Every finished reply saves the
conversation so far as its one chat Markdown file (rewritten as it grows, one history row;
an edited earlier message starts a new file: studio.core.chat.save).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core import chat
from studio.core.errors import StudioError
from studio.core.requests import TextRequest
from studio.core.results import Result
from studio.runtime.context import AppContext
from studio.runtime.saving import save_conversation
from studio.ui.panel import PromptEdit
from studio.ui.widgets import copy_icon, guarded, section_label

CHAT_STYLE = """
QFrame#bubbleUser { background: #2a2550; border-radius: 10px; }
QFrame#bubbleAssistant { background: #1d1e24; border: 1px solid #2c2d35; border-radius: 10px; }
QFrame#bubbleUser[editing="true"] { border: 1px solid #7c5cff; }
QLabel#bubbleText { color: #ebe8e1; }
"""
WHO = {chat.USER: "You", chat.ASSISTANT: "Assistant"}
QUOTES = "\"'“”‘’ "


def art_line(text: str) -> str:
    """One clean line for the Art prompt: the first non-empty line, its spaces collapsed,
    without surrounding quotes or a "Prompt:" label."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split()).strip(QUOTES)
    head, sep, rest = line.partition(":")
    if sep and head.strip().lower() in ("prompt", "image prompt"):
        line = rest.strip().strip(QUOTES)
    return line


class Bubble(QFrame):
    """One message: who, the text (selectable), and its actions (copy; edit for the
    writer's own messages; regenerate for the last reply)."""

    def __init__(self, role: str, text: str, index: int | None) -> None:
        super().__init__()
        self.role, self.index = role, index  # index None: not yet in the conversation
        self.setObjectName("bubbleUser" if role == chat.USER else "bubbleAssistant")
        self.label = QLabel(text)
        self.label.setObjectName("bubbleText")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton(copy_icon(), "Copy")
        self.copy_button.setToolTip("Copy this message to the clipboard")
        self.edit_button = QPushButton("Edit")
        self.edit_button.setToolTip("Change this message and go on from there "
                                    "(the turns after it are replaced)")
        self.regen_button = QPushButton("Regenerate")
        self.regen_button.setToolTip("Write this reply again")
        head = QHBoxLayout()
        who = QLabel(WHO.get(role, role))
        who.setObjectName("muted")
        head.addWidget(who)
        head.addStretch(1)
        for button in (self.copy_button, self.edit_button, self.regen_button):
            button.setFlat(True)
            head.addWidget(button)
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 8, 12, 10)
        col.setSpacing(4)
        col.addLayout(head)
        col.addWidget(self.label)
        # only now that they have a parent (before, showing one made it a window)
        self.edit_button.setVisible(role == chat.USER and index is not None)
        self.regen_button.hide()
        self.copy_button.clicked.connect(self.copy)

    def text(self) -> str:
        return self.label.text()

    def append(self, chunk: str) -> None:
        self.label.setText(self.label.text() + chunk)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


class ChatView(QWidget):
    """The conversation, the message box, and the context meter (see the module doc)."""

    saved = Signal(list)  # the paths the conversation so far was saved to
    notify = Signal(str)  # one sentence for the panel's message line
    changed = Signal()  # busy or turns changed: the panel updates its buttons
    stop_requested = Signal()  # Stop clicked: the panel cancels its job
    to_art = Signal(str)  # Send to Art: the last reply as the Art prompt

    def __init__(self, ctx: AppContext, submit: Callable[[TextRequest], int | None],
                 settings: Callable[[], TextRequest], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._submit = submit
        self._settings = settings
        self.conversation = chat.Conversation(TextRequest())
        self._job: int | None = None
        self._request: TextRequest | None = None  # what the running reply answers
        self._editing: int | None = None  # the user turn being edited (a branch)
        self._retry: tuple[str, int | None] | None = None  # (message, edited turn) to restore
        self._stream: Bubble | None = None
        self.bubbles: list[Bubble] = []
        self.setStyleSheet(CHAT_STYLE)
        self._build()
        self.render()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.column = QVBoxLayout()
        self.column.setSpacing(10)
        self.column.addStretch(1)
        inner = QWidget()
        inner.setLayout(self.column)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(inner)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.empty = QLabel("Your conversation appears here. Write a message below and "
                            "press Send (Ctrl+Enter).")
        self.empty.setObjectName("muted")
        self.empty.setWordWrap(True)
        self.column.insertWidget(0, self.empty)

        self.editing_label = QLabel("")
        self.editing_label.setObjectName("muted")
        self.cancel_edit_button = QPushButton("Keep the original")
        self.cancel_edit_button.setToolTip("Stop editing; the conversation stays as it is")
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.editing_label, 1)
        edit_row.addWidget(self.cancel_edit_button)
        self.edit_bar = QWidget()
        self.edit_bar.setLayout(edit_row)
        self.edit_bar.hide()

        self.input = PromptEdit("Your message… (Ctrl+Enter sends, Esc stops the reply)", 3)
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Send the message (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the reply; the conversation so far stays (Esc)")
        self.regen_button = QPushButton("Regenerate")
        self.regen_button.setToolTip("Write the last reply again")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start the conversation over")
        self.art_button = QPushButton("Send to Art")
        self.art_button.setToolTip("Use the last reply as the Art prompt (one line with the "
                                   "image-prompt preset)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.send_button, 2)
        buttons.addWidget(self.stop_button, 1)
        buttons.addWidget(self.regen_button, 1)
        buttons.addWidget(self.clear_button, 1)
        buttons.addWidget(self.art_button, 1)

        self.meter = QProgressBar()
        self.meter.setTextVisible(False)
        self.meter.setMaximumHeight(6)
        self.meter.setToolTip(chat.POLICY)
        self.meter_label = QLabel("")
        self.meter_label.setObjectName("muted")
        self.meter_label.setToolTip(chat.POLICY)
        self.policy_label = QLabel("")
        self.policy_label.setObjectName("muted")
        self.policy_label.setWordWrap(True)
        self.policy_label.hide()
        head = QHBoxLayout()
        head.addWidget(section_label("Conversation"))
        head.addStretch(1)
        head.addWidget(self.meter_label)

        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addLayout(head)
        col.addWidget(self.meter)
        col.addWidget(self.policy_label)
        col.addWidget(self.scroll, 1)
        col.addWidget(self.edit_bar)
        col.addWidget(self.input)
        col.addLayout(buttons)

        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop_requested)
        self.regen_button.clicked.connect(self.regenerate)
        self.clear_button.clicked.connect(self.clear)
        self.art_button.clicked.connect(self.send_to_art)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)

    # ------------------------------------------------------------------ showing
    def render(self, upto: int | None = None) -> None:
        """Show the conversation's turns (before `upto`), replacing every bubble."""
        for bubble in self.bubbles:
            self.column.removeWidget(bubble)
            bubble.deleteLater()
        self.bubbles = []
        self._stream = None
        turns = self.conversation.turns[:upto]
        for i, turn in enumerate(turns):
            self._add_bubble(turn.role, turn.text, i)
        if self.bubbles and self.bubbles[-1].role == chat.ASSISTANT and self._job is None:
            last = self.bubbles[-1]
            last.regen_button.show()
            last.regen_button.clicked.connect(self.regenerate)
        self.empty.setVisible(not turns)
        self.update_buttons()

    def _add_bubble(self, role: str, text: str, index: int | None) -> Bubble:
        bubble = Bubble(role, text, index)
        if index is not None and role == chat.USER:
            bubble.edit_button.clicked.connect(lambda: self.edit(index))
        self.column.insertWidget(self.column.count() - 1, bubble)
        self.bubbles.append(bubble)
        self._follow()
        return bubble

    def _follow(self) -> None:
        bar = self.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())

    def show_meter(self, info: dict[str, Any]) -> None:
        """Tokens used of the model's context, and the policy when turns were dropped."""
        length = info.get("context_length")
        used = int(info.get("prompt_tokens", 0) or 0) + int(info.get("tokens", 0) or 0)
        if isinstance(length, int) and length > 0:
            self.meter.setRange(0, length)
            self.meter.setValue(min(used, length))
            self.meter_label.setText(f"Context: {used} / {length} tokens")
        else:
            self.meter.setRange(0, 1)
            self.meter.setValue(0)
            self.meter_label.setText(f"Context: {used} tokens")
        dropped = int(info.get("dropped_turns", 0) or 0)
        self.policy_label.setText(
            f"The conversation outgrew the model's context: the {dropped} oldest turns were "
            "left out of this reply; the system prompt is kept." if dropped else "")
        self.policy_label.setVisible(bool(dropped))

    def busy(self) -> bool:
        return self._job is not None

    def update_buttons(self) -> None:
        busy = self.busy()
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        has_reply = bool(self.conversation.turns) and \
            self.conversation.turns[-1].role == chat.ASSISTANT
        self.regen_button.setEnabled(not busy and has_reply)
        self.clear_button.setEnabled(not busy and bool(self.conversation.turns))
        self.art_button.setEnabled(has_reply)
        for bubble in self.bubbles:
            bubble.edit_button.setEnabled(not busy)
        self.changed.emit()

    # ------------------------------------------------------------------ actions
    def _start(self, build: Callable[[int | None], TextRequest], message: str) -> int | None:
        """Make the request from the form's settings, queue it, and show it as pending."""
        settings = self._settings()
        seed = settings.seed if settings.seed >= 0 else None
        self.conversation.settings = settings.replace(prompt="", history=(), continuation="")
        try:
            request = build(seed).resolved()
        except StudioError as exc:
            self.notify.emit(str(exc))
            return None
        assert isinstance(request, TextRequest)
        job_id = self._submit(request)
        if job_id is None:
            return None
        self._job, self._request = job_id, request
        self.render(upto=len(request.history))
        self._add_bubble(chat.USER, message, None)
        self._stream = self._add_bubble(chat.ASSISTANT, "", None)
        self.update_buttons()
        return job_id

    def send(self) -> int | None:
        """Send the message box: a new turn, or the edited message (a branch)."""
        if self.busy():
            self.notify.emit("Still replying: stop it first, or wait for it to finish.")
            return None
        text = self.input.toPlainText().strip()
        editing = self._editing
        if editing is not None:
            job = self._start(lambda seed: self.conversation.branch(editing, text, seed), text)
        else:
            job = self._start(lambda seed: self.conversation.request(text, seed), text)
        if job is not None:
            self._retry = (text, editing)
            self.input.clear()
            self.cancel_edit()
        return job

    def regenerate(self) -> int | None:
        """Write the last reply again (it replaces the old one when it finishes)."""
        if self.busy():
            return None
        turns = self.conversation.turns
        message = turns[-2].text if len(turns) >= 2 else ""
        job = self._start(self.conversation.regenerate, message)
        if job is not None:
            self._retry = None  # nothing to put back: the old reply stays
        return job

    def edit(self, index: int) -> None:
        """Put an earlier message of the writer's into the message box to change it."""
        if self.busy() or not 0 <= index < len(self.conversation.turns):
            return
        self._editing = index
        self.input.setPlainText(self.conversation.turns[index].text)
        self.input.setFocus()
        later = len(self.conversation.turns) - index - 1
        self.editing_label.setText(
            f"Editing message {index // 2 + 1}: Send goes on from there"
            + (f" (the {later} turns after it are replaced)." if later else "."))
        self.edit_bar.show()
        for bubble in self.bubbles:
            bubble.setProperty("editing", "true" if bubble.index == index else "false")
            bubble.style().unpolish(bubble)
            bubble.style().polish(bubble)

    def cancel_edit(self) -> None:
        if self._editing is not None and self.edit_bar.isVisible():
            self._editing = None
            self.edit_bar.hide()
            self.render()
        self._editing = None

    def clear(self) -> None:
        """Forget the turns (the saved files stay in the history)."""
        if self.busy():
            return
        self.conversation.clear()
        self._editing = None
        self.edit_bar.hide()
        self.show_meter({})
        self.meter_label.setText("")
        self.render()

    def load(self, conversation: chat.Conversation, message: str = "") -> None:
        """Go on with a conversation (a saved chat); `message` waits in the message box."""
        if self.busy():
            return
        self.conversation = conversation
        self._editing = None
        self.edit_bar.hide()
        self.input.setPlainText(message)
        self.render()

    def send_to_art(self) -> None:
        """The last reply for the Art prompt: one clean line with the image-prompt preset."""
        turns = self.conversation.turns
        if not turns or turns[-1].role != chat.ASSISTANT:
            return
        text = turns[-1].text
        self.to_art.emit(art_line(text) if self.conversation.settings.preset == "image-prompt"
                         else text.strip())

    def message_text(self) -> str:
        return self.input.toPlainText()

    # ------------------------------------------------------------------ the job
    def owns(self, job_id: int) -> bool:
        return job_id == self._job

    def on_preview(self, chunk: str) -> None:
        if self._stream is not None and chunk:
            self._stream.append(chunk)
            self._follow()

    def on_finished(self, result: Result) -> None:
        """Record the reply, show it, and save the conversation so far."""
        request, self._job, self._request = self._request, None, None
        assert request is not None
        try:
            self.conversation.add(request, result)
        except StudioError as exc:
            self.notify.emit(str(exc))
            self.render()
            return
        self.render()
        self.show_meter(result.info if isinstance(result.info, dict) else {})
        save_conversation(self.ctx, self.conversation, guarded(self, self.saved.emit),
                          guarded(self, lambda m: self.notify.emit(f"Could not save: {m}")))

    def on_ended(self) -> None:
        """The reply failed or was stopped: the conversation is as it was; the message
        goes back into the box (unless the writer typed something new meanwhile)."""
        retry, self._job, self._request, self._retry = self._retry, None, None, None
        self.render()
        if retry is not None and not self.input.toPlainText().strip():
            message, edited = retry
            if edited is not None and edited < len(self.conversation.turns):
                self.edit(edited)
            self.input.setPlainText(message)
