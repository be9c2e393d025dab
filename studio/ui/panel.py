"""The skeleton every generate panel shares: form column, prompt box, action row, job life.

A panel is a form on the left (model, prompt, its own fields, scrolling when the window
is short) with the Generate / Cancel / Cancel all row pinned under it, and whatever the
panel shows on the right. The base owns the parts that were once written per panel:
the JobTracker and its signals, Ctrl+Enter and Esc, turning a bad field into the one
sentence under the buttons, remembering the seed of a finished job, and the finish line
in the progress row. Subclasses build their own fields and canvas and react to the
`on_*` hooks.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut, QTextOption
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLayout,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import Request
from studio.core.results import Preview, Progress, Result
from studio.core.text import first_line
from studio.runtime.context import AppContext
from studio.runtime.tokens import TokenCounter
from studio.runtime.tracker import JobTracker
from studio.ui.widgets import MessageLabel, ModelPicker, ProgressRow, SeedField, section_label

#: an unbroken run this long is laid out with "wrap anywhere": word-boundary wrapping of one
#: huge word costs time quadratic in its length (a pasted 1 MB token froze the window).
LONG_RUN = re.compile(r"\S{400,}")


class PromptEdit(QPlainTextEdit):
    """A multi-line prompt box: Tab moves focus on; a pasted text of any length appears at
    once (long unbroken runs wrap anywhere instead of at word boundaries).

    For CLIP models it shows A1111's token counter in its corner ("23/75", "80/150": the
    tokens and the limit of the 75-token chunks they fill) and, in `note` (a label the
    panel lays out under the box), why part of the prompt is read as literal text."""

    def __init__(self, placeholder: str, lines: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.textChanged.connect(self._emptied)
        self.counter = QLabel(self)
        self.counter.setObjectName("muted")
        self.counter.setToolTip("Tokens / limit: CLIP reads the prompt in chunks of 75 tokens")
        self.counter.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.counter.hide()
        self.note = QLabel()
        self.note.setObjectName("warning")
        self.note.setProperty("active", "true")
        self.note.setWordWrap(True)
        self.note.hide()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, self.minimumHeight())

    def show_count(self, count: Any) -> None:
        """Show a token count (a runtime.tokens.TokenCount), or hide the counter (None)."""
        if count is None:
            self.counter.hide()
            self.note.hide()
            return
        self.counter.setText(count.text)
        self.counter.adjustSize()
        self._place_counter()
        self.counter.show()
        self.counter.raise_()
        warned = " ".join(count.warnings)
        self.note.setText(f"⚠ {warned}" if warned else "")
        self.note.setVisible(bool(warned))

    def _place_counter(self) -> None:
        frame = self.frameWidth()
        bar = self.verticalScrollBar()
        right = bar.width() if bar.isVisible() else 0
        self.counter.move(self.width() - self.counter.width() - right - frame - 6, frame + 2)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.counter.isVisible():
            self._place_counter()

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 - Qt API
        if source.hasText() and LONG_RUN.search(source.text()):
            self._wrap_anywhere(True)  # before the text goes in: it is laid out once
        super().insertFromMimeData(source)

    def setPlainText(self, text: str) -> None:  # noqa: N802 - Qt API
        long = LONG_RUN.search(text) is not None
        if long:
            self._wrap_anywhere(True)
        super().setPlainText(text)
        if not long:  # after the old text is gone: re-wrapping it at words would take minutes
            self._wrap_anywhere(False)

    def _wrap_anywhere(self, on: bool) -> None:
        mode = (QTextOption.WrapMode.WrapAnywhere if on
                else QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        if self.wordWrapMode() != mode:
            self.setWordWrapMode(mode)

    def _emptied(self) -> None:
        if self.document().isEmpty():  # cheap per keystroke: no text is read
            self._wrap_anywhere(False)


class FormScroll(QScrollArea):
    """A vertical-only scroll area that is never narrower than the form inside it."""

    def __init__(self, form: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setWidget(form)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 300
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(width + bar + 2 * self.frameWidth(), 200)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(max(self.minimumSizeHint().width(), 380), 600)


def action_button(text: str, tip: str, *, primary: bool = False) -> QPushButton:
    """A tall button of the action row."""
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setMinimumHeight(36)
    if primary:
        button.setObjectName("primary")
    return button


def list_with_buttons(items: QWidget, buttons: Sequence[QWidget]) -> QHBoxLayout:
    """A list (results, pieces) with its buttons stacked at its right."""
    side = QVBoxLayout()
    side.setSpacing(6)
    for button in buttons:
        side.addWidget(button)
    side.addStretch(1)
    row = QHBoxLayout()
    row.setSpacing(10)
    row.addWidget(items, 1)
    row.addLayout(side)
    return row


def canvas_column(parts: Sequence[QWidget | QLayout | tuple[QWidget, int]], *,
                  spacing: int = 10) -> QWidget:
    """The right-hand column of a panel: widgets (with a stretch when given) and layouts."""
    canvas = QWidget()
    canvas.setObjectName("canvasColumn")
    col = QVBoxLayout(canvas)
    col.setContentsMargins(14, 14, 16, 14)
    col.setSpacing(spacing)
    for part in parts:
        if isinstance(part, tuple):
            col.addWidget(part[0], part[1])
        elif isinstance(part, QWidget):
            col.addWidget(part)
        else:
            col.addLayout(part)
    return canvas


def reveal_folder(folder: Path) -> None:
    """Show a folder in the file manager (created first, so there is something to show)."""
    folder.mkdir(parents=True, exist_ok=True)
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def form_with_actions(form_scroll: QWidget, buttons: Sequence[tuple[QWidget, int]],
                      below: Sequence[QWidget]) -> QWidget:
    """The left column of a panel: the scrolling form, and under it the action row (each
    button with its stretch) and the lines below it, pinned so they stay in sight however
    short the window (the generate panels and the Lab)."""
    actions = QWidget()
    actions.setObjectName("formColumn")
    row = QHBoxLayout()
    row.setSpacing(8)
    for button, stretch in buttons:
        row.addWidget(button, stretch)
    col = QVBoxLayout(actions)
    col.setContentsMargins(16, 8, 16, 14)
    col.setSpacing(6)
    col.addLayout(row)
    for widget in below:
        col.addWidget(widget)
    left = QWidget()
    left_col = QVBoxLayout(left)
    left_col.setContentsMargins(0, 0, 0, 0)
    left_col.setSpacing(0)
    left_col.addWidget(form_scroll, 1)
    left_col.addWidget(actions)
    return left


class GeneratePanel(QWidget):
    """Base of the Art, Music and Text panels (see the module docstring).

    Subclasses set the class attributes, build their fields into `self.form` (a column
    that already holds the model picker and the prompt), call `assemble(canvas)` once,
    and implement `request()` and `fill(request)`.
    """

    modality: ClassVar[str] = ""  # the ModelPicker's modality
    noun: ClassVar[str] = ""  # "That recipe is for … generation, not for {noun}."
    request_type: ClassVar[type[Request]] = Request
    prompt_placeholder: ClassVar[str] = "Describe it… (Ctrl+Enter generates)"
    prompt_lines: ClassVar[int] = 4
    model_tip: ClassVar[str] = ""
    #: False: one job at a time (Generate is off while one runs); True: clicking queues more
    queues: ClassVar[bool] = True
    busy_message: ClassVar[str] = "Still working: cancel first, or wait for it to finish."
    cancelled_text: ClassVar[str] = "Cancelled."

    submitted = Signal(int)  # the id of a job this panel queued

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs = JobTracker(ctx.jobs, self)  # this panel's jobs and their signals
        self._started_at = 0.0
        self.model = ModelPicker(ctx, self.modality)
        self.model.setToolTip(self.model_tip)
        self.model_hint = QLabel("")
        self.model_hint.setObjectName("muted")
        self.model_hint.setWordWrap(True)
        self.model_hint.hide()
        self.prompt = PromptEdit(self.prompt_placeholder, self.prompt_lines)
        self.seed = SeedField()
        self.progress = ProgressRow()
        self.message = MessageLabel()
        self.generate_button = action_button(
            "Generate", "Generate (Ctrl+Enter). Clicking again queues more." if self.queues
            else "Generate (Ctrl+Enter)", primary=True)
        self.cancel_button = action_button(
            "Cancel", "Stop the running job; the waiting ones still run (Esc)")
        self.cancel_all_button = action_button(
            "Cancel all", "Stop the running job and drop this panel's waiting ones")
        if not self.queues:  # hide only: showing it before it has a parent opens a window
            self.cancel_all_button.hide()

        self.form_widget = QWidget()
        self.form_widget.setObjectName("formColumn")
        self.form = QVBoxLayout(self.form_widget)
        self.form.setContentsMargins(16, 14, 16, 14)
        self.form.setSpacing(6)
        self.form.addWidget(section_label("Model"))
        self.form.addWidget(self.model)
        self.form.addWidget(self.model_hint)
        self.form.addSpacing(8)
        self.form.addWidget(section_label("Prompt"))
        self.form.addWidget(self.prompt, 3)
        self.form.addWidget(self.prompt.note)
        self.tokens = TokenCounter(parent=self)  # the prompt boxes' counters (CLIP models)
        self.tokens.counted.connect(self._show_count)
        self._prompt_boxes: dict[str, PromptEdit] = {}

        jobs = self.jobs
        jobs.started.connect(self._job_started)
        jobs.status.connect(lambda _id, text: self.progress.set_status(text))
        jobs.progress.connect(self.on_progress)
        jobs.preview.connect(self.on_preview)
        jobs.finished.connect(self._job_finished)
        jobs.failed.connect(self.on_failed)
        jobs.cancelled.connect(self.on_cancelled)
        jobs.changed.connect(self.update_buttons)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_all_button.clicked.connect(self.cancel_all)
        self.model.model_changed.connect(self.on_model_changed)
        self.add_shortcut("Ctrl+Return", self.generate)
        self.add_shortcut("Ctrl+Enter", self.generate)
        self.add_shortcut(Qt.Key.Key_Escape, self.cancel)

    # ------------------------------------------------------------------ layout
    def add_shortcut(self, keys: str | Qt.Key, slot) -> QShortcut:
        """A shortcut that works wherever the focus is inside this panel."""
        shortcut = QShortcut(QKeySequence(keys), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)
        return shortcut

    def assemble(self, canvas: QWidget, *, extra_actions: Sequence[QPushButton] = (),
                 form_width: int = 380) -> None:
        """Lay the panel out: the scrolling form | the canvas, with the action row pinned
        under the form so Generate stays in sight however short the window."""
        self.form.addStretch(1)
        self.form_scroll = FormScroll(self.form_widget)
        row = [(self.generate_button, 3), *((b, 2) for b in extra_actions),
               (self.cancel_button, 1 if self.queues else 2), (self.cancel_all_button, 1)]
        left = form_with_actions(self.form_scroll, row, [self.message])

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(canvas)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(form_width, self.form_scroll.sizeHint().width()), 820])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)
        for i, box in enumerate(self.findChildren(PromptEdit)):
            key = f"prompt-{i}"
            self._prompt_boxes[key] = box
            box.textChanged.connect(lambda key=key: self._count_tokens(key))
        self.model.model_changed.connect(lambda _model: self._count_tokens())
        self.on_model_changed(self.model.current_model())
        self._count_tokens()
        self.update_buttons()

    # ------------------------------------------------------------------ token counters
    def _count_tokens(self, key: str | None = None) -> None:
        """Recount one prompt box (after an edit) or all of them (another model), off
        the GUI thread and a moment after the typing stops."""
        model = self.model.current_model()
        entry = next((e for e in self.ctx.models if e.id == model), None)
        keys = [key] if key is not None else list(self._prompt_boxes)
        for name in keys:
            self.tokens.count(name, self._prompt_boxes[name].toPlainText(), entry)

    def _show_count(self, key: str, count: object) -> None:
        box = self._prompt_boxes.get(key)
        if box is not None:
            box.show_count(count)

    # ------------------------------------------------------------------ the form
    def request(self) -> Request:
        """The form as a request (not yet validated: submit() does that)."""
        raise NotImplementedError

    def common_values(self) -> dict[str, object]:
        """The model, prompt and seed every request has, as the form shows them."""
        return {"model": self.model.current_model(),
                "prompt": self.prompt.toPlainText().strip(), "seed": self.seed.value()}

    def fill(self, request: Request) -> None:
        """Set this panel's own fields from a request of its kind (model, prompt and seed
        are already set)."""
        raise NotImplementedError

    def apply_request(self, request: Request) -> None:
        """Fill the form from a request (a recipe, the gallery, a dropped file)."""
        if not isinstance(request, self.request_type):
            self.message.show_error(f"That recipe is for {request.kind or 'another'} "
                                    f"generation, not for {self.noun}.")
            return
        if request.model:
            self.model.set_model(request.model)
        self.prompt.setPlainText(request.prompt)
        self.seed.set_value(request.seed)
        self.fill(request)
        self.message.show_info("Settings loaded from the recipe.")

    def on_model_changed(self, model: str) -> None:
        """The model choice changed: grey out what its family does not read."""
        self.grey_out_unused(model)

    def optional_widgets(self) -> dict[str, Sequence[QWidget]]:
        """Request field → the widgets (field and label) that show it, for the fields only
        some families read (override)."""
        return {}

    def grey_out_unused(self, model: str) -> list[str]:
        """Disable the optional widgets whose field the model's family does not read (as
        its descriptor says; an unknown model reads everything); returns those fields."""
        entry = next((e for e in self.ctx.models if e.id == model), None)
        family = entry.descriptor if entry is not None else None
        widgets = self.optional_widgets()
        unused = [n for n in widgets if family is not None and not family.applies(n)]
        for name, shown in widgets.items():
            for widget in shown:
                widget.setEnabled(name not in unused)
        return unused

    # ------------------------------------------------------------------ actions
    def generate(self) -> int | None:
        """Queue the form as a job; a bad field is reported under the buttons."""
        return self.submit(self.request())

    def submit(self, request: Request, **options: Any) -> int | None:
        """Queue `request` (`options` go to the queue, e.g. save=False): the job id, or None
        with the one sentence shown for a bad field."""
        if not self.queues and self.jobs.busy():
            self.message.show_info(self.busy_message)
            return None
        try:
            job_id = self.jobs.submit(request, **options)
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        except ValueError as exc:  # a value the widgets let through but the request refuses
            self.message.show_error(first_line(exc))
            return None
        self.message.clear_message()
        self.submitted.emit(job_id)
        if self.jobs.current is None:
            self.progress.start("Queued…")
        return job_id

    def cancel(self) -> None:
        """Stop the running job (A1111's Interrupt); the waiting ones still run."""
        self.jobs.cancel_current()

    def cancel_all(self) -> None:
        """Stop the running job and drop this panel's waiting ones."""
        self.jobs.cancel_all()

    def busy(self) -> bool:
        return self.jobs.busy()

    def update_buttons(self) -> None:
        """Enable what applies now; Generate shows how many jobs wait behind the running one."""
        busy = self.jobs.busy()
        waiting = self.jobs.waiting
        self.cancel_button.setEnabled(busy)
        self.cancel_all_button.setEnabled(busy)
        if self.queues:
            self.generate_button.setText(
                f"Generate  (+{waiting} queued)" if waiting else "Generate")
        else:
            self.generate_button.setEnabled(not busy)

    def took(self) -> float:
        """Seconds since the running (or last) job started."""
        return time.perf_counter() - self._started_at

    def finish_line(self, head: str, seed: object, paths: Sequence[Path]) -> str:
        """"{head} · seed S · saved NAME": the progress row's last word on a finished job."""
        where = f" · saved {Path(paths[0]).name}" if paths else ""
        return f"{head} · seed {seed}{where}"

    # ------------------------------------------------------------------ job hooks
    def _job_started(self, job_id: int, request: Request) -> None:
        self._started_at = time.perf_counter()
        self.progress.start("Starting…")
        self.on_started(job_id, request)

    def _job_finished(self, job_id: int, result: Result, paths: list) -> None:
        seed = getattr(result.request, "seed", -1)
        if isinstance(seed, int) and seed >= 0:
            self.seed.set_last_seed(seed)
        self.on_finished(job_id, result, [Path(p) for p in paths])

    def on_started(self, job_id: int, request: Request) -> None:
        """A job of this panel began running (the progress row already says so)."""

    def on_progress(self, job_id: int, progress: Progress) -> None:
        self.progress.set_progress(progress)

    def on_preview(self, job_id: int, preview: Preview) -> None:
        """A live preview of the running job."""

    def on_finished(self, job_id: int, result: Result, paths: list[Path]) -> None:
        """A job finished and was saved to `paths` (its seed is already remembered)."""

    def on_failed(self, job_id: int, message: str) -> None:
        self.progress.reset("Failed.")
        self.message.show_error(message)

    def on_cancelled(self, job_id: int, was_running: bool) -> None:
        if was_running or not self.jobs.busy():
            self.progress.reset(self.cancelled_text)
