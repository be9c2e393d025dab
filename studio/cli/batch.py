"""`studio batch FILE.jsonl`: run a request file (any mix of image, music and text), resumably.

One recipe per line, in the JSON `studio info` prints (compact, one line each) or a bare
request. Prints each written path; a progress bar with ETA on a terminal; a summary at the
end. A malformed line is reported with its number and the rest run; the exit status is 0
only when every line ran (or was already done). Run it again and finished lines are
skipped (the ledger `FILE.jsonl.done`, keyed by the recipe: see `engines/batch.py`).
A second run of a file that is running says so and exits 2 (`FILE.jsonl.lock`, which
the kernel frees when a run is killed, so a stale one is taken over).
`--ray auto|local|HOST:PORT` runs the jobs on a Ray cluster (`pip install 'studio[cluster]'`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from studio.cli.common import settings_for

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """The flags `batch` and `grid` share: batch count, output folder, the cluster."""
    p.add_argument("--count", type=int, default=1,
                   help="batch count: run each request N times, seeds a batch apart")
    p.add_argument("--out", default=None, help="output folder (default: from settings)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (default when not a terminal)")
    add_ray_flags(p)
    p.add_argument("--shared-out", default=None, metavar="DIR",
                   help="with --ray: actors write straight into DIR (shared storage) and "
                        "this machine only indexes")


def add_ray_flags(p: argparse.ArgumentParser) -> None:
    """--ray and the actors' sizes (batch, grid, and `explore walk`)."""
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: auto (the one `ray start` runs here), "
                        "local (start one in this process) or HOST:PORT")
    p.add_argument("--actors", type=int, default=None,
                   help="Ray actors (default: one per GPU, else one per --cpus-per-actor)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0,
                   help="CPUs each Ray actor reserves (default 1)")
    p.add_argument("--gpus-per-actor", type=float, default=None,
                   help="GPUs each Ray actor reserves (default 1 when the cluster has GPUs; "
                        "0.5 puts two actors on a GPU)")
    p.set_defaults(shared_out=None)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run a request file (one recipe per line), resumably")
    p.add_argument("file", help="a .jsonl file: one recipe (as `studio info` prints) per line")
    add_cluster_flags(p)
    p.set_defaults(handler=run)


class ProgressBar:
    """`[#####.....] 12/40  30%  2.1 s/job  ETA 58 s` on stderr, redrawn in place."""

    def __init__(self, enabled: bool, width: int = 24) -> None:
        self.enabled = enabled
        self.width = width

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(self.width * done / total)
        rate = elapsed / done if done else 0.0
        eta = f"  ETA {rate * (total - done):.0f} s" if done and done < total else ""
        per = f"  {rate:.1f} s/job" if done else ""
        print(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
              f"{100 * done // total:3d}%{per}{eta}   ", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


@contextmanager
def cancel_on_sigint() -> Iterator[threading.Event]:
    """The first Ctrl+C asks the batch to stop cleanly; a second one interrupts."""
    cancel = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None

    def first(*_args: Any) -> None:
        cancel.set()
        print("\nstudio: stopping (Ctrl+C again to interrupt)…", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if main:
        signal.signal(signal.SIGINT, first)
    try:
        yield cancel
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def make_pool(args: argparse.Namespace, settings: Any) -> tuple[Any, Callable[[], None]]:
    """The local pool, or a Ray pool when --ray is given; and what to call when done."""
    if args.ray is None:
        if args.shared_out:
            from studio.cli import UsageError

            raise UsageError("--shared-out needs --ray.")
        from studio.engines.batch import LocalPool

        return LocalPool(settings), lambda: None
    try:
        from studio.cluster import ray_pool
    except ImportError:
        from studio.cli import UsageError

        raise UsageError("Ray is not installed; install it with "
                         "pip install 'studio[cluster]'.") from None
    started = ray_pool.connect(args.ray)
    pool = ray_pool.RayPool(settings, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                            gpus_per_actor=args.gpus_per_actor, shared_out=args.shared_out)

    def done() -> None:
        pool.close()
        if started:
            ray_pool.ray.shutdown()

    return pool, done


def open_history() -> Any:
    from studio.core.history import History

    return History.open_default()


def finish(summary: Any, quiet: bool) -> int:
    """Print the summary on stderr (always: it says what failed); the exit status."""
    lines = summary.lines()
    print(lines[0], file=sys.stderr)  # the malformed lines were reported before the run
    for where, message in summary.failed:
        print(f"studio: {where}: {message}", file=sys.stderr)
    if summary.cancelled:
        return EXIT_CANCELLED
    return EXIT_OK if summary.ok else EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    from studio.engines.batch import BatchLock, read_request_file

    jobs, bad = read_request_file(args.file, args.count)  # bad input fails before any import
    with BatchLock(args.file):  # a second run of the same file: one sentence, exit 2
        return run_locked(args, jobs, bad)


def run_locked(args: argparse.Namespace, jobs: list[Any], bad: list[Any]) -> int:
    """The batch itself, while this process holds the file's lock."""
    from studio.engines.batch import Ledger, drive

    settings = settings_for(args)
    quiet = args.quiet or not sys.stderr.isatty()
    for line in bad:
        print(f"studio: {line}", file=sys.stderr)
    ledger = Ledger.beside(args.file)
    t0 = time.perf_counter()
    pool, done = make_pool(args, settings) if jobs else (None, lambda: None)
    history = open_history()
    try:
        with cancel_on_sigint() as cancel:
            if pool is None:
                from studio.engines.batch import Summary

                summary = Summary()
            else:
                summary = drive(jobs, pool, Path(settings.output_path), history, ledger=ledger,
                                cancel=cancel, on_progress=ProgressBar(not quiet))
    finally:
        history.close()
        done()
    summary.bad_lines = bad
    summary.seconds = time.perf_counter() - t0
    for path in summary.paths:
        print(path)
    return finish(summary, quiet)


def walk_on_cluster(request: Any, args: argparse.Namespace) -> int:
    """`studio explore walk ... --ray`: every frame on the cluster's actors, the walk
    saved here (GIF and MP4, its recipe) once every frame is back; prints its paths."""
    from studio.engines.batch import run_walk

    settings = settings_for(args)
    quiet = args.quiet or not sys.stderr.isatty()
    pool, done = make_pool(args, settings)
    history = open_history()
    try:
        with cancel_on_sigint() as cancel:
            summary = run_walk(request, pool, Path(settings.output_path), history,
                               cancel=cancel, on_progress=ProgressBar(not quiet))
    finally:
        history.close()
        done()
    if summary.cancelled:
        print("studio: cancelled: the walk was not written.", file=sys.stderr)
        return EXIT_CANCELLED
    if summary.failed:
        where, message = summary.failed[0]
        print(f"studio: {where}: {message} The walk was not written.", file=sys.stderr)
        return EXIT_FAILED
    for path in summary.paths:
        print(path)
    return EXIT_OK
