"""The Lab tab for real: a data check gates Start, a tiny GAN trains in a child process,
its curve and samples grow, pause/resume/stop work, and the model lands in the runs list
and the catalog; past runs show their curves; the tab is built lazily in the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from studio.core.training import Overfit, RunPaths, StepRecord, config_for
from studio.ui.lab.panel import LabPanel
from tests.ui import close_ctx, make_ctx

COLOURS = [(220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 200, 40)]


@pytest.fixture
def ctx(qtbot, tmp_path):
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    """Twelve 16 px pictures: a coloured square on a dark ground."""
    folder = tmp_path / "shapes"
    folder.mkdir()
    for n in range(12):
        image = Image.new("RGB", (16, 16), (20, 20, 24))
        colour = COLOURS[n % len(COLOURS)]
        x = 2 + n % 5
        image.paste(colour, (x, x, x + 8, x + 8))
        image.save(folder / f"shape-{n:02d}.png")
    return folder


@pytest.fixture
def panel(qtbot, ctx):
    p = LabPanel(ctx)
    p.train_args = ["--threads", "1"]  # tiny models on shared cores
    qtbot.addWidget(p)
    p.resize(1300, 850)
    p.show()
    yield p
    p.shutdown()  # never leave a child process training behind


def checked(panel, qtbot, folder: Path) -> None:
    """Choose the folder and wait for the data check it starts by itself."""
    panel.form.data.set_folder(folder)
    qtbot.waitUntil(lambda: panel.check_passed() or panel.check_message.isVisible(),
                    timeout=60000)


def test_data_check_gates_start(panel, qtbot, shapes: Path, tmp_path: Path) -> None:
    panel.form.set_recipe("gan")
    assert not panel.start_button.isEnabled()
    checked(panel, qtbot, shapes)  # at 64 px, 16 px pictures are too small
    assert not panel.check_passed() and not panel.start_button.isEnabled()
    message = panel.check_message.text()
    assert "too small" in message and "\n" not in message
    panel.form.fields["resolution"].setValue(16)
    qtbot.waitUntil(panel.check_passed, timeout=60000)
    assert panel.check_passed(), panel.check_message.text()
    lines = panel.report_label.text().splitlines()
    assert lines[0] == f"12 of 12 files usable in {shapes}."
    assert panel.start_button.isEnabled()
    # another folder: the check is due again, Start waits for it
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.form.data.set_folder(empty)
    assert not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.check_message.isVisible(), timeout=60000)
    assert "\n" not in panel.check_message.text() and panel.check_message.text()
    assert not panel.start_button.isEnabled()


def test_a_tiny_gan_trains_from_the_tab(panel, qtbot, ctx, shapes: Path) -> None:
    panel.form.set_recipe("gan")
    panel.form.fields["resolution"].setValue(16)
    checked(panel, qtbot, shapes)
    assert panel.check_passed(), panel.check_message.text()
    name = panel.form.name.text()
    assert name == "gan-shapes"
    fields = panel.form.fields
    fields["steps"].setValue(400)
    fields["batch"].setValue(4)
    fields["eval_every"].setValue(2)
    fields["sample_every"].setValue(3)
    fields["save_every"].setValue(5)
    panel.start_button.click()
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    # the curve and the samples strip grow as the child process reports
    qtbot.waitUntil(lambda: panel.plot.drawn()[0] >= 3, timeout=120000)
    qtbot.waitUntil(lambda: len(panel.strip.tiles) >= 2, timeout=60000)
    assert panel.strip.tiles[0].kind == "image"
    assert not panel.strip.tiles[0].body.pixmap().isNull()
    assert panel.plot.drawn()[1] >= 1  # validation points too
    assert "Step " in panel.progress.stats.text() and "/400" in panel.progress.stats.text()
    # pause holds it, resume goes on
    qtbot.waitUntil(lambda: panel.pause_button.isEnabled(), timeout=30000)
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.state() == "paused", timeout=30000)
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    held = panel.plot.records[-1].step
    qtbot.wait(600)
    assert panel.plot.records[-1].step <= held + 1  # at most the step that was under way
    panel.resume_button.click()
    qtbot.waitUntil(lambda: panel.plot.records[-1].step > held + 1, timeout=60000)
    # stop keeps the last checkpoint and still exports the model
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.is_active(), timeout=120000)
    assert panel.state() == "stopped", panel.message.text()
    assert panel.start_button.isEnabled()
    assert panel.form.name.text() == "gan-shapes-2"  # the old name is taken now
    qtbot.waitUntil(lambda: (panel.runs.row(name) or [""] * 3)[2] == "stopped", timeout=20000)
    row = panel.runs.row(name)
    assert row[3].endswith("/400")
    assert int(row[3].split("/")[0]) >= held + 2
    # the model is in the catalog the pickers read
    model = panel.runs.summary(name).model
    assert model and Path(model).exists()
    qtbot.waitUntil(lambda: any(e.id == model for e in ctx.models), timeout=30000)
    panel.runs.select(name)
    assert panel.use_button.isEnabled() and panel.runs_resume.isEnabled()
    with qtbot.waitSignal(ctx.recipe_requested, timeout=5000) as blocker:
        panel.use_button.click()
    assert blocker.args[0].model == model


def past_run(name: str, records: list[StepRecord]) -> RunPaths:
    run = RunPaths(name)
    run.write_config(config_for("gan", data="/nowhere", name=name))
    for r in records:
        run.append_metric(r)
    run.checkpoints.mkdir(parents=True)
    run.checkpoint(records[-1].step).write_bytes(b"")
    run.write_state("stopped")
    return run


def test_a_past_run_shows_its_curves_and_overfitting(panel, qtbot) -> None:
    vals = {10: 1.0, 20: 0.8, 30: 0.6, 40: 0.7, 50: 0.8, 60: 0.9}
    past_run("old", [StepRecord(step=s, loss=2.0 - s / 50, val_loss=vals.get(s))
                     for s in range(5, 65, 5)])
    panel.refresh_runs()
    qtbot.waitUntil(lambda: panel.runs.names() == ["old"], timeout=20000)
    panel.runs.select("old")
    qtbot.waitUntil(lambda: panel.plot.drawn() == (12, 6), timeout=20000)
    assert panel.plot.best_line.isVisible() and panel.plot.best_line.value() == 30
    assert panel.offer_box.isVisible()
    assert panel.offer.text() == "Validation loss rose after step 30 (overfitting)."
    assert not panel.offer_button.isVisible()  # nothing to stop: the run is not training
    assert panel.runs_resume.isEnabled() and panel.again_button.isEnabled()
    panel.again_button.click()
    assert panel.form.data.folder() == "/nowhere" and panel.form.name.text() == "gan-nowhere"


def test_the_lab_tab_is_built_when_first_shown(qtbot, ctx, shapes: Path) -> None:
    from studio.ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    assert not window.is_built("lab")
    window.show_tab("lab")
    assert window.is_built("lab") and isinstance(window.page("lab"), LabPanel)
    field = window.page("lab").form.data.edit
    # a folder dropped on the data field is the data, not a recipe for the window to read
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(shapes))])
    enter = QDragEnterEvent(QPoint(4, 4), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(field, enter)
    drop = QDropEvent(QPoint(4, 4), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    failed = []
    window.drop_failed.connect(failed.append)
    QApplication.sendEvent(field, drop)
    assert field.text() == str(shapes)
    qtbot.wait(200)
    assert failed == [] and drop.isAccepted()
    window.close()


def test_the_overfitting_offer_stops_at_the_best_checkpoint(panel, qtbot, shapes: Path) -> None:
    panel.form.set_recipe("gan")
    panel.form.fields["resolution"].setValue(16)
    checked(panel, qtbot, shapes)
    fields = panel.form.fields
    # validation at every checkpoint and only there: the checkpoint a stop adds between two
    # carries its predecessor's loss and cannot become the best (a tie keeps the older)
    for name, value in (("steps", 400), ("batch", 4), ("eval_every", 2), ("save_every", 2),
                        ("sample_every", 50)):
        fields[name].setValue(value)
    name = panel.form.name.text()
    panel.start_button.click()
    saved: list[int] = []
    panel.run.checkpoint.connect(lambda step, _path: saved.append(step))
    qtbot.waitUntil(lambda: len(saved) >= 4, timeout=120000)
    panel.pause_button.click()  # hold the checkpoints still while the offer is read
    qtbot.waitUntil(lambda: panel.state() == "paused", timeout=30000)
    records = panel.plot.records
    best = min((r for r in records if r.val_loss is not None), key=lambda r: r.val_loss)
    # the plot's verdict (overfitting flagged at the best validation step) reaches the offer
    panel._overfit_changed(Overfit(best.step, best.val_loss, True))
    assert panel.offer_box.isVisible() and panel.offer_button.isVisible()
    kept = panel._kept_step()
    assert kept is not None and RunPaths(name).checkpoint(kept).exists()
    assert panel.offer.text() == (f"Validation loss has risen since step {best.step}: "
                                  f"stop and keep step {kept}?")
    assert panel.offer_button.text() == f"Stop and keep step {kept}"
    panel.offer_button.click()
    qtbot.waitUntil(lambda: panel.state() == "stopped", timeout=120000)
    state = RunPaths(name).read_state()
    assert state["exported_step"] == state["best_step"] == kept
    assert not panel.offer_box.isVisible()
