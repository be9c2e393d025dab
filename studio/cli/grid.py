"""`studio grid`: an X/Y/Z plot or a prompt matrix, every cell saved, plus a labelled grid.

    studio grid --model builtin:faces --x seed "1-4" --y steps "5-30 (+5)"
    studio grid --model M --prompt "a cat | in snow | at night" --matrix
    studio grid --model M --lora style:1 --x "lora weight: style" "0-1 (+0.25)"
    studio grid --from GRID.png              # the same plot again (its recipe is inside)

The base request comes from the flags (image fields, as `studio gen image`) or from any
output (`--base FILE`: its recipe); axes name request fields by name, label or flag.
Prints every cell's path, then the grid image's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from studio.cli.batch import (
    ProgressBar,
    add_cluster_flags,
    cancel_on_sigint,
    finish,
    make_pool,
    open_history,
)
from studio.cli.common import add_fields, field_values, settings_for
from studio.core.fields import spec
from studio.core.requests import SCHEDULERS, ImageRequest, Request

if TYPE_CHECKING:
    from studio.core.grid import GridPlan

FIELDS = ("negative", "steps", "guidance", "width", "height", "scheduler", "schedule",
          "batch_size", "variation_seed", "variation_strength")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="X/Y/Z plot or prompt matrix: every cell and a labelled grid")
    p.add_argument("--model", default=None, help="model id: builtin:… or a path")
    p.add_argument("--prompt", default="", help="what to make (a | b | c with --matrix)")
    p.add_argument("--seed", default="-1", help="-1 draws one seed for the whole plot")
    p.add_argument("--base", default=None, metavar="FILE",
                   help="take the base request from an output's recipe (flags given override)")
    p.add_argument("--from", dest="replay", default=None, metavar="GRID",
                   help="replay the plot whose recipe a grid image holds")
    for axis in ("x", "y", "z"):
        p.add_argument(f"--{axis}", nargs=2, metavar=("FIELD", "VALUES"), default=None,
                       help=f"the {axis.upper()} axis: a field (seed, steps, cfg, sampler, "
                            f"schedule, size, model, 'prompt s/r', 'lora weight: NAME', …) "
                            f"and values ('1-5', "
                            f"'5-30 (+5)', '1-10 [4]', 'a, b, c')")
    p.add_argument("--matrix", action="store_true",
                   help="prompt matrix: every combination of the parts after '|'")
    lora = spec(ImageRequest, "loras")
    p.add_argument(lora.flag, dest="loras", action="append", default=[],
                   metavar="NAME:WEIGHT", help=lora.tip)
    add_fields(p, ImageRequest, FIELDS, typed=False,
               help_extra={"scheduler": ", ".join(SCHEDULERS)})
    add_cluster_flags(p)
    p.set_defaults(handler=run)


def base_request(args: argparse.Namespace) -> Request:
    """The plot's base: the --base recipe (or defaults), with the flags the user gave."""
    data: dict[str, object] = {"kind": "image"}
    if args.base:
        from studio.core.recipes import read_recipe

        data = dict(read_recipe(args.base).to_request().to_dict())
    defaults = {name: str(ImageRequest.__dataclass_fields__[name].default) for name in FIELDS}
    given = {k: v for k, v in field_values(args, FIELDS).items()
             if not args.base or v != defaults[k]}
    data.update(given if data.get("kind") == "image" else {})
    for name in ("model", "prompt"):
        value = getattr(args, name)
        if value or not args.base:
            data[name] = value or ""
    if args.seed != "-1" or not args.base:
        data["seed"] = args.seed
    if args.loras and data.get("kind") == "image":
        data["loras"] = list(args.loras)
    return Request.from_dict(data)


def plan_for(args: argparse.Namespace) -> GridPlan:
    """The plot the flags describe (or the one a grid image holds, with --from)."""
    from studio.core.grid import GridPlan, plot_recipe

    if args.replay:
        return GridPlan.from_recipe(plot_recipe(args.replay))
    base = base_request(args)
    if args.matrix:
        return GridPlan.prompt_matrix(base, count=args.count)
    x, y, z = ((a[0], a[1]) if a is not None else None for a in (args.x, args.y, args.z))
    return GridPlan.from_axes(base, x, y, z, count=args.count)


def run(args: argparse.Namespace) -> int:
    from studio.engines.batch import run_grid

    plan = plan_for(args)  # every cell is validated here, before any model loads
    settings = settings_for(args)
    quiet = args.quiet or not sys.stderr.isatty()
    if not quiet:
        nx, ny, nz = plan.shape
        print(f"{nx}×{ny}" + (f"×{nz}" if nz > 1 else "") + f" grid, {len(plan.cells)} jobs",
              file=sys.stderr)
    t0 = time.perf_counter()
    pool, done = make_pool(args, settings)
    history = open_history()
    try:
        with cancel_on_sigint() as cancel:
            outcome = run_grid(plan, pool, Path(settings.output_path), history, cancel=cancel,
                               on_progress=ProgressBar(not quiet))
    finally:
        history.close()
        done()
    summary = outcome.summary
    summary.seconds = time.perf_counter() - t0
    for path in [*outcome.cell_paths, *outcome.grid_paths]:
        print(path)
    if outcome.note:
        print(f"studio: {outcome.note}", file=sys.stderr)
    return finish(summary, quiet)
