"""The Art panel's LoRA picker: the LoRAs found on disk, each added one with a weight.

It writes `ImageRequest.loras` ("name:weight"), the same recipe a `<lora:name:weight>`
tag in the prompt makes. The list comes from the catalog the AppContext keeps (scanned
off the GUI thread); the picker never reads files itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.catalog import LORA, ModelEntry
from studio.core.errors import RequestError
from studio.core.requests import lora_entry, parse_lora
from studio.runtime.context import AppContext

#: the slider's reach (the spin box goes further, as A1111 allows any weight)
SLIDER_RANGE = 2.0
WEIGHT_RANGE = 5.0
EMPTY_TEXT = "No LoRAs found: put .safetensors LoRAs in models/Lora (or choose an A1111 or " \
             "ComfyUI models folder in Settings)."


def lora_entries(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    """The catalog's LoRAs, by name."""
    return sorted((e for e in entries if e.family == LORA), key=lambda e: e.name.lower())


class LoraRow(QWidget):
    """One picked LoRA: its name, a weight slider and box, and a remove button."""

    changed = Signal()
    removed = Signal(object)  # this row

    def __init__(self, name: str, weight: float, base: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.label = QLabel(name)
        self.label.setToolTip(f"{name} — a LoRA for {base}" if base else name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(-SLIDER_RANGE * 100), int(SLIDER_RANGE * 100))
        self.slider.setToolTip("The LoRA's weight: 0 turns it off, 1 is full strength")
        self.box = QDoubleSpinBox()
        self.box.setRange(-WEIGHT_RANGE, WEIGHT_RANGE)
        self.box.setSingleStep(0.05)
        self.box.setDecimals(2)
        self.remove_button = QToolButton()
        self.remove_button.setText("×")
        self.remove_button.setToolTip(f"Remove {name}")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 2)
        row.addWidget(self.slider, 3)
        row.addWidget(self.box)
        row.addWidget(self.remove_button)
        self.slider.valueChanged.connect(self._slid)
        self.box.valueChanged.connect(self._typed)
        self.remove_button.clicked.connect(lambda: self.removed.emit(self))
        self.set_weight(weight)

    def weight(self) -> float:
        return round(float(self.box.value()), 2)

    def set_weight(self, weight: float) -> None:
        self.box.setValue(weight)
        self._typed(self.box.value())

    def _slid(self, value: int) -> None:
        if abs(self.box.value() * 100 - value) >= 0.5:  # not the echo of a typed value
            self.box.setValue(value / 100)

    def _typed(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(max(-SLIDER_RANGE, min(SLIDER_RANGE, value)) * 100))
        self.slider.blockSignals(False)
        self.changed.emit()


class LoraPicker(QWidget):
    """Found LoRAs to add; each added one a row with its weight (`values()` for the request)."""

    changed = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.rows: list[LoraRow] = []
        self._bases: dict[str, str] = {}
        self.choice = QComboBox()
        self.choice.setToolTip("A LoRA found in the LoRA folders")
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Use this LoRA (weight 1); <lora:name:weight> in the "
                                   "prompt does the same")
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("hint")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.choice, 1)
        top.addWidget(self.add_button)
        self.list = QVBoxLayout()
        self.list.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.empty)
        layout.addLayout(self.list)
        self.add_button.clicked.connect(self._add_chosen)
        ctx.catalog_changed.connect(self.set_entries)
        self.set_entries(ctx.models)

    # ------------------------------------------------------------------ the list
    def set_entries(self, entries: Sequence[ModelEntry]) -> None:
        """The LoRAs the catalog found (its names and base families)."""
        found = lora_entries(entries)
        current = self.choice.currentData()
        self._bases = {e.name: e.base for e in found}
        self.choice.clear()
        for e in found:
            self.choice.addItem(f"{e.name} ({e.base})" if e.base else e.name, e.name)
            self.choice.setItemData(self.choice.count() - 1, e.note or e.id,
                                    Qt.ItemDataRole.ToolTipRole)
        index = self.choice.findData(current)
        if index >= 0:
            self.choice.setCurrentIndex(index)
        self.choice.setEnabled(bool(found))
        self.add_button.setEnabled(bool(found))
        self.empty.setVisible(not found)

    def names(self) -> list[str]:
        """The LoRAs the picker offers."""
        return [str(self.choice.itemData(i)) for i in range(self.choice.count())]

    def _add_chosen(self) -> None:
        name = self.choice.currentData()
        if name:
            self.add(str(name))

    # ------------------------------------------------------------------ the picked ones
    def add(self, name: str, weight: float = 1.0) -> LoraRow:
        """Pick a LoRA (once: picking it again sets its weight)."""
        for row in self.rows:
            if row.name == name:
                row.set_weight(weight)
                return row
        row = LoraRow(name, weight, self._bases.get(name, ""))
        row.changed.connect(self.changed)
        row.removed.connect(self.remove)
        self.rows.append(row)
        self.list.addWidget(row)
        self.changed.emit()
        return row

    def remove(self, row: LoraRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self.list.removeWidget(row)
            row.deleteLater()
            self.changed.emit()

    def values(self) -> tuple[str, ...]:
        """What `ImageRequest.loras` holds: "name:weight" per picked LoRA."""
        return tuple(lora_entry(row.name, row.weight()) for row in self.rows)

    def set_values(self, entries: Sequence[str]) -> None:
        """Show a recipe's LoRAs (a LoRA not found here still gets its row: the job then
        says it is missing)."""
        for row in list(self.rows):
            self.remove(row)
        for entry in entries:
            try:
                name, weight = parse_lora(entry)
            except RequestError:
                continue
            self.add(name, weight)
