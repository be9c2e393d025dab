"""X/Y/Z plots and prompt matrices from the window: one job of the worker per plot.

The plot runs on the worker's engine thread with its Runner (the model cache the
panels' jobs share, so a model loads once), through `engines.batch.run_grid_job`; it
shows in the queue, reports progress and previews, and cancels like any job. The
engine room is imported only on the engine thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.grid import GridPlan
from studio.core.results import Result

if TYPE_CHECKING:
    from studio.core.history import History


def grid_work(plan: GridPlan) -> Callable[[Any, Any, History | None], tuple[Result, list[Path]]]:
    """What a grid job runs (`Job.work`): every cell, then the labelled grid image."""

    def work(runner: Any, events: Any, history: History | None) -> tuple[Result, list[Path]]:
        from studio.engines.batch import run_grid_job

        return run_grid_job(plan, runner, events, history)

    return work


def grid_submit_options(plan: GridPlan) -> dict[str, Any]:
    """The keyword arguments of `JobQueue.submit(plan.base, **...)` that queue the plot."""
    return {"work": grid_work(plan)}
