"""The Lab's list of runs: every training in the Lab folder, newest first.

A row shows the run's name, recipe, state, steps done, last training loss and best
validation loss; selecting one shows its curves and samples in the panel. A row is a
`runtime.training.RunSummary` (read from the run folders off the GUI thread); a run whose
state file says "running" while no process drives it crashed or was closed with the
window: it resumes from its last checkpoint like a stopped one.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from studio.core.training import RECIPES
from studio.runtime.training import RunSummary

COLUMNS = ("Name", "Recipe", "State", "Steps", "Last loss", "Best val.")


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
        self.summaries: dict[str, RunSummary] = {}
        self.live = ""  # the run this window drives now
        self.itemSelectionChanged.connect(lambda: self.run_selected.emit(self.selected()))

    def set_runs(self, summaries: list[RunSummary]) -> None:
        """Replace the rows, keeping the selection when it still exists."""
        before = self.selected()
        self.blockSignals(True)
        try:
            self.clear()
            self.summaries = {s.name: s for s in summaries}
            for s in summaries:
                info = RECIPES.get(s.recipe)
                state = "training" if s.name == self.live and s.state == "running" else s.state
                item = QTreeWidgetItem([s.name, info.name if info else s.recipe, state,
                                        f"{s.step}/{s.steps}", loss_text(s.last_loss),
                                        loss_text(s.best_val)])
                for column in (3, 4, 5):
                    item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                tip = s.name + (f"\n{s.model}" if s.model else "")
                if s.overfitting and s.best_step is not None:
                    tip += f"\nOverfitting after step {s.best_step}"
                item.setToolTip(0, tip)
                self.addTopLevelItem(item)
            if before:
                self.select(before)
        finally:
            self.blockSignals(False)
        if self.selected() != before:
            self.run_selected.emit(self.selected())

    def show_step(self, name: str, step: int, total: int, loss: float) -> None:
        """Keep the row of the run training now current between two reads of the folders."""
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == name:
                item.setText(3, f"{step}/{total}")
                item.setText(4, loss_text(loss))
                return

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

    def summary(self, name: str) -> RunSummary | None:
        return self.summaries.get(name)

    def select(self, name: str) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == name:
                self.setCurrentItem(item)
                return

    def resumable(self, name: str) -> bool:
        """A checkpoint to go on from and steps left, and not the run training now."""
        s = self.summaries.get(name)
        return s is not None and name != self.live and s.resumable
