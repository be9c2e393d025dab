"""The explorer's big preview: the frame scaled to fit, with a note about its real size."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QWheelEvent
from PySide6.QtWidgets import QWidget

from studio.ui.image_view import ImageView


class FrameView(ImageView):
    """The big preview: the frame scaled to fit (smoothly), with a note about its size.

    ImageView keeps the frame, its caption and the fitted geometry; this view never zooms
    or pans (the wheel and drags go on to the panel, the pad is where one drags). A 64²
    model shown at 512 px is an upscale, and the note says so ("64² model, shown ×8"), so
    nobody mistakes the GAN's output for a high-resolution picture.
    """

    MARGIN = 24

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Pick anchors and drag on the pad", parent)
        self._native: tuple[int, int] | None = None
        self.setMinimumSize(280, 280)
        self.setObjectName("FrameView")

    def set_frame(self, image: QImage, native: tuple[int, int] | None = None,
                  caption: str = "") -> None:
        """Show a frame; `native` is the model's own size (for the note), when known."""
        self._native = native
        self.set_image(image, caption)

    def shown_scale(self) -> float:
        """On-screen pixels per model pixel."""
        if self._pixmap is None:
            return 1.0
        w = self._pixmap.width()
        native = self._native or (w, self._pixmap.height())
        return max(self.scale(), 0.01) * w / native[0]

    def note(self) -> str:
        """"64² model, shown ×6" for small models; "" when the frame is shown at its size."""
        if self._pixmap is None or self._native is None:
            return ""
        nw, nh = self._native
        side = f"{nw}²" if nw == nh else f"{nw}×{nh}"
        scale = self.shown_scale()
        if scale < 1.05:
            return f"{side} frame"
        shown = f"{scale:.0f}" if scale >= 3 else f"{scale:.1f}"
        return f"{side} model, shown ×{shown}"

    # the explorer's preview stays fitted: wheel and clicks go on to the panel, as before
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        event.ignore()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        event.ignore()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        event.ignore()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(21, 22, 26))
        if self._pixmap is None:
            p.setPen(QColor(120, 122, 135))
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self._placeholder)
            return
        target = self.target()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 90))
        p.drawRoundedRect(target.adjusted(-4, -3, 4, 6), 6, 6)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        f = QFont(self.font())
        f.setPixelSize(12)
        p.setFont(f)
        fm = p.fontMetrics()
        for text, top in ((self.note(), True), (self._caption, False)):
            if not text:
                continue
            w = fm.horizontalAdvance(text) + 16
            h = fm.height() + 8
            y = target.top() + 10 if top else target.bottom() - h - 10
            box = QRectF(target.left() + 10, y, w, h)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 160))
            p.drawRoundedRect(box, 6, 6)
            p.setPen(QColor(236, 236, 242))
            p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
