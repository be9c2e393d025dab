"""The Directions tab: one slider per direction the model describes (GANSpace principal
directions, or noise/prompt between anchors), bound to an ExploreSession's offsets."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.runtime.explore_session import ExploreSession

SLIDER_STEPS = 100  # slider ticks per unit of offset
FIRST_FRAME_HINT = "Directions appear with the first frame."


class NameLabel(QLabel):
    """A direction's name; double-click asks for a new one."""

    double_clicked = Signal()

    def mouseDoubleClickEvent(self, _event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self.double_clicked.emit()


class DirectionRow(QWidget):
    """One direction: its name (double-click to rename), a ±range slider, the value."""

    offset_changed = Signal(str, float)
    released = Signal()
    rename_requested = Signal(str)

    def __init__(self, key: str, label: str, value_range: float, unit: str = "",
                 tip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.range = value_range
        self.unit = unit
        self.name = NameLabel(label)
        self.name.setMinimumWidth(96)
        self.name.setToolTip((tip + "\n" if tip else "") + "Double-click to rename")
        self.name.double_clicked.connect(lambda: self.rename_requested.emit(self.key))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-round(value_range * SLIDER_STEPS), round(value_range * SLIDER_STEPS))
        self.slider.setValue(0)
        self.slider.setPageStep(SLIDER_STEPS // 4)
        self.slider.setToolTip(f"−{value_range:g}{unit} … +{value_range:g}{unit}")
        # a two-sided slider: no "filled" part growing from the left end
        self.slider.setStyleSheet("QSlider::sub-page:horizontal { background: #33343c; }")
        self.slider.valueChanged.connect(self._changed)
        self.slider.sliderReleased.connect(self.released.emit)
        self.value_label = QLabel(self._text(0.0))
        self.value_label.setObjectName("muted")
        self.value_label.setMinimumWidth(52)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.reset = QToolButton()
        self.reset.setText("↺")
        self.reset.setToolTip("Back to 0")
        self.reset.clicked.connect(self._reset)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.name)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        row.addWidget(self.reset)

    def _text(self, value: float) -> str:
        return f"{value:+.2f}{self.unit}"

    def value(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_value(self, value: float, *, emit: bool = False) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(max(-self.range, min(self.range, value)) * SLIDER_STEPS))
        self.slider.blockSignals(False)
        self.value_label.setText(self._text(self.value()))
        if emit:
            self.offset_changed.emit(self.key, self.value())

    def _reset(self) -> None:
        self.set_value(0.0, emit=True)
        self.released.emit()

    def set_label(self, text: str) -> None:
        self.name.setText(text)

    def _changed(self, _v: int) -> None:
        self.value_label.setText(self._text(self.value()))
        self.offset_changed.emit(self.key, self.value())


class DirectionsPage(QWidget):
    """The rows (rebuilt when the model's directions change), a hint and "Reset all"."""

    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.rows: dict[str, DirectionRow] = {}
        self.box = QWidget()
        self.rows_layout = QVBoxLayout(self.box)
        self.rows_layout.setContentsMargins(4, 4, 4, 4)
        self.rows_layout.setSpacing(4)
        self.hint = QLabel(FIRST_FRAME_HINT)
        self.hint.setObjectName("muted")
        self.hint.setWordWrap(True)
        self.rows_layout.addWidget(self.hint)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.box)
        self.reset_all = QPushButton("Reset all")
        self.reset_all.clicked.connect(session.reset_offsets)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 6, 0, 0)
        col.addWidget(scroll, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.reset_all)
        col.addLayout(row)
        session.directions_changed.connect(self._rebuild)
        session.offsets_changed.connect(self._show_offsets)
        session.model_changed.connect(lambda _m: self.hint.setText(FIRST_FRAME_HINT))

    def _rebuild(self, described: list[dict[str, Any]]) -> None:
        for row in self.rows.values():
            row.setParent(None)
            row.deleteLater()
        self.rows.clear()
        layout = self.rows_layout
        layout.takeAt(layout.count() - 1)  # the stretch
        for d in described:
            key = str(d.get("key", ""))
            default = str(d.get("label") or key.upper())
            variance = float(d.get("variance") or 0.0)
            tip = f"{variance * 100:.1f}% of the layer's variance" if variance else ""
            row = DirectionRow(key, self.session.direction_label(key, default),
                               float(d.get("range") or 1.0), str(d.get("unit") or ""), tip)
            row.set_value(self.session.offsets.get(key, 0.0))
            row.offset_changed.connect(
                lambda k, v: self.session.set_offset(k, v, settled=False))
            row.released.connect(self.session.settle)
            row.rename_requested.connect(self.rename)
            layout.addWidget(row)
            self.rows[key] = row
        layout.addStretch(1)
        if described:
            principal = any(k.startswith("pc") for k in self.rows)
            self.hint.setText(
                "Principal directions of the model (GANSpace), strongest first; ±3σ. "
                "Double-click a name to rename it." if principal else
                "Move along the noise and the prompt from anchor 1 toward anchor 2.")
        else:
            self.hint.setText("Add a second anchor for directions between anchors.")

    def _show_offsets(self) -> None:
        for key, row in self.rows.items():
            row.set_value(self.session.offsets.get(key, 0.0))

    def rename(self, key: str, name: str | None = None) -> None:
        """Give a direction a name of your own (asks for it when name is None)."""
        row = self.rows.get(key)
        if name is None:
            current = row.name.text() if row is not None else key.upper()
            name, ok = QInputDialog.getText(self, "Rename direction",
                                            f"A name for {key.upper()}:", text=current)
            if not ok:
                return
        label = self.session.rename_direction(key, name)
        if label is not None and row is not None:
            row.set_label(label)
