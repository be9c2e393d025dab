"""`studio gen image`: text-to-image; prints each written path on its own line."""

from __future__ import annotations

import argparse

from studio.cli.common import add_common, add_fields, field_values, print_paths, run_request
from studio.core.requests import SCHEDULERS, ImageRequest

FIELDS = ("negative", "steps", "guidance", "width", "height", "scheduler", "batch_size",
          "variation_seed", "variation_strength")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="text to image")
    add_common(p)
    add_fields(p, ImageRequest, FIELDS, help_extra={"scheduler": ", ".join(SCHEDULERS)})
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = ImageRequest.from_dict(
        {"model": args.model, "prompt": args.prompt, "seed": args.seed,
         **field_values(args, FIELDS)}
    )
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
