"""`studio gen music`: text to music; prints each written path (the .wav, a .mid) per line."""

from __future__ import annotations

import argparse

from studio.cli.common import add_common, print_paths, run_request
from studio.core.requests import MusicRequest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("music", help="text to music (the built-in composer or a MusicGen folder)")
    add_common(p)
    p.add_argument("--seconds", default="10", help="length of the piece in seconds (default 10)")
    p.add_argument("--temperature", default="1.0", help="sampling temperature (0 = greedy)")
    p.add_argument("--top-k", default="250", help="sample among the k likeliest (0 = off)")
    p.add_argument("--top-p", default="0", help="nucleus sampling mass (0 = off)")
    p.add_argument("--guidance", default="3.0", help="classifier-free guidance (≤ 1 = off)")
    p.add_argument("--blend-prompt", default="", metavar="TEXT",
                   help="a second prompt to blend the conditioning toward")
    p.add_argument("--blend", default="0",
                   help="how far toward --blend-prompt, 0 (only --prompt) to 1 (only it)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Values stay text until here so that a bad one is one RequestError sentence (exit 2).
    request = MusicRequest.from_dict(
        {
            "model": args.model,
            "prompt": args.prompt,
            "seed": args.seed,
            "duration": args.seconds,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "guidance": args.guidance,
            "blend_prompt": args.blend_prompt,
            "blend": args.blend,
        }
    )
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
