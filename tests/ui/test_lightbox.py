"""The Gallery's lightbox: double-click opens a picture over the whole window; fit and
100 %, wheel zoom, drag to pan, ←/→ through the grid's pictures, Ctrl+C, Esc closes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.ui import make_ctx, shown_window
from tests.ui.test_gallery import add_outputs, add_pictures, refresh, row_of


@pytest.fixture
def window(qtbot, tmp_path):
    with shown_window(qtbot, make_ctx(tmp_path), tab="gallery", size=(760, 600)) as w:
        yield w


def double_click_row(gallery, qtbot, row: int) -> None:
    rect = gallery.grid.visualRect(gallery.model.index(row))
    qtbot.mouseClick(gallery.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(gallery.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def wheel(widget, steps: int, at: QPoint) -> None:
    event = QWheelEvent(QPointF(at), QPointF(widget.mapToGlobal(at)), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def open_on(gallery, qtbot, path: Path):
    with qtbot.waitSignal(gallery.lightbox.image_loaded, timeout=10000):
        double_click_row(gallery, qtbot, row_of(gallery, path))
    return gallery.lightbox


def test_double_click_opens_the_picture_over_the_whole_window(window, qtbot):
    gallery = window.gallery
    wide, _tall, _small = add_pictures(window.ctx, [(512, 256), (128, 512), (64, 64)])
    refresh(gallery, qtbot)
    box = open_on(gallery, qtbot, wide)
    assert box.isVisible() and box.geometry() == window.rect()
    assert box.current_path() == str(wide)
    assert box.title.text() == f"{wide.name}   ·   3 / 3"  # the oldest of three
    assert box.view.image_size() == (512, 256)  # the picture itself, not a thumbnail
    assert box.view.is_fit()
    target = box.view.target()
    view = box.view
    # fitted: the whole picture shows, as large as the view allows, not stretched
    assert target.width() <= view.width() and target.height() <= view.height()
    assert abs(target.width() / target.height() - 2.0) < 0.01
    assert box.zoom_label.text() == f"{round(view.scale() * 100)} %"
    # it follows the window's size
    window.resize(700, 560)
    qtbot.waitUntil(lambda: box.geometry() == window.rect(), timeout=2000)


def test_zoom_100_wheel_drag_and_fit(window, qtbot):
    gallery = window.gallery
    (pic,) = add_pictures(window.ctx, [(512, 256)])
    refresh(gallery, qtbot)
    box = open_on(gallery, qtbot, pic)
    view = box.view
    fitted = view.scale()
    qtbot.mouseClick(box.actual_button, Qt.MouseButton.LeftButton)
    assert view.scale() == 1.0 and not view.is_fit()
    assert box.zoom_label.text() == "100 %"
    centre = QPoint(view.width() // 2, view.height() // 2)
    wheel(view, 1, centre)
    assert view.scale() == pytest.approx(1.25)
    wheel(view, -2, centre)
    assert view.scale() == pytest.approx(1 / 1.25)
    # the point under the cursor stays put while zooming
    at = QPoint(centre.x() + 100, centre.y() + 40)
    before = view.target()
    picture_x = (at.x() - before.left()) / before.width()
    wheel(view, 1, at)
    after = view.target()
    assert (at.x() - after.left()) / after.width() == pytest.approx(picture_x, abs=1e-3)
    # drag pans
    start = view.offset()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, QPoint(centre.x() + 30, centre.y() + 12))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(centre.x() + 30,
                                                                   centre.y() + 12))
    moved = view.offset() - start
    assert (round(moved.x()), round(moved.y())) == (30, 12)
    qtbot.keyClick(box, Qt.Key.Key_F)
    assert view.is_fit() and view.scale() == pytest.approx(fitted)
    qtbot.keyClick(box, Qt.Key.Key_1)
    assert view.scale() == 1.0
    qtbot.mouseClick(box.fit_button, Qt.MouseButton.LeftButton)
    assert view.is_fit()


def test_arrow_keys_walk_the_pictures_and_esc_closes(window, qtbot):
    gallery = window.gallery
    pictures = add_pictures(window.ctx, [(64, 64), (96, 64), (64, 96)])
    add_outputs(window.ctx)  # music and text are skipped by the lightbox
    refresh(gallery, qtbot)
    order = [Path(i.path) for i in gallery.items() if i.modality == "image"]
    assert len(order) == 4 and set(pictures) < set(order)
    box = open_on(gallery, qtbot, order[0])
    assert not box.prev_button.isEnabled()
    with qtbot.waitSignal(box.image_loaded, timeout=10000):
        qtbot.keyClick(box, Qt.Key.Key_Right)
    assert box.current_path() == str(order[1])
    assert Path(gallery.selected_item().path) == order[1]  # the grid follows
    assert box.title.text().endswith("2 / 4")
    for _ in range(5):  # past the end it stays on the last
        qtbot.keyClick(box, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: box.current_path() == str(order[-1]), timeout=5000)
    assert not box.next_button.isEnabled()
    with qtbot.waitSignal(box.image_loaded, timeout=10000):
        qtbot.keyClick(box, Qt.Key.Key_Left)
    assert box.current_path() == str(order[-2])
    w, h = box.view.image_size()
    assert (w, h) != (0, 0)
    # Ctrl+C copies the picture shown
    QApplication.clipboard().setText("nothing")
    qtbot.keyClick(box, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QApplication.clipboard().image()
    assert (copied.width(), copied.height()) == (w, h)
    with qtbot.waitSignal(box.closed, timeout=2000):
        qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert not box.isVisible()
    assert Path(gallery.selected_item().path) == order[-2]


def test_a_music_item_double_clicked_does_not_open_the_lightbox(window, qtbot, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(opened.append))
    double_click_row(gallery, qtbot, row_of(gallery, files["music"]))
    assert gallery._lightbox is None or not gallery.lightbox.isVisible()
    assert [Path(u.toLocalFile()) for u in opened] == [files["music"]]
