"""`studio models`: list the models Studio can use; `studio models download ID` fetches one.

    studio models                     # table by modality (add --all for VAEs, LoRAs...)
    studio models --json              # the same as JSON, with what the scan skipped
    studio models catalog             # suggested downloads: size, licence, installed?
    studio models download sd-turbo   # or any hub id: studio models download org/name

Listing never touches the network. A download is resumable (run it again after
Ctrl+C or a dropped connection) and fails at once, with exit status 2, offline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path

EXIT_CANCELLED = 130
BAR_WIDTH = 24


def _add_list_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--modality", choices=("image", "music", "text"), help="only this modality")
    p.add_argument("--all", action="store_true",
                   help="also list helpers (preview decoders, VAEs, LoRAs, other pipelines)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models Studio can use, or download one",
                       description="List the models Studio can use (models/, your model folders, "
                                   "the Hugging Face cache, built-ins), or download one.")
    _add_list_options(p)
    p.set_defaults(handler=run_list)
    actions = p.add_subparsers(dest="action", parser_class=type(p), metavar="[ACTION]")
    lst = actions.add_parser("list", help="list models (the default)")
    _add_list_options(lst)
    lst.set_defaults(handler=run_list)
    cat = actions.add_parser("catalog", help="models Studio suggests downloading")
    cat.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cat.set_defaults(handler=run_catalog)
    dl = actions.add_parser("download", help="download a catalog model or a hub repo (org/name)")
    dl.add_argument("id", help="a catalog id (see `studio models catalog`) or org/name")
    dl.add_argument("--dest", default=None,
                    help="folder to download into (default: your first model folder, else models/)")
    dl.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)  # a mirror; tests
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(handler=run_download)


# ----------------------------------------------------------------------------- list


def run_list(args: argparse.Namespace) -> int:
    from studio.core import catalog
    from studio.core.settings import Settings

    settings = Settings.load()
    entries = catalog.scan(settings)
    issues = catalog.last_issues()
    if args.modality:
        entries = [e for e in entries if e.modality == args.modality]
    if not args.all:
        entries = [e for e in entries if e.role == "generate"]
    if args.json:
        print(json.dumps({"models": [dataclasses.asdict(e) for e in entries],
                          "skipped": issues}, indent=2, ensure_ascii=False))
        return 0
    print(format_table(entries, settings.allow_pickle))
    if issues:
        print(f"\n{len(issues)} file(s) skipped:", file=sys.stderr)
        for line in issues[:20]:
            print(f"  {line}", file=sys.stderr)
    return 0


def format_table(entries, allow_pickle: bool = False) -> str:
    """Models grouped by modality: family, format, size, where found, then the id to use."""
    from studio.core.catalog import format_size

    if not entries:
        return "No models found."
    headers = ("FAMILY", "FORMAT", "SIZE", "FOUND IN", "ID (use with --model)")
    blocks: list[str] = []
    order = {"image": 0, "music": 1, "text": 2}
    groups: dict[str, list] = {}
    for e in sorted(entries, key=lambda e: (order.get(e.modality, 9), e.role != "generate")):
        key = e.modality if e.role == "generate" else f"{e.modality} helpers"
        groups.setdefault(key, []).append(e)
    rows_by_group = {}
    for key, members in groups.items():
        rows = []
        for e in members:
            fmt = e.format + (" (pickled)" if e.pickled else "")
            where = {"builtin": "built-in", "models": "models/", "hf-cache": "HF cache"}.get(
                e.source, e.location)
            ident = e.id
            if e.pickled and not allow_pickle:
                ident += "  [needs allow_pickle in settings]"
            elif e.note.startswith("Not installed"):
                ident += f"  [{e.note}]"
            family = f"{e.family} ({e.base})" if e.base else e.family  # a LoRA's base
            rows.append((family, fmt, format_size(e.size_bytes) if e.size_bytes else "-",
                         where, ident))
        rows_by_group[key] = rows
    all_rows = [r for rows in rows_by_group.values() for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in all_rows)) for i, h in enumerate(headers[:-1])]

    def line(cells) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True)) + \
            "  " + cells[-1]

    for key, rows in rows_by_group.items():
        blocks.append(f"{key.upper()} ({len(rows)})\n" + line(headers) + "\n" +
                      "\n".join(line(r) for r in rows))
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------- catalog


def run_catalog(args: argparse.Namespace) -> int:
    from studio.core import downloads
    from studio.core.catalog import format_size
    from studio.core.settings import Settings

    settings = Settings.load()
    items = downloads.load_catalog()
    rows = []
    for item in items:
        folder = downloads.installed_path(item, settings)
        partial = downloads.partial_bytes(item, settings) if folder is None else 0
        state = (f"installed: {folder}" if folder else
                 f"partial: {format_size(partial)} (download again to resume)" if partial else "")
        rows.append((item, state))
    if args.json:
        print(json.dumps([dataclasses.asdict(i) | {"status": s} for i, s in rows], indent=2,
                         ensure_ascii=False))
        return 0
    width = max((len(i.id) for i in items), default=2)
    for item, state in rows:
        size = f"~{format_size(item.size_bytes)}" if item.size_bytes else ""
        print(f"{item.id.ljust(width)}  {item.name} ({item.family}, {size})")
        print(f"{' ' * width}  licence: {item.licence}" + (f"  [{state}]" if state else ""))
    print(f"\nDownloads go to {downloads.download_root(settings)}; "
          "run `studio models download ID`.")
    return 0


# ----------------------------------------------------------------------------- download


class TextProgress:
    """A one-line progress bar on stderr ('\\r' updates on a terminal, a line a second else)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0
        self.width = 0

    def __call__(self, p) -> None:
        now = time.monotonic()
        final = p.state in ("done", "connecting")
        if not self.tty and not final and now - self.last < 1.0:
            return
        self.last = now
        if p.state == "connecting":
            text = f"Connecting to the hub for {p.repo}…"
        else:
            filled = int(BAR_WIDTH * min(1.0, p.fraction))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            files = f" {p.files_done}/{p.files_total} files" if p.files_total else ""
            text = f"[{bar}] {100 * p.fraction:5.1f}% {p.text()}{files}"
        if self.tty:
            pad = max(0, self.width - len(text))
            self.width = len(text)
            end = "\n" if p.state == "done" else ""
            print("\r" + text + " " * pad, end=end, file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)


def run_download(args: argparse.Namespace) -> int:
    from studio.core import downloads
    from studio.core.errors import Cancelled
    from studio.core.settings import Settings

    item = downloads.resolve_item(args.id)
    settings = Settings.load()
    dest = Path(args.dest).expanduser() if args.dest else downloads.download_root(settings)
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        folder = downloads.download(
            item, dest, endpoint=args.endpoint, cancel=cancel,
            on_progress=None if args.quiet else TextProgress(),
        )
    except Cancelled:
        print(f"\nstudio: download of {item.name} stopped; run the same command again to "
              "resume it.", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    print(folder)
    return 0
