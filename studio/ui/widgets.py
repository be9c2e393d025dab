"""Small widgets every panel shares: seed field, progress row, model picker, icons...

They hold no models and do no tensor maths; they show plain data the worker sends.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QValidator,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.catalog import ModelEntry
from studio.core.families import Explore
from studio.core.results import Progress
from studio.core.seeds import MAX_SEED
from studio.core.text import format_duration, human_bytes  # the one of each (queue, status bar)
from studio.runtime.context import AppContext
from studio.ui.image_view import ImageView  # noqa: F401  (re-exported: its home is ui/image_view)


def guarded(owner, fn: Callable[..., object]) -> Callable[..., None]:
    """Wrap a callback so it does nothing once `owner` (a widget) has been deleted:
    background tasks may finish after their window closed."""

    def call(*args: object) -> None:
        if shiboken6.isValid(owner):
            fn(*args)

    return call


# ---------------------------------------------------------------- drawn icons


def _icon(draw: Callable[[QPainter, float], None], size: int = 32,
          color: QColor | None = None) -> QIcon:
    """A crisp monochrome icon drawn with QPainter (no icon theme needed)."""
    icon = QIcon()
    for s in (16, 24, 32, 48):
        pm = QPixmap(s, s)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(color or QColor(220, 222, 230), max(1.4, s / 14))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        draw(p, float(s))
        p.end()
        icon.addPixmap(pm)
    return icon


def dice_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        p.drawRoundedRect(QRectF(s * 0.16, s * 0.16, s * 0.68, s * 0.68), s * 0.14, s * 0.14)
        p.setBrush(p.pen().color())
        r = s * 0.055
        for x, y in ((0.34, 0.34), (0.66, 0.66), (0.5, 0.5), (0.66, 0.34), (0.34, 0.66)):
            p.drawEllipse(QPointF(s * x, s * y), r, r)

    return _icon(draw)


def reuse_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        rect = QRectF(s * 0.2, s * 0.2, s * 0.6, s * 0.6)
        p.drawArc(rect, 60 * 16, 270 * 16)
        tip = QPointF(s * 0.5 + s * 0.3 * math.cos(math.radians(60)),
                      s * 0.5 - s * 0.3 * math.sin(math.radians(60)))
        p.drawLine(tip, tip + QPointF(-s * 0.2, -s * 0.02))
        p.drawLine(tip, tip + QPointF(s * 0.0, s * 0.2))

    return _icon(draw)


def folder_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        path = QPainterPath()
        path.moveTo(s * 0.12, s * 0.3)
        path.lineTo(s * 0.4, s * 0.3)
        path.lineTo(s * 0.47, s * 0.38)
        path.lineTo(s * 0.88, s * 0.38)
        path.lineTo(s * 0.88, s * 0.78)
        path.lineTo(s * 0.12, s * 0.78)
        path.closeSubpath()
        p.drawPath(path)

    return _icon(draw)


def copy_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        p.drawRoundedRect(QRectF(s * 0.3, s * 0.3, s * 0.5, s * 0.55), s * 0.06, s * 0.06)
        p.drawPolyline([QPointF(s * 0.2, s * 0.7), QPointF(s * 0.2, s * 0.15),
                        QPointF(s * 0.62, s * 0.15)])

    return _icon(draw)


def close_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        p.drawLine(QPointF(s * 0.3, s * 0.3), QPointF(s * 0.7, s * 0.7))
        p.drawLine(QPointF(s * 0.7, s * 0.3), QPointF(s * 0.3, s * 0.7))

    return _icon(draw)


def play_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        p.setBrush(p.pen().color())
        path = QPainterPath()
        path.moveTo(s * 0.32, s * 0.2)
        path.lineTo(s * 0.8, s * 0.5)
        path.lineTo(s * 0.32, s * 0.8)
        path.closeSubpath()
        p.drawPath(path)

    return _icon(draw)


def refresh_icon() -> QIcon:
    def draw(p: QPainter, s: float) -> None:
        rect = QRectF(s * 0.2, s * 0.2, s * 0.6, s * 0.6)
        p.drawArc(rect, 90 * 16, 290 * 16)
        top = QPointF(s * 0.5, s * 0.2)
        p.drawLine(top, top + QPointF(s * 0.16, -s * 0.1))
        p.drawLine(top, top + QPointF(s * 0.14, s * 0.12))

    return _icon(draw)


# ---------------------------------------------------------------- seed field


class SeedValidator(QValidator):
    """Whole numbers 0..2**64-1 (ComfyUI's and Fooocus's seeds are 64-bit), or -1 or
    empty for random. A QSpinBox holds only 32 bits; this keeps every digit exact."""

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip()
        if stripped in ("", "-"):
            return QValidator.State.Intermediate if stripped else QValidator.State.Acceptable, \
                text, pos
        if stripped == "-1":
            return QValidator.State.Acceptable, text, pos
        if not stripped.isdigit():
            return QValidator.State.Invalid, text, pos
        if int(stripped) > MAX_SEED:  # kept, so Generate says in one sentence what fits
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos


class SeedField(QWidget):
    """A seed box: empty or -1 means random; the dice makes it random, reuse puts back
    the seed of the last finished job."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, allow_reuse: bool = True) -> None:
        super().__init__(parent)
        self._last: int | None = None
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Random")
        self.edit.setValidator(SeedValidator(self.edit))
        self.edit.setToolTip(f"Seed: 0 to {MAX_SEED} (64-bit, as ComfyUI and Fooocus "
                             "write them); empty is random")
        self.edit.setClearButtonEnabled(False)
        self.edit.textChanged.connect(lambda _t: self.changed.emit())
        self.dice = QToolButton()
        self.dice.setIcon(dice_icon())
        self.dice.setToolTip("Random seed (-1): a new picture every time")
        self.dice.clicked.connect(self.randomize)
        self.reuse = QToolButton()
        self.reuse.setIcon(reuse_icon())
        self.reuse.setToolTip("Reuse the seed of the last result")
        self.reuse.setEnabled(False)
        self.reuse.clicked.connect(self.reuse_last)
        if not allow_reuse:  # hide only: showing a widget without a parent opens a window
            self.reuse.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.dice)
        row.addWidget(self.reuse)

    def value(self) -> int:
        """-1 for random, else the typed seed (range is checked by the request)."""
        text = self.edit.text().strip()
        if text in ("", "-", "-1"):
            return -1
        return int(text) if text.lstrip("-").isdigit() else -1

    def set_value(self, seed: int) -> None:
        self.edit.setText("" if seed == -1 else str(seed))

    def randomize(self) -> None:
        self.set_value(-1)

    def set_last_seed(self, seed: int) -> None:
        self._last = seed
        self.reuse.setEnabled(True)
        self.reuse.setToolTip(f"Reuse the seed of the last result ({seed})")

    def last_seed(self) -> int | None:
        return self._last

    def reuse_last(self) -> None:
        if self._last is not None:
            self.set_value(self._last)


# ---------------------------------------------------------------- progress row


class ElidedLabel(QLabel):
    """A one-line label that shortens itself with "…" instead of widening its window."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self.setToolTip(text if self.fontMetrics().horizontalAdvance(text) > self.width() else "")

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        group = QPalette.ColorGroup.Active if self.isEnabled() else QPalette.ColorGroup.Disabled
        p.setPen(self.palette().color(group, self.foregroundRole()))
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             rect.width())
        p.drawText(rect, int(self.alignment()), text)


class ProgressRow(QWidget):
    """A slim bar with a status line on the left and step · it/s · ETA on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = ElidedLabel("Ready")
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.status.setObjectName("muted")
        self.stats = QLabel("")
        self.stats.setObjectName("muted")
        self.stats.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.status, 1)
        top.addWidget(self.stats)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(4)
        col.addLayout(top)
        col.addWidget(self.bar)

    def start(self, text: str = "Starting…") -> None:
        self.bar.setRange(0, 0)  # busy until the first step
        self.status.setText(text)
        self.stats.setText("")

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def set_progress(self, progress: Progress) -> None:
        total = max(1, progress.total)
        self.bar.setRange(0, total)
        self.bar.setValue(min(progress.step, total))
        parts = [f"Step {progress.step}/{progress.total}"]
        if progress.it_per_s > 0:
            rate = progress.it_per_s
            parts.append(f"{rate:.2f} it/s" if rate < 10 else f"{rate:.0f} it/s")
        if progress.eta_s > 0 and progress.step < progress.total:
            parts.append(f"ETA {format_duration(progress.eta_s)}")
        self.stats.setText("  ·  ".join(parts))
        if progress.text:
            self.status.setText(progress.text)
        elif self.status.text().endswith("…") and progress.step >= 1:
            self.status.setText("Generating…")

    def finish(self, text: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.status.setText(text)

    def reset(self, text: str = "Ready") -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status.setText(text)
        self.stats.setText("")


# ---------------------------------------------------------------- model picker


class ModelPicker(QComboBox):
    """Models of one modality from the catalog; follows ctx.catalog_changed and keeps
    the current choice across rescans."""

    model_changed = Signal(str)

    def __init__(self, ctx: AppContext, modality: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.modality = modality
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self._chosen = False  # the user (or a recipe) picked a model: rescans keep it
        self.activated.connect(self._user_chose)
        self.refresh(ctx.models_for(modality))
        ctx.catalog_changed.connect(lambda _entries: self.refresh(ctx.models_for(modality)))
        self.currentIndexChanged.connect(lambda _i: self.model_changed.emit(self.current_model()))

    def refresh(self, entries: list[ModelEntry]) -> None:
        """Rebuild the list: built-ins, a separator, then models found on disk."""
        before = self.current_model()
        self.blockSignals(True)
        try:
            self.clear()
            builtins = [e for e in entries if e.format == "builtin"]
            others = [e for e in entries if e.format != "builtin"]
            for group in (builtins, others):
                if group and self.count():
                    self.insertSeparator(self.count())
                for e in group:
                    self.addItem(e.name, e.id)
                    tip = f"{e.family} · {e.format}\n{e.location}"
                    if e.size_bytes:
                        tip += f"\n{human_bytes(e.size_bytes)}"
                    self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            if not entries:
                self.addItem(f"No {self.modality} models found: add a folder in Settings", "")
            preferred = None if self._chosen else self.preferred(entries)
            if preferred is not None:
                self.setCurrentIndex(self.findData(preferred))
            elif before:
                self._select(before)
        finally:
            self.blockSignals(False)
        if self.current_model() != before:
            self.model_changed.emit(self.current_model())

    def current_model(self) -> str:
        data = self.currentData()
        return data if isinstance(data, str) else ""

    @staticmethod
    def preferred(entries: list[ModelEntry]) -> str | None:
        """The model a panel starts on until one is picked: the first installed diffusion
        model (a Stable Diffusion the user added) over the built-ins, which lead the list
        (the sketch model, the GANs) and serve when nothing is installed."""
        for e in entries:
            family = e.descriptor
            if e.format != "builtin" and family is not None and family.explore is \
                    Explore.DIFFUSION and family.serves("image"):
                return e.id
        return None

    def _user_chose(self, _index: int) -> None:
        self._chosen = True

    def model_ids(self) -> list[str]:
        return [self.itemData(i) for i in range(self.count()) if self.itemData(i)]

    def set_model(self, model: str) -> None:
        """Select model; an id the catalog does not know is shown as "(not found)" and
        kept selected (also across rescans), so a recipe from elsewhere says what it needs."""
        self._select(model)
        self._chosen = True

    def _select(self, model: str) -> None:
        index = self.findData(model)
        if index < 0 and model:
            if self.count() == 1 and not self.itemData(0):
                self.clear()
            name = model.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
            self.addItem(f"{name} (not found)", model)
            index = self.count() - 1
            self.setItemData(index, f"Not in your model folders:\n{model}",
                             Qt.ItemDataRole.ToolTipRole)
        if index >= 0:
            self.setCurrentIndex(index)


# ---------------------------------------------------------------- small pieces


class CollapsibleSection(QWidget):
    """A titled section that folds away (rarely used controls stay out of sight)."""

    def __init__(self, title: str, content: QWidget, expanded: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setChecked(expanded)
        self.toggle.setObjectName("sectionToggle")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.toggle.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.content = content
        self.toggle.toggled.connect(self.set_expanded)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addWidget(self.toggle)
        col.addWidget(content)
        # only once it has a parent: shown before, it opens as a window for a moment and
        # takes the activation from the main window (its keyboard shortcuts go dead)
        content.setVisible(expanded)

    def set_expanded(self, on: bool) -> None:
        self.toggle.setChecked(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.content.setVisible(on)

    def is_expanded(self) -> bool:
        return self.toggle.isChecked()


class MessageLabel(QLabel):
    """One sentence under the buttons: an error in red or a quiet notice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setObjectName("message")
        self.hide()

    def show_error(self, text: str) -> None:
        self.setProperty("level", "error")
        self._show(text)

    def show_info(self, text: str) -> None:
        self.setProperty("level", "info")
        self._show(text)

    def _show(self, text: str) -> None:
        self.style().unpolish(self)
        self.style().polish(self)
        self.setText(text)
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.setText("")
        self.hide()


class StarRating(QWidget):
    """Five clickable stars; clicking the current rating clears it."""

    rating_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rating = 0
        self._hover = 0
        self.setMouseTracking(True)
        self.setFixedSize(QSize(5 * 22 + 4, 24))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Rate this output")

    def rating(self) -> int:
        return self._rating

    def set_rating(self, n: int) -> None:
        self._rating = max(0, min(5, int(n or 0)))
        self.update()

    def _star_at(self, x: float) -> int:
        return max(0, min(5, int(x // 22) + 1))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self._hover = self._star_at(event.position().x())
        self.update()

    def leaveEvent(self, _event) -> None:  # noqa: N802 - Qt API
        self._hover = 0
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        n = self._star_at(event.position().x())
        self.set_rating(0 if n == self._rating else n)
        self.rating_changed.emit(self._rating)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        shown = self._hover or self._rating
        for i in range(5):
            path = QPainterPath()
            cx, cy, r_out, r_in = 11 + i * 22, 12, 9.5, 4.0
            for k in range(10):
                ang = math.pi / 5 * k - math.pi / 2
                r = r_out if k % 2 == 0 else r_in
                pt = QPointF(cx + r * math.cos(ang), cy + r * math.sin(ang))
                path.moveTo(pt) if k == 0 else path.lineTo(pt)
            path.closeSubpath()
            on = i < shown
            p.setPen(QPen(QColor(255, 196, 61) if on else QColor(120, 120, 130), 1.2))
            p.setBrush(QColor(255, 196, 61) if on else Qt.BrushStyle.NoBrush)
            p.drawPath(path)


def hline() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setObjectName("separator")
    return line


def section_label(text: str) -> QLabel:
    """A small caps-ish heading over a group of fields."""
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label
