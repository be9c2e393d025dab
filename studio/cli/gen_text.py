"""`studio gen text`: stream a language model's text to stdout, then print the saved path.

    studio gen text --model builtin:smollm2 --prompt "Write a haiku about rain" --seed 7

The text streams to stdout as it is made; the last line is the path of the .md file
(front matter with the whole request, then the text). Progress and the tokens/s summary
go to stderr (`--quiet` silences them). Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from studio.cli.common import add_common, add_fields, field_values, print_paths, run_request
from studio.core.requests import TextRequest

if TYPE_CHECKING:  # results bring numpy: `studio --help` needs none
    from studio.core.results import Preview

FIELDS = ("system", "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("text", help="text from a language model (streams to stdout)")
    add_common(p)
    add_fields(p, TextRequest, FIELDS)
    p.add_argument("--stop", nargs="+", action="extend", default=[], metavar="STR",
                   help="stop when the text reaches one of these strings (trimmed); "
                        "\\n and \\t are read as a newline and a tab")
    p.add_argument("--continue", dest="continuation", default="", metavar="TEXT",
                   help="text already written, to be continued")
    p.set_defaults(handler=run)


def unescape(text: str) -> str:
    r"""`\n`, `\t` and `\\` typed on a command line become a newline, a tab and a backslash."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def build_request(args: argparse.Namespace) -> TextRequest:
    return TextRequest.from_dict(
        {
            "model": args.model,
            "prompt": args.prompt,
            "seed": args.seed,
            **field_values(args, FIELDS),
            "stop": [unescape(s) for s in args.stop],
            "continuation": args.continuation,
        }
    )


def run(args: argparse.Namespace) -> int:
    request = build_request(args)
    request.validate()  # before torch is imported: bad input fails fast with exit 2
    out = sys.stdout
    written: list[str] = []
    quiet = args.quiet or not sys.stderr.isatty()  # progress is for people at a terminal
    if out.isatty():  # a token counter on stderr would scribble over the text on a terminal
        args.quiet = True

    def show(preview: Preview) -> None:
        if preview.kind == "text" and preview.data:
            written.append(preview.data)
            out.write(preview.data)
            out.flush()

    if not quiet:
        print(f"Generating with {request.model}…", file=sys.stderr, flush=True)
    result, paths = run_request(request, args, on_preview=show)
    if not written:  # nothing streamed (e.g. an engine without previews): print it whole
        out.write(result.text)
    if result.text and not result.text.endswith("\n"):
        out.write("\n")
    out.flush()
    if not quiet:
        info = result.info
        print(f"{info.get('tokens', 0)} tokens at {info.get('tokens_per_s', 0):.1f} tokens/s "
              f"(stopped by {info.get('stopped_by', '?')}, seed {result.request.seed})",
              file=sys.stderr, flush=True)
    print_paths(paths)
    return 0
