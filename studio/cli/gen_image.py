"""`studio gen image`: text-to-image; prints each written path on its own line."""

from __future__ import annotations

import argparse

from studio.cli.common import add_common, print_paths, run_request
from studio.core.requests import SCHEDULERS, ImageRequest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="text to image")
    add_common(p)
    p.add_argument("--negative", default="")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=7.0)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--scheduler", default="Euler a", help=", ".join(SCHEDULERS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--variation-seed", default="-1")
    p.add_argument("--variation-strength", type=float, default=0.0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = ImageRequest.from_dict(
        {
            "model": args.model,
            "prompt": args.prompt,
            "negative": args.negative,
            "seed": args.seed,
            "steps": args.steps,
            "guidance": args.guidance,
            "width": args.width,
            "height": args.height,
            "scheduler": args.scheduler,
            "batch_size": args.batch,
            "variation_seed": args.variation_seed,
            "variation_strength": args.variation_strength,
        }
    )
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
