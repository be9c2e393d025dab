"""The Art panel with a real tiny Stable Diffusion pipeline, real clicks and keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest
from studio.ui.art_panel import ArtPanel
from tests.ui import (
    PanelJobs,
    close_ctx,
    image_jobs_waiting,
    make_ctx,
    output_files,
    shown_window,
    use_slow_engine,
)


@pytest.fixture
def window(qtbot, tmp_path, tiny_sd):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent)])
    with shown_window(qtbot, ctx, scanned=True) as w:
        yield w


def type_number(qtbot, box, value: int) -> None:
    """Select the spin box's text, type a number and press Return (which commits it)."""
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, str(value))
    qtbot.keyClick(box, Qt.Key.Key_Return)


def fill_form(qtbot, art, model: str, prompt: str, *, steps: int, side: int = 64) -> None:
    """Type into the form the way a person would."""
    art.model.set_model(model)
    art.prompt.setFocus()
    qtbot.keyClicks(art.prompt, prompt)
    for box, value in ((art.width_box, side), (art.height_box, side), (art.steps, steps)):
        type_number(qtbot, box, value)
    art.seed.edit.setFocus()
    qtbot.keyClicks(art.seed.edit, "12345")


def test_generate_with_tiny_sd_previews_saves_and_shows_in_gallery(window, qtbot, tiny_sd):
    art, ctx = window.art, window.ctx
    assert str(tiny_sd) in art.model.model_ids()
    fill_form(qtbot, art, str(tiny_sd), "a red fox", steps=4)
    assert (art.request().width, art.request().height, art.request().steps) == (64, 64, 4)
    jobs = PanelJobs(art)
    previews = []
    ctx.jobs.job_preview.connect(lambda i, p: previews.append(p) if jobs.mine(i) else None)
    captions = []
    ctx.jobs.job_preview.connect(
        lambda i, _p: captions.append(art.view.caption()) if jobs.mine(i) else None)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    _job, _result, paths = sig.args
    # previews arrived and were shown in the view while it ran
    assert previews and all(p.kind == "image" for p in previews)
    assert any(c.startswith("Preview · step") for c in captions)
    # the final picture is in the view and on disk, with its recipe
    assert art.view.has_image()
    assert (art.view.image().width(), art.view.image().height()) == (64, 64)
    assert len(paths) == 1 and paths[0].exists() and paths[0].suffix == ".png"
    recipe = read_recipe(paths[0])
    assert recipe.request["prompt"] == "a red fox" and recipe.request["seed"] == 12345
    assert recipe.request["steps"] == 4
    assert art.progress.status.text().startswith("Done in")
    assert "seed 12345" in art.progress.status.text()
    assert art.strip.count() == 1
    # "reuse last seed" puts the seed back after the dice cleared it
    qtbot.mouseClick(art.seed.dice, Qt.MouseButton.LeftButton)
    assert art.seed.value() == -1
    qtbot.mouseClick(art.seed.reuse, Qt.MouseButton.LeftButton)
    assert art.seed.value() == 12345
    # the gallery picked it up
    qtbot.waitUntil(lambda: window.gallery.item_count() == 1, timeout=10000)
    assert Path(str(window.gallery.items()[0].path)) == paths[0]
    # copy recipe: A1111 text read back from the PNG
    QApplication.clipboard().clear()
    qtbot.mouseClick(art.copy_recipe_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Steps: 4" in QApplication.clipboard().text(), timeout=5000)
    assert QApplication.clipboard().text().startswith("a red fox")
    assert "Seed: 12345" in QApplication.clipboard().text()


@pytest.mark.parametrize("how", ["escape", "button"])
def test_cancel_mid_job_writes_no_file(window, qtbot, tiny_sd, how):
    art, ctx = window.art, window.ctx
    fill_form(qtbot, art, str(tiny_sd), "a slow fox", steps=400)
    jobs = PanelJobs(art)
    steps = []
    ctx.jobs.job_progress.connect(lambda i, p: steps.append(p.step) if jobs.mine(i) else None)
    with qtbot.waitSignal(ctx.jobs.job_started, timeout=60000, check_params_cb=jobs.mine):
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(steps), timeout=120000)
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=30000, check_params_cb=jobs.mine):
        if how == "escape":
            art.prompt.setFocus()
            qtbot.keyClick(art.prompt, Qt.Key.Key_Escape)
        else:
            qtbot.mouseClick(art.cancel_button, Qt.MouseButton.LeftButton)
    assert max(steps) < 400
    assert art.progress.status.text() == "Cancelled."
    assert not art.cancel_button.isEnabled()
    assert output_files(Path(ctx.settings.output_dir)) == []
    assert list(ctx.history.search("", limit=10)) == []


def test_bad_input_shows_one_sentence_and_queues_nothing(window, qtbot, tiny_sd):
    art, ctx = window.art, window.ctx
    art.model.set_model(str(tiny_sd))
    qtbot.keyClicks(art.prompt, "a fox")
    type_number(qtbot, art.width_box, 100)
    assert art.size_preset.currentText() == "Custom"
    qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    assert art.message.isVisible()
    assert art.message.text() == "Width must be a multiple of 8, not 100."
    assert image_jobs_waiting(ctx) == [] and not art.busy()
    # a seed beyond the range: also one sentence
    art.width_box.setValue(64)
    art.seed.edit.setText("99999999999999999999")  # beyond 64 bits
    qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    assert "seed" in art.message.text() and "\n" not in art.message.text()
    assert image_jobs_waiting(ctx) == [] and not art.busy()


def test_no_model_is_one_sentence(window, qtbot):
    ctx = window.ctx
    ctx.models = []  # a catalog with nothing in it (not even the built-ins)
    art = ArtPanel(ctx)
    qtbot.addWidget(art)
    art.show()
    assert art.model.current_model() == ""
    assert art.model.currentText().startswith("No image models found")
    qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    assert art.message.text() == "Choose a model first."


def test_ctrl_enter_generates_and_repeated_clicks_queue(window, qtbot, monkeypatch):
    use_slow_engine(monkeypatch)
    art, ctx = window.art, window.ctx
    art.model.set_model("slow:30")
    art.width_box.setValue(64)
    art.height_box.setValue(64)
    art.steps.setValue(30)
    art.prompt.setFocus()
    qtbot.keyClicks(art.prompt, "first")
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_started, timeout=60000, check_params_cb=jobs.mine):
        qtbot.keyClick(art.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert art.prompt.toPlainText() == "first"  # Ctrl+Enter did not type a newline
    qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    assert len(image_jobs_waiting(ctx)) == 2 and len(jobs.ids) == 3
    assert art.generate_button.text() == "Generate  (+2 queued)"
    qtbot.waitUntil(lambda: len(window.queue.rows) == 3)
    finished = []
    ctx.jobs.job_finished.connect(lambda i, *a: finished.append(i) if jobs.mine(i) else None)
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=20000)
    assert art.generate_button.text() == "Generate"
    assert len(output_files(Path(ctx.settings.output_dir))) == 3


def test_batch_shows_a_sheet_then_each_picture(window, qtbot, monkeypatch):
    use_slow_engine(monkeypatch)
    art, ctx = window.art, window.ctx
    art.apply_request(ImageRequest(model="slow:1", prompt="many", seed=5, steps=2,
                                   width=64, height=64, batch_size=3))
    assert art.message.text() == "Settings loaded from the recipe."
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    assert sig.args[1].request.seed == 5 and len(sig.args[2]) == 3
    # "All" (the contact sheet) first, then one thumbnail per picture, labelled by seed
    assert [art.strip.item(i).text() for i in range(art.strip.count())] == ["All", "5", "6", "7"]
    assert art.view.image().width() > 64
    rect = art.strip.visualItemRect(art.strip.item(2))
    qtbot.mouseClick(art.strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert art.view.image().width() == 64 and art.view.caption().startswith("Seed 6")
    assert art.selected_result().path == sig.args[2][1]


def test_apply_request_of_another_kind_is_refused_politely(window):
    from studio.core.requests import TextRequest

    window.art.apply_request(TextRequest(model="builtin:smollm2", prompt="hi"))
    assert "not for pictures" in window.art.message.text()


@pytest.fixture
def art(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    panel = ArtPanel(ctx)
    qtbot.addWidget(panel)
    panel.show()
    yield panel
    panel.close()
    close_ctx(ctx, qtbot)


def test_the_form_is_made_from_the_request_fields(art):
    from studio.core.fields import spec

    for name, box in (("steps", art.steps), ("guidance", art.guidance),
                      ("width", art.width_box), ("batch_size", art.batch)):
        s = spec(ImageRequest, name)
        assert (box.minimum(), box.maximum(), box.value()) == (s.low, s.high, s.default)
        assert box.toolTip() == s.tip
    assert art.width_box.singleStep() == 8 and art.width_box.suffix() == " px"
    assert art.fields.labels["guidance"].text() == "CFG"
    assert art.request() == ImageRequest(model=art.model.current_model())


def test_controls_a_family_does_not_read_are_greyed_out(art):
    """The built-in GAN's descriptor says steps, CFG, sampler and negative do not apply."""
    art.model.set_model("builtin:faces")
    art.on_model_changed("builtin:faces")
    for w in (art.steps, art.guidance, art.scheduler, art.negative):
        assert not w.isEnabled()
    assert art.model_hint.isVisible()
    assert "steps, CFG, sampler and the negative prompt do not apply" in art.model_hint.text()
    art.on_model_changed("/somewhere/a-diffusion-model")  # unknown: everything applies
    assert all(w.isEnabled() for w in (art.steps, art.guidance, art.scheduler, art.negative))
    assert not art.model_hint.isVisible()


def test_esc_interrupts_the_running_job_and_the_next_one_takes_the_canvas(art, qtbot,
                                                                        monkeypatch):
    use_slow_engine(monkeypatch)
    art.model.set_model("slow:60")
    art.prompt.setPlainText("a fox")
    art.steps.setValue(30)
    art.width_box.setValue(64)
    art.height_box.setValue(64)
    first, second = art.generate(), art.generate()
    qtbot.waitUntil(lambda: art.jobs.current == first
                    and art.view.caption().startswith("Preview"), timeout=20000)
    with qtbot.waitSignal(art.jobs.cancelled, timeout=20000):
        qtbot.keyClick(art.prompt, Qt.Key.Key_Escape)  # A1111's Interrupt: this job only
    assert art.jobs.ids == [second]
    qtbot.waitUntil(lambda: art.jobs.current == second, timeout=20000)
    assert not art.view.caption().startswith("Cancelled")  # the canvas is the new job's
    with qtbot.waitSignal(art.jobs.cancelled, timeout=20000):
        qtbot.mouseClick(art.cancel_all_button, Qt.MouseButton.LeftButton)
    assert not art.busy()


def test_inpaint_on_the_canvas_with_tiny_sd_shows_and_saves_the_result(window, qtbot, tiny_sd,
                                                                      tmp_path):
    from PySide6.QtGui import QColor, QImage

    from tests.ui.test_canvas import stroke

    art, ctx = window.art, window.ctx
    init = tmp_path / "sketch.png"
    sketch = QImage(64, 64, QImage.Format.Format_RGB32)
    sketch.fill(QColor(200, 60, 40))
    sketch.save(str(init))
    fill_form(qtbot, art, str(tiny_sd), "a red fox", steps=2)
    assert not art.canvas_controls.details.isVisibleTo(art)  # text-to-image so far
    art.canvas_controls.load_file(str(init))
    assert art.tabs.currentIndex() == 1 and art.stack.currentWidget() is art.mask_canvas
    assert art.canvas_controls.strength.isVisibleTo(art)
    qtbot.waitExposed(art.mask_canvas)
    art.canvas_controls.brush.setValue(12)
    stroke(art.mask_canvas, [(20, 32), (44, 32)])
    assert art.mask_canvas.has_mask()
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=120000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    _job, result, paths = sig.args
    assert result.request.mode == "inpaint"
    assert art.stack.currentWidget() is art.view and art.view.has_image()
    assert (art.view.image().width(), art.view.image().height()) == (64, 64)
    assert len(paths) == 1 and paths[0].is_file()
    request = read_recipe(paths[0]).to_request()
    assert request.init_image == result.request.init_image and Path(request.init_image).is_file()
    assert request.mask and Path(request.mask).is_file() and request.prompt == "a red fox"
    # "Use as init" on the result starts the next picture from it
    qtbot.mouseClick(art.use_init_button, Qt.MouseButton.LeftButton)
    assert art.canvas_controls.has_init() and art.tabs.currentIndex() == 1
    assert not art.mask_canvas.has_mask()
    art.canvas_controls.clear()
    assert art.request().init_image == "" and art.tabs.currentIndex() == 0
