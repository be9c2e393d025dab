"""The Art panel's canvas: an init image to start from, a mask brush over it, outpainting.

`MaskCanvas` shows the init image with the mask as a translucent overlay and paints the
mask with the mouse (a QImage of the init's size: white is repainted, black is kept).
`CanvasControls` holds what goes with it in the form: open / paste / clear the init
image, the denoising strength (shown only while an init image is set), paint / erase,
brush size, mask blur, invert, clear, the inpaint area and the outpaint margins. Setting
an init image turns text-to-image into img2img; clearing it turns it back.

On Generate, `CanvasControls.apply` writes the init image and mask through
`studio.runtime.inputs` (content-named files) and sets the request's fields.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.requests import INPAINT_AREAS, ImageRequest
from studio.runtime.inputs import save_input
from studio.ui.forms import FieldForm, field_grid

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MASK_COLOUR = QColor(255, 70, 90)
MASK_OPACITY = 0.5
MARGIN_SIDES = ("Left", "Top", "Right", "Bottom")


def png_bytes(image: QImage) -> bytes:
    """A QImage encoded as PNG (what the inputs store keeps)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


class MaskCanvas(QWidget):
    """The init image, fitted to the widget, with a mask painted over it by the mouse."""

    mask_changed = Signal()
    file_dropped = Signal(str)  # a picture file dropped on the canvas

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._mask = QImage()
        self._overlay: QImage | None = None
        self._last: QPointF | None = None
        self.brush_size = 32  # in image pixels
        self.erasing = False
        self.margins: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Ctrl+V pastes an init image here
        self.setToolTip("Paint the area to repaint; drop a picture here to start from it")

    # ------------------------------------------------------------------ state
    def set_image(self, image: QImage | None) -> None:
        """Start from `image` (None clears) with an empty mask of its size."""
        self._image = QImage() if image is None or image.isNull() else \
            image.convertToFormat(QImage.Format.Format_RGB32)
        self._mask = QImage()
        if not self._image.isNull():
            self._mask = QImage(self._image.size(), QImage.Format.Format_Grayscale8)
            self._mask.fill(0)
        self._changed()

    def image(self) -> QImage:
        return self._image

    def has_image(self) -> bool:
        return not self._image.isNull()

    def mask(self) -> QImage:
        """The mask at the init's size (Grayscale8: 255 repaint, 0 keep)."""
        return self._mask

    def set_mask(self, mask: QImage) -> None:
        """Use a mask (a recipe's): resized to the init image and made grey."""
        if self._image.isNull() or mask.isNull():
            return
        grey = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        if grey.size() != self._image.size():
            grey = grey.scaled(self._image.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
        self._mask = grey
        self._changed()

    def has_mask(self) -> bool:
        """Whether anything is painted (an empty mask means plain img2img)."""
        if self._mask.isNull():
            return False
        for y in range(self._mask.height()):
            line = bytes(self._mask.constScanLine(y))[: self._mask.width()]
            if any(line):
                return True
        return False

    def clear_mask(self) -> None:
        if not self._mask.isNull():
            self._mask.fill(0)
            self._changed()

    def invert_mask(self) -> None:
        if not self._mask.isNull():
            self._mask.invertPixels()
            self._changed()

    def set_margins(self, margins: tuple[int, int, int, int]) -> None:
        """The outpaint margins (left, top, right, bottom), drawn around the picture."""
        self.margins = margins
        self.update()

    def _changed(self) -> None:
        self._overlay = None
        self.update()
        self.mask_changed.emit()

    # ------------------------------------------------------------------ geometry
    def _frame(self) -> tuple[float, QRectF]:
        """(scale, the image's rectangle on screen), leaving room for the margins."""
        left, top, right, bottom = self.margins
        w = self._image.width() + left + right
        h = self._image.height() + top + bottom
        s = min(max(1, self.width() - 16) / max(1, w), max(1, self.height() - 16) / max(1, h))
        x0 = (self.width() - w * s) / 2 + left * s
        y0 = (self.height() - h * s) / 2 + top * s
        return s, QRectF(x0, y0, self._image.width() * s, self._image.height() * s)

    def to_image(self, pos: QPointF) -> QPointF:
        """A widget position in image pixels."""
        s, rect = self._frame()
        return QPointF((pos.x() - rect.x()) / s, (pos.y() - rect.y()) / s)

    # ------------------------------------------------------------------ painting the mask
    def _stroke(self, a: QPointF, b: QPointF) -> None:
        p = QPainter(self._mask)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(0, 0, 0) if self.erasing else QColor(255, 255, 255)
        pen = QPen(colour, self.brush_size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        if a == b:
            p.setBrush(colour)
            p.setPen(Qt.PenStyle.NoPen)
            r = self.brush_size / 2
            p.drawEllipse(a, r, r)
        else:
            p.drawLine(a, b)
        p.end()
        self._changed()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton and self.has_image():
            self._last = self.to_image(event.position())
            self._stroke(self._last, self._last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._last is not None and event.buttons() & Qt.MouseButton.LeftButton:
            here = self.to_image(event.position())
            self._stroke(self._last, here)
            self._last = here

    def mouseReleaseEvent(self, _event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self._last = None

    # ------------------------------------------------------------------ drop a file
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls()
        if urls and urls[0].toLocalFile().lower().endswith(IMAGE_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls()
        if urls:
            self.file_dropped.emit(urls[0].toLocalFile())
            event.acceptProposedAction()

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(pal.ColorRole.Base).darker(115))
        if not self.has_image():
            p.setPen(pal.color(pal.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(24, 24, -24, -24),
                       int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap),
                       "Drop a picture here, paste one, or press Open image… to start "
                       "from it.")
            return
        s, rect = self._frame()
        left, top, right, bottom = self.margins
        if any(self.margins):  # the area outpainting adds: filled, so it is masked
            outer = rect.adjusted(-left * s, -top * s, right * s, bottom * s)
            p.fillRect(outer, QColor(MASK_COLOUR.red(), MASK_COLOUR.green(),
                                     MASK_COLOUR.blue(), 60))
            p.setPen(QPen(MASK_COLOUR, 1, Qt.PenStyle.DashLine))
            p.drawRect(outer)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(rect, self._image)
        if self._overlay is None:
            overlay = QImage(self._mask.size(), QImage.Format.Format_ARGB32)
            overlay.fill(MASK_COLOUR)
            overlay.setAlphaChannel(self._mask)
            self._overlay = overlay
        p.setOpacity(MASK_OPACITY)
        p.drawImage(rect, self._overlay)


class CanvasControls(QWidget):
    """The canvas's part of the form; emits `init_changed(has_init)`."""

    init_changed = Signal(bool)
    failed = Signal(str)  # one sentence (a file that is not a picture, an empty clipboard)

    def __init__(self, canvas: MaskCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.source = ""  # where the init image came from (shown, not used)
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Start from a picture on disk (img2img)")
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Start from the picture on the clipboard")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Forget the init image: back to text-to-image")
        self.status = QLabel("No init image: text-to-image.")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)

        self.fields = FieldForm(ImageRequest, ("strength", "mask_blur", "inpaint_padding"))
        self.strength = self.fields["strength"]
        self.mask_blur = self.fields["mask_blur"]
        self.padding = self.fields["inpaint_padding"]
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, 100)
        self.strength_slider.valueChanged.connect(lambda v: self.strength.setValue(v / 100))
        self.strength.valueChanged.connect(
            lambda v: self.strength_slider.setValue(round(v * 100)))
        self.strength_slider.setValue(round(self.strength.value() * 100))

        self.paint_button = QPushButton("Paint")
        self.erase_button = QPushButton("Erase")
        group = QButtonGroup(self)
        for i, b in enumerate((self.paint_button, self.erase_button)):
            b.setCheckable(True)
            group.addButton(b, i)
        self.paint_button.setChecked(True)
        group.idToggled.connect(lambda i, on: self._set_erasing(i == 1) if on else None)
        self.brush = QSpinBox()
        self.brush.setRange(1, 512)
        self.brush.setValue(canvas.brush_size)
        self.brush.setSuffix(" px")
        self.brush.setToolTip("Brush size in picture pixels")
        self.brush.valueChanged.connect(lambda v: setattr(canvas, "brush_size", v))
        self.invert_button = QPushButton("Invert")
        self.invert_button.setToolTip("Repaint what is kept and keep what is painted")
        self.clear_mask_button = QPushButton("Clear mask")
        self.area = QComboBox()
        for value, label in zip(INPAINT_AREAS, ("Whole picture", "Only masked"), strict=True):
            self.area.addItem(label, value)
        self.area.setToolTip("Whole: repaint at the picture's size; only masked: a crop "
                             "around the mask at the model's size, pasted back blended")
        self.margin_boxes: list[QSpinBox] = []
        for side in MARGIN_SIDES:
            box = QSpinBox()
            box.setRange(0, 1024)
            box.setSingleStep(8)
            box.setSuffix(" px")
            box.setToolTip(f"Outpaint: extend the canvas {side.lower()} by this much "
                           "(a multiple of 8); the new area is masked and filled")
            box.valueChanged.connect(self._margins_changed)
            self.margin_boxes.append(box)

        self.open_button.clicked.connect(self.open_dialog)
        self.paste_button.clicked.connect(self.paste)
        self.clear_button.clicked.connect(self.clear)
        self.invert_button.clicked.connect(canvas.invert_mask)
        self.clear_mask_button.clicked.connect(canvas.clear_mask)
        canvas.file_dropped.connect(self.load_file)
        paste = QShortcut(QKeySequence.StandardKey.Paste, canvas)  # Ctrl+V on the canvas only
        paste.setContext(Qt.ShortcutContext.WidgetShortcut)
        paste.activated.connect(self.paste)
        self._layout()
        self._update()

    def _layout(self) -> None:
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for b in (self.open_button, self.paste_button, self.clear_button):
            row.addWidget(b)
        col.addLayout(row)
        col.addWidget(self.status)
        self.details = QWidget()
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength_slider, 1)
        strength_row.addWidget(self.strength)
        tools = QHBoxLayout()
        for b in (self.paint_button, self.erase_button, self.invert_button,
                  self.clear_mask_button):
            tools.addWidget(b)
        margins = QHBoxLayout()
        for box in self.margin_boxes:
            margins.addWidget(box)
        grid = field_grid([
            [(self.fields.labels["strength"], strength_row)],
            [("Mask", tools)],
            [("Brush", self.brush), self.fields.pair("mask_blur")],
            [("Inpaint area", self.area), self.fields.pair("inpaint_padding")],
            [("Outpaint", margins)],
        ], margins=(0, 4, 0, 0))
        self.details.setLayout(grid)
        col.addWidget(self.details)

    # ------------------------------------------------------------------ the init image
    def set_init(self, image: QImage, source: str = "") -> bool:
        """Start from `image`: the canvas shows it and the strength appears."""
        if image.isNull():
            self.failed.emit(f"{Path(source).name or 'That'} is not a picture Studio can read.")
            return False
        self.source = source
        self.canvas.set_image(image)
        self._update()
        self.init_changed.emit(True)
        return True

    def load_file(self, path: str) -> bool:
        return self.set_init(QImage(path), path)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.load_file(path)

    def paste(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.failed.emit("The clipboard holds no picture to start from.")
            return
        self.set_init(image, "clipboard")

    def clear(self) -> None:
        """Back to text-to-image."""
        self.source = ""
        self.canvas.set_image(None)
        self._update()
        self.init_changed.emit(False)

    def has_init(self) -> bool:
        return self.canvas.has_image()

    def _set_erasing(self, on: bool) -> None:
        self.canvas.erasing = on

    def margins(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = (b.value() // 8 * 8 for b in self.margin_boxes)
        return left, top, right, bottom

    def _margins_changed(self, *_args: object) -> None:
        self.canvas.set_margins(self.margins())

    def _update(self) -> None:
        on = self.has_init()
        self.details.setVisible(on)
        self.clear_button.setEnabled(on)
        if on:
            img = self.canvas.image()
            where = Path(self.source).name if self.source else "a picture"
            self.status.setText(f"Starting from {where} ({img.width()}×{img.height()}). "
                                "Paint a mask to repaint only part of it.")
        else:
            self.status.setText("No init image: text-to-image.")

    # ------------------------------------------------------------------ the request
    def apply(self, request: ImageRequest) -> ImageRequest:
        """The request with the canvas's fields; the init image and mask written to files
        (through runtime.inputs) when an init image is set, else text-to-image."""
        if not self.has_init():
            return replace(request, init_image="", mask="", outpaint=(0, 0, 0, 0))
        init = save_input(png_bytes(self.canvas.image()), "init")
        mask = save_input(png_bytes(self.canvas.mask()), "mask") if self.canvas.has_mask() \
            else None
        return replace(request, init_image=str(init), mask=str(mask) if mask else "",
                       outpaint=self.margins(), inpaint_area=str(self.area.currentData()),
                       **self.fields.values())

    def fill(self, request: ImageRequest) -> None:
        """Show a recipe's canvas: its init image and mask when the files are there."""
        self.fields.set_values(request)
        index = self.area.findData(request.inpaint_area)
        if index >= 0:
            self.area.setCurrentIndex(index)
        for box, value in zip(self.margin_boxes, request.outpaint, strict=False):
            box.setValue(int(value))
        if request.init_image and Path(request.init_image).is_file():
            self.load_file(request.init_image)
            if request.mask and Path(request.mask).is_file():
                self.canvas.set_mask(QImage(request.mask))
        elif not request.init_image and self.has_init():
            self.clear()
