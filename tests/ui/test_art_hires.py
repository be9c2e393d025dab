"""The Art panel's Hires fix group and the Upscale action on a result, with real clicks:
the tiny SD pipeline renders small and refines at twice the size, with an installed
upscaler model; a finished picture is upscaled by Lanczos from the results bar."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest
from tests.engines.test_upscale import tiny_esrgan
from tests.ui import PanelJobs, make_ctx, shown_window
from tests.ui.test_art_panel import fill_form, type_number


@pytest.fixture
def window(qtbot, tmp_path, tiny_sd):
    more = tmp_path / "more-models"
    (more / "upscale").mkdir(parents=True)
    tiny_esrgan(more / "upscale" / "tiny-esrgan-x2.safetensors")
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent), str(more)])
    with shown_window(qtbot, ctx, scanned=True) as w:
        yield w


def run_job(qtbot, art, click) -> tuple:
    jobs = PanelJobs(art)
    with qtbot.waitSignal(art.ctx.jobs.job_finished, timeout=180000,
                          check_params_cb=jobs.mine) as sig:
        click()
    return sig.args


def test_hires_fix_from_the_form_renders_larger_with_an_upscaler_model(window, qtbot, tiny_sd):
    art = window.art
    hires = art.hires
    names = [hires.upscaler.itemText(i) for i in range(hires.upscaler.count())]
    assert names[:2] == ["Latent", "Lanczos"] and any("esrgan" in n.lower() for n in names)
    fill_form(qtbot, art, str(tiny_sd), "a red fox", steps=2)
    assert art.request().hires_scale == 1.0  # off until ticked
    qtbot.mouseClick(art.hires_section.toggle, Qt.MouseButton.LeftButton)
    assert hires.isVisible() and not hires.body.isEnabled()
    qtbot.mouseClick(hires.enable, Qt.MouseButton.LeftButton)
    assert hires.body.isEnabled() and hires.scale.value() == 2.0  # ticking offers ×2
    type_number(qtbot, hires.steps, 2)
    esrgan = next(i for i, n in enumerate(names) if "esrgan" in n.lower())
    hires.upscaler.setCurrentIndex(esrgan)
    assert "repaints at 128×128 (2 steps)" in hires.target.text()
    request = art.request()
    assert (request.hires_scale, request.hires_steps, request.hires_strength) == (2.0, 2, 0.5)
    assert request.hires_upscaler == hires.upscaler.itemData(esrgan)
    _job, result, paths = run_job(
        qtbot, art, lambda: qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton))
    assert result.images[0].shape == (128, 128, 3)
    assert (art.view.image().width(), art.view.image().height()) == (128, 128)
    recipe = read_recipe(paths[0]).request
    assert recipe["hires_scale"] == 2.0 and recipe["hires_upscaler"].endswith(
        "tiny-esrgan-x2.safetensors")
    # the recipe fills the group back in
    art.fill(ImageRequest())
    assert not hires.enable.isChecked()
    art.fill(ImageRequest.from_dict({"kind": "image", **recipe}))
    assert hires.enable.isChecked() and hires.upscaler.currentIndex() == esrgan
    assert art.request().hires_steps == 2


def test_hires_greys_out_for_a_gan_and_with_an_init_image(window, qtbot, tmp_path, tiny_sd):
    art = window.art
    art.hires_section.set_expanded(True)
    art.hires.enable.setChecked(True)
    art.model.set_model("builtin:faces")
    qtbot.waitUntil(lambda: not art.hires_section.isEnabled(), timeout=5000)
    assert art.request().hires_scale == 1.0  # greyed out: no hires fix whatever is ticked
    art.model.set_model(str(tiny_sd))
    qtbot.waitUntil(art.hires_section.isEnabled, timeout=5000)
    assert art.hires.is_on() and art.request().hires_scale == 2.0
    from PySide6.QtGui import QColor, QImage

    picture = QImage(64, 64, QImage.Format.Format_RGB32)
    picture.fill(QColor(10, 200, 30))
    picture.save(str(tmp_path / "init.png"))
    assert art.use_file_as_init(str(tmp_path / "init.png"))
    assert not art.hires.isEnabled() and art.request().hires_scale == 1.0
    assert art.hires.toolTip().startswith("The hires fix refines text-to-image renders")
    art.canvas_controls.clear()  # back to text-to-image: the hires fix is back
    assert art.hires.is_on() and art.request().hires_scale == 2.0


def test_upscale_a_result_from_the_results_bar(window, qtbot):
    art = window.art
    art.model.set_model("builtin:faces")
    for box, value in ((art.width_box, 64), (art.height_box, 64)):
        type_number(qtbot, box, value)
    _job, _result, paths = run_job(
        qtbot, art, lambda: qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton))
    qtbot.mouseClick(art.upscale_button, Qt.MouseButton.LeftButton)
    menu = art.upscale_choices
    qtbot.waitUntil(lambda: menu is not None and menu.isVisible(), timeout=5000)
    texts = [a.text() for a in menu.actions()]
    assert texts[:2] == ["Lanczos ×2", "Lanczos ×4"]
    assert any("esrgan" in t.lower() and t.endswith("×2") for t in texts)
    action = menu.actions()[0]
    _job, result, upscaled = run_job(qtbot, art, lambda: qtbot.mouseClick(
        menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center()))
    assert result.images[0].shape == (128, 128, 3)
    assert (art.view.image().width(), art.view.image().height()) == (128, 128)
    assert len(upscaled) == 1 and upscaled[0].exists() and upscaled[0] != paths[0]
    recipe = read_recipe(upscaled[0]).request
    assert recipe["image"] == str(paths[0]) and recipe["scale"] == 2
    assert recipe["model"] == "builtin:lanczos"
