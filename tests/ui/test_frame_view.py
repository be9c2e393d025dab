"""The explorer's big preview (FrameView, an ImageView that neither zooms nor pans): the
frame fitted and centred with a smooth upscale, the note about the model's real size, the
caption, the placeholder, and a wheel or drag that leaves the fit alone."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.ui.explore.frame_view import FrameView

GROUND = QColor(21, 22, 26)


def checker(side: int) -> QImage:
    """Black and white squares of 1 px: smooth scaling shows greys, nearest would not."""
    image = QImage(side, side, QImage.Format.Format_RGB32)
    for y in range(side):
        for x in range(side):
            image.setPixelColor(x, y, QColor(255, 255, 255) if (x + y) % 2 else QColor(0, 0, 0))
    return image


def solid(w: int, h: int, colour: QColor) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(colour)
    return image


@pytest.fixture
def view(qtbot) -> FrameView:
    v = FrameView()
    qtbot.addWidget(v)
    v.resize(536, 424)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_a_small_model_is_shown_fitted_with_a_note_saying_how_much(view):
    assert view.note() == "" and view.shown_scale() == 1.0
    view.set_frame(solid(64, 64, QColor(10, 200, 30)), (64, 64), "seed 3")
    assert view.shown_scale() == pytest.approx((424 - 24) / 64)
    assert view.note() == "64² model, shown ×6"
    assert view.caption() == "seed 3" and view.image().width() == 64
    view.set_caption("walk · frame 2/8")
    assert view.caption() == "walk · frame 2/8"
    view.set_frame(solid(256, 128, QColor(10, 200, 30)), (128, 64))
    assert view.shown_scale() == pytest.approx((536 - 24) / 256 * 2)  # width-bound
    assert view.note() == "128×64 model, shown ×4"
    view.set_frame(solid(100, 100, QColor(1, 2, 3)), (400, 400))  # shown smaller
    assert view.note() == "400² frame"
    view.set_frame(solid(64, 64, QColor(1, 2, 3)))  # no model size known: no note
    assert view.note() == ""


def test_the_frame_is_drawn_centred_smooth_on_the_dark_ground(view):
    view.set_frame(checker(8), (8, 8))
    shot = view.grab().toImage()
    scale = view.shown_scale()
    side = 8 * scale
    left, top = (view.width() - side) / 2, (view.height() - side) / 2
    assert shot.pixelColor(2, 2) == GROUND
    assert shot.pixelColor(int(left + side / 2), view.height() - 3) == GROUND
    inside = [shot.pixelColor(int(left + side * f), int(top + side * g)).red()
              for f in (0.3, 0.45, 0.55, 0.7) for g in (0.45, 0.55)]
    assert any(30 < r < 225 for r in inside)  # blended: a smooth upscale, not blocks


def test_no_frame_shows_the_placeholder(view):
    shot = view.grab().toImage()
    assert shot.pixelColor(view.width() // 2, 5) == GROUND
    lit = {shot.pixelColor(x, view.height() // 2).name() for x in range(view.width())}
    assert len(lit) > 2  # the placeholder's text in the middle
    view.set_frame(solid(32, 32, QColor(250, 250, 250)), (32, 32))
    view.set_frame(QImage(), None)
    assert view.note() == "" and view.image().isNull()


def test_the_wheel_and_a_drag_leave_the_fit_alone(view, qtbot):
    view.set_frame(solid(64, 64, QColor(200, 40, 40)), (64, 64))
    fitted = view.shown_scale()
    centre = QPoint(view.width() // 2, view.height() // 2)
    event = QWheelEvent(QPointF(centre), QPointF(view.mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)
    assert not event.isAccepted()  # it goes on to the panel, as before
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(60, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 40))
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert view.shown_scale() == pytest.approx(fitted)
    shot = view.grab().toImage()
    assert shot.pixelColor(centre) == QColor(200, 40, 40)
    assert shot.pixelColor(centre + QPoint(0, int(32 * fitted) + 8)) == GROUND
    view.resize(300, 300)
    assert view.shown_scale() == pytest.approx((300 - 24) / 64)  # refits on resize
