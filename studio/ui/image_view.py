"""The zoomable, pannable image view of the Art canvas, the gallery and its lightbox."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_ZOOM, MAX_ZOOM, STEP = 0.05, 32.0, 1.25  # the zoom's range, and one wheel notch


class ImageView(QWidget):
    """Shows one image fitted to the widget or at a zoom, offset by a pan; wheel zooms at the
    cursor, drag pans, double-click toggles between fit and 100 %."""

    zoom_changed = Signal(float)  # the on-screen scale, after a zoom, a fit or a resize
    MARGIN = 16  # pixels kept free around a fitted picture

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._scaled: QPixmap | None = None  # the pixmap at its on-screen size (fit mode)
        self._image = QImage()
        self._placeholder = placeholder
        self._caption = ""
        self._fit = True
        self._zoom = 1.0
        self._offset = QPointF(0, 0)  # of the picture's centre from the view's centre
        self._drag: QPointF | None = None
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setObjectName("ImageView")

    # public -----------------------------------------------------------------
    def set_image(self, image: QImage | None, caption: str = "") -> None:
        """Show image (None clears). Keeps the zoom when the size is unchanged (live previews)."""
        old = self._image.size() if not self._image.isNull() else None
        self._image = QImage() if image is None else image
        self._pixmap = None if self._image.isNull() else QPixmap.fromImage(self._image)
        self._scaled = None
        self._caption = caption
        if self._image.isNull() or old != self._image.size():
            self.fit()
        self.update()

    def image(self) -> QImage:
        return self._image

    def has_image(self) -> bool:
        return self._pixmap is not None

    def set_caption(self, caption: str) -> None:
        self._caption = caption
        self.update()

    def caption(self) -> str:
        return self._caption

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def image_size(self) -> tuple[int, int]:
        return (self._pixmap.width(), self._pixmap.height()) if self._pixmap else (0, 0)

    def is_fit(self) -> bool:
        return self._fit

    def offset(self) -> QPointF:
        return QPointF(self._offset)

    def scale(self) -> float:
        """The current on-screen scale of the image (fit or zoomed)."""
        if self._pixmap is None:
            return 1.0
        if not self._fit:
            return self._zoom
        w, h = self._pixmap.width(), self._pixmap.height()
        avail_w = max(1, self.width() - self.MARGIN)
        avail_h = max(1, self.height() - self.MARGIN)
        return min(avail_w / w, avail_h / h)

    def fit(self) -> None:
        """The whole picture, as large as the view allows, centred."""
        self._fit, self._offset = True, QPointF(0, 0)
        self._changed()

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel, centred."""
        self._fit, self._zoom, self._offset = False, 1.0, QPointF(0, 0)
        self._changed()

    def zoom_by(self, factor: float, at: QPointF | None = None) -> None:
        """Zoom keeping the picture point under `at` (the view's centre by default) still."""
        if self._pixmap is None:
            return
        old = self.scale()
        new = max(MIN_ZOOM, min(MAX_ZOOM, old * factor))
        centre = QPointF(self.width() / 2, self.height() / 2)
        anchor = centre if at is None else at
        self._offset += (anchor - (centre + self._offset)) * (1 - new / old)
        self._fit, self._zoom = False, new
        self._changed()

    def _changed(self) -> None:
        self.update()
        self.zoom_changed.emit(self.scale())

    # painting ---------------------------------------------------------------
    def target(self) -> QRectF:
        """Where the picture is drawn, in view coordinates."""
        w, h = self.image_size()
        s = self.scale()
        return QRectF(self.width() / 2 + self._offset.x() - w * s / 2,
                      self.height() / 2 + self._offset.y() - h * s / 2, w * s, h * s)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(pal.ColorRole.Base).darker(115))
        if self._pixmap is None:
            p.setPen(pal.color(pal.ColorRole.PlaceholderText))
            f = QFont(self.font())
            f.setPointSizeF(f.pointSizeF() * 1.1)
            p.setFont(f)
            p.drawText(self.rect().adjusted(24, 24, -24, -24),
                       int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap),
                       self._placeholder)
            return
        target = self.target()
        # a soft shadow frame so the picture sits on the canvas
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 70))
        p.drawRoundedRect(target.adjusted(-3, -2, 3, 5), 4, 4)
        smooth = self.scale() < 4.0
        size = target.size().toSize()
        if size.width() <= self.width() and size.height() <= self.height():
            # scale once per picture and size, then every repaint is a plain copy
            if self._scaled is None or self._scaled.size() != size:
                mode = (Qt.TransformationMode.SmoothTransformation if smooth
                        else Qt.TransformationMode.FastTransformation)
                self._scaled = self._pixmap.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                   mode)
            p.drawPixmap(target.topLeft().toPoint(), self._scaled)
        else:  # zoomed in past the widget: let the painter transform only what shows
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            p.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        if self._caption:
            f = QFont(self.font())
            p.setFont(f)
            fm = p.fontMetrics()
            text = fm.elidedText(self._caption, Qt.TextElideMode.ElideRight, self.width() - 40)
            w = fm.horizontalAdvance(text) + 16
            h = fm.height() + 8
            box = QRectF(12, self.height() - h - 12, w, h)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(box, 6, 6)
            p.setPen(QColor(235, 235, 240))
            p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)

    # interaction ------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self._fit:
            self.zoom_changed.emit(self.scale())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        dy = event.angleDelta().y()
        if dy:  # one step per notch (120), in proportion for fine-grained wheels
            self.zoom_by(STEP ** (dy / 120), event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._pixmap is not None:
            self._drag = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag is not None:
            if self._fit:  # a drag in fit mode pins the fitted scale, then pans
                self._fit, self._zoom = False, self.scale()
            self._offset += event.position() - self._drag
            self._drag = event.position()
            self.update()

    def mouseReleaseEvent(self, _event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self._drag = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, _event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._pixmap is None:
            return
        if self._fit:
            self.actual_size()
        else:
            self.fit()
