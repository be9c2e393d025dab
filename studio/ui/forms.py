"""Form widgets made from request-field metadata (studio.core.fields).

A panel names the fields it shows; `FieldForm` makes a spin box (or a 0–100 % slider,
a line edit for text, or a combo box for a text field with choices) per field with the
range, step, decimals, suffix, default and tooltip the request declares, reads them
back as request keyword arguments and fills them from a request. `field_grid` lays
label/widget pairs out two to a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QSlider,
    QSpinBox,
    QWidget,
)

from studio.core.fields import FieldSpec, spec
from studio.core.requests import Request

Cell = QWidget | QLayout
Pair = tuple[QLabel | str, Cell]

INT_LIMIT = 2**31 - 1  # what a QSpinBox holds


def spin_box(s: FieldSpec) -> QSpinBox | QDoubleSpinBox:
    """A spin box with the field's range, step, decimals, suffix, default and tooltip."""
    box: QSpinBox | QDoubleSpinBox
    if s.is_int:
        box = QSpinBox()
        box.setRange(int(s.low if s.low is not None else -INT_LIMIT),
                     int(s.high if s.high is not None else INT_LIMIT))
        box.setSingleStep(int(s.step or 1))
        box.setValue(int(s.default))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(s.decimals)
        box.setRange(s.low if s.low is not None else -1e9, s.high if s.high is not None else 1e9)
        box.setSingleStep(s.step or 0.1)
        box.setValue(float(s.default))
    if s.suffix:
        box.setSuffix(s.suffix)
    box.setToolTip(s.tip)
    return box


def percent_slider(s: FieldSpec) -> QSlider:
    """A 0–100 % slider for a 0–1 field."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(round(float(s.default) * 100))
    slider.setToolTip(s.tip)
    return slider


def line_edit(s: FieldSpec) -> QLineEdit:
    edit = QLineEdit(str(s.default or ""))
    edit.setToolTip(s.tip)
    return edit


def choice_box(s: FieldSpec, choices: Sequence[str], *, editable: bool = False) -> QComboBox:
    """A combo box of a text field's choices (editable: any other text may be typed, like
    a path); the default is selected, or the first choice when it is not among them."""
    box = QComboBox()
    box.addItems(list(choices))
    box.setEditable(editable)
    set_choice(box, str(s.default or ""))
    box.setToolTip(s.tip)
    return box


def set_choice(box: QComboBox, value: str) -> None:
    """Select `value` (typed in when editable and not a choice; else the first choice)."""
    index = box.findText(value)
    if index >= 0:
        box.setCurrentIndex(index)
    elif box.isEditable() and value:
        box.setEditText(value)
    else:
        box.setCurrentIndex(0)


class FieldForm:
    """The widgets of some fields of one request class, made from their metadata."""

    def __init__(self, cls: type[Request], names: Iterable[str], *,
                 sliders: Iterable[str] = (), choices: Mapping[str, Sequence[str]] | None = None,
                 editable: Iterable[str] = ()) -> None:
        self.cls = cls
        self.specs = {name: spec(cls, name) for name in names}
        slider_names = set(sliders)
        choices = choices or {}
        self.widgets: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self._default_choice: dict[str, str] = {}  # "Automatic" shown for a "" default
        for name, s in self.specs.items():
            widget: QWidget
            if name in slider_names:
                widget = percent_slider(s)
            elif name in choices:
                widget = choice_box(s, choices[name], editable=name in set(editable))
                if s.default not in choices[name]:  # the first choice names the default
                    self._default_choice[name] = choices[name][0]
            elif s.type in (int, float):
                widget = spin_box(s)
            else:
                widget = line_edit(s)
            self.widgets[name] = widget
            self.labels[name] = QLabel(s.short)

    def __getitem__(self, name: str) -> Any:
        return self.widgets[name]

    def pair(self, name: str) -> Pair:
        """(label, widget) of one field, for field_grid."""
        return self.labels[name], self.widgets[name]

    def values(self) -> dict[str, Any]:
        """The fields as request keyword arguments (floats rounded past what the box shows)."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QSlider):
                out[name] = widget.value() / 100
            elif isinstance(widget, QDoubleSpinBox):
                out[name] = round(widget.value(), widget.decimals() + 1)
            elif isinstance(widget, QSpinBox):
                out[name] = widget.value()
            elif isinstance(widget, QLineEdit):
                out[name] = widget.text().strip()
            elif isinstance(widget, QComboBox):
                text = widget.currentText().strip()
                default = self._default_choice.get(name)
                out[name] = self.specs[name].default if default is not None and \
                    text in ("", default) else text
        return out

    def set_values(self, request: Request) -> None:
        """Show a request's values of these fields."""
        for name, widget in self.widgets.items():
            value = getattr(request, name)
            if isinstance(widget, QSlider):
                widget.setValue(round(float(value) * 100))
            elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                widget.setValue(value)
            elif isinstance(widget, QLineEdit):
                widget.setText(str(value))
            elif isinstance(widget, QComboBox):
                shown = self._default_choice.get(name) if value == self.specs[name].default \
                    else None
                set_choice(widget, shown or str(value))

    def changed(self, request: Request, names: Sequence[str]) -> bool:
        """Whether `request` differs from the defaults in any of `names` (to unfold a
        section that holds them)."""
        return any(getattr(request, n) != self.specs[n].default for n in names)


def field_grid(rows: Sequence[Sequence[Pair]], *, margins: tuple[int, ...] | None = None
               ) -> QGridLayout:
    """Label/widget pairs, one or two to a row; a lone pair spans the whole row."""
    grid = QGridLayout()
    grid.setHorizontalSpacing(10)
    grid.setVerticalSpacing(8)
    grid.setColumnStretch(1, 1)
    grid.setColumnStretch(3, 1)
    if margins is not None:
        grid.setContentsMargins(*margins)
    for r, row in enumerate(rows):
        for c, (label, cell) in enumerate(row):
            grid.addWidget(QLabel(label) if isinstance(label, str) else label, r, 2 * c)
            span = 3 if len(row) == 1 else 1
            if isinstance(cell, QWidget):
                grid.addWidget(cell, r, 2 * c + 1, 1, span)
            else:
                grid.addLayout(cell, r, 2 * c + 1, 1, span)
    return grid
