"""The latent pad: a square whose corners are the explorer's anchors, with a draggable puck.

The puck's position (x, y in 0..1, y down) is a bilinear blend of the corner anchors
(studio.core.explore.pad_weights). With two anchors they sit at the left and right
edges and only x counts; with three, the bottom-right corner is the mix of 2 and 3.
It emits position_changed on every mouse move while dragging (Qt already coalesces
mouse moves to the display rate), `settled` when the button is released, and also
moves with the arrow keys (Shift for bigger steps).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QRadialGradient,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

#: one colour per anchor, used on the pad, the weight sliders and the anchor cards
ANCHOR_COLOURS: tuple[QColor, ...] = (
    QColor(124, 92, 255),  # violet (the accent)
    QColor(0, 184, 212),  # cyan
    QColor(255, 159, 67),  # amber
    QColor(94, 214, 128),  # green
)
THUMB = 54
MARGIN = THUMB // 2 + 6


def corner_points(n: int) -> list[tuple[float, float]]:
    """Where each anchor sits on the unit pad (x, y), for n anchors."""
    if n <= 1:
        return [(0.5, 0.5)][:n]
    if n == 2:
        return [(0.0, 0.5), (1.0, 0.5)]
    return [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)][:n]


class LatentPad(QWidget):
    """A square 2-D pad: corners labelled with anchor thumbnails, a draggable puck."""

    position_changed = Signal(float, float)  # x, y in [0, 1], on every move
    pressed = Signal()
    settled = Signal(float, float)  # the button was released here

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._x, self._y = 0.5, 0.5
        self._n = 2
        self._images: list[QImage | None] = [None] * 4
        self._labels: list[str] = []
        self._dragging = False
        self.setMinimumSize(220, 220)
        sp = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setObjectName("LatentPad")
        self.setToolTip("Drag to blend the anchors; arrow keys nudge (Shift: more)")
        self.setAccessibleName("Latent pad")

    # public -------------------------------------------------------------------------------
    def position(self) -> tuple[float, float]:
        return self._x, self._y

    def set_position(self, x: float, y: float, *, emit: bool = False) -> None:
        """Move the puck (clamped); with two anchors y stays in the middle."""
        x = min(max(float(x), 0.0), 1.0)
        y = 0.5 if self._n == 2 else min(max(float(y), 0.0), 1.0)
        changed = (x, y) != (self._x, self._y)
        self._x, self._y = x, y
        self.update()
        if emit and changed:
            self.position_changed.emit(x, y)

    def anchor_count(self) -> int:
        return self._n

    def set_anchor_count(self, n: int) -> None:
        self._n = max(0, min(4, n))
        self.setEnabled(self._n >= 2)
        self.set_position(self._x, self._y)
        self.update()

    def set_corner_images(self, images: Sequence[QImage | None]) -> None:
        """Thumbnails of the anchors' own images, in anchor order."""
        self._images = [*list(images)[:4], *([None] * (4 - min(4, len(images))))]
        self.update()

    def set_corner_labels(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        self.update()

    def pad_rect(self) -> QRectF:
        """The active square in widget coordinates (where x, y map to 0..1)."""
        side = max(10.0, min(self.width(), self.height()) - 2 * MARGIN)
        left = (self.width() - side) / 2
        top = (self.height() - side) / 2
        return QRectF(left, top, side, side)

    def point_at(self, x: float, y: float) -> QPointF:
        """Widget coordinates of pad position (x, y) (tests drag with real mouse events)."""
        r = self.pad_rect()
        return QPointF(r.left() + x * r.width(), r.top() + y * r.height())

    # size ---------------------------------------------------------------------------------
    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt API
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt API
        return width

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(340, 340)

    # interaction --------------------------------------------------------------------------
    def _move_to(self, pos: QPointF) -> None:
        r = self.pad_rect()
        self.set_position((pos.x() - r.left()) / r.width(), (pos.y() - r.top()) / r.height(),
                          emit=True)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() != Qt.MouseButton.LeftButton or self._n < 2:
            return
        self._dragging = True
        self.pressed.emit()
        self._move_to(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._dragging:
            self._move_to(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self._dragging:
            self._dragging = False
            self._move_to(event.position())
            self.settled.emit(self._x, self._y)

    def is_dragging(self) -> bool:
        return self._dragging

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        step = 0.1 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.02
        moves = {Qt.Key.Key_Left: (-step, 0), Qt.Key.Key_Right: (step, 0),
                 Qt.Key.Key_Up: (0, -step), Qt.Key.Key_Down: (0, step)}
        delta = moves.get(Qt.Key(event.key()))
        if delta is None or self._n < 2:
            super().keyPressEvent(event)
            return
        self.set_position(self._x + delta[0], self._y + delta[1], emit=True)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down) \
                and not event.isAutoRepeat():
            self.settled.emit(self._x, self._y)
        super().keyReleaseEvent(event)

    # painting -----------------------------------------------------------------------------
    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        r = self.pad_rect()
        self._paint_field(p, r)
        corners = corner_points(self._n)
        if self._n == 3:  # the implied fourth corner: the mix of anchors 2 and 3
            c = self.point_at(1.0, 1.0)
            p.setPen(QPen(QColor(120, 122, 135), 1.2, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(c, 12, 12)
            p.setPen(QColor(150, 152, 165))
            p.drawText(QRectF(c.x() - 24, c.y() - 8, 48, 16),
                       int(Qt.AlignmentFlag.AlignCenter), "2+3")
        for i, (cx, cy) in enumerate(corners):
            self._paint_anchor(p, i, self.point_at(cx, cy))
        if self._n >= 2:
            self._paint_puck(p, self.point_at(self._x, self._y))
        else:
            p.setPen(QColor(150, 152, 165))
            p.drawText(r, int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap),
                       "Add a second anchor to blend")
        p.end()

    def _paint_field(self, p: QPainter, r: QRectF) -> None:
        path = QPainterPath()
        path.addRoundedRect(r, 14, 14)
        p.fillPath(path, QColor(23, 24, 29))
        # each anchor's colour glows from its corner: the pad reads as a blend at a glance
        p.save()
        p.setClipPath(path)
        for i, (cx, cy) in enumerate(corner_points(self._n)):
            colour = QColor(ANCHOR_COLOURS[i])
            centre = self.point_at(cx, cy)
            grad = QRadialGradient(centre, r.width() * 0.9)
            colour.setAlpha(70)
            grad.setColorAt(0.0, colour)
            colour.setAlpha(0)
            grad.setColorAt(1.0, colour)
            p.fillRect(r, QBrush(grad))
        pen = QPen(QColor(255, 255, 255, 18), 1)
        p.setPen(pen)
        for k in range(1, 4):
            t = k / 4
            p.drawLine(QPointF(r.left() + t * r.width(), r.top()),
                       QPointF(r.left() + t * r.width(), r.bottom()))
            if self._n != 2:
                p.drawLine(QPointF(r.left(), r.top() + t * r.height()),
                           QPointF(r.right(), r.top() + t * r.height()))
        if self._n == 2:
            p.setPen(QPen(QColor(255, 255, 255, 40), 2))
            p.drawLine(self.point_at(0, 0.5), self.point_at(1, 0.5))
        p.restore()
        p.setPen(QPen(QColor(58, 59, 68), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)

    def _paint_anchor(self, p: QPainter, i: int, c: QPointF) -> None:
        colour = ANCHOR_COLOURS[i]
        box = QRectF(c.x() - THUMB / 2, c.y() - THUMB / 2, THUMB, THUMB)
        clip = QPainterPath()
        clip.addRoundedRect(box, 10, 10)
        p.fillPath(clip, QColor(36, 37, 44))
        image = self._images[i] if i < len(self._images) else None
        if image is not None and not image.isNull():
            p.save()
            p.setClipPath(clip)
            p.drawImage(box, image)
            p.restore()
        p.setPen(QPen(colour, 2.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(clip)
        badge = QRectF(box.left() - 4, box.top() - 4, 18, 18)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(badge)
        f = QFont(self.font())
        f.setBold(True)
        f.setPixelSize(11)
        p.setFont(f)
        p.setPen(QColor(255, 255, 255))
        p.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), str(i + 1))
        label = self._labels[i] if i < len(self._labels) else ""
        if label:
            f.setBold(False)
            f.setPixelSize(10)
            p.setFont(f)
            fm = p.fontMetrics()
            text = fm.elidedText(label, Qt.TextElideMode.ElideRight, THUMB + 30)
            w = fm.horizontalAdvance(text) + 8
            below = c.y() < self.height() / 2 or self._n == 2
            y = box.bottom() + 3 if below else box.top() - fm.height() - 5
            tag = QRectF(c.x() - w / 2, y, w, fm.height() + 2)
            tag.moveLeft(min(max(tag.left(), 2), self.width() - tag.width() - 2))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(tag, 4, 4)
            p.setPen(QColor(225, 226, 232))
            p.drawText(tag, int(Qt.AlignmentFlag.AlignCenter), text)

    def _paint_puck(self, p: QPainter, c: QPointF) -> None:
        p.setPen(QPen(QColor(255, 255, 255, 45), 1, Qt.PenStyle.DashLine))
        r = self.pad_rect()
        p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
        p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        glow = QRadialGradient(c, 22)
        glow.setColorAt(0, QColor(124, 92, 255, 120))
        glow.setColorAt(1, QColor(124, 92, 255, 0))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(glow))
        p.drawEllipse(c, 22, 22)
        p.setBrush(QColor(255, 255, 255))
        p.setPen(QPen(QColor(124, 92, 255), 3))
        p.drawEllipse(c, 8, 8)
