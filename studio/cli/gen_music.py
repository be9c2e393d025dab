"""`studio gen music`: text to music; prints each written path (the .wav, a .mid) per line.

For the composer, what it understood (key, metre, tempo, form, style, instruments) is one
line on stderr before it starts and one after, with what it actually played.
"""

from __future__ import annotations

import argparse
import sys

from studio.cli.common import add_common, add_fields, field_values, print_paths, run_request
from studio.core import families
from studio.core.requests import MusicRequest

FIELDS = ("duration", "temperature", "top_k", "top_p", "guidance", "blend_prompt", "blend",
          "key", "meter", "bpm", "form", "style", "instruments", "soundfont", "motif",
          "extend_from", "melody")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("music", help="text to music (the built-in composer or a MusicGen folder)")
    add_common(p)
    # Values stay text until from_dict so that a bad one is one RequestError sentence (exit 2).
    add_fields(p, MusicRequest, FIELDS, typed=False)
    p.add_argument("--stems", action="store_true",
                   help="also write a WAV per instrument beside the mix (the composer)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = MusicRequest.from_dict(
        {"model": args.model, "prompt": args.prompt, "seed": args.seed,
         **field_values(args, FIELDS), "stems": args.stems}
    )
    request.validate()
    request = request.resolved()  # the seed drawn now is the one the line describes
    family = families.of_builtin(request.model)
    composer = family is not None and family.id == "composer"
    if composer and not request.extend_from.strip():
        from studio.core.composer_prompt import describe, understand

        print(f"composer: asked for {describe(understand(request)[1])}",
              file=sys.stderr, flush=True)
    result, paths = run_request(request, args)
    if composer and result.info.get("understood"):
        print(f"composer: played {result.info['understood']}", file=sys.stderr, flush=True)
    print_paths(paths)
    return 0
