"""A plot as one job of the worker (`JobQueue.submit(base, work=...)`, runtime.grids): the
worker's own Runner renders the cells (the model loads once), progress runs over the whole
plot, a failed cell fails the job in one sentence and the finished cells stay saved."""

from __future__ import annotations

from studio.core.grid import GridPlan, describe_recipe, plot_recipe
from studio.core.requests import ImageRequest
from studio.runtime.grids import grid_submit_options
from tests.ui import close_ctx, make_ctx, output_files


def test_a_plot_is_one_job_on_the_workers_runner(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    try:
        base = ImageRequest(model="builtin:faces", prompt="a face", seed=3, width=64, height=64)
        plan = GridPlan.from_axes(base, ("seed", "1, 2, 3"), ("batch_size", "1, 2"))
        progress = []
        ctx.jobs.job_progress.connect(lambda _i, p: progress.append((p.step, p.total, p.text)))
        with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000) as sig:
            job_id = ctx.jobs.submit(plan.base, **grid_submit_options(plan))
        assert sig.args[0] == job_id
        _id, result, paths = sig.args
        assert result.info["grid_shape"] == [3, 2, 1]
        assert len(result.images) == 1 + 6  # the grid, then each cell's first picture
        assert len(paths) == 1 + 3 + 3 * 2  # the grid, then every picture of every cell
        assert sorted(output_files(ctx.settings.output_path)) == sorted(paths)
        assert describe_recipe(plot_recipe(paths[0])) == \
            "3×2 plot: X Seed = 1, 2, 3 · Y Batch = 1, 2"
        assert progress[-1][2] == "Cell 6 of 6" and progress[-1][0] == progress[-1][1]
        runner = ctx.jobs.worker.runner
        assert runner is not None and runner.cache.loads == 1  # one model, loaded once
        # a cell that fails: one sentence, the other cells kept
        bad = GridPlan.from_axes(base, ("model", "builtin:faces, builtin:composer"))
        with qtbot.waitSignal(ctx.jobs.job_failed, timeout=60000) as failed:
            ctx.jobs.submit(bad.base, **grid_submit_options(bad))
        message = failed.args[1]
        assert message.startswith("1 of 2 grid cells failed (cell 2,1,1: ")
        assert message.endswith("the cells that finished are saved.")
        assert len(output_files(ctx.settings.output_path)) == len(paths) + 1
    finally:
        close_ctx(ctx, qtbot)
