"""`studio`: with no arguments opens the window; `studio gen …`, `studio info FILE` run headless.

Each subcommand lives in its own module with a `register(subparsers)` function.
Bad input prints one line on stderr and exits with status 2; nothing is written. A save
that fails part-way keeps (and indexes) the files it wrote, prints their paths and one
line about the rest, and exits with status 1. Ctrl+C and SIGTERM cancel (status 130).
No traceback reaches the terminal (`studio -v` shows them).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence

from studio.core.environment import configure_logging, setup_environment

__all__ = ["EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_FAILED", "build_parser", "main",
           "setup_environment"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130

# subcommand modules, in the order `studio --help` lists them
COMMANDS = ("gen", "info", "explore", "models", "grid", "batch", "chat", "upscale", "train")
# commands that write outputs: recovery runs before them
SAVING_COMMANDS = ("gen", "explore", "grid", "batch", "chat", "upscale")

log = logging.getLogger("studio.cli")


class UsageError(Exception):
    """Bad command-line input (reported as one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # "-1e308", "-1,2", "-.5" are values, not options (argparse only knows "-1", "-1.5")
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="studio", description="Studio: images, music and text from local models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"studio.cli.{name}").register(sub)
    return parser


def _sigterm_like_sigint(_signum: int, frame: object) -> None:
    """SIGTERM does what Ctrl+C does at that moment (cancel a generation, or stop)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def _recover(args: argparse.Namespace) -> None:
    """Before a command that saves: clean up after killed runs, index what they wrote."""
    if getattr(args, "command", None) not in SAVING_COMMANDS:
        return
    try:
        from studio.core.recovery import recover_default
        from studio.core.settings import Settings

        recover_default(Settings.load(), getattr(args, "out", None))
    except Exception:  # recovery helps; it must never stop a command
        log.info("recovery failed", exc_info=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui":
        from studio.ui.app import run_gui

        return run_gui(argv[1:])
    setup_environment(verbose=argv[0] in ("-v", "--verbose"))  # before any library import
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    if on_main_thread:
        signal.signal(signal.SIGTERM, _sigterm_like_sigint)
    try:
        return _main(argv)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


class _NoSaveError(Exception):
    """Stands in for SaveError where no file is saved (`studio info`, `models`)."""


def _main(argv: list[str]) -> int:
    from studio.core.errors import Cancelled, RequestError, StudioError

    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging(verbose=args.verbose)
    handler = getattr(args, "handler", None)
    if handler is None:  # `studio gen`, `studio explore`: say what is missing, in one line
        said = " ".join(a for a in argv if not a.startswith("-"))
        print(f"studio: say what `studio {said}` should do (see `studio {said} --help`)."
              if said else "studio: choose a command (see `studio --help`).", file=sys.stderr)
        return EXIT_BAD_INPUT
    save_error: type[Exception] = _NoSaveError  # only saving commands can raise SaveError,
    if args.command in SAVING_COMMANDS:  # and its module brings numpy (core.results)
        from studio.core.outputs import SaveError

        save_error = SaveError

    try:
        _recover(args)
        return int(handler(args) or 0)
    except (RequestError, UsageError) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        print("studio: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `studio models | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except save_error as exc:  # the files it did write are kept and indexed: say where
        for path in exc.paths:
            print(path)
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StudioError as exc:
        print(f"studio: {_sentence(args, exc) or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # never a traceback to the user; `-v` logs it
        log.info("failed", exc_info=True)
        from studio.engines.runner import failure_message

        print(f"studio: {_sentence(args, exc) or failure_message(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _sentence(args: argparse.Namespace, exc: BaseException) -> str | None:
    """A clearer sentence than the library's for failures we recognise (refused pickles)."""
    from studio.core.messages import load_failure

    return load_failure(str(getattr(args, "model", "") or ""), exc)
