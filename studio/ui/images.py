"""Image helpers for the widgets: numpy → QImage, thumbnails, drawn icons.

Everything here builds QImage (never QPixmap), so it is safe on pool threads;
widgets turn the result into a QPixmap in the GUI thread.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QIcon,
    QImage,
    QImageReader,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
TEXT_SUFFIXES = {".md", ".txt"}

if TYPE_CHECKING:
    import numpy as np

ACCENT = QColor(124, 92, 255)
ACCENT_2 = QColor(0, 184, 212)


def qimage_from_array(array: np.ndarray) -> QImage:
    """A QImage that owns a copy of a uint8 (H, W), (H, W, 3) or (H, W, 4) array.

    The copy matters: a QImage made over a numpy buffer dies with the buffer.
    """
    import numpy as np  # here, not at import: the window starts without numpy

    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
        channels = 1
    elif arr.ndim == 3 and arr.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
        channels = 3
    elif arr.ndim == 3 and arr.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
        channels = 4
    else:
        raise ValueError(f"cannot show an array of shape {arr.shape} as an image")
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    image = QImage(arr.data, w, h, w * channels, fmt)
    return image.copy()


def contact_sheet(images: list[QImage], gap: int = 4) -> QImage:
    """Tile a batch into one near-square grid (what a batch preview shows)."""
    if not images:
        return QImage()
    if len(images) == 1:
        return images[0]
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cw = max(i.width() for i in images)
    ch = max(i.height() for i in images)
    sheet = QImage(cols * cw + (cols - 1) * gap, rows * ch + (rows - 1) * gap,
                   QImage.Format.Format_RGB32)
    sheet.fill(QColor(24, 24, 28))
    painter = QPainter(sheet)
    for n, img in enumerate(images):
        r, c = divmod(n, cols)
        painter.drawImage(c * (cw + gap), r * (ch + gap), img)
    painter.end()
    return sheet


def kind_of(path: str | Path) -> str:
    """"image", "music", "text" or "file", by suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "music"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return "file"


def _canvas(size: int, top: QColor, bottom: QColor) -> tuple[QImage, QPainter]:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    grad = QLinearGradient(0, 0, 0, size)
    grad.setColorAt(0, top)
    grad.setColorAt(1, bottom)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(grad)
    painter.drawRoundedRect(QRectF(1, 1, size - 2, size - 2), size * 0.08, size * 0.08)
    return image, painter


def placeholder_image(kind: str, size: int = 160, snippet: str = "") -> QImage:
    """A drawn tile for outputs that are not pictures (music, text) or whose file is missing."""
    if kind == "music":
        image, p = _canvas(size, QColor(44, 38, 84), QColor(26, 24, 44))
        p.setPen(QPen(QColor(190, 175, 255), max(2.0, size / 40)))
        mid = size / 2
        bars = 15
        for i in range(bars):
            x = size * 0.16 + i * (size * 0.68) / (bars - 1)
            amp = size * 0.28 * abs(math.sin(i * 0.9) * math.cos(i * 0.37) + 0.15)
            p.drawLine(QPointF(x, mid - amp), QPointF(x, mid + amp))
    elif kind == "text":
        image, p = _canvas(size, QColor(36, 52, 60), QColor(24, 30, 36))
        p.setPen(QColor(210, 225, 230))
        font = QFont()
        font.setPixelSize(max(9, size // 13))
        p.setFont(font)
        if snippet:
            rect = QRectF(size * 0.1, size * 0.1, size * 0.8, size * 0.8)
            p.drawText(rect, int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignTop),
                       snippet[:240])
        else:
            p.setPen(QPen(QColor(150, 180, 190), max(2.0, size / 45)))
            for i, frac in enumerate((0.8, 0.65, 0.75, 0.5, 0.7)):
                y = size * (0.28 + i * 0.11)
                p.drawLine(QPointF(size * 0.18, y), QPointF(size * (0.18 + frac * 0.64), y))
    elif kind == "missing":
        image, p = _canvas(size, QColor(58, 40, 44), QColor(34, 26, 28))
        p.setPen(QPen(QColor(230, 120, 120), max(2.0, size / 30)))
        r = size * 0.16
        c = QPointF(size / 2, size * 0.42)
        p.drawEllipse(c, r, r)
        p.drawLine(c + QPointF(-r * 0.7, -r * 0.7), c + QPointF(r * 0.7, r * 0.7))
        font = QFont()
        font.setPixelSize(max(9, size // 11))
        p.setFont(font)
        p.setPen(QColor(235, 200, 200))
        p.drawText(QRectF(0, size * 0.66, size, size * 0.2), int(Qt.AlignmentFlag.AlignCenter),
                   "file missing")
    else:
        image, p = _canvas(size, QColor(50, 52, 58), QColor(32, 33, 38))
        p.setPen(QPen(QColor(170, 170, 180), max(2.0, size / 40)))
        p.drawRect(QRectF(size * 0.3, size * 0.22, size * 0.4, size * 0.56))
    p.end()
    return image


def load_thumbnail(path: str | Path, size: int = 160) -> QImage:
    """A thumbnail for any output file (pool-thread safe); a drawn tile when it is not a picture.

    Images are decoded at reduced size by QImageReader, so big PNGs stay cheap.
    """
    path = Path(path)
    if not path.exists():
        return placeholder_image("missing", size)
    kind = kind_of(path)
    if kind == "image":
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)
        full = reader.size()
        if full.isValid() and (full.width() > size or full.height() > size):
            reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if image.isNull():
            return placeholder_image("missing", size)
        return image
    if kind == "text":
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                snippet = fh.read(600)
        except OSError:
            return placeholder_image("missing", size)
        return placeholder_image("text", size, _strip_markdown(snippet))
    return placeholder_image(kind, size)


def fit_square(image: QImage, size: int) -> QImage:
    """The image scaled to fit a size×size tile, centred on transparency (pool-thread safe).

    Grid views lay every item out like the first one: tiles of one size keep each
    picture's aspect ratio and leave its caption where the view expects it.
    """
    tile = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    tile.fill(Qt.GlobalColor.transparent)
    if image.isNull():
        return tile
    scaled = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
    p = QPainter(tile)
    p.drawImage((size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    p.end()
    return tile


def _strip_markdown(text: str) -> str:
    """Drop front matter, headings' hashes and comments so a snippet reads as prose."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        try:
            end = lines[1:].index("---") + 1
            lines = lines[end + 1 :]
        except ValueError:
            pass
    out = [ln.lstrip("#> ").strip() for ln in lines if not ln.strip().startswith("<!--")]
    return " ".join(ln for ln in out if ln)


def app_icon_image(size: int = 256) -> QImage:
    """The Studio mark: a rounded square with a violet→cyan gradient and a spark."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    grad = QLinearGradient(0, 0, size, size)
    grad.setColorAt(0, ACCENT)
    grad.setColorAt(1, ACCENT_2)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(grad)
    m = size * 0.06
    p.drawRoundedRect(QRectF(m, m, size - 2 * m, size - 2 * m), size * 0.22, size * 0.22)
    # a four-pointed spark
    c = size / 2
    r_out, r_in = size * 0.32, size * 0.075
    path = QPainterPath()
    for i in range(8):
        ang = math.pi / 4 * i - math.pi / 2
        r = r_out if i % 2 == 0 else r_in
        pt = QPointF(c + r * math.cos(ang), c + r * math.sin(ang))
        if i == 0:
            path.moveTo(pt)
        else:
            path.lineTo(pt)
    path.closeSubpath()
    p.setBrush(QColor(255, 255, 255, 240))
    p.drawPath(path)
    p.setBrush(QColor(255, 255, 255, 200))
    p.drawEllipse(QPointF(size * 0.72, size * 0.28), size * 0.045, size * 0.045)
    p.end()
    return image


def app_icon() -> QIcon:
    """The window icon at the sizes window managers ask for (GUI thread only)."""
    icon = QIcon()
    for s in (16, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(QPixmap.fromImage(app_icon_image(s)))
    return icon
