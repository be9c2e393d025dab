"""The canvas: a mask painted with real mouse events, erased, inverted, cleared; the init
image's controls; inputs written content-named through runtime; upscalers in Models."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from studio.core.requests import ImageRequest
from studio.ui.canvas import CanvasControls, MaskCanvas
from tests.ui import close_ctx, make_ctx, scan


def picture(w: int = 64, h: int = 64) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(40, 120, 200))
    return image


@pytest.fixture
def controls(qtbot):
    canvas = MaskCanvas()
    canvas.resize(336, 336)  # 64² fitted with an 8 px border: 5 screen px per picture px
    box = CanvasControls(canvas)
    qtbot.addWidget(canvas)
    qtbot.addWidget(box)
    canvas.show()
    box.show()
    qtbot.waitExposed(canvas)
    return box


def screen(canvas: MaskCanvas, x: float, y: float) -> QPoint:
    """The widget point over picture pixel (x, y)."""
    s = min((canvas.width() - 16) / canvas.image().width(),
            (canvas.height() - 16) / canvas.image().height())
    x0 = (canvas.width() - canvas.image().width() * s) / 2
    y0 = (canvas.height() - canvas.image().height() * s) / 2
    return QPoint(round(x0 + x * s), round(y0 + y * s))


def stroke(canvas: MaskCanvas, points: list[tuple[int, int]]) -> None:
    """A left-button drag through picture pixels, as real mouse events."""
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(canvas, left, Qt.KeyboardModifier.NoModifier, screen(canvas, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, screen(canvas, *p))
    QTest.mouseRelease(canvas, left, Qt.KeyboardModifier.NoModifier, screen(canvas, *points[-1]))


def value(canvas: MaskCanvas, x: int, y: int) -> int:
    return QColor(canvas.mask().pixel(x, y)).red()


def test_paint_erase_invert_and_clear_with_the_mouse(controls, qtbot):
    canvas = controls.canvas
    assert not controls.details.isVisibleTo(controls)  # no init: text-to-image
    with qtbot.waitSignal(controls.init_changed) as sig:
        controls.set_init(picture(), "photo.png")
    assert sig.args == [True] and controls.details.isVisibleTo(controls)
    assert canvas.mask().size() == canvas.image().size() and not canvas.has_mask()
    controls.brush.setValue(8)
    stroke(canvas, [(16, 32), (32, 32), (48, 32)])
    assert canvas.has_mask()
    assert value(canvas, 32, 32) == 255 and value(canvas, 48, 32) == 255
    assert value(canvas, 32, 8) == 0 and value(canvas, 2, 2) == 0  # away from the stroke
    qtbot.mouseClick(controls.erase_button, Qt.MouseButton.LeftButton)
    assert canvas.erasing
    stroke(canvas, [(28, 32), (36, 32)])
    assert value(canvas, 32, 32) == 0 and value(canvas, 48, 32) == 255
    qtbot.mouseClick(controls.invert_button, Qt.MouseButton.LeftButton)
    assert value(canvas, 2, 2) == 255 and value(canvas, 48, 32) == 0
    qtbot.mouseClick(controls.clear_mask_button, Qt.MouseButton.LeftButton)
    assert not canvas.has_mask()
    canvas.grab()  # the overlay paints (QPainter over the picture) without error


def test_the_init_image_goes_to_the_request_and_clearing_returns_to_txt2img(controls, qtbot,
                                                                             studio_home):
    controls.set_init(picture(), "photo.png")
    controls.strength.setValue(0.4)
    assert controls.strength_slider.value() == 40
    request = controls.apply(ImageRequest(model="m", prompt="p", width=64, height=64))
    init = Path(request.init_image)
    assert init.is_file() and studio_home in init.parents and request.mask == ""
    assert request.strength == 0.4 and request.mode == "img2img"
    stroke(controls.canvas, [(10, 10), (20, 20)])
    controls.area.setCurrentIndex(controls.area.findData("masked"))
    controls.margin_boxes[2].setValue(64)
    again = controls.apply(ImageRequest(model="m", prompt="p", width=64, height=64))
    assert again.init_image == request.init_image  # content-named: stored once
    assert Path(again.mask).is_file() and again.inpaint_area == "masked"
    assert again.outpaint == (0, 0, 64, 0) and again.mode == "outpaint"
    again.validate()
    assert QImage(again.mask).size() == controls.canvas.image().size()
    qtbot.mouseClick(controls.clear_button, Qt.MouseButton.LeftButton)
    plain = controls.apply(ImageRequest(model="m", prompt="p"))
    assert (plain.init_image, plain.mask, plain.mode) == ("", "", "txt2img")
    assert not controls.details.isVisibleTo(controls)


def test_a_file_that_is_not_a_picture_is_one_sentence(controls, qtbot, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with qtbot.waitSignal(controls.failed) as sig:
        assert not controls.load_file(str(bad))
    assert sig.args == ["notes.png is not a picture Studio can read."]
    assert not controls.has_init()


def test_ctrl_v_on_the_canvas_pastes_an_init_image(controls, qtbot):
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setImage(picture(40, 24))
    controls.canvas.activateWindow()
    qtbot.waitUntil(controls.canvas.isActiveWindow)
    controls.canvas.setFocus()
    qtbot.waitUntil(controls.canvas.hasFocus)
    with qtbot.waitSignal(controls.init_changed):
        qtbot.keyClick(controls.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert (controls.canvas.image().width(), controls.canvas.image().height()) == (40, 24)
    assert controls.source == "clipboard"


def test_a_recipe_fills_the_canvas_back(controls, tmp_path):
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    picture(32, 32).save(str(init))
    m = QImage(16, 16, QImage.Format.Format_Grayscale8)  # another size: resized to fit
    m.fill(255)
    m.save(str(mask))
    controls.fill(ImageRequest(init_image=str(init), mask=str(mask), strength=0.3,
                               inpaint_area="masked", outpaint=(8, 0, 0, 16)))
    assert controls.has_init() and controls.canvas.has_mask()
    assert controls.canvas.mask().size() == controls.canvas.image().size()
    assert controls.strength.value() == pytest.approx(0.3)
    assert controls.margins() == (8, 0, 0, 16) and controls.area.currentData() == "masked"
    controls.fill(ImageRequest())
    assert not controls.has_init()


def test_the_models_tab_lists_upscalers_as_their_own_family(qtbot, tmp_path):
    from studio.ui.models_view import ModelsView
    from tests.engines.test_upscale import tiny_esrgan

    folder = tmp_path / "models" / "upscale"
    folder.mkdir(parents=True)
    tiny_esrgan(folder / "tiny-x2.safetensors")
    ctx = make_ctx(tmp_path, model_dirs=[str(tmp_path / "models")])
    view = ModelsView(ctx)
    qtbot.addWidget(view)
    scan(ctx, qtbot)
    view.set_entries(ctx.models)
    rows = {}
    for i in range(view.tree.topLevelItemCount()):
        top = view.tree.topLevelItem(i)
        for j in range(top.childCount()):
            rows[top.child(j).text(0)] = (top.text(0), top.child(j).text(1))
    assert rows["tiny-x2"][1] == "Upscaler (ESRGAN)" and rows["tiny-x2"][0].startswith("Helpers")
    assert rows["Lanczos (built-in upscaler)"][1] == "Upscaler (Lanczos)"
    assert "tiny-x2" not in [e.name for e in ctx.models_for("image")]
    close_ctx(ctx, qtbot)



def test_a_family_without_init_images_greys_the_section_out(qtbot, tmp_path):
    """The built-in GANs render from noise only: no init image section, none sent."""
    from studio.ui.art_panel import ArtPanel

    ctx = make_ctx(tmp_path)
    panel = ArtPanel(ctx)
    qtbot.addWidget(panel)
    panel.model.set_model("builtin:faces")
    assert not panel.init_section.isEnabled()
    assert "one-pass generator" in panel.model_hint.text()
    panel.canvas_controls.set_init(picture(), "")
    job = panel.generate()
    assert job is not None
    assert ctx.jobs.jobs[job].request.init_image == ""
    panel.close()
    close_ctx(ctx, qtbot)
