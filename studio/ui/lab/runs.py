"""The Lab's list of runs: every training in the Lab folder, newest first.

A row shows the run's name, recipe, state, steps done and best loss; selecting one shows
its curves and samples in the panel. What a row holds comes from runtime's `runs()` (which
reads `core.training.list_runs()` off the GUI thread); a run whose state file says
"running" while no process drives it crashed or was closed with the window: it can resume.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from studio.core.training import RECIPES

COLUMNS = ("Name", "Recipe", "State", "Steps", "Best loss")
RESUMABLE = ("stopped", "failed", "paused", "running")  # running/paused with no process: crashed


def loss_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4f}" if value < 100 else f"{value:.1f}"


class RunsList(QTreeWidget):
    """Past and present runs; `run_selected(name)` when the selection moves ("" = none)."""

    run_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.summaries: dict[str, Any] = {}
        self.live = ""  # the run this window drives now
        self.itemSelectionChanged.connect(lambda: self.run_selected.emit(self.selected()))

    def set_runs(self, summaries: list[Any]) -> None:
        """Replace the rows (RunSummary objects), keeping the selection when it still exists."""
        before = self.selected()
        self.blockSignals(True)
        try:
            self.clear()
            self.summaries = {s.name: s for s in summaries}
            for s in summaries:
                info = RECIPES.get(s.recipe)
                state = "training" if s.name == self.live and s.state == "running" else s.state
                item = QTreeWidgetItem([s.name, info.name if info else s.recipe, state,
                                        str(s.steps), loss_text(s.best_loss)])
                item.setData(0, Qt.ItemDataRole.UserRole, s.name)
                item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
                item.setTextAlignment(4, Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
                model = getattr(s, "model_path", "") or ""
                item.setToolTip(0, f"{s.name}\n{model}" if model else s.name)
                self.addTopLevelItem(item)
            if before:
                self.select(before)
        finally:
            self.blockSignals(False)
        if self.selected() != before:
            self.run_selected.emit(self.selected())

    def names(self) -> list[str]:
        return [self.topLevelItem(i).text(0) for i in range(self.topLevelItemCount())]

    def row(self, name: str) -> list[str] | None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == name:
                return [item.text(c) for c in range(len(COLUMNS))]
        return None

    def selected(self) -> str:
        items = self.selectedItems()
        return items[0].text(0) if items else ""

    def summary(self, name: str) -> Any | None:
        return self.summaries.get(name)

    def select(self, name: str) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == name:
                self.setCurrentItem(item)
                return

    def resumable(self, name: str) -> bool:
        """Stopped, failed or crashed (a running/paused state with no live process)."""
        s = self.summaries.get(name)
        return s is not None and name != self.live and s.state in RESUMABLE
