""""Use as init" from the gallery: the right-click menu, the details pane and the lightbox
each start the Art canvas from the picture and bring the Art tab to the front."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from tests.ui.test_gallery import add_outputs, click_row, refresh, row_of, window  # noqa: F401


def right_click(gallery, qtbot, row: int) -> QMenu:
    """A right click on a grid cell: the press, and the context-menu event the platform
    sends with it (QTest's synthetic press alone does not make one)."""
    rect = gallery.grid.visualRect(gallery.model.index(row))
    viewport = gallery.grid.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.RightButton, pos=rect.center())
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, rect.center(),
                              viewport.mapToGlobal(rect.center()))
    QApplication.sendEvent(viewport, event)
    qtbot.waitUntil(lambda: gallery.menu is not None and gallery.menu.isVisible(), timeout=5000)
    return gallery.menu


def canvas_pixel(art, x: int, y: int) -> tuple[int, int, int]:
    c = art.mask_canvas.image().pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def assert_started_from(window, path: Path) -> None:  # noqa: F811
    art = window.art
    assert window.current_tab() == "art"
    assert art.canvas_controls.has_init()
    assert art.canvas_controls.source == str(path)
    assert art.tabs.currentIndex() == 1 and art.tabs.isTabEnabled(1)  # the Canvas tab
    assert (art.mask_canvas.image().width(), art.mask_canvas.image().height()) == (64, 64)
    assert canvas_pixel(art, 63, 10)[0] > 200 > canvas_pixel(art, 0, 10)[0]  # the red ramp
    assert path.name in art.canvas_controls.status.text()


def test_right_click_use_as_init_starts_the_art_canvas(window, qtbot):  # noqa: F811
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    menu = right_click(gallery, qtbot, row_of(gallery, files["image"]))
    texts = [a.text() for a in menu.actions()]
    assert texts[:2] == ["Use as init", "Use these settings"]
    action = menu.actions()[0]
    assert action.isEnabled()
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    qtbot.waitUntil(lambda: window.current_tab() == "art", timeout=5000)
    assert_started_from(window, files["image"])


def test_a_music_item_offers_no_use_as_init(window, qtbot):  # noqa: F811
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    menu = right_click(gallery, qtbot, row_of(gallery, files["music"]))
    assert "Use as init" not in [a.text() for a in menu.actions()]
    gallery.menu.hide()
    assert not gallery.details.init_button.isVisible()


def test_details_button_use_as_init(window, qtbot):  # noqa: F811
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["image"]))
    button = gallery.details.init_button
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert_started_from(window, files["image"])


def test_lightbox_use_as_init_closes_it_and_starts_the_canvas(window, qtbot):  # noqa: F811
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["image"]))
    qtbot.mouseClick(gallery.details.view_button, Qt.MouseButton.LeftButton)
    box = gallery.lightbox
    qtbot.waitUntil(lambda: not box.image().isNull(), timeout=5000)
    qtbot.mouseClick(box.init_button, Qt.MouseButton.LeftButton)
    assert box.isHidden()
    assert_started_from(window, files["image"])
    # and with the keyboard: I
    window.art.canvas_controls.clear()
    window.show_tab("gallery")
    gallery.open_lightbox()
    qtbot.waitUntil(lambda: not box.image().isNull(), timeout=5000)
    qtbot.keyClick(box, Qt.Key.Key_I)
    assert_started_from(window, files["image"])
