"""The Text panel: write with a language model, watching the words arrive.

The form (model, prompt, an optional system prompt, sampling) is on the left; the text
fills in on the right as tokens stream from the worker, with a live tokens/s readout.
Generate starts afresh, Continue extends the text in the view (which the artist may edit
between runs), Cancel keeps what was written so far. Copy, Save and "Send to Art" act on
the text (on the selection, for Send to Art, when there is one).

Like every panel it talks only to ctx.jobs and listens to its signals for the job ids it
submitted; it never imports torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import Request, TextRequest
from studio.core.results import Preview, Progress, Result
from studio.runtime.tasks import run_in_pool
from studio.ui.widgets import (
    CollapsibleSection,
    MessageLabel,
    ModelPicker,
    ProgressRow,
    SeedField,
    copy_icon,
    section_label,
)

BUILTIN = "builtin:smollm2"
DEFAULTS = TextRequest()
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


class _PromptEdit(QPlainTextEdit):
    """A multi-line box where Tab moves focus on (Ctrl+Enter generates, via the panel)."""

    def __init__(self, placeholder: str, lines: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, self.minimumHeight())


class _FormScroll(QScrollArea):
    """A vertical-only scroll area never narrower than the form inside it."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 340
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(width + bar + 2 * self.frameWidth(), 200)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(max(self.minimumSizeHint().width(), 400), 600)


class TextPanel(QWidget):
    """Prompt → streaming text, with Continue, Cancel, Copy, Save and Send to Art."""

    generated = Signal(str)  # the text after a finished job (for whoever cares)

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._job: int | None = None  # the job this panel is running (one at a time)
        self._request: TextRequest | None = None  # what that job (or the last one) asked
        self._base = ""  # text in the view before the running job's first token
        self._streamed = 0  # characters appended by the running job
        self._started_at = 0.0
        self._rate = 0.0
        self._tokens = 0
        self._total = 0
        self._saved_text: str | None = None  # the view text as it was last saved
        self._saved_path: Path | None = None
        self._partial = False  # the text in the view ends with a cancelled run
        self._build()
        self._connect()
        self._update_buttons()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model = ModelPicker(self.ctx, "text")
        self.model.setToolTip("The language model to write with")
        if self.model.findData(BUILTIN) >= 0 and not self.model.current_model():
            self.model.set_model(BUILTIN)
        self.model_hint = QLabel("")
        self.model_hint.setObjectName("muted")
        self.model_hint.setWordWrap(True)
        self.prompt = _PromptEdit(
            "What should it write? e.g. “Write a short poem about the sea.” "
            "(Ctrl+Enter generates)", 5)
        self.system = _PromptEdit("How the model should behave, e.g. “You are a songwriter "
                                  "who writes in rhyming couplets.”", 3)
        self.system_section = CollapsibleSection("System prompt", self.system)
        self.system_section.setToolTip("Instruct models read it before your prompt; "
                                       "base models get it as plain text in front")

        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 32768)
        self.max_tokens.setValue(DEFAULTS.max_new_tokens)
        self.max_tokens.setToolTip("The most new tokens (word pieces) to write")
        self.temperature = self._float_box(0.0, 5.0, 0.05, 2, DEFAULTS.temperature,
                                           "Randomness: 0 always picks the likeliest word; "
                                           "higher is wilder")
        self.top_p = self._float_box(0.0, 1.0, 0.01, 2, DEFAULTS.top_p,
                                     "Nucleus sampling: keep the likeliest words that add up "
                                     "to this probability (1 = off)")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100000)
        self.top_k.setValue(DEFAULTS.top_k)
        self.top_k.setToolTip("Keep only this many likeliest words at each step (0 = off)")
        self.repetition = self._float_box(0.5, 5.0, 0.05, 2, DEFAULTS.repetition_penalty,
                                          "Above 1 discourages repeating words already used")
        self.seed = SeedField()
        self.stops = QLineEdit()
        self.stops.setPlaceholderText(r"e.g.  \n\n, THE END")
        self.stops.setToolTip(
            "Stop when the text reaches one of these (they are left out).\n"
            "Separate with commas; \\n is a newline, \\t a tab, \\, a comma, \\s a space.")

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Write a new text (Ctrl+Enter)")
        self.generate_button.setMinimumHeight(36)
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip(
            "Extend the text on the right (edit it first if you like) (Ctrl+Shift+Enter)")
        self.continue_button.setMinimumHeight(36)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop writing; the text so far stays (Esc)")
        self.cancel_button.setMinimumHeight(36)
        self.message = MessageLabel()

        form = QWidget()
        form.setObjectName("formColumn")
        col = QVBoxLayout(form)
        col.setContentsMargins(16, 14, 16, 14)
        col.setSpacing(6)
        col.addWidget(section_label("Model"))
        col.addWidget(self.model)
        col.addWidget(self.model_hint)
        col.addSpacing(8)
        col.addWidget(section_label("Prompt"))
        col.addWidget(self.prompt, 3)
        col.addWidget(self.system_section)
        col.addSpacing(8)
        col.addWidget(section_label("Sampling"))
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        rows = [
            ("Max tokens", self.max_tokens, "Temperature", self.temperature),
            ("Top-p", self.top_p, "Top-k", self.top_k),
            ("Repetition", self.repetition, None, None),
            ("Seed", self.seed, None, None),
            ("Stop at", self.stops, None, None),
        ]
        for r, (l1, w1, l2, w2) in enumerate(rows):
            grid.addWidget(QLabel(l1), r, 0)
            grid.addWidget(w1, r, 1, 1, 1 if w2 is not None else 3)
            if w2 is not None:
                grid.addWidget(QLabel(l2), r, 2)
                grid.addWidget(w2, r, 3)
        col.addLayout(grid)
        col.addStretch(1)
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.generate_button, 3)
        buttons.addWidget(self.continue_button, 2)
        buttons.addWidget(self.cancel_button, 2)
        col.addLayout(buttons)
        col.addWidget(self.message)

        scroll = _FormScroll()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

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
        self.progress = ProgressRow()

        page = QWidget()
        page.setObjectName("canvasColumn")
        right = QVBoxLayout(page)
        right.setContentsMargins(14, 14, 16, 14)
        right.setSpacing(10)
        right.addLayout(head)
        right.addWidget(self.view, 1)
        right.addWidget(self.progress)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(page)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([scroll.sizeHint().width(), 800])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

    @staticmethod
    def _float_box(low: float, high: float, step: float, decimals: int, value: float,
                   tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    def _connect(self) -> None:
        jobs = self.ctx.jobs
        jobs.job_started.connect(self._on_started)
        jobs.job_status.connect(self._on_status)
        jobs.job_progress.connect(self._on_progress)
        jobs.job_preview.connect(self._on_preview)
        jobs.job_finished.connect(self._on_finished)
        jobs.job_failed.connect(self._on_failed)
        jobs.job_cancelled.connect(self._on_cancelled)
        self.generate_button.clicked.connect(self.generate)
        self.continue_button.clicked.connect(self.continue_text)
        self.cancel_button.clicked.connect(self.cancel)
        self.copy_button.clicked.connect(self.copy_text)
        self.save_button.clicked.connect(self.save_text)
        self.art_button.clicked.connect(self.send_to_art)
        self.view.textChanged.connect(self._text_changed)
        self.model.model_changed.connect(self._model_changed)
        self._model_changed(self.model.current_model())
        self._text_changed()
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, slot in (("Ctrl+Return", self.generate), ("Ctrl+Enter", self.generate),
                           ("Ctrl+Shift+Return", self.continue_text),
                           ("Ctrl+Shift+Enter", self.continue_text)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(context)
            shortcut.activated.connect(slot)
        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.setContext(context)
        esc.activated.connect(self.cancel)

    # ------------------------------------------------------------------ the form
    def request(self) -> TextRequest:
        """The form as a request (validated by submit)."""
        return TextRequest(
            model=self.model.current_model(),
            prompt=self.prompt.toPlainText().strip(),
            system=self.system.toPlainText().strip(),
            seed=self.seed.value(),
            max_new_tokens=self.max_tokens.value(),
            temperature=round(self.temperature.value(), 3),
            top_p=round(self.top_p.value(), 3),
            top_k=self.top_k.value(),
            repetition_penalty=round(self.repetition.value(), 3),
            stop=parse_stops(self.stops.text()),
        )

    def apply_request(self, request: Request) -> None:
        """Fill the form from a request (a recipe, the gallery, a dropped file)."""
        if not isinstance(request, TextRequest):
            self.message.show_error(f"That recipe is for {request.kind or 'another'} "
                                    "generation, not for text.")
            return
        if request.model:
            self.model.set_model(request.model)
        self.prompt.setPlainText(request.prompt)
        self.system.setPlainText(request.system)
        self.system_section.set_expanded(bool(request.system.strip()))
        self.seed.set_value(request.seed)
        self.max_tokens.setValue(request.max_new_tokens)
        self.temperature.setValue(request.temperature)
        self.top_p.setValue(request.top_p)
        self.top_k.setValue(request.top_k)
        self.repetition.setValue(request.repetition_penalty)
        self.stops.setText(format_stops(request.stop))
        if request.continuation and self._job is None:
            self.view.setPlainText(request.continuation)
        self.message.show_info("Settings loaded from the recipe.")

    def _model_changed(self, model: str) -> None:
        if model == BUILTIN:
            self.model_hint.setText("Built in and offline. Its first use loads it (about "
                                    "20 s on a small CPU); then it stays in memory.")
        else:
            self.model_hint.setText("")
        self.model_hint.setVisible(bool(self.model_hint.text()))

    # ------------------------------------------------------------------ actions
    def generate(self) -> int | None:
        """Write a new text from the prompt (the view is cleared when it starts)."""
        return self._submit(continuation="")

    def continue_text(self) -> int | None:
        """Extend the text in the view (as edited) with the same prompt and settings."""
        text = self.view.toPlainText()
        if not text:
            self.message.show_info("Nothing to continue yet: generate a text first.")
            return None
        return self._submit(continuation=text)

    def _submit(self, continuation: str) -> int | None:
        if self._job is not None:
            self.message.show_info("Still writing: cancel first, or wait for it to finish.")
            return None
        try:
            request = self.request().replace(continuation=continuation)
            request = request.resolved()  # the seed is known here, for Save after a cancel
            job_id = self.ctx.jobs.submit(request)
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        except ValueError as exc:
            self.message.show_error(str(exc).splitlines()[0])
            return None
        self.message.clear_message()
        self._job = job_id
        self._request = request
        self._base = continuation
        self._streamed = 0
        self._tokens = self._total = 0
        self._rate = 0.0
        self._partial = False
        self._started_at = time.perf_counter()
        if not continuation:
            self.view.clear()
        self._set_busy(True)
        self.progress.start("Queued…")
        return job_id

    def cancel(self) -> None:
        """Stop the running job; the text written so far stays in the view."""
        if self._job is not None:
            self.ctx.jobs.cancel(self._job)

    def busy(self) -> bool:
        return self._job is not None

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
        if not text:
            self.message.show_info("Nothing to send yet: generate a text first.")
            return
        self.ctx.prompt_for_art.emit(text)
        self.message.show_info("Sent to the Art panel's prompt.")

    def save_text(self) -> None:
        """Save the view's text as a new .md output with its recipe (off the GUI thread)."""
        text = self.view.toPlainText()
        if not text:
            self.message.show_info("Nothing to save yet.")
            return
        if self._job is not None:
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
        out_dir = self.ctx.settings.output_path
        history = self.ctx.history

        def save() -> list[Path]:
            from studio.core.outputs import save_result

            paths = save_result(result, out_dir)
            if history is not None:
                for path in paths:
                    history.add_output(path, result)
            return paths

        self.save_button.setEnabled(False)
        run_in_pool(save, lambda paths: self._saved(text, paths), on_failed=self._save_failed)

    def _saved(self, text: str, paths: list[Path]) -> None:
        self._update_buttons()
        if paths:
            self._saved_text, self._saved_path = text, Path(paths[0])
            self._partial = False
            self.message.show_info(f"Saved as {self._saved_path.name}.")

    def _save_failed(self, message: str) -> None:
        self._update_buttons()
        self.message.show_error(f"Could not save: {message}")

    # ------------------------------------------------------------------ job signals
    def _on_started(self, job_id: int, _request: object) -> None:
        if job_id == self._job:
            self.progress.start("Starting…")

    def _on_status(self, job_id: int, text: str) -> None:
        if job_id == self._job:
            self.progress.set_status(text)

    def _on_progress(self, job_id: int, progress: Progress) -> None:
        if job_id != self._job:
            return
        total = max(1, progress.total)
        self.progress.bar.setRange(0, total)
        self.progress.bar.setValue(min(progress.step, total))
        self._tokens, self._total = progress.step, progress.total
        if self.progress.status.text() != "Writing…":
            self.progress.set_status("Writing…")
        self._show_stats(progress.total)

    def _on_preview(self, job_id: int, preview: Preview) -> None:
        if job_id != self._job or preview.kind != "text" or not preview.data:
            return
        rate = preview.info.get("tokens_per_s") if isinstance(preview.info, dict) else None
        if isinstance(rate, (int, float)):
            self._rate = float(rate)
        self._tokens = max(self._tokens, preview.step)
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

    def _on_finished(self, job_id: int, result: Result, paths: list) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._set_busy(False)
        full = self._base + result.text
        if self.view.toPlainText() != full:  # streamed text is the final text; just in case
            self.view.setPlainText(full)
            self.view.moveCursor(QTextCursor.MoveOperation.End)
        self._request = result.request if isinstance(result.request, TextRequest) else None
        info = result.info if isinstance(result.info, dict) else {}
        seed = getattr(result.request, "seed", -1)
        if isinstance(seed, int) and seed >= 0:
            self.seed.set_last_seed(seed)
        paths = [Path(p) for p in paths]
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

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._set_busy(False)
        self.progress.reset("Failed.")
        self.message.show_error(message)

    def _on_cancelled(self, job_id: int) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._partial = self._streamed > 0
        self._set_busy(False)
        kept = " — the text so far is kept (not saved; Save keeps it)" if self._partial else ""
        self.progress.reset(f"Cancelled{kept}.")
        if self._tokens:
            self._show_stats(self._total or self.max_tokens.value())

    # ------------------------------------------------------------------ state
    def _set_busy(self, busy: bool) -> None:
        self.view.setReadOnly(busy)
        self.view.setProperty("busy", "true" if busy else "false")
        self.view.style().unpolish(self.view)
        self.view.style().polish(self.view)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self._job is not None
        has_text = bool(self.view.toPlainText())
        self.generate_button.setEnabled(not busy)
        self.continue_button.setEnabled(not busy and has_text)
        self.cancel_button.setEnabled(busy)
        self.copy_button.setEnabled(has_text)
        self.save_button.setEnabled(has_text and not busy)
        self.art_button.setEnabled(has_text)

    def _text_changed(self) -> None:
        text = self.view.toPlainText()
        words = len(text.split())
        self.count_label.setText(f"{words} words" if text else "")
        if self._job is None or (text and not self.copy_button.isEnabled()):
            self._update_buttons()
