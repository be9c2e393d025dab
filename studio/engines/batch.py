"""Many requests as one batch: request files, resume, batch count, and the driver loop.

A request file (`.jsonl`) holds one recipe per line, in the JSON `studio info` prints
(`{"source": …, "request": {…}}`) or a bare request (`{"kind": "image", …}`); any mix of
image, music and text. Blank lines and lines starting with `#` are skipped.

Resume is keyed by the recipe: each job's key is a hash of its *resolved* request. A seed
of -1 is resolved deterministically from the line number and the line's own text
(`line_seed`), so the same file gives the same keys on every run; editing a line gives it
new ones. After a job's files are saved and indexed, its key and paths are appended to a
ledger beside the file (`FILE.jsonl.done`); a later run skips every job whose key is in the
ledger and whose files all still exist. A job killed before its ledger line is written
runs again (its files were never linked into place, or are indexed twice at worst under
new names: names never collide).

The driver (`drive`) takes jobs from any pool — `LocalPool` here (one Runner, one model
cache, in this process) or the Ray pool of `studio.cluster` — and writes, indexes and
records every outcome itself, so outputs are written in one place only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from studio.core.errors import Cancelled, RecipeError, RequestError, StudioError
from studio.core.metadata import record_request
from studio.core.outputs import index_outputs, save_and_index
from studio.core.requests import Request
from studio.core.results import Result
from studio.core.seeds import MAX_SEED
from studio.core.settings import Settings
from studio.engines.base import Events

if TYPE_CHECKING:
    from studio.core.explore import ExploreRequest
    from studio.core.grid import GridPlan
    from studio.core.history import History
    from studio.engines.runner import Runner

log = logging.getLogger(__name__)

LEDGER_SUFFIX = ".done"
LOCK_SUFFIX = ".lock"


# ─── jobs and keys ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Job:
    """One request to run, its resume key and where it came from ("line 3")."""

    key: str
    request: Request
    where: str
    tag: Any = None  # the caller's own (a grid cell's position)


def request_key(request: Request) -> str:
    """A stable hash of a resolved request: the same recipe always has the same key."""
    text = json.dumps(request.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def line_seed(line: int, text: str, name: str = "seed") -> int:
    """The seed a -1 becomes on `line`: drawn from the line number and its text, so a
    rerun of the same file resolves it to the same seed."""
    digest = hashlib.sha256(f"{line}\n{name}\n{text.strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SEED + 1)


def resolve_for_line(request: Request, line: int, text: str) -> Request:
    """`request` with every random seed it would draw fixed from the line (see line_seed)."""
    drawn = request.resolved()  # which seeds a run would draw, and only those
    changes = {f.name: line_seed(line, text, f.name) for f in dataclasses.fields(request)
               if f.name.endswith("seed") and getattr(request, f.name) == -1
               and getattr(drawn, f.name) != -1}
    return request.replace(**changes) if changes else request


def copies(request: Request, count: int) -> list[Request]:
    """Batch count: `count` requests, seeds one batch apart (A1111's seed + n * batch size)."""
    step = max(1, int(getattr(request, "batch_size", 1) or 1))
    return [request if i == 0 else request.replace(seed=(request.seed + i * step) % (MAX_SEED + 1))
            for i in range(count)]


def parse_line(text: str) -> Request:
    """A request from one line: a `studio info` recipe or a bare request dict."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"not JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(data, dict):
        raise RequestError("not a recipe (a JSON object with a request).")
    request = record_request(data)
    if request is None and isinstance(data.get("request"), dict):  # info's "request" lacks kind
        request = {"kind": data.get("modality", ""), **data["request"]}
    if request is None:
        raise RequestError("not a recipe: it has no request with a kind and a model.")
    request = {k: v for k, v in request.items() if k != "notes"}
    try:
        made = Request.from_dict(request)
        made.validate()
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc).rstrip(".") + ".") from None
    return made


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def read_request_file(path: str | Path, count: int = 1) -> tuple[list[Job], list[BadLine]]:
    """The jobs of a request file (`count` of each line) and its malformed lines."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RequestError(f"No such request file: {path}.") from None
    except UnicodeDecodeError:
        raise RequestError(f"{path.name} is not UTF-8 text.") from None
    except OSError as exc:
        raise RequestError(f"Could not read {path}: {exc.strerror or exc}.") from None
    if not isinstance(count, int) or not 1 <= count <= 1000:
        raise RequestError("The batch count must be a whole number from 1 to 1000.")
    jobs: list[Job] = []
    bad: list[BadLine] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            request = resolve_for_line(parse_line(text), number, text)
        except (RequestError, RecipeError) as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        for i, one in enumerate(copies(request, count)):
            where = f"line {number}" + (f" #{i + 1}" if count > 1 else "")
            jobs.append(Job(request_key(one), one, where))
    return jobs, bad


# ─── the ledger ───────────────────────────────────────────────────────────────────────


class Ledger:
    """Which jobs of a request file are done: key → the files they wrote (append-only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done: dict[str, list[str]] = {}
        if self.path.is_file():
            for text in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(text)
                    self.done[str(entry["key"])] = [str(p) for p in entry["paths"]]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that job runs again

    @classmethod
    def beside(cls, request_file: str | Path) -> Ledger:
        p = Path(request_file)
        return cls(p.with_name(p.name + LEDGER_SUFFIX))

    def finished(self, key: str) -> bool:
        paths = self.done.get(key)
        return bool(paths) and all(Path(p).is_file() for p in paths)  # type: ignore[union-attr]

    def record(self, job: Job, paths: Sequence[Path]) -> None:
        line = json.dumps({"key": job.key, "where": job.where, "paths": [str(p) for p in paths]},
                          ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[job.key] = [str(p) for p in paths]


class BatchLock:
    """One run of a request file at a time: an OS lock on `FILE.jsonl.lock`.

    The lock is the kernel's (`fcntl.flock`, `msvcrt.locking` on Windows), so a run that
    was killed holds nothing and the next run simply takes the file over; the file keeps
    the holder's pid only for the message. `acquire` raises `RequestError` with one
    sentence when another run holds it.
    """

    def __init__(self, request_file: str | Path) -> None:
        p = Path(request_file)
        self.path = p.with_name(p.name + LOCK_SUFFIX)
        self.name = p.name
        self._fd: int | None = None

    def acquire(self) -> BatchLock:
        for _attempt in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise RequestError(f"Could not create {self.path}: "
                                   f"{exc.strerror or exc}.") from None
            try:
                _lock_fd(fd)
            except OSError:
                try:  # the holder's pid, for the message (Windows locks the byte itself)
                    os.lseek(fd, 0, os.SEEK_SET)
                    holder = os.read(fd, 32).decode("ascii", "replace").strip()
                except OSError:
                    holder = ""
                os.close(fd)
                who = f" (process {holder})" if holder.isdigit() else ""
                raise RequestError(f"{self.name} is already running{who}; wait for it to "
                                   "finish or stop it first.") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:  # not a file the previous holder unlinked as we opened it
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode("ascii"))
                self._fd = fd
                return self
            _unlock_fd(fd)
            os.close(fd)
        raise RequestError(f"Could not lock {self.path.name}; try again.")

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink()  # before unlocking: a waiting run then makes a fresh file
        except OSError:
            pass
        _unlock_fd(fd)
        os.close(fd)

    def __enter__(self) -> BatchLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _lock_fd(fd: int) -> None:
    """Take an exclusive lock on `fd` without waiting; OSError when another holds it."""
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_fd(fd: int) -> None:
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


# ─── pools and the driver ─────────────────────────────────────────────────────────────


@dataclass
class Outcome:
    """What a pool hands back for one job: a result (to save), or files it already wrote
    (`--shared-out`), or the sentence saying why it failed."""

    job: Job
    result: Result | None = None
    paths: list[Path] | None = None
    error: str = ""
    seconds: float = 0.0
    worker: str = ""


class Pool(Protocol):
    def run(self, jobs: Sequence[Job], cancel: threading.Event) -> Iterator[Outcome]: ...


class LocalPool:
    """Runs jobs one after another in this process with one Runner (models load once).

    The GUI worker passes its own `runner` (its model cache) and an `events` factory (its
    progress and previews for each job); the CLI takes the defaults.
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 events: Callable[[Job, threading.Event], Events] | None = None) -> None:
        from studio.engines.runner import Runner

        self.runner = runner or Runner(settings)
        self.events = events or (lambda _job, cancel: Events(cancel))

    def run(self, jobs: Sequence[Job], cancel: threading.Event) -> Iterator[Outcome]:
        from studio.engines.runner import failure_message

        for job in jobs:
            if cancel.is_set():
                raise Cancelled()
            t0 = time.perf_counter()
            try:
                result = self.runner.generate(job.request, self.events(job, cancel))
            except Cancelled:
                raise
            except Exception as exc:
                log.debug("%s failed", job.where, exc_info=True)
                yield Outcome(job, error=failure_message(exc), seconds=time.perf_counter() - t0)
                continue
            yield Outcome(job, result, seconds=time.perf_counter() - t0, worker="local")


@dataclass
class Summary:
    """How a batch went."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    results: dict[str, tuple[Result | None, list[Path]]] = field(default_factory=dict)
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.bad_lines and not self.cancelled

    def lines(self) -> list[str]:
        """The summary as a person reads it at the end of a run."""
        out = [f"{self.done} done, {self.skipped} skipped (already done), "
               f"{len(self.failed)} failed, {len(self.bad_lines)} malformed, "
               f"{len(self.paths)} files in {self.seconds:.1f}s"
               + (" (cancelled: run it again to continue)" if self.cancelled else "")]
        out += [str(b) for b in self.bad_lines]
        out += [f"{where}: {message}" for where, message in self.failed]
        return out


def _index(paths: Iterable[Path], result: Result, history: History | None) -> list[Path]:
    """Index files a worker wrote to shared storage (`--shared-out`)."""
    done = [Path(p) for p in paths]
    problem = index_outputs(done, result, history)
    if problem:
        log.warning("%s", problem)
    return done


def drive(jobs: Sequence[Job], pool: Pool, out_dir: Path, history: History | None, *,
          ledger: Ledger | None = None, cancel: threading.Event | None = None,
          on_progress: Callable[[int, int, float], None] | None = None,
          keep_results: bool = False) -> Summary:
    """Run `jobs` on `pool`; save, index and record each outcome here, in the driver.

    Jobs already in the ledger (with their files on disk) are skipped. A failed job is
    reported and the rest run; Cancelled (Ctrl+C) stops and the summary says so.
    """
    cancel = cancel or threading.Event()
    summary = Summary(total=len(jobs))
    t0 = time.perf_counter()
    seen: set[str] = set()
    todo: list[Job] = []
    for job in jobs:
        if (ledger is not None and ledger.finished(job.key)) or job.key in seen:
            summary.skipped += 1
            continue
        seen.add(job.key)
        todo.append(job)
    if on_progress is not None:
        on_progress(0, len(todo), 0.0)
    try:
        for outcome in pool.run(todo, cancel):
            job = outcome.job
            if outcome.error:
                summary.failed.append((job.where, outcome.error))
                if outcome.result is not None and outcome.paths:  # complete files a worker
                    _index(outcome.paths, outcome.result, history)  # wrote before failing
            else:
                try:
                    assert outcome.result is not None
                    if outcome.paths is not None:
                        paths = _index(outcome.paths, outcome.result, history)
                    else:  # every complete file is kept and indexed, even when one fails
                        paths = save_and_index(outcome.result, out_dir, history)
                except StudioError as exc:  # not recorded: a rerun makes the job again
                    summary.failed.append((job.where, str(exc)))
                    continue
                if ledger is not None:
                    ledger.record(job, paths)
                summary.done += 1
                summary.paths.extend(paths)
                if keep_results:
                    summary.results[job.key] = (outcome.result, paths)
            if on_progress is not None:
                on_progress(summary.done + len(summary.failed), len(todo),
                            time.perf_counter() - t0)
    except (Cancelled, KeyboardInterrupt):
        summary.cancelled = True
    summary.seconds = time.perf_counter() - t0
    return summary


# ─── grids ────────────────────────────────────────────────────────────────────────────


@dataclass
class GridRun:
    """A finished plot: the cells' summary and the grid image's files (none for a plot of
    music or text, or when a cell failed)."""

    summary: Summary
    grid_paths: list[Path] = field(default_factory=list)
    note: str = ""
    cell_paths: list[Path] = field(default_factory=list)  # in the plan's order (x fastest)
    grid_image: Any = None  # the labelled grid, (H, W, 3) uint8, when one was made


def grid_jobs(plan: GridPlan) -> list[Job]:
    """One job per cell (batch count copies included), tagged with the cell."""
    return [Job(request_key(c.request), c.request,
                f"cell {c.x + 1},{c.y + 1},{c.z + 1}" + (f" #{c.copy + 1}" if c.copy else ""),
                tag=c) for c in plan.cells]


def run_grid(plan: GridPlan, pool: Pool, out_dir: Path, history: History | None, *,
             cancel: threading.Event | None = None,
             on_progress: Callable[[int, int, float], None] | None = None) -> GridRun:
    """Render every cell (each a normal output with its own recipe), then the labelled grid
    image, saved and indexed with the plot's recipe (`info["grid"]` of its record)."""
    import numpy as np

    from studio.core.grid import render_grid
    from studio.core.results import Result

    jobs = grid_jobs(plan)
    summary = drive(jobs, pool, out_dir, history, cancel=cancel, on_progress=on_progress,
                    keep_results=True)
    run = GridRun(summary)
    for key in dict.fromkeys(job.key for job in jobs):  # a pool finishes in any order
        run.cell_paths.extend(summary.results.get(key, (None, []))[1])
    if summary.cancelled or summary.failed:
        run.note = "The grid image was not made: not every cell finished."
        return run
    images: dict[tuple[int, int, int], Any] = {}
    for job in jobs:
        cell = job.tag
        result = summary.results.get(job.key, (None, []))[0]
        if cell.copy == 0 and result is not None and result.images:
            images[(cell.x, cell.y, cell.z)] = result.images[0]
    if not images:
        run.note = f"No grid image for {plan.base.kind} outputs; the cells are saved."
        return run
    picture = np.asarray(render_grid(plan, images).convert("RGB"))
    run.grid_image = picture
    grid = Result(request=plan.base, modality="image", images=[picture],
                  info={"grid": plan.recipe()})
    run.grid_paths = save_and_index(grid, out_dir, history)
    return run


# ─── a grid as one job of the window's worker ─────────────────────────────────────────


#: the plot's progress is reported in ten-thousandths
PROGRESS_SCALE = 10000


def planned_steps(request: Any) -> int:
    """The denoising steps a request plans (its hires pass included): a cell's weight in
    the plot's progress, so a 30-step cell takes six times the bar of a 5-step one."""
    steps = max(1, int(getattr(request, "steps", 1) or 1))
    if float(getattr(request, "hires_scale", 1.0) or 1.0) > 1.0:
        steps += int(getattr(request, "hires_steps", 0) or 0) or steps
    return steps


def cell_spans(plan: GridPlan) -> dict[str, tuple[int, float, float]]:
    """Each distinct cell's (index, start, end) on the plot's progress bar (0 to 1), in
    the order the cells render, each as wide as its planned steps."""
    requests: dict[str, Any] = {}
    for job in grid_jobs(plan):
        requests.setdefault(job.key, job.request)
    weights = [planned_steps(r) for r in requests.values()]
    whole, start, spans = sum(weights), 0, {}
    for i, (key, weight) in enumerate(zip(requests, weights, strict=True)):
        spans[key] = (i, start / whole, (start + weight) / whole)
        start += weight
    return spans


class CellEvents(Events):
    """One cell's events inside a grid job: its steps become the plot's progress
    ("Cell 3 of 4") over its span of the bar, its previews and status lines go to the
    job's own events, and the job's cancel flag stops it."""

    def __init__(self, outer: Events, index: int, count: int,
                 span: tuple[float, float] | None = None) -> None:
        super().__init__(outer.cancel_flag)
        self.outer = outer
        self.index = index
        self.count = max(1, count)
        self.span = span or (index / self.count, (index + 1) / self.count)

    @property
    def settings(self) -> Any:
        return getattr(self.outer, "settings", None)

    def wants_previews(self) -> bool:
        return self.outer.wants_previews()

    def on_progress(self, progress: Any) -> None:
        total = max(1, progress.total)
        lo, hi = self.span
        done = lo + (hi - lo) * min(progress.step, total) / total
        self.outer.progress(round(done * PROGRESS_SCALE), PROGRESS_SCALE,
                            f"Cell {self.index + 1} of {self.count}")

    def on_preview(self, preview: Any) -> None:
        self.outer.preview(preview)

    def on_status(self, text: str) -> None:
        self.outer.status(text)


def run_grid_job(plan: GridPlan, runner: Runner, events: Events,
                 history: History | None) -> tuple[Result, list[Path]]:
    """A whole plot on the caller's runner (the window's worker: its model cache), as one
    job: every cell saved and indexed with its recipe, then the grid image with the plot's.

    Returns a result whose first image is the grid and the rest the cells (copy 0, in the
    plan's order), and the files: the grid's first, then the cells'. Cancelled when the
    job was; a StudioError naming the first failed cell when one failed (the cells that
    finished stay saved).
    """
    spans = cell_spans(plan)

    def cell_events(job: Job, _cancel: threading.Event) -> Events:
        index, lo, hi = spans[job.key]
        return CellEvents(events, index, len(spans), (lo, hi))

    pool = LocalPool(runner.settings, runner=runner, events=cell_events)
    run = run_grid(plan, pool, Path(runner.settings.output_path), history,
                   cancel=events.cancel_flag)
    summary = run.summary
    if summary.cancelled:
        raise Cancelled()
    if summary.failed:
        where, message = summary.failed[0]
        raise StudioError(f"{len(summary.failed)} of {summary.total} grid cells failed "
                          f"({where}: {message.rstrip('.')}); the cells that finished are "
                          "saved.")
    if run.grid_image is None:
        raise StudioError(run.note or "The grid image was not made.")
    cells, files, seeds = [], [], []
    for job in grid_jobs(plan):
        result, paths = summary.results.get(job.key, (None, []))
        if job.tag.copy == 0 and result is not None and result.images:
            cells.append(result.images[0])
            files.append(str(paths[0]) if paths else "")
            seeds.append(int(getattr(job.request, "seed", -1)))
    info = {"grid": plan.recipe(), "grid_shape": list(plan.shape), "cell_files": files,
            "seeds": [plan.base.seed, *seeds]}
    made_result = Result(request=plan.base, modality="image", images=[run.grid_image, *cells],
                         info=info)
    return made_result, [*run.grid_paths, *run.cell_paths]


# ─── a latent walk fanned out frame by frame (`studio explore walk --ray`) ────────────


def walk_jobs(request: ExploreRequest) -> tuple[ExploreRequest, list[Job]]:
    """The walk with its anchors drawn, and one point job per frame (tagged with its
    index): frame i of a walk is the point at the walk's i-th weights, so any pool can
    render the frames and the driver puts them back in order."""
    resolved = request.resolved()
    jobs = []
    for i, weights in enumerate(resolved.frame_weights()):
        point = resolved.replace(mode="point", weights=tuple(float(w) for w in weights))
        jobs.append(Job(f"{request_key(point)}-{i}", point, f"frame {i + 1}", tag=i))
    return resolved, jobs


def run_walk(request: ExploreRequest, pool: Pool, out_dir: Path, history: History | None, *,
             cancel: threading.Event | None = None,
             on_progress: Callable[[int, int, float], None] | None = None) -> Summary:
    """Render a walk's frames on `pool` (any order), then save the walk here, in the
    driver, as one output with the walk's recipe (GIF and MP4, as a local walk).

    Nothing is written unless every frame came back: a failed frame is in the summary,
    a cancel (Ctrl+C) too.
    """
    cancel = cancel or threading.Event()
    resolved, jobs = walk_jobs(request)
    summary = Summary(total=len(jobs))
    frames: dict[int, Any] = {}
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    if on_progress is not None:
        on_progress(0, len(jobs), 0.0)
    try:
        for outcome in pool.run(jobs, cancel):
            if outcome.error or outcome.result is None or not outcome.result.images:
                summary.failed.append((outcome.job.where, outcome.error or "No frame came back."))
            else:
                frames[outcome.job.tag] = outcome.result.images[0]
                if not info and isinstance(outcome.result.info, dict):  # what a walk says
                    info = {k: v for k, v in outcome.result.info.items()
                            if k not in ("weights", "seeds", "render_ms")}
                summary.done += 1
            if on_progress is not None:
                on_progress(summary.done + len(summary.failed), len(jobs),
                            time.perf_counter() - t0)
    except (Cancelled, KeyboardInterrupt):
        summary.cancelled = True
    summary.seconds = time.perf_counter() - t0
    if summary.cancelled or summary.failed or len(frames) != len(jobs):
        return summary
    walk = Result(resolved, "explore", images=[frames[i] for i in range(len(jobs))],
                  info={**info, "render_ms": round(summary.seconds * 1000, 2),
                        "fps": resolved.fps, "frames": len(jobs)})
    try:
        summary.paths = save_and_index(walk, out_dir, history)
    except StudioError as exc:
        summary.failed.append(("the walk", str(exc)))
    return summary
