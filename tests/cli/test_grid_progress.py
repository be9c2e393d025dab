"""A grid job's progress (engines.batch): each cell a span of the bar as wide as its planned
steps, so a steps axis moves the bar at the pace the cells take, never back, to the end."""

from __future__ import annotations

import pytest

from studio.core.grid import GridPlan
from studio.core.requests import ImageRequest
from studio.core.results import Progress
from studio.engines.base import Events
from studio.engines.batch import CellEvents, cell_spans, grid_jobs, planned_steps


class Recorded(Events):
    """What the window's worker would show: the plot's progress as a fraction."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, str]] = []

    def on_progress(self, progress: Progress) -> None:
        self.seen.append((progress.step / progress.total, progress.text))


BASE = ImageRequest(model="m", prompt="a fox", seed=3, width=64, height=64)


def test_each_cell_spans_its_share_of_the_steps() -> None:
    plan = GridPlan.from_axes(BASE, ("steps", "30, 5, 30, 15"))  # a repeated cell renders once
    spans = cell_spans(plan)
    assert len(grid_jobs(plan)) == 4 and len(spans) == 3
    assert [(i, round(lo, 4), round(hi, 4)) for i, lo, hi in spans.values()] == [
        (0, 0.0, 0.6), (1, 0.6, 0.7), (2, 0.7, 1.0)]
    assert planned_steps(BASE.replace(steps=20, hires_scale=2.0)) == 40
    assert planned_steps(BASE.replace(steps=20, hires_scale=2.0, hires_steps=8)) == 28


def test_cells_of_different_step_counts_move_the_bar_on_and_end_full() -> None:
    plan = GridPlan.from_axes(BASE, ("steps", "30, 5, 15"))
    outer = Recorded()
    for (index, lo, hi), job in zip(cell_spans(plan).values(), grid_jobs(plan), strict=True):
        cell = CellEvents(outer, index, 3, (lo, hi))
        for step in range(1, job.request.steps + 1):
            cell.progress(step, job.request.steps)
    fractions = [f for f, _text in outer.seen]
    assert fractions == sorted(fractions)  # never back
    assert fractions[29] == 0.6 and fractions[34] == 0.7 and fractions[-1] == 1.0
    assert fractions[30] == pytest.approx(0.62)  # a 5-step cell's first step: a fifth of 0.1
    assert outer.seen[0][1] == "Cell 1 of 3" and outer.seen[-1][1] == "Cell 3 of 3"
