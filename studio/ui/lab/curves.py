"""The Lab's live loss plot: training and validation curves, and the overfitting mark.

pyqtgraph draws thousands of points without redrawing the window each time; records arrive
one step at a time (`add`) while training, or all at once for a past run (`set_records`).
The overfitting verdict is `core.training.overfitting` over the records shown, so the plot
and the model card never disagree about it.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.core.training import Overfit, StepRecord, overfitting

pg.setConfigOptions(antialias=True)

TRAIN_COLOUR = "#7c5cff"  # the app's accent
VAL_COLOUR = "#ffb454"
BEST_COLOUR = "#8fd6a4"
BACKGROUND = "#1a1b20"
REDRAW_MS = 100  # at most ten redraws a second, however fast the steps come


class LossPlot(QWidget):
    """Training loss as a line, validation loss as a line with dots, the best validation
    step as a vertical line once overfitting is flagged."""

    overfit_changed = Signal(object)  # Overfit, when its verdict or best step changes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setObjectName("lossPlot")
        item = self.plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        item.getAxis("left").enableAutoSIPrefix(False)  # "loss (x0.001)" reads worse than 0.05
        item.setMenuEnabled(False)
        self.legend = item.addLegend(offset=(-10, 10))
        self.train_curve = item.plot([], [], name="training",
                                     pen=pg.mkPen(TRAIN_COLOUR, width=1.6))
        self.val_curve = item.plot([], [], name="validation",
                                   pen=pg.mkPen(VAL_COLOUR, width=1.6),
                                   symbol="o", symbolSize=5, symbolBrush=VAL_COLOUR,
                                   symbolPen=None)
        self.best_line = pg.InfiniteLine(angle=90, movable=False,
                                         pen=pg.mkPen(BEST_COLOUR, width=1.2,
                                                      style=pg.QtCore.Qt.PenStyle.DashLine),
                                         label="best", labelOpts={"color": BEST_COLOUR,
                                                                  "position": 0.92})
        self.best_line.hide()
        item.addItem(self.best_line)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.plot)
        self.records: list[StepRecord] = []
        self.overfit = Overfit(None, None, False)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self.redraw)

    # ------------------------------------------------------------------ data
    def add(self, record: StepRecord) -> None:
        """One more step (a step at or before the last one restarts from it: a resume
        continues from its checkpoint, so the curve must not fold back on itself)."""
        if self.records and record.step <= self.records[-1].step:
            self.records = [r for r in self.records if r.step < record.step]
        self.records.append(record)
        if not self._redraw.isActive():
            self._redraw.start()

    def set_records(self, records: list[StepRecord]) -> None:
        self.records = sorted(records, key=lambda r: r.step)
        self.redraw()

    def clear(self) -> None:
        self.set_records([])

    # ------------------------------------------------------------------ drawing
    def train_points(self) -> tuple[list[int], list[float]]:
        pts = [(r.step, r.loss) for r in self.records if math.isfinite(r.loss)]
        return [s for s, _ in pts], [v for _, v in pts]

    def val_points(self) -> tuple[list[int], list[float]]:
        pts = [(r.step, r.val_loss) for r in self.records
               if r.val_loss is not None and math.isfinite(r.val_loss)]
        return [s for s, _ in pts], [float(v) for _, v in pts]  # type: ignore[arg-type]

    def drawn(self) -> tuple[int, int]:
        """How many training and validation points are on screen now."""
        counts = []
        for curve in (self.train_curve, self.val_curve):
            xs = curve.getData()[0]
            counts.append(0 if xs is None else len(xs))
        return counts[0], counts[1]

    def redraw(self) -> None:
        self._redraw.stop()
        self.train_curve.setData(*self.train_points())
        self.val_curve.setData(*self.val_points())
        verdict = overfitting(self.records)
        if verdict.flagged and verdict.best_step is not None:
            self.best_line.setValue(verdict.best_step)
            self.best_line.label.setFormat(f"best: step {verdict.best_step}")
            self.best_line.show()
        else:
            self.best_line.hide()
        if verdict != self.overfit:
            self.overfit = verdict
            self.overfit_changed.emit(verdict)
