"""ImageView's zoom and pan, which the Art canvas, the gallery's details and the lightbox
(ZoomView) share: notch and fine-grained wheels, a drag that pins the fitted scale, fit and
100 % from a double-click, and what a new picture does to the zoom."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.ui.gallery.lightbox import ZoomView
from studio.ui.image_view import ImageView


def picture(w: int, h: int) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(200, 40, 40))
    return image


def wheel(widget, dx: int, dy: int, at: QPoint) -> None:
    event = QWheelEvent(QPointF(at), QPointF(widget.mapToGlobal(at)), QPoint(0, 0),
                        QPoint(dx, dy), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


@pytest.fixture
def view(qtbot) -> ImageView:
    v = ImageView("nothing yet")
    qtbot.addWidget(v)
    v.resize(416, 316)
    v.show()
    qtbot.waitExposed(v)
    v.set_image(picture(200, 100))
    return v


def test_the_wheel_zooms_by_notches_and_in_proportion(view, qtbot):
    scales: list[float] = []
    view.zoom_changed.connect(scales.append)
    assert view.is_fit() and view.scale() == pytest.approx(2.0)  # (416 - 16) / 200
    centre = QPoint(view.width() // 2, view.height() // 2)
    wheel(view, 0, 120, centre)
    assert not view.is_fit() and view.scale() == pytest.approx(2.5)
    wheel(view, 0, -60, centre)  # half a notch, as a fine-grained wheel sends
    assert view.scale() == pytest.approx(2.5 / 1.25 ** 0.5)
    wheel(view, 120, 0, centre)  # a sideways scroll is no zoom
    assert view.scale() == pytest.approx(2.5 / 1.25 ** 0.5)
    assert scales == pytest.approx([2.5, 2.5 / 1.25 ** 0.5])
    for _ in range(40):
        wheel(view, 0, 120, centre)
    assert view.scale() == pytest.approx(32.0)  # the zoom's ceiling


def test_a_drag_pins_the_fitted_scale_and_a_double_click_toggles(view, qtbot):
    fitted = view.scale()
    centre = QPoint(view.width() // 2, view.height() // 2)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, QPoint(centre.x() - 20, centre.y() + 8))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(centre.x() - 20,
                                                                   centre.y() + 8))
    moved = view.offset()
    assert (round(moved.x()), round(moved.y())) == (-20, 8)
    assert not view.is_fit() and view.scale() == pytest.approx(fitted)
    view.resize(300, 300)  # pinned: a resize no longer refits
    assert view.scale() == pytest.approx(fitted)
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert view.is_fit() and view.offset() == QPointF(0, 0)
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert view.scale() == 1.0 and not view.is_fit()


def test_a_new_picture_keeps_the_canvas_zoom_but_the_lightbox_refits(view, qtbot):
    view.zoom_by(1.25)
    zoomed = view.scale()
    view.set_image(picture(200, 100), "Preview 2/4")  # a live preview of the same size
    assert view.scale() == pytest.approx(zoomed) and view.caption() == "Preview 2/4"
    view.set_image(picture(100, 100))
    assert view.is_fit()
    box = ZoomView()
    qtbot.addWidget(box)
    box.resize(424, 324)
    box.set_image(picture(200, 100))
    assert box.scale() == pytest.approx(2.0)  # (424 - 24) / 200: the lightbox's margin
    box.zoom_by(1.25)
    box.set_image(picture(200, 100))
    assert box.is_fit() and box.image_size() == (200, 100)
    box.set_image(None)
    assert not box.has_image() and box.scale() == 1.0
