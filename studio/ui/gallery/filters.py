"""The Gallery's filter row: search text, kind, rating, model and date.

It only holds the choices; the Gallery asks the history for them on the pool
(`History.filtered`). Typing is debounced, every other change asks at once.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QWidget

MODALITIES = (("All outputs", None), ("Images", "image"), ("Music", "music"), ("Text", "text"),
              ("Explorer walks", "explore"))
RATINGS = (("Any rating", 0), ("★ 1+", 1), ("★ 2+", 2), ("★ 3+", 3), ("★ 4+", 4),
           ("★★★★★", 5))
DATES = (("Any time", None), ("Today", 0), ("Past 7 days", 7), ("Past 30 days", 30),
         ("Past year", 365))


@dataclass(frozen=True)
class Filters:
    """What the Gallery shows: the arguments of `History.filtered`."""

    text: str = ""
    modality: str | None = None
    min_rating: int = 0
    model: str | None = None
    since: _dt.datetime | None = None

    @property
    def narrowed(self) -> bool:
        return bool(self.text or self.modality or self.min_rating or self.model or self.since)


def since_for(days: int | None, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """The start of a span that ends now: 0 is today since local midnight."""
    if days is None:
        return None
    now = (now or _dt.datetime.now()).astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if days == 0 else now - _dt.timedelta(days=days)


class FilterRow(QWidget):
    """The widgets of the filter row; `changed` when the user changes any of them."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._quiet = False  # set while the model list is rebuilt (not a user's change)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, models, seeds…")
        self.search.setClearButtonEnabled(True)
        self.modality = QComboBox()
        self.modality.setToolTip("Kind of output")
        for label, value in MODALITIES:
            self.modality.addItem(label, value)
        self.rating = QComboBox()
        self.rating.setToolTip("Rated at least")
        for label, value in RATINGS:
            self.rating.addItem(label, value)
        self.model = QComboBox()
        self.model.setToolTip("Made with this model")
        self.model.setMinimumContentsLength(14)
        self.model.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.addItem("All models", None)
        self.date = QComboBox()
        self.date.setToolTip("Made in this span")
        for label, value in DATES:
            self.date.addItem(label, value)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.search, 1)
        for combo in (self.modality, self.rating, self.model, self.date):
            row.addWidget(combo)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.changed.emit)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        # changed from code (tests, a restored state) counts as a change too
        for combo in (self.modality, self.rating, self.model, self.date):
            combo.currentIndexChanged.connect(self._index_changed)

    def _index_changed(self, _index: int) -> None:
        if not self._quiet:
            self.changed.emit()

    def values(self) -> Filters:
        return Filters(text=self.search.text().strip(), modality=self.modality.currentData(),
                       min_rating=int(self.rating.currentData() or 0),
                       model=self.model.currentData() or None,
                       since=since_for(self.date.currentData()))

    def set_models(self, models: list[str], label: Callable[[str], str]) -> None:
        """The models outputs were made with; the current choice stays when it still is."""
        current = self.model.currentData()
        have = [self.model.itemData(i) for i in range(1, self.model.count())]
        wanted = list(models)
        if current and current not in wanted:
            wanted.append(current)
        if have == wanted:
            return
        self._quiet = True
        try:
            self.model.clear()
            self.model.addItem("All models", None)
            for model in wanted:
                self.model.addItem(label(model), model)
                self.model.setItemData(self.model.count() - 1, model,
                                       Qt.ItemDataRole.ToolTipRole)
            index = self.model.findData(current) if current else 0
            self.model.setCurrentIndex(max(0, index))
        finally:
            self._quiet = False
