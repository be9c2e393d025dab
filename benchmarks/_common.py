"""What every benchmark shares: the machine's load beside its figures, paired runs and
their medians, and running one job through the real worker timed from the GUI thread.

A figure measured on a busy machine is not the same figure: each benchmark prints
`machine_line()` next to its numbers, alternates the sides it compares (A B, B A, ...) so
both see the same load, and reports medians. Not a test helper: plain stdlib + the app.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

T = TypeVar("T")


def load_average() -> float:
    """The 1-minute load average (0.0 where the system does not tell)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def machine_line() -> str:
    """One line that says how busy the machine was: print it beside every figure."""
    cpus = os.cpu_count() or 1
    load = load_average()
    busy = load / cpus
    verdict = "quiet" if busy < 0.5 else "busy" if busy < 1.5 else "overloaded: figures are noisy"
    return f"machine: {cpus} CPUs, load average {load:.1f} ({verdict})"


def machine_info() -> dict[str, Any]:
    """The same, for a benchmark's JSON line."""
    return {"cpus": os.cpu_count() or 1, "load_average": round(load_average(), 2)}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def paired(runs: int, sides: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every side `runs` times, alternating the order each round (A B, B A, ...) so
    that a change in the machine's load falls on all of them alike."""
    names = list(sides)
    out: dict[str, list[T]] = {name: [] for name in names}
    for i in range(runs):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(sides[name]())
    return out


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-pair a/b, whose median says more than the ratio of two medians under load."""
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t


class WorkerRun:
    """One job through a real JobQueue, timed from the GUI thread as a panel sees it.

    `box` holds t0 (submit), first (first preview of `preview_kind`, if any), end
    (job_finished), result, the number of previews and, for audio, how many seconds the
    first chunk held. Used by the text, music and image benchmarks alike.
    """

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, request: Any, *, preview_kind: str | None = None,
                 timeout_s: float = 3600, save: bool = False) -> dict[str, Any]:
        from PySide6.QtCore import QEventLoop, QTimer

        box: dict[str, Any] = {"previews": 0}
        loop = QEventLoop()

        def preview(job_id: int, p: Any) -> None:
            if job_id != box.get("id") or (preview_kind and p.kind != preview_kind):
                return
            box["previews"] += 1
            if "first" not in box:
                box["first"] = time.perf_counter()
                if p.kind == "audio":
                    box["first_seconds"] = p.data.shape[-1] / p.sample_rate

        def finished(job_id: int, result: Any, _paths: list) -> None:
            if job_id == box.get("id"):
                box["end"], box["result"] = time.perf_counter(), result
                loop.quit()

        def failed(job_id: int, message: str) -> None:
            if job_id == box.get("id"):
                box["error"] = message
                loop.quit()

        queue = self.queue
        queue.job_preview.connect(preview)
        queue.job_finished.connect(finished)
        queue.job_failed.connect(failed)
        try:
            box["t0"] = time.perf_counter()
            box["id"] = queue.submit(request, save=save)
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        finally:
            queue.job_preview.disconnect(preview)
            queue.job_finished.disconnect(finished)
            queue.job_failed.disconnect(failed)
        if "result" not in box:
            raise SystemExit(f"worker job failed: {box.get('error', 'timed out')}")
        box["seconds"] = box["end"] - box["t0"]
        box["to_first"] = box.get("first", box["end"]) - box["t0"]
        return box

    def engine(self, model: str) -> Any:
        """The engine the worker loaded for `model` (its cache lives on the engine thread;
        read only while no job runs)."""
        cache = self.queue.worker.runner.cache
        return next(e for s, e in cache._engines.items() if s.model == model)


# ------------------------------------------------------------------ the tiny SD benchmarks


def add_tiny_sd_args(parser: Any, *, runs_help: str = "measured runs per side") -> None:
    """The flags the image benchmarks share (a tiny SD-shaped pipeline built from configs)."""
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=512,
                        help="picture side (latents are size/8)")
    parser.add_argument("--block", type=int, default=32,
                        help="UNet width (channels of level 1)")
    parser.add_argument("--runs", type=int, default=3, help=runs_help)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=1234)


def tiny_sd_setup(args: Any, prefix: str) -> tuple[Path, Path]:
    """(scratch folder, pipeline folder): the tiny SD pipeline the image benchmarks time,
    saved to disk so that the engine loads it with its own loader, in a private Studio home
    with no models folder (no TAESD: previews are the linear map)."""
    import tempfile

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from tests.tiny import build_tiny_sd

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["STUDIO_HOME"] = str(tmp / "home")
    os.environ["STUDIO_MODELS"] = str(tmp / "no-models")
    return tmp, build_tiny_sd(tmp, sample_size=args.size // 8, block=args.block)
