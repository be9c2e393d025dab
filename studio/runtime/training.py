"""The window's side of the Lab: a training run in a child process, driven over JSON lines.

A run is `python -m studio train ... --json` in a `QProcess`: the window never blocks, a
crash of either side loses nothing (the run folder has its checkpoints), and a closed
window leaves a resumable run. `TrainingRun` turns the child's events (see
`cli/train.py`) into signals and its methods into the commands the child reads on stdin.

Also here: the data check as a background `Task` (in this process, off the GUI thread)
and `runs()`, the summaries of past runs for the Lab's list.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from studio.core import paths
from studio.core.text import first_line
from studio.core.training import (
    DataReport,
    RunPaths,
    StepRecord,
    TrainConfig,
    list_runs,
    overfitting,
    train_args,
)
from studio.runtime.tasks import Task

log = logging.getLogger(__name__)

STATES = ("idle", "starting", "running", "paused", "stopped", "finished", "failed")


def report_from(data: dict[str, Any]) -> DataReport:
    """A DataReport from its JSON form (the child's "data" event)."""
    return DataReport(
        folder=str(data.get("folder", "")), found=int(data.get("found", 0)),
        usable=int(data.get("usable", 0)),
        skipped=tuple((str(a), str(b)) for a, b in data.get("skipped", ())),
        notes=tuple(str(n) for n in data.get("notes", ())),
        duplicates=int(data.get("duplicates", 0)), captions=int(data.get("captions", 0)),
        sizes=str(data.get("sizes", "")),
    )


class TrainingRun(QObject):
    """One training in a child process (see the module docstring).

    `state` goes idle → starting → running ⇄ paused → stopped | finished | failed;
    every change is `state_changed`. `finished(path)` carries the model's path (a stop
    also exports, so it ends with `finished` too, in state "stopped").
    """

    data_checked = Signal(object)  # DataReport
    step = Signal(object, int)  # StepRecord, total steps
    samples = Signal(int, list)  # step, [file paths]
    checkpoint = Signal(int, str)  # step, path
    state_changed = Signal(str)
    status = Signal(str)
    finished = Signal(str)  # the model's path
    failed = Signal(str)  # one sentence
    check_failed = Signal(str)  # the data check of `check_data` could not run

    def __init__(self, context: Any = None, parent: QObject | None = None, *,
                 program: list[str] | None = None, extra_args: list[str] | None = None) -> None:
        """`context` (an AppContext) gets its models rescanned after a run; `program` is
        the Python command ([sys.executable, "-m", "studio"]); `extra_args` go after the
        training's own (tests pass "--threads 1")."""
        super().__init__(parent)
        self.context = context
        self.program = program or [sys.executable, "-m", "studio"]
        self.extra_args = list(extra_args or [])
        self._state = "idle"
        self._name = ""
        self._buffer = b""
        self._stderr: list[str] = []
        self._ended = False
        self.model_path = ""
        self.message = ""
        self.last: StepRecord | None = None
        self.process: QProcess | None = None

    # ------------------------------------------------------------------ properties
    @property
    def state(self) -> str:
        return self._state

    @property
    def name(self) -> str:
        return self._name

    @property
    def active(self) -> bool:
        """A child process is working (starting, running or paused)."""
        return self._state in ("starting", "running", "paused")

    # ------------------------------------------------------------------ commands
    def start(self, config: TrainConfig) -> None:
        """Start a new run (the config is validated first: a bad one fails at once)."""
        try:
            config.validate()
        except Exception as exc:
            self._fail(first_line(exc))
            return
        run = RunPaths(config.name)
        if run.root.is_dir() and any(run.root.iterdir()):  # the child says so too, slower
            self._fail(f"A run named {config.name!r} exists: resume it or pick another name.")
            return
        self._launch(config.name, [*train_args(config)])

    def resume_run(self, name: str) -> None:
        """Go on with a run from its last checkpoint."""
        self._launch(name, ["train", "--resume", name])

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def stop(self) -> None:
        """Stop: the child saves a checkpoint, exports and ends with `finished`."""
        self._send("stop")

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """The window is closing: stop the run (resumable) and wait a while for it."""
        proc = self.process
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        self._send("stop")
        proc.closeWriteChannel()
        if not proc.waitForFinished(wait_ms):
            proc.kill()  # the last checkpoint is still there to resume from
            proc.waitForFinished(2000)

    # ------------------------------------------------------------------ the process
    def _launch(self, name: str, args: list[str]) -> None:
        if self.active:
            self._fail(f"The run {self._name!r} is still going: stop it first.")
            return
        self._name = name
        self._buffer = b""
        self._stderr = []
        self._ended = False
        self.model_path = self.message = ""
        self.last = None
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        root = str(paths.REPO_ROOT)  # the child imports this very copy of studio
        before = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", root + (os.pathsep + before if before else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        # a run's process may end after the next one started: its signals are ignored then
        proc.readyReadStandardOutput.connect(partial(self._read_stdout, proc))
        proc.readyReadStandardError.connect(partial(self._read_stderr, proc))
        proc.finished.connect(partial(self._process_ended, proc))
        proc.errorOccurred.connect(partial(self._process_error, proc))
        if self.process is not None:
            self.process.deleteLater()
        self.process = proc
        self._set_state("starting")
        proc.start(self.program[0], [*self.program[1:], *args, "--json", *self.extra_args])

    def _send(self, word: str) -> None:
        proc = self.process
        if proc is not None and proc.state() == QProcess.ProcessState.Running:
            proc.write((word + "\n").encode())

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    def _fail(self, message: str) -> None:
        self._ended = True
        self.message = message
        self._set_state("failed")
        self.failed.emit(message)

    def _read_stdout(self, proc: QProcess) -> None:
        if proc is not self.process:
            return
        self._buffer += bytes(proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                try:
                    event = json.loads(line)
                except ValueError:
                    log.info("training: not an event: %r", line[:200])
                    continue
                self._handle(event)

    def _read_stderr(self, proc: QProcess) -> None:
        if proc is not self.process:
            return
        text = bytes(proc.readAllStandardError().data()).decode("utf-8", "replace")
        self._stderr = (self._stderr + [ln for ln in text.splitlines() if ln.strip()])[-20:]

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "data":
            self.data_checked.emit(report_from(event.get("report") or {}))
        elif kind == "step":
            record = StepRecord.from_dict(event.get("record") or {})
            self.last = record
            if self._state == "starting":
                self._set_state("running")
            self.step.emit(record, int(event.get("total", 0)))
        elif kind == "samples":
            self.samples.emit(int(event.get("step", 0)), [str(f) for f in event.get("files", [])])
        elif kind == "checkpoint":
            self.checkpoint.emit(int(event.get("step", 0)), str(event.get("path", "")))
        elif kind == "paused":
            self._set_state("paused" if event.get("paused") else "running")
        elif kind == "status":
            self.status.emit(str(event.get("text", "")))
        elif kind == "finished":
            self._ended = True
            self.model_path = str(event.get("path", ""))
            self._set_state("stopped" if event.get("state") == "stopped" else "finished")
            if self.context is not None and hasattr(self.context, "rescan_models"):
                self.context.rescan_models()  # the new model shows in the pickers at once
            self.finished.emit(self.model_path)
        elif kind == "failed":
            self._fail(str(event.get("message", "The training failed.")))

    def _process_ended(self, proc: QProcess, code: int, _status: QProcess.ExitStatus) -> None:
        if proc is not self.process:
            return
        self._read_stdout(proc)
        self._read_stderr(proc)
        if not self._ended:
            said = self._stderr[-1].removeprefix("studio: ") if self._stderr else ""
            self._fail(said or f"The training process ended unexpectedly (exit code {code}); "
                               f"resume the run to go on from its last checkpoint.")

    def _process_error(self, proc: QProcess, error: QProcess.ProcessError) -> None:
        started = error != QProcess.ProcessError.FailedToStart
        if proc is self.process and not started and not self._ended:
            self._fail(f"Could not start the training process ({self.program[0]}).")

    # ------------------------------------------------------------------ the data check
    def check_data(self, config: TrainConfig) -> Task:
        """Run the data check off the GUI thread; `data_checked` (or `check_failed`)
        tells the result. Returns the started Task."""
        task = check_data(config)
        task.done.connect(self.data_checked.emit)
        task.failed.connect(self.check_failed.emit)
        return task.start()


def check_data(config: TrainConfig) -> Task:
    """A Task (not started: connect its signals, then `start()`) whose `done` carries the
    DataReport of `config`'s data folder; `failed` the sentence when nothing is usable."""

    def work(_task: Task) -> DataReport:
        from studio.engines.training.trainer import Trainer

        return Trainer.check(config)

    return Task(work)


# --------------------------------------------------------------------------- past runs


@dataclass(frozen=True)
class RunSummary:
    """One run for the Lab's list: enough to show it and to resume or reopen it."""

    name: str
    recipe: str
    state: str  # as state.json says ("running" for a run whose process died)
    step: int
    steps: int
    last_loss: float | None
    best_val: float | None
    best_step: int | None
    overfitting: bool
    model: str  # the exported model's path ("" before any export)
    folder: str
    resumable: bool  # a checkpoint is there and steps are left
    config: TrainConfig


def summary(run: RunPaths) -> RunSummary | None:
    """The summary of one run folder (None when its config cannot be read)."""
    try:
        config = run.read_config()
    except Exception:
        return None
    state = run.read_state()
    records = run.read_metrics()
    verdict = overfitting(records)
    step = records[-1].step if records else int(state.get("step", 0) or 0)
    return RunSummary(
        name=run.name, recipe=config.recipe, state=str(state.get("state", "stopped")),
        step=step, steps=config.steps, last_loss=records[-1].loss if records else None,
        best_val=verdict.best_val, best_step=verdict.best_step,
        overfitting=verdict.flagged, model=str(state.get("model", "")), folder=str(run.root),
        resumable=run.latest_checkpoint() is not None and step < config.steps,
        config=config,
    )


def runs(root: Path | None = None) -> list[RunSummary]:
    """Every run in the Lab folder, newest first."""
    found = (summary(r) for r in list_runs(root))
    return [s for s in found if s is not None]
