"""The Lab tab: pick what to train and on what, check the data, train, watch it learn.

The left column is the form (`form.TrainForm`), the data check's report and the run's
buttons; the right column the live loss curves, the samples strip and the list of runs.
Training runs in a child process driven by `runtime.training.TrainingRun`; the data check
and the runs list are read off the GUI thread, so nothing here ever waits.

Start is enabled only once a data check of the current recipe, folder, base and resolution
passed; changing any of them checks again (by itself, a moment after the change).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import ImageRequest, MusicRequest, Request, TextRequest
from studio.core.results import Progress
from studio.core.text import first_line
from studio.core.training import RECIPES, DataReport, Overfit, RunPaths, StepRecord, TrainConfig
from studio.runtime import training as lab
from studio.runtime.context import AppContext
from studio.runtime.tasks import Task, run_in_pool
from studio.ui.lab.curves import LossPlot
from studio.ui.lab.form import TrainForm
from studio.ui.lab.runs import RunsList
from studio.ui.lab.samples import SamplesStrip
from studio.ui.panel import FormScroll, action_button, form_with_actions
from studio.ui.widgets import MessageLabel, ProgressRow, guarded, section_label

log = logging.getLogger(__name__)

CHECK_DELAY_MS = 400  # a data check starts this long after the folder/recipe/base changed
ACTIVE = ("starting", "running", "paused")
STATE_TEXT = {"starting": "Starting…", "running": "Training…", "paused": "Paused",
              "stopped": "Stopped: the last checkpoint is kept.", "finished": "Finished",
              "failed": "Failed"}


class LabPanel(QWidget):
    """The Lab: one training driven from here at a time; every past run listed."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.run: lab.TrainingRun | None = None  # the run this window drives (None: none yet)
        self.train_args: list[str] = []  # more `studio train` flags (tests: "--threads 1")
        self.report: DataReport | None = None  # the last data check that passed
        self._checked: tuple[str, str, str, int] | None = None  # the _source() it was for
        self._check_task: Task | None = None
        self._shown = ""  # the run whose curves and samples are on screen

        # ---- left: the form, the data check, the buttons
        self.form = TrainForm(ctx)
        self.check_button = QPushButton("Check data")
        self.check_button.setToolTip("Count what the folder holds and what will be skipped "
                                     "(the folder is only read)")
        self.report_label = QLabel("")
        self.report_label.setObjectName("muted")
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.check_message = MessageLabel()
        form_widget = QWidget()
        form_widget.setObjectName("formColumn")
        form_col = QVBoxLayout(form_widget)
        form_col.setContentsMargins(16, 14, 16, 14)
        form_col.setSpacing(6)
        form_col.addWidget(self.form)
        form_col.addSpacing(6)
        form_col.addWidget(section_label("Data check"))
        check_row = QHBoxLayout()
        check_row.addWidget(self.check_button)
        check_row.addStretch(1)
        form_col.addLayout(check_row)
        form_col.addWidget(self.report_label)
        form_col.addWidget(self.check_message)
        form_col.addStretch(1)
        self.form_scroll = FormScroll(form_widget)

        self.start_button = action_button("Start", "Start training (after the data check)",
                                          primary=True)
        self.pause_button = action_button("Pause", "Pause between two steps (nothing is lost)")
        self.resume_button = action_button("Resume", "Go on from where it paused")
        self.stop_button = action_button(
            "Stop", "Stop and keep the last checkpoint; the model is still exported")
        self.progress = ProgressRow()
        self.message = MessageLabel()
        left = form_with_actions(
            self.form_scroll, [(self.start_button, 2), (self.pause_button, 1),
                               (self.resume_button, 1), (self.stop_button, 1)],
            [self.progress, self.message])

        # ---- right: curves (+ the overfitting offer), samples, runs
        self.plot = LossPlot()
        self.plot_title = section_label("Loss")
        self.offer = QLabel("")
        self.offer.setObjectName("warning")
        self.offer.setProperty("active", True)
        self.offer.setWordWrap(True)
        self.offer_button = QPushButton("Stop and keep the best")
        self.offer_button.setToolTip("Stop now and export the checkpoint where validation "
                                     "loss was lowest")
        offer_row = QHBoxLayout()
        offer_row.setContentsMargins(0, 0, 0, 0)
        offer_row.addWidget(self.offer, 1)
        offer_row.addWidget(self.offer_button)
        self.offer_box = QWidget()
        self.offer_box.setLayout(offer_row)
        self.offer_box.hide()
        curves = QWidget()
        curves_col = QVBoxLayout(curves)
        curves_col.setContentsMargins(12, 10, 12, 4)
        curves_col.setSpacing(4)
        curves_col.addWidget(self.plot_title)
        curves_col.addWidget(self.plot, 1)
        curves_col.addWidget(self.offer_box)
        curves_col.addWidget(section_label("Samples"))
        self.strip = SamplesStrip()
        curves_col.addWidget(self.strip)

        self.runs = RunsList()
        self.runs_resume = QPushButton("Resume run")
        self.runs_resume.setToolTip("Go on from the run's last checkpoint")
        self.use_button = QPushButton("Use model")
        self.use_button.setToolTip("Open the trained model in the panel that uses it")
        self.again_button = QPushButton("Train again")
        self.again_button.setToolTip("Fill the form with this run's recipe")
        self.folder_button = QPushButton("Show folder")
        self.folder_button.setToolTip("Open the run's folder (config, metrics, checkpoints, "
                                      "samples, model card)")
        runs_box = QWidget()
        runs_col = QVBoxLayout(runs_box)
        runs_col.setContentsMargins(12, 4, 12, 10)
        runs_col.setSpacing(4)
        runs_col.addWidget(section_label("Runs"))
        row = QHBoxLayout()
        row.setSpacing(10)
        row.addWidget(self.runs, 1)
        side = QVBoxLayout()
        side.setSpacing(6)
        for button in (self.runs_resume, self.use_button, self.again_button,
                       self.folder_button):
            side.addWidget(button)
        side.addStretch(1)
        row.addLayout(side)
        runs_col.addLayout(row)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(curves)
        right.addWidget(runs_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setChildrenCollapsible(False)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(400, self.form_scroll.sizeHint().width()), 820])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

        # ---- wiring
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self.check_data)
        self.form.source_changed.connect(self._source_changed)
        self.check_button.clicked.connect(self.check_data)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.offer_button.clicked.connect(self.stop_at_best)
        self.plot.overfit_changed.connect(self._overfit_changed)
        self.runs.run_selected.connect(self._run_selected)
        self.runs_resume.clicked.connect(self.resume_selected)
        self.use_button.clicked.connect(self.use_selected)
        self.again_button.clicked.connect(self.train_again)
        self.folder_button.clicked.connect(self.show_folder)
        self.update_buttons()
        self.refresh_runs()

    def shutdown(self) -> None:
        """The panel goes away: stop the run so it stays resumable, and let its process end
        before the objects are deleted (TrainingRun does this by itself when Studio quits)."""
        if self.run is not None:
            self.run.shutdown()

    # ------------------------------------------------------------------ state
    def state(self) -> str:
        """The driven run's state ("" when none was started here)."""
        return self.run.state if self.run is not None else ""

    def is_active(self) -> bool:
        return self.run is not None and self.run.active

    def _source(self) -> tuple[str, str, str, int]:
        """What a data check's verdict depends on (the resolution sets "too small")."""
        return (self.form.info().id, self.form.data.folder(), self.form.base_model(),
                self.form.fields["resolution"].value())

    def check_passed(self) -> bool:
        return self.report is not None and self._checked == self._source()

    def update_buttons(self) -> None:
        state = self.state()
        active = state in ACTIVE
        self.start_button.setEnabled(not active and self.check_passed())
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(active)
        self.form.setEnabled(not active)
        self.check_button.setEnabled(not active and bool(self.form.data.folder()))
        selected = self.runs.selected()
        summary = self.runs.summary(selected)
        self.runs_resume.setEnabled(not active and self.runs.resumable(selected))
        model = summary.model if summary is not None else ""
        self.use_button.setEnabled(bool(model) and Path(model).exists())
        self.again_button.setEnabled(summary is not None and not active)
        self.folder_button.setEnabled(summary is not None)

    # ------------------------------------------------------------------ data check
    def _source_changed(self) -> None:
        self.report = None
        self._checked = None
        if self._check_task is not None:
            self._check_task.cancel()
            self._check_task = None
        self.report_label.setText("")
        self.check_message.clear_message()
        if self.form.data.folder():
            self._check_timer.start()
        self.update_buttons()

    def check_data(self) -> Task | None:
        """Run the data check of what the form says now; Start follows its verdict."""
        self._check_timer.stop()
        config = self.form.config()
        if not config.data:
            self.check_message.show_error("Choose a data folder to train on.")
            return None
        if self._check_task is not None:
            self._check_task.cancel()
        source = self._source()
        self.report = None
        self.report_label.setText("Checking the data…")
        self.check_message.clear_message()
        task = lab.check_data(config)
        self._check_task = task
        task.done.connect(guarded(self, lambda report: self._checked_data(task, source, report)))
        task.failed.connect(guarded(self, lambda text: self._check_failed(task, text)))
        task.start()
        self.update_buttons()
        return task

    def _checked_data(self, task: Task, source: tuple[str, str, str, int],
                      report: DataReport) -> None:
        if task is not self._check_task:  # a newer check replaced it
            return
        self._check_task = None
        self.report_label.setText("\n".join(report.lines()))
        if report.usable > 0 and source == self._source():
            self.report = report
            self._checked = source
        else:
            self.check_message.show_error("Nothing in this folder can be trained on.")
        self.update_buttons()

    def _check_failed(self, task: Task, text: str) -> None:
        if task is not self._check_task:
            return
        self._check_task = None
        self.report_label.setText("")
        self.check_message.show_error(first_line(text))
        self.update_buttons()

    # ------------------------------------------------------------------ training
    def _new_run(self) -> lab.TrainingRun:
        """A fresh TrainingRun wired to this panel (the previous one, if any, is done); it
        trains on the device the settings name and rescans the catalog when it ends."""
        if self.run is not None:
            self.run.deleteLater()
        device = ["--device", self.ctx.settings.device] if self.ctx.settings.device else []
        run = lab.TrainingRun(self.ctx, self, extra_args=[*device, *self.train_args])
        run.step.connect(self._on_step)
        run.samples.connect(self._on_samples)
        run.state_changed.connect(self._on_state)
        run.status.connect(self.progress.set_status)
        run.finished.connect(self._on_finished)
        run.failed.connect(self._on_failed)
        self.run = run
        return run

    def start(self) -> None:
        if self.is_active():
            return
        config: TrainConfig = self.form.config()
        try:
            config.validate()
        except StudioError as exc:
            self.message.show_error(str(exc))
            return
        if not self.check_passed():
            self.message.show_error("Check the data first.")
            return
        self.message.clear_message()
        self._show_run(config.name, live=True)
        self.runs.live = config.name
        self.progress.start()
        self._new_run().start(config)
        self.update_buttons()

    def resume_selected(self) -> None:
        """Go on with the selected stopped or crashed run from its last checkpoint."""
        name = self.runs.selected()
        if not name or self.is_active() or not self.runs.resumable(name):
            return
        self.message.clear_message()
        self._show_run(name)
        self.runs.live = name
        self.progress.start("Resuming…")
        self._new_run().resume_run(name)
        self.update_buttons()

    def pause(self) -> None:
        if self.run is not None and self.state() == "running":
            self.run.pause()

    def resume(self) -> None:
        if self.run is not None and self.state() == "paused":
            self.run.resume()

    def stop(self) -> None:
        if self.run is not None and self.run.active:
            self.progress.set_status("Stopping: saving the last checkpoint…")
            self.run.stop()

    def stop_at_best(self) -> None:
        """The overfitting offer: stop now, export the best-validation checkpoint."""
        if self.run is not None and self.run.active:
            kept = self._kept_step()
            self.progress.set_status(f"Stopping: keeping step {kept}…" if kept
                                     else "Stopping…")
            self.run.stop(best=True)

    def _kept_step(self) -> int | None:
        """The checkpoint "stop and keep the best" exports: as the trainer picks it, the one
        whose latest validation loss (at or before its step) is lowest."""
        if self.run is None:
            return None
        folder = RunPaths(self.run.name).checkpoints
        steps = sorted(int(p.stem.split("-")[1]) for p in folder.glob("step-*.pt")
                       if p.stem.split("-")[1].isdigit()) if folder.is_dir() else []
        return kept_step(self.plot.records, steps)

    def _on_step(self, record: StepRecord, total: int) -> None:
        if self.run is None or self._shown != self.run.name:
            return
        self.plot.add(record)
        self.runs.show_step(self.run.name, record.step, total, record.loss)
        rate = record.it_s
        eta = (total - record.step) / rate if rate > 0 else 0.0
        self.progress.set_progress(Progress(record.step, total, rate, eta,
                                            text=f"Training {self.run.name}…"))

    def _on_samples(self, step: int, files: list[str]) -> None:
        if self.run is not None and self._shown == self.run.name:
            self.strip.add(step, files)

    def _on_state(self, state: str) -> None:
        if state in STATE_TEXT and state not in ("finished", "failed"):
            self.progress.set_status(STATE_TEXT[state])
        if state not in ACTIVE:
            self.runs.live = ""
            self.offer_box.hide()
            self.form.suggest_name()  # the run's name is taken now
        self.update_buttons()
        self.refresh_runs()

    def _on_finished(self, path: str) -> None:
        # (TrainingRun has the catalog rescanned, so the pickers offer the model at once)
        self.progress.finish(f"Saved the model: {Path(path).name}")
        self._final_stats()
        self.message.show_info(f"The model is in {path}.")
        self.refresh_runs()

    def _on_failed(self, text: str) -> None:
        self.progress.finish(STATE_TEXT["failed"])
        self._final_stats()
        self.message.show_error(first_line(text))
        self.refresh_runs()

    def _final_stats(self) -> None:
        """The run ended: its last step stays on show, the speed and time left go."""
        last = self.run.last if self.run is not None else None
        self.progress.stats.setText(f"Step {last.step}" if last is not None else "")

    def _overfit_changed(self, verdict: Overfit) -> None:
        step = verdict.best_step
        live = self.is_active() and self.run is not None and self._shown == self.run.name
        if verdict.flagged and step is not None:
            kept = self._kept_step() if live else None
            if live and kept is not None:
                self.offer.setText(f"Validation loss has risen since step {step}: "
                                   f"stop and keep step {kept}?")
                self.offer_button.setText(f"Stop and keep step {kept}")
                self.offer_button.show()
            else:
                self.offer.setText(f"Validation loss rose after step {step} (overfitting).")
                self.offer_button.hide()
            self.offer_box.show()
        else:
            self.offer_box.hide()

    # ------------------------------------------------------------------ runs
    def refresh_runs(self) -> None:
        run_in_pool(lab.runs, guarded(self, self._set_runs),
                    on_failed=guarded(self, lambda text: log.info("runs: %s", text)))

    def _set_runs(self, summaries: list[lab.RunSummary]) -> None:
        self.runs.set_runs(summaries)
        self.update_buttons()

    def _run_selected(self, name: str) -> None:
        self.update_buttons()
        if not name or name == self._shown:
            return
        self._show_run(name)

    def _show_run(self, name: str, *, live: bool = False) -> None:
        """Put a run's curves and samples on screen (a new live run starts empty)."""
        self._shown = name
        self.plot_title.setText(f"Loss · {name}")
        self.plot.clear()
        self.strip.clear()
        self.offer_box.hide()
        if live:
            return
        run_paths = RunPaths(name)
        self.strip.load_folder(run_paths.samples)

        def loaded(records: list[StepRecord]) -> None:
            if self._shown == name:
                live_records = self.plot.records  # steps that arrived while reading
                self.plot.set_records(records)
                for r in live_records:
                    self.plot.add(r)
                self.plot.redraw()

        run_in_pool(run_paths.read_metrics, guarded(self, loaded))

    def use_selected(self) -> None:
        """Open the selected run's model where it is used (Art, Music or Text)."""
        summary = self.runs.summary(self.runs.selected())
        if summary is None or not summary.model:
            return
        request = request_for(summary.config, summary.model)
        if request is not None:
            self.ctx.use_recipe(request)

    def train_again(self) -> None:
        summary = self.runs.summary(self.runs.selected())
        if summary is not None:
            self.form.set_config(summary.config, fresh_name=True)

    def show_folder(self) -> None:
        name = self.runs.selected()
        if name:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(RunPaths(name).root)))


def kept_step(records: list[StepRecord], checkpoints: list[int]) -> int | None:
    """Of the checkpoint steps, the one whose latest validation loss (at or before it) is
    lowest: what the trainer exports for "stop and keep the best" (None: no such one)."""
    best: tuple[float, int] | None = None
    vals = sorted((r.step, r.val_loss) for r in records if r.val_loss is not None)
    for step in checkpoints:
        before = [v for s, v in vals if s <= step]
        if before and (best is None or before[-1] < best[0]):
            best = (before[-1], step)
    return best[1] if best is not None else None


def request_for(config: TrainConfig, model: str) -> Request | None:
    """What "Use model" loads: a LoRA rides its base in Art through the prompt; the rest
    are models of their own in the panel of their modality."""
    info = RECIPES.get(config.recipe)
    if info is None:
        return None
    if config.recipe == "lora":
        words = f"<lora:{Path(model).stem}:1> {config.trigger}".strip()
        return ImageRequest(model=config.base, prompt=words)
    if info.modality == "image":
        return ImageRequest(model=model)
    if info.modality == "music":
        return MusicRequest(model=model)
    return TextRequest(model=model)
