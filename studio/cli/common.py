"""What every headless generation shares: progress on stderr, run, save, print paths."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.fields import spec
from studio.core.requests import Request
from studio.core.settings import Settings

if TYPE_CHECKING:  # results bring numpy: `studio --help` and `studio info` need neither
    from studio.core.results import Preview, Progress, Result


def settings_for(args: argparse.Namespace) -> Settings:
    settings = Settings.load()
    out = getattr(args, "out", None)
    if out:
        settings.output_dir = str(Path(out).expanduser().resolve())
    return settings


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id: builtin:… or a path")
    parser.add_argument("--prompt", default="", help="what to make")
    parser.add_argument("--seed", default="-1", help="-1 draws a random seed (recorded)")
    parser.add_argument("--out", default=None, help="output folder (default: from settings)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (default when not a terminal)"
    )


def add_fields(parser: argparse.ArgumentParser, cls: type[Request], names: Sequence[str], *,
               typed: bool = True, help_extra: dict[str, str] | None = None) -> None:
    """One flag per request field, from the field's metadata (flag, tip, default).

    typed=True lets argparse read whole numbers and numbers (its "invalid int value"
    sentence); typed=False keeps every value text until Request.from_dict, so a bad one
    is that field's own sentence. Either way the default is the request's own.
    """
    for name in names:
        s = spec(cls, name)
        kind: Any = None
        if typed and not name.endswith("seed") and s.type in (int, float):
            kind = s.type
        default = s.default if kind is not None else str(s.default)
        text = s.tip or s.label
        if text[1:2].islower():  # "Denoising steps…" → "denoising steps…", "CFG" stays
            text = text[:1].lower() + text[1:]
        if (help_extra or {}).get(name):
            text += f": {help_extra[name]}"  # type: ignore[index]
        if s.default not in ("", None):
            text += f" (default {s.default:g})" if s.type in (int, float) else \
                f" (default {s.default})"
        parser.add_argument(s.flag, dest=name, type=kind, default=default,
                            help=text.replace("%", "%%"))


def field_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The values of the flags add_fields made, by field name (for Request.from_dict)."""
    return {name: getattr(args, name) for name in names}


def run_request(
    request: Request,
    args: argparse.Namespace,
    on_preview=None,
) -> tuple[Result, list[Path]]:
    """Validate, generate with progress on stderr, save, index; Ctrl+C cancels cleanly."""
    from studio.engines.base import Events
    from studio.engines.runner import Runner

    request.validate()  # before any import of torch: bad input fails fast
    settings = settings_for(args)
    # Progress is for people at a terminal; scripts get only paths and one-line errors.
    quiet = getattr(args, "quiet", False) or not sys.stderr.isatty()

    class CliEvents(Events):
        def on_progress(self, p: Progress) -> None:
            if not quiet:
                eta = f", ETA {p.eta_s:.0f}s" if p.eta_s else ""
                rate = f" {p.it_per_s:.2f} it/s" if p.it_per_s else ""
                print(f"\r{p.step}/{p.total}{rate}{eta}   ", end="", file=sys.stderr, flush=True)
                if p.step >= p.total:
                    print(file=sys.stderr)

        def on_status(self, text: str) -> None:
            if not quiet:
                print(text, file=sys.stderr, flush=True)

        def on_preview(self, preview: Preview) -> None:
            if on_preview is not None:
                on_preview(preview)

        def wants_previews(self) -> bool:
            return on_preview is not None

    cancel = threading.Event()
    events = CliEvents(cancel)
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        runner = Runner(settings)
        result = runner.generate(request, events)
        events.check_cancelled()
        from studio.core.history import History

        history = History.open_for_saving()  # None: saved anyway, one warning, indexed later
        try:
            paths = runner.save(result, history)
        finally:
            if history is not None:
                history.close()
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
    return result, paths


def print_paths(paths: list[Path]) -> None:
    for path in paths:
        print(path)
