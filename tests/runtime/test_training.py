"""runtime.training: a tiny GAN trains in a child process while the GUI thread stays free;
its steps, samples and checkpoints arrive as signals; pause, resume and stop work; the run
ends with the model's path, shows in `runs()` and resumes; the data check is a Task."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal

from studio.core.training import DataReport, RunPaths, StepRecord, config_for
from studio.runtime.training import TrainingRun, check_data, report_from, runs
from tests.training_toys import shapes

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes(tmp_path_factory.mktemp("toy") / "shapes", n=8)


def tiny(toy: Path, name: str, steps: int = 100_000):
    return config_for("gan", data=str(toy), name=name, steps=steps, resolution=16, batch=4,
                      lr=2e-3, save_every=3, sample_every=3, eval_every=2, seed=2)


class FakeContext(QObject):
    """Counts catalog rescans (AppContext.rescan_models) without a catalog."""

    scanned = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.rescans = 0

    def rescan_models(self) -> None:
        self.rescans += 1


class Seen:
    def __init__(self, run: TrainingRun) -> None:
        self.states: list[str] = []
        self.steps: list[tuple[StepRecord, int]] = []
        self.samples: list[tuple[int, list]] = []
        self.checkpoints: list[tuple[int, str]] = []
        self.reports: list[DataReport] = []
        self.finished: list[str] = []
        self.failed: list[str] = []
        run.state_changed.connect(self.states.append)
        run.step.connect(lambda r, t: self.steps.append((r, t)))
        run.samples.connect(lambda s, f: self.samples.append((s, f)))
        run.checkpoint.connect(lambda s, p: self.checkpoints.append((s, p)))
        run.data_checked.connect(self.reports.append)
        run.finished.connect(self.finished.append)
        run.failed.connect(self.failed.append)


def test_start_pause_resume_stop_then_resume(qtbot, toy: Path, request) -> None:
    context = FakeContext()
    run = TrainingRun(context, extra_args=["--threads", "1"])
    seen = Seen(run)
    request.addfinalizer(run.shutdown)
    run.start(tiny(toy, "window"))
    assert run.state == "starting" and run.name == "window"
    qtbot.waitUntil(lambda: len(seen.steps) >= 2, timeout=TIMEOUT)
    assert run.state == "running"
    assert seen.reports and seen.reports[0].usable == 8
    assert seen.steps[0][0].step == 1 and seen.steps[0][1] == 100_000
    run.pause()
    qtbot.waitUntil(lambda: run.state == "paused", timeout=TIMEOUT)
    count = len(seen.steps)
    qtbot.wait(400)
    assert len(seen.steps) == count  # paused: no steps
    run.resume()
    qtbot.waitUntil(lambda: len(seen.steps) > count + 3, timeout=TIMEOUT)
    assert run.state == "running"
    qtbot.waitUntil(lambda: bool(seen.samples) and bool(seen.checkpoints), timeout=TIMEOUT)
    run.stop()
    qtbot.waitUntil(lambda: bool(seen.finished or seen.failed), timeout=TIMEOUT)
    assert not seen.failed
    model = Path(seen.finished[0])
    assert (model / "model.safetensors").is_file()
    assert run.state == "stopped" and seen.states[:4] == ["starting", "running", "paused",
                                                          "running"]
    assert seen.states[-1] == "stopped"
    assert context.rescans == 1  # the new model is picked up by the catalog
    assert all(Path(f).is_file() for _, files in seen.samples for f in files)
    stopped_at = seen.steps[-1][0].step
    sampled = [s for s, _ in seen.samples]  # every 3 steps, and at the stop
    assert [s for s in sampled if s % 3 == 0] == list(range(3, stopped_at + 1, 3))
    assert sampled[-1] == stopped_at

    listed = {s.name: s for s in runs()}
    summary = listed["window"]
    assert (summary.recipe, summary.state, summary.step) == ("gan", "stopped", stopped_at)
    assert summary.model == str(model) and summary.resumable
    assert summary.config == tiny(toy, "window")

    again = Seen(run)
    run.resume_run("window")
    qtbot.waitUntil(lambda: len(again.steps) >= 1, timeout=TIMEOUT)
    assert again.steps[0][0].step == stopped_at + 1  # on from the checkpoint
    run.stop()
    qtbot.waitUntil(lambda: bool(again.finished or again.failed), timeout=TIMEOUT)
    assert again.failed == [] and again.finished == [str(model)]
    steps = [r.step for r in RunPaths("window").read_metrics()]
    assert steps == list(range(1, steps[-1] + 1))


def test_a_short_run_finishes_and_a_bad_one_fails_in_one_sentence(qtbot, toy: Path,
                                                                   tmp_path: Path,
                                                                   request) -> None:
    run = TrainingRun(extra_args=["--threads", "1"])
    seen = Seen(run)
    request.addfinalizer(run.shutdown)
    run.start(tiny(toy, "short", steps=3))
    qtbot.waitUntil(lambda: bool(seen.finished or seen.failed), timeout=TIMEOUT)
    assert run.state == "finished" and len(seen.steps) == 3
    run.start(tiny(toy, "short", steps=3))  # the name is taken: refused at once
    assert seen.failed == ["A run named 'short' exists: resume it or pick another name."]
    assert run.state == "failed"
    empty = tmp_path / "empty"
    empty.mkdir()
    run.start(tiny(empty, "nothing"))
    qtbot.waitUntil(lambda: len(seen.failed) == 2, timeout=TIMEOUT)
    assert seen.failed[1] == f"No images found in {empty}."
    run.start(config_for("gan", data=str(toy), name=""))  # refused before any process
    assert seen.failed[2].startswith("Give the run a name")


def test_the_data_check_is_a_task(qtbot, toy: Path, tmp_path: Path) -> None:
    done: list[DataReport] = []
    failed: list[str] = []
    task = check_data(tiny(toy, "x"))
    task.done.connect(done.append)
    task.failed.connect(failed.append)
    task.start()
    qtbot.waitUntil(lambda: bool(done or failed), timeout=TIMEOUT)
    assert done[0].usable == 8 and not failed
    run = TrainingRun()
    reports: list[DataReport] = []
    problems: list[str] = []
    run.data_checked.connect(reports.append)
    run.check_failed.connect(problems.append)
    run.check_data(tiny(tmp_path / "missing", "x"))
    qtbot.waitUntil(lambda: bool(reports or problems), timeout=TIMEOUT)
    assert problems == [f"The data folder {tmp_path / 'missing'} does not exist."]


def test_report_round_trip() -> None:
    import dataclasses

    report = DataReport("f", 3, 2, (("a.png", "too small."),), ("1 RGBA image converted.",),
                        1, 2, "8×8")
    assert report_from(dataclasses.asdict(report)) == report


def test_a_process_that_cannot_start_is_one_sentence(qtbot, toy: Path, tmp_path: Path) -> None:
    run = TrainingRun(program=[str(tmp_path / "no-python")])
    failed: list[str] = []
    run.failed.connect(failed.append)
    run.start(tiny(toy, "never"))
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
    assert failed == [f"Could not start the training process ({tmp_path / 'no-python'})."]
    assert run.state == "failed"
