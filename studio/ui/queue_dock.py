"""The Queue dock: the running job and those waiting, each with its own cancel button,
then the last few finished jobs.

It reads the queue's state (running(), pending()) whenever queue_changed fires
and follows the running job's progress; it never touches the worker directly.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.requests import Request
from studio.core.results import Progress
from studio.runtime.jobs import Job
from studio.ui.images import fit_square, qimage_from_array
from studio.ui.widgets import ElidedLabel, close_icon, format_duration, reuse_icon

KIND_LABELS = {"image": "Art", "music": "Music", "text": "Text", "explore": "Explore"}
THUMB_PX = 40  # a finished picture job's thumbnail in its row


def describe_request(request: object) -> str:
    """What tells one job from the next with the same prompt: seed, then size / length /
    token budget ("seed 42 · 512 × 768 · 4 images", "random seed · 10 s", "seed 7 · 256 tokens")."""
    seed = getattr(request, "seed", -1)
    parts = ["random seed" if not isinstance(seed, int) or seed < 0 else f"seed {seed}"]
    kind = getattr(request, "kind", "")
    if kind == "image":
        parts.append(f"{getattr(request, 'width', '?')} × {getattr(request, 'height', '?')}")
        batch = getattr(request, "batch_size", 1)
        if isinstance(batch, int) and batch > 1:
            parts.append(f"{batch} images")
    elif kind == "music":
        duration = getattr(request, "duration", None)
        if isinstance(duration, (int, float)):
            parts.append(f"{duration:g} s")
    elif kind == "text":
        tokens = getattr(request, "max_new_tokens", None)
        if isinstance(tokens, int):
            parts.append(f"{tokens} tokens")
    return " · ".join(parts)


def result_thumbnail(result: object, size: int = THUMB_PX) -> QImage | None:
    """The first picture of a finished job as a small square tile; None for sound and text."""
    images = getattr(result, "images", None) or []
    if not images:
        return None
    try:
        return fit_square(qimage_from_array(images[0]), size)
    except ValueError:  # not a picture array
        return None


def short_model(model: str) -> str:
    """A folder or file name for a model path; ids like builtin:faces stay as they are."""
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or model


def model_label(ctx, model: str) -> str:
    """The catalog's name for a model id (what the pickers show), else its short name."""
    for entry in getattr(ctx, "models", ()):
        if entry.id == model:
            return entry.name
    return short_model(model)


class JobRow(QWidget):
    """One job: what it is, its state, a progress bar while running, and its button
    (✕ cancels or removes an active job; ↺ loads a finished job's settings again)."""

    cancel_clicked = Signal(int)
    reuse_clicked = Signal(int)

    def __init__(self, job_id: int, request, model_name: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.running = False
        self.finished = False
        kind = KIND_LABELS.get(getattr(request, "kind", ""), "Job")
        name = model_name or short_model(getattr(request, "model", ""))
        self.title = ElidedLabel(f"{kind} · {name}")
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.details = ElidedLabel(describe_request(request))
        self.details.setObjectName("muted")
        self.thumb = QLabel()
        self.thumb.setFixedSize(THUMB_PX, THUMB_PX)
        self.thumb.hide()
        self.state = QLabel()
        self.state.setObjectName("muted")
        prompt = (getattr(request, "prompt", "") or "").strip().replace("\n", " ")
        self.prompt = ElidedLabel(prompt or "(no prompt)")
        self.prompt.setObjectName("muted")
        self.prompt.setToolTip(prompt)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(4)
        self.button = QToolButton()
        self.button.setIcon(close_icon())
        self.button.setAutoRaise(True)
        self.button.clicked.connect(self._clicked)
        bottom = QHBoxLayout()
        bottom.setSpacing(8)
        bottom.addWidget(self.state)
        bottom.addWidget(self.bar, 1, Qt.AlignmentFlag.AlignVCenter)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.prompt)
        text.addWidget(self.details)
        text.addLayout(bottom)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 7, 4, 7)
        row.setSpacing(6)
        row.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)

    def _clicked(self) -> None:
        if self.finished:
            self.reuse_clicked.emit(self.job_id)
        else:
            self.cancel_clicked.emit(self.job_id)

    def set_running(self, running: bool, position: int) -> None:
        self.running = running
        self.bar.setVisible(running)
        if running:
            self.bar.setRange(0, 0)
            self.state.setText("Running")
            self.button.setToolTip("Cancel this job (nothing is saved)")
        else:
            self.state.setText(f"Waiting · #{position}")
            self.button.setToolTip("Remove from the queue")

    def set_finished(self, state: str, detail: str = "") -> None:
        self.finished = True
        self.running = False
        self.bar.hide()
        self.state.setText(state)
        self.state.setToolTip(detail)
        self.button.setIcon(reuse_icon())
        self.button.setToolTip("Load this job's settings again")
        self.title.setEnabled(False)

    def set_thumbnail(self, image: QImage | None) -> None:
        """Show a finished job's picture beside it (nothing for sound and text)."""
        if image is None or image.isNull():
            self.thumb.hide()
            return
        self.thumb.setPixmap(QPixmap.fromImage(image))
        self.thumb.show()

    def set_progress(self, progress: Progress) -> None:
        self.bar.setRange(0, max(1, progress.total))
        self.bar.setValue(progress.step)
        pct = round(100 * progress.step / max(1, progress.total))
        self.state.setText(f"Running · {pct}%")


@dataclass
class Finished:
    """A job that ended, as the Recent list shows it."""

    job_id: int
    request: Request
    state: str  # "Done · 1.2 s", "Failed", "Cancelled"
    detail: str = ""
    thumb: QImage | None = None  # its first picture, for image jobs that finished


class QueueDock(QDockWidget):
    """Running + pending jobs with per-job cancel/remove, Cancel all and Clear queue,
    then the last few finished jobs (Recent), each able to load its settings again."""

    RECENT = 8

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__("Queue", parent)
        self.ctx = ctx
        self.setObjectName("QueueDock")
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QLabel("No jobs waiting.\nWhat you generate lines up here.")
        self.empty.setObjectName("muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cancel_all_button = QPushButton("Cancel all")
        self.cancel_all_button.setToolTip("Stop the running job and empty the queue")
        self.clear_button = QPushButton("Clear queue")
        self.clear_button.setToolTip("Remove the waiting jobs; the running one carries on")
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.cancel_all_button)
        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(8, 4, 8, 8)
        col.setSpacing(6)
        col.addWidget(self.list, 1)
        col.addWidget(self.empty, 1)
        col.addLayout(buttons)
        self.setWidget(body)
        self.setMinimumWidth(240)
        self.rows: dict[int, JobRow] = {}  # active jobs (running, waiting)
        self.recent: deque[Finished] = deque(maxlen=self.RECENT)
        self.recent_rows: dict[int, JobRow] = {}
        self._requests: dict[int, Request] = {}  # what each active job asked for
        self._started: dict[int, float] = {}
        self._shown: list[object] = []
        jobs = ctx.jobs
        jobs.queue_changed.connect(self.rebuild)
        jobs.job_started.connect(self._on_started)
        jobs.job_progress.connect(self._progress)
        jobs.job_finished.connect(self._on_finished)
        jobs.job_failed.connect(lambda i, msg: self._ended(i, "Failed", msg))
        jobs.job_cancelled.connect(lambda i: self._ended(i, "Cancelled"))
        self.cancel_all_button.clicked.connect(jobs.cancel_all)
        self.clear_button.clicked.connect(self.clear_queue)
        self.rebuild()

    def visible_jobs(self) -> list[tuple[Job, bool]]:
        """(job, running) for the rows shown: explorer drags are too brief to list."""
        out: list[tuple[Job, bool]] = []
        running = self.ctx.jobs.running()
        if running is not None and running.request is not None and running.lane != "explore":
            out.append((running, True))
        out.extend((j, False) for j in self.ctx.jobs.pending() if j.lane != "explore")
        return out

    def _add_row(self, row: JobRow, key: object) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setFlags(Qt.ItemFlag.NoItemFlags | Qt.ItemFlag.ItemIsEnabled)
        item.setSizeHint(row.sizeHint())
        self.list.addItem(item)
        self.list.setItemWidget(item, row)

    def rebuild(self) -> None:
        jobs = self.visible_jobs()
        for job, _running in jobs:
            self._requests[job.id] = job.request
        shown: list[object] = [j.id for j, _ in jobs] + [("done", f.job_id) for f in self.recent]
        if shown != self._shown:
            self._shown = shown
            self.list.clear()
            self.rows, self.recent_rows = {}, {}
            for job, running in jobs:
                row = JobRow(job.id, job.request, model_label(self.ctx, job.request.model))
                row.set_running(running, 0)
                row.cancel_clicked.connect(self._cancel)
                self._add_row(row, job.id)
                self.rows[job.id] = row
            if self.recent:
                header = QLabel("Recent")
                header.setObjectName("sectionLabel")
                header.setContentsMargins(10, 10, 0, 2)
                item = QListWidgetItem()
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setSizeHint(header.sizeHint())
                self.list.addItem(item)
                self.list.setItemWidget(item, header)
            for done in reversed(self.recent):
                row = JobRow(done.job_id, done.request, model_label(self.ctx, done.request.model))
                row.set_finished(done.state, done.detail)
                row.set_thumbnail(done.thumb)
                row.reuse_clicked.connect(self._reuse)
                self._add_row(row, ("done", done.job_id))
                self.recent_rows[done.job_id] = row
        position = 1
        for job, running in jobs:
            row = self.rows[job.id]
            if running and row.running:
                continue
            row.set_running(running, position)
            if not running:
                position += 1
        n_pending = sum(1 for _j, r in jobs if not r)
        self.list.setVisible(bool(jobs) or bool(self.recent))
        self.empty.setVisible(not jobs and not self.recent)
        self.clear_button.setEnabled(n_pending > 0)
        self.cancel_all_button.setEnabled(bool(jobs))
        self.setWindowTitle("Queue" if not jobs else f"Queue ({len(jobs)})")

    # ------------------------------------------------------------------ job signals
    def _on_started(self, job_id: int, request: Request) -> None:
        self._started[job_id] = time.perf_counter()
        self._requests.setdefault(job_id, request)
        self.rebuild()

    def _progress(self, job_id: int, progress: Progress) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            if not row.running:
                row.set_running(True, 0)
            row.set_progress(progress)

    def _on_finished(self, job_id: int, result, _paths: list) -> None:
        took = time.perf_counter() - self._started.get(job_id, time.perf_counter())
        took_text = f"{took:.1f} s" if took < 60 else format_duration(took)
        request = getattr(result, "request", None)  # with the seed it really used
        thumb = None
        if job_id in self._requests and getattr(request, "kind", "") != "explore":
            thumb = result_thumbnail(result)
        self._ended(job_id, f"Done · {took_text}", request=request, thumb=thumb)

    def _ended(self, job_id: int, state: str, detail: str = "",
               request: Request | None = None, thumb: QImage | None = None) -> None:
        request = request or self._requests.get(job_id)
        self._requests.pop(job_id, None)
        self._started.pop(job_id, None)
        if request is None or getattr(request, "kind", "") == "explore":
            return  # not a job this dock listed
        self.recent.append(Finished(job_id, request, state, detail, thumb))
        self.rebuild()

    # ------------------------------------------------------------------ actions
    def _cancel(self, job_id: int) -> None:
        row = self.rows.get(job_id)
        if row is not None and not row.running:
            self.ctx.jobs.remove(job_id)
        else:
            self.ctx.jobs.cancel(job_id)

    def _reuse(self, job_id: int) -> None:
        done = next((f for f in self.recent if f.job_id == job_id), None)
        if done is not None:
            self.ctx.use_recipe(done.request)
    def clear_queue(self) -> None:
        for job in list(self.ctx.jobs.pending()):
            if job.lane != "explore":
                self.ctx.jobs.remove(job.id)
