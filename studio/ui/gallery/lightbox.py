"""The lightbox: one picture over the whole window, zoomable, with next/previous.

Double-clicking a picture in the Gallery opens it. Fit or 100 % (buttons, F and 1 keys),
the mouse wheel zooms at the cursor, a drag pans, ←/→ step through the pictures of the
grid, Ctrl+C copies the picture and Esc closes. The full-size image is decoded on the
pool; the GUI thread only makes the pixmap.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QImageReader,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.runtime.tasks import run_in_pool
from studio.ui.image_view import STEP, ImageView
from studio.ui.widgets import guarded


def read_full_image(path: str | Path) -> QImage:
    """The picture at its own size, turned as its EXIF says (pool-thread safe)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise OSError(f"{Path(path).name} could not be read as a picture")
    return image


class ZoomView(ImageView):
    """The lightbox's view: ImageView's zoom and pan on a dark ground, without its frame,
    placeholder or caption; every new picture starts fitted."""

    MARGIN = 24

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setMinimumSize(200, 160)

    def set_image(self, image: QImage | None, caption: str = "") -> None:
        super().set_image(image, caption)
        self.fit()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(12, 12, 14))
        if self._pixmap is None:
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale() < 3.0)
        p.drawPixmap(self.target(), self._pixmap, QRectF(self._pixmap.rect()))


class Lightbox(QWidget):
    """A full-window overlay over its parent window showing one of a list of pictures."""

    current_changed = Signal(str)  # the path now shown (the Gallery follows it)
    closed = Signal()
    image_loaded = Signal(str)
    init_requested = Signal(str)  # "Use as init": start the Art canvas from this picture

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.setObjectName("lightbox")
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(pal.ColorRole.Window, QColor(12, 12, 14))
        self.setPalette(pal)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._paths: list[str] = []
        self._index = -1
        self._serial = 0
        self._image = QImage()
        self.view = ZoomView()
        self.title = QLabel("")
        self.title.setObjectName("muted")
        self.zoom_label = QLabel("")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit the picture to the window (F)")
        self.actual_button = QPushButton("100 %")
        self.actual_button.setToolTip("One picture pixel per screen pixel (1)")
        self.prev_button = QToolButton()
        self.prev_button.setText("‹")
        self.prev_button.setToolTip("Previous picture (←)")
        self.next_button = QToolButton()
        self.next_button.setText("›")
        self.next_button.setToolTip("Next picture (→)")
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close (Esc)")
        self.init_button = QPushButton("Use as init")
        self.init_button.setToolTip("Start the next Art picture from this one (I)")
        for w in (self.fit_button, self.actual_button, self.prev_button, self.next_button,
                  self.close_button, self.init_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bar = QHBoxLayout()
        bar.setContentsMargins(12, 8, 12, 8)
        bar.setSpacing(8)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.zoom_label)
        bar.addWidget(self.init_button)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        bar.addWidget(self.close_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addLayout(bar)
        col.addWidget(self.view, 1)
        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.actual_size)
        self.prev_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.close_button.clicked.connect(self.close_lightbox)
        self.init_button.clicked.connect(self.use_as_init)
        self.view.zoom_changed.connect(
            lambda s: self.zoom_label.setText(f"{round(s * 100)} %"))
        host.installEventFilter(self)
        self.hide()

    # ------------------------------------------------------------------ showing
    def open(self, paths: list[str], index: int) -> None:
        """Show paths[index] over the host window; ←/→ move through `paths`."""
        self._paths = [str(p) for p in paths]
        self.setGeometry(self.parentWidget().rect())
        self.show()
        self.raise_()
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        self._go(index)

    def current_path(self) -> str:
        return self._paths[self._index] if 0 <= self._index < len(self._paths) else ""

    def current_index(self) -> int:
        return self._index

    def image(self) -> QImage:
        return QImage(self._image)

    def next(self) -> None:
        self._go(self._index + 1)

    def previous(self) -> None:
        self._go(self._index - 1)

    def _go(self, index: int) -> None:
        if not self._paths or not 0 <= index < len(self._paths):
            return
        changed = index != self._index
        self._index = index
        path = self._paths[index]
        n = len(self._paths)
        self.title.setText(f"{Path(path).name}   ·   {index + 1} / {n}")
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < n - 1)
        self._serial += 1
        serial = self._serial
        run_in_pool(lambda: read_full_image(path),
                    guarded(self, lambda img: self._loaded(serial, path, img)),
                    on_failed=guarded(self, lambda msg: self._unreadable(serial, msg)))
        if changed:
            self.current_changed.emit(path)

    def _loaded(self, serial: int, path: str, image: QImage) -> None:
        if serial == self._serial:
            self._image = image
            self.view.set_image(image)
            self.image_loaded.emit(path)

    def _unreadable(self, serial: int, message: str) -> None:
        if serial == self._serial:
            self._image = QImage()
            self.view.set_image(None)
            self.title.setText(f"{self.title.text()}   ·   {message}")

    def close_lightbox(self) -> None:
        if not self.isHidden():
            self.hide()
            self._serial += 1
            self.view.set_image(None)
            self._image = QImage()
            self.closed.emit()

    def use_as_init(self) -> None:
        """Hand the picture shown to the Art canvas and step out of the way."""
        path = self.current_path()
        if path:
            self.close_lightbox()
            self.init_requested.emit(path)

    def copy_image(self) -> bool:
        if self._image.isNull():
            return False
        QApplication.clipboard().setImage(self._image)
        return True

    # ------------------------------------------------------------------ events
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        key = event.key()
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_image()
        elif key == Qt.Key.Key_Escape:
            self.close_lightbox()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Space):
            self.next()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_Backspace):
            self.previous()
        elif key == Qt.Key.Key_F or key == Qt.Key.Key_0:
            self.view.fit()
        elif key == Qt.Key.Key_1:
            self.view.actual_size()
        elif key == Qt.Key.Key_I:
            self.use_as_init()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.view.zoom_by(STEP)
        elif key == Qt.Key.Key_Minus:
            self.view.zoom_by(1 / STEP)
        else:
            super().keyPressEvent(event)
            return
        event.accept()
