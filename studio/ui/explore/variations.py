"""The Variations tab: nine children around the current point (Artbreeder-style); a click
makes a child the centre. Bound to an ExploreSession's variation steps."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.explore import GRID_SIZE
from studio.runtime.explore_session import ExploreSession
from studio.ui.images import qimage_from_array
from studio.ui.widgets import section_label


class GridCell(QToolButton):
    """One child of the variation grid (the centre is the current point)."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setIconSize(QSize(84, 84))
        self.setFixedSize(QSize(92, 92))
        self.setObjectName("gridCell")
        centre = index == GRID_SIZE // 2
        self.setToolTip("The current point: click for new children" if centre
                        else "Make this child the centre")
        if centre:
            self.setStyleSheet("QToolButton#gridCell { border: 2px solid #7c5cff; }")


class VariationsPage(QWidget):
    """The grid, how far children stray (spread), new children and undo."""

    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        grid = QGridLayout()
        grid.setSpacing(4)
        self.cells: list[GridCell] = []
        for i in range(GRID_SIZE):
            cell = GridCell(i)
            cell.clicked.connect(lambda _c=False, i=i: session.pick_child(i))
            grid.addWidget(cell, i // 3, i % 3)
            self.cells.append(cell)
        self.spread = QSlider(Qt.Orientation.Horizontal)
        self.spread.setRange(1, 100)
        self.spread.setToolTip("How far the children stray from the centre")
        self.spread_label = QLabel("")
        self.spread_label.setObjectName("muted")
        self.new_children = QPushButton("New children")
        self.new_children.setToolTip("Draw nine new children around the current point")
        self.undo_step = QPushButton("Undo step")
        self.undo_step.setToolTip("Go back to the point before the last child you picked")
        self.steps_label = QLabel("")
        self.steps_label.setObjectName("muted")
        side = QVBoxLayout()
        side.addWidget(section_label("Spread"))
        srow = QHBoxLayout()
        srow.addWidget(self.spread, 1)
        srow.addWidget(self.spread_label)
        side.addLayout(srow)
        side.addWidget(self.new_children)
        side.addWidget(self.undo_step)
        side.addWidget(self.steps_label)
        side.addStretch(1)
        row = QHBoxLayout(self)
        row.addLayout(grid)
        row.addSpacing(12)
        row.addLayout(side, 1)
        self._show_spread()
        self._show_steps(len(session.variations))
        self.spread.valueChanged.connect(self._spread_moved)
        self.spread.sliderReleased.connect(session.refresh_grid)
        self.new_children.clicked.connect(session.reseed_children)
        self.undo_step.clicked.connect(session.undo_variation)
        session.variations_changed.connect(self._show_steps)
        session.grid_changed.connect(self._show_children)
        session.settings_changed.connect(self._show_spread)

    def _spread_moved(self, value: int) -> None:
        self.session.spread = value / 100
        self.spread_label.setText(f"{value / 100:.2f}")

    def _show_spread(self) -> None:
        self.spread.blockSignals(True)
        self.spread.setValue(round(self.session.spread * 100))
        self.spread.blockSignals(False)
        self.spread_label.setText(f"{self.spread.value() / 100:.2f}")

    def _show_steps(self, n: int) -> None:
        self.undo_step.setEnabled(n > 0)
        self.steps_label.setText(f"{n} step{'s' if n != 1 else ''} from the blend" if n else "")

    def _show_children(self, images: list[np.ndarray]) -> None:
        for cell, array in zip(self.cells, images, strict=False):
            cell.setIcon(QIcon(QPixmap.fromImage(qimage_from_array(array))))
