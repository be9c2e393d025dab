"""`studio`: with no arguments opens the window; `studio gen …`, `studio info FILE` run headless.

Each subcommand lives in its own module with a `register(subparsers)` function.
Bad input prints one line on stderr and exits with status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130

# subcommand modules, in the order `studio --help` lists them
COMMANDS = ("gen", "info", "explore", "models", "chat")


def setup_environment() -> None:
    """Offline by default: the hub is read only when the user asks for a download."""
    if "HF_HUB_OFFLINE" not in os.environ:  # ours, not the user's: a download they ask for may go
        os.environ["STUDIO_HUB_OFFLINE_DEFAULT"] = "1"  # online (studio/core/downloads.py)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class UsageError(Exception):
    """Bad command-line input (reported as one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="studio", description="Studio: images, music and text from local models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"studio.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    setup_environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui":
        from studio.ui.app import run_gui

        return run_gui(argv[1:])
    from studio.core.errors import Cancelled, RequestError, StudioError

    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    handler = getattr(args, "handler", None)
    if handler is None:
        build_parser().print_help()
        return EXIT_BAD_INPUT
    try:
        return int(handler(args) or 0)
    except (RequestError, UsageError) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Cancelled:
        print("studio: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("studio: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `studio models | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # never a traceback to the user; it goes to the log
        logging.getLogger("studio").debug("failed", exc_info=True)
        from studio.engines.runner import failure_message

        print(f"studio: {failure_message(exc)}", file=sys.stderr)
        return EXIT_FAILED
