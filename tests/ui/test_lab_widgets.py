"""The Lab's widgets fed directly: the loss plot and its overfitting mark, the samples
strip, the form made from TrainConfig's metadata and the recipes, the runs list."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from studio.core import paths
from studio.core.catalog import ModelEntry
from studio.core.fields import specs
from studio.core.training import RECIPES, RunPaths, StepRecord, TrainConfig, config_for
from studio.runtime.training import runs as lab_runs
from studio.ui.lab.curves import LossPlot
from studio.ui.lab.form import TrainForm, base_models, default_run_name
from studio.ui.lab.runs import RunsList
from studio.ui.lab.samples import SamplesStrip, sample_kind, step_of
from tests.ui import close_ctx, make_ctx


@pytest.fixture
def ctx(qtbot, tmp_path):
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


def overfitting_records() -> list[StepRecord]:
    """Training keeps falling; validation is best at step 30, then rises."""
    vals = {10: 1.0, 20: 0.8, 30: 0.6, 40: 0.7, 50: 0.8, 60: 0.9}
    return [StepRecord(step=s, loss=2.0 - s / 50, val_loss=vals.get(s))
            for s in range(5, 65, 5)]


# ---------------------------------------------------------------------- loss plot


def test_plot_draws_training_and_validation_points(qtbot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    for r in [StepRecord(1, 0.9), StepRecord(2, 0.8, val_loss=1.0), StepRecord(3, float("nan")),
              StepRecord(4, 0.6, val_loss=0.9)]:
        plot.add(r)
    qtbot.waitUntil(lambda: plot.drawn() == (3, 2), timeout=2000)
    xs, ys = plot.train_curve.getData()
    assert list(xs) == [1, 2, 4]  # the NaN step is not drawn
    assert list(ys) == pytest.approx([0.9, 0.8, 0.6])
    vx, vy = plot.val_curve.getData()
    assert list(vx) == [2, 4] and list(vy) == pytest.approx([1.0, 0.9])
    assert not plot.best_line.isVisible() and not plot.overfit.flagged


def test_plot_restarts_from_a_resumed_step(qtbot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_records([StepRecord(s, 1.0 / s) for s in range(1, 11)])
    plot.add(StepRecord(7, 0.5))  # a resume from the checkpoint at step 6
    plot.redraw()
    assert list(plot.train_curve.getData()[0]) == [1, 2, 3, 4, 5, 6, 7]


def test_plot_marks_the_best_step_when_overfitting(qtbot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    seen = []
    plot.overfit_changed.connect(seen.append)
    plot.set_records(overfitting_records())
    assert plot.overfit.flagged and plot.overfit.best_step == 30
    assert plot.best_line.isVisible() and plot.best_line.value() == 30
    assert seen and seen[-1].best_step == 30
    plot.clear()
    assert not plot.best_line.isVisible() and not seen[-1].flagged


# ---------------------------------------------------------------------- samples strip


def test_strip_grows_with_images_text_and_audio(qtbot, tmp_path: Path) -> None:
    strip = SamplesStrip()
    qtbot.addWidget(strip)
    strip.show()
    png = tmp_path / "step-000010-0.png"
    Image.new("RGB", (16, 16), (200, 30, 40)).save(png)
    txt = tmp_path / "step-000010.txt"
    txt.write_text("once upon a time " * 20, encoding="utf-8")
    wav = tmp_path / "step-000010.wav"
    wav.write_bytes(b"RIFF")
    other = tmp_path / "step-000010.json"
    other.write_text("{}")
    strip.add(10, [str(png), str(txt), str(wav), str(other)])
    assert [t.kind for t in strip.tiles] == ["image", "text", "audio"]
    assert not strip.empty.isVisible()
    image_tile = strip.tiles[0]
    assert not image_tile.body.pixmap().isNull()
    assert image_tile.body.pixmap().width() == 96  # a 16 px sample scaled up to a thumbnail
    assert strip.tiles[1].body.text().endswith("…") and len(strip.tiles[1].body.text()) <= 91
    strip.add(20, [str(png)] * 6)  # a step's first four only
    assert strip.steps() == [10, 10, 10, 20, 20, 20, 20]
    strip.clear()
    assert strip.tiles == [] and strip.empty.isVisible()


def test_strip_loads_a_past_runs_folder_in_step_order(qtbot, tmp_path: Path) -> None:
    strip = SamplesStrip()
    qtbot.addWidget(strip)
    for step in (200, 100, 300):
        Image.new("RGB", (8, 8), (step % 255, 0, 0)).save(tmp_path / f"step-{step:06d}-0.png")
    (tmp_path / "step-000100.mid").write_bytes(b"MThd")
    strip.load_folder(tmp_path)
    assert strip.steps() == [100, 100, 200, 300]
    assert sample_kind(tmp_path / "a.mid") == "midi" and step_of(Path("step-000042-1.png")) == 42


# ---------------------------------------------------------------------- the form


def test_form_fields_follow_the_recipe(qtbot, ctx) -> None:
    form = TrainForm(ctx)
    qtbot.addWidget(form)
    form.show()
    form.set_recipe("gan")
    shown = form.shown_fields()
    assert "rank" not in shown and "alpha" not in shown and "trigger" not in shown
    assert "resolution" in shown and not form.base.isVisible()
    assert form.fields["steps"].value() == RECIPES["gan"].defaults["steps"]
    assert form.tips["lr"].isVisible()
    assert form.tips["lr"].text() == specs(TrainConfig)["lr"].tip
    form.set_recipe("lora")
    assert {"rank", "alpha", "trigger", "resolution"} <= set(form.shown_fields())
    assert form.base.isVisible()
    assert form.fields["rank"].value() == 8 and form.fields["resolution"].value() == 512
    form.set_recipe("composer")
    assert "resolution" not in form.shown_fields() and "rank" not in form.shown_fields()
    form.set_recipe("text")
    assert form.fields["resolution"].suffix() == " tokens"


def test_form_reads_back_a_config(qtbot, ctx, tmp_path: Path) -> None:
    form = TrainForm(ctx)
    qtbot.addWidget(form)
    form.set_recipe("gan")
    data = tmp_path / "my shapes"
    data.mkdir()
    form.data.set_folder(data)
    assert form.name.text() == "gan-my-shapes"
    form.fields["steps"].setValue(12)
    form.fields["resolution"].setValue(16)
    form.fields["lr"].setValue(0.0005)
    config = form.config()
    assert config == config_for("gan", data=str(data), name="gan-my-shapes", steps=12,
                                resolution=16, lr=0.0005, batch=32, seed=0)
    config.validate()
    form.name.clear()
    qtbot.keyClicks(form.name, "mine")
    form.data.set_folder(tmp_path)
    assert form.name.text() == "mine"  # a typed name is kept


def test_default_names_never_land_on_a_run(tmp_path: Path) -> None:
    assert default_run_name("gan", "/x/Shapes & more!") == "gan-Shapes-more"
    assert default_run_name("vae", "") == "vae"
    assert default_run_name("gan", "/d/cats", {"gan-cats", "gan-cats-2"}) == "gan-cats-3"
    (paths.lab_dir() / "gan-dogs").mkdir(parents=True)
    assert default_run_name("gan", "/d/dogs") == "gan-dogs-2"


def test_base_picker_offers_only_the_recipes_families(qtbot, ctx) -> None:
    sd = ModelEntry("/m/a.safetensors", "a", "image", "SD 1.x", "safetensors", "models/",
                    family_id="sd1")
    xl = ModelEntry("/m/b.safetensors", "b", "image", "SDXL", "safetensors", "models/",
                    family_id="sdxl")
    turbo = ModelEntry("/m/t", "t", "image", "SD-Turbo", "diffusers", "models/",
                       family_id="sd-turbo")
    lm = ModelEntry("/m/lm", "lm", "text", "causal LM", "transformers", "models/",
                    family_id="causal-lm")
    gguf = ModelEntry("/m/lm.gguf", "lm q4", "text", "causal LM", "gguf", "models/",
                      family_id="causal-lm")
    lora = ModelEntry("/m/l.safetensors", "l", "image", "LoRA", "safetensors", "models/",
                      role="component", family_id="lora")
    entries = [sd, xl, turbo, lm, gguf, lora]
    assert base_models(entries, RECIPES["lora"]) == [sd, xl, turbo]
    assert base_models(entries, RECIPES["text"]) == [lm]
    ctx._set_models([*ctx.models, *entries])
    form = TrainForm(ctx)
    qtbot.addWidget(form)
    form.set_recipe("lora")
    # the built-in sketch model is a LoRA base too, after the user's own models
    assert [form.base.itemData(i) for i in range(form.base.count())] == [
        sd.id, xl.id, turbo.id, "builtin:sketch"]
    assert form.config().base == sd.id
    form.set_recipe("composer")
    assert form.base.currentData() == "builtin:composer"
    form.set_recipe("gan")
    assert form.config().base == ""


def test_a_folder_dropped_on_the_field_is_taken(qtbot, ctx, tmp_path: Path) -> None:
    form = TrainForm(ctx)
    qtbot.addWidget(form)
    form.show()
    png = tmp_path / "pics" / "a.png"
    png.parent.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    pos = QPoint(5, 5)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(form.data.edit, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(form.source_changed, timeout=1000):
        QApplication.sendEvent(form.data.edit, drop)
    assert drop.isAccepted()
    assert form.data.folder() == str(png.parent)
    form.setEnabled(False)  # while a run trains, the folder stays
    other = tmp_path / "other"
    other.mkdir()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(form.data.edit, enter)
    assert not enter.isAccepted()
    assert form.data.folder() == str(png.parent)


# ---------------------------------------------------------------------- runs list


def write_run(name: str, state: str, steps: int, losses: list[tuple[float, float | None]],
              checkpoint: bool = False) -> None:
    """A run folder as the trainer leaves it: config, metrics, state (and a checkpoint)."""
    run = RunPaths(name)
    run.write_config(config_for("gan", data="/d", name=name, steps=steps))
    for step, (loss, val) in enumerate(losses, start=1):
        run.append_metric(StepRecord(step, loss, val))
    if checkpoint:
        run.checkpoints.mkdir(parents=True)
        run.checkpoint(len(losses)).write_bytes(b"")
    run.write_state(state)


def test_runs_list_rows_selection_and_resumable(qtbot) -> None:
    write_run("a", "finished", 2, [(0.9, 0.8), (0.7, 0.6)])
    write_run("b", "stopped", 10, [(0.9, None), (0.51234, 0.7)], checkpoint=True)
    os.utime(RunPaths("a").config, (1, 1))  # "b" is newer
    lst = RunsList()
    qtbot.addWidget(lst)
    lst.set_runs(lab_runs())
    assert lst.names() == ["b", "a"]
    assert lst.row("b") == ["b", "GAN from scratch", "stopped", "2/10", "0.5123", "0.7000"]
    assert lst.row("a")[4:] == ["0.7000", "0.6000"]
    with qtbot.waitSignal(lst.run_selected, check_params_cb=lambda n: n == "a"):
        lst.select("a")
    write_run("c", "running", 10, [(1.0, None)], checkpoint=True)  # its process died
    lst.set_runs(lab_runs())
    assert lst.selected() == "a" and lst.row("c")[3] == "1/10"
    assert lst.resumable("c") and lst.resumable("b") and not lst.resumable("a")
    lst.live = "c"
    assert not lst.resumable("c")


def test_a_cleared_strip_leaves_no_tile_behind(qtbot, tmp_path: Path) -> None:
    strip = SamplesStrip()
    qtbot.addWidget(strip)
    strip.show()
    png = tmp_path / "step-000001-0.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png)
    strip.add(1, [png, png])
    tiles = list(strip.tiles)
    strip.clear()
    # gone at once, not at the next turn of the event loop (else they paint over new ones)
    assert all(t.parent() is None and not t.isVisible() for t in tiles)
    assert strip.widget().findChildren(type(tiles[0])) == []


def test_the_live_runs_row_follows_the_steps(qtbot) -> None:
    write_run("live", "running", 50, [(1.0, None)])
    lst = RunsList()
    qtbot.addWidget(lst)
    lst.set_runs(lab_runs())
    lst.show_step("live", 7, 50, 0.25)
    assert lst.row("live")[3:5] == ["7/50", "0.2500"]


def test_the_sketch_recipe_offers_its_text_encoder_and_width(qtbot, ctx, tmp_path: Path) -> None:
    form = TrainForm(ctx)
    qtbot.addWidget(form)
    form.show()
    form.set_recipe("lora")
    assert "text" not in form.shown_fields() and "width" not in form.shown_fields()
    form.set_recipe("sketch")
    assert "text" in form.shown_fields() and form.tips["text"].isVisible()
    assert "width" in form.shown_fields() and form.tips["width"].isVisible()
    data = tmp_path / "art"
    data.mkdir()
    form.data.set_folder(data)
    assert form.config().text == ""  # the frozen MiniLM, the measured better one
    assert form.config().width == ""  # the standard UNet, the shipped one's
    form.text.setCurrentIndex(form.text.findData("trained"))
    form.width.setCurrentIndex(form.width.findData("wide"))
    config = form.config()
    assert config.text == "trained" and config.width == "wide"
    config.validate()
    other = TrainForm(ctx)
    qtbot.addWidget(other)
    other.set_config(config)  # Train again shows the choices
    assert other.text.currentData() == "trained" and other.config().text == "trained"
    assert other.width.currentData() == "wide" and other.config().width == "wide"
    form.set_recipe("gan")
    assert form.config().text == "" and form.config().width == ""  # nothing elsewhere
