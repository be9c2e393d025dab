"""`studio gen music`: text to music; prints each written path (the .wav, a .mid) per line."""

from __future__ import annotations

import argparse

from studio.cli.common import add_common, add_fields, field_values, print_paths, run_request
from studio.core.requests import MusicRequest

FIELDS = ("duration", "temperature", "top_k", "top_p", "guidance", "blend_prompt", "blend")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("music", help="text to music (the built-in composer or a MusicGen folder)")
    add_common(p)
    # Values stay text until from_dict so that a bad one is one RequestError sentence (exit 2).
    add_fields(p, MusicRequest, FIELDS, typed=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = MusicRequest.from_dict(
        {"model": args.model, "prompt": args.prompt, "seed": args.seed,
         **field_values(args, FIELDS)}
    )
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
