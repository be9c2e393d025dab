"""Soak: N mixed jobs with random cancels through the real job queue and worker thread.

Faces and eyes GAN batches, explorer points and short walks, composer pieces and a tiny
text model (built here from configs), in random order, a few in flight at a time; some
jobs are cancelled at a random moment (queued or running). At the end it prints crashes
(jobs that failed), stuck jobs (no end signal within --stuck-after seconds), RSS growth
after warm-up, and checks the rule for outputs: every complete file indexed, no
temporary file left, no name used twice.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak.py            # 500 jobs
    .venv/bin/python benchmarks/soak.py --jobs 40 --cancel 0.3 --seed 1

Not a pass/fail test, but it exits 1 when it saw a crash, a stuck job or a lost file.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

print = functools.partial(print, flush=True)  # progress shows as it happens
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def make_requests(rng: random.Random, text_model: Path):
    """One random request of each kind, as a list of (kind, factory)."""
    from studio.core.explore import ExploreRequest
    from studio.core.requests import ImageRequest, MusicRequest, TextRequest

    def faces():
        return ImageRequest(model="builtin:faces", prompt="soak", seed=rng.randrange(10**6),
                            width=64, height=64, batch_size=rng.randint(1, 4))

    def eyes():
        return ImageRequest(model="builtin:eyes", prompt="soak", seed=rng.randrange(10**6),
                            width=128, height=128, batch_size=rng.randint(1, 2))

    def point():
        return ExploreRequest(model="builtin:faces", anchors=(rng.randrange(999),
                                                              rng.randrange(999)),
                              mode="point", pad_x=rng.random(), pad_y=rng.random(),
                              width=64, height=64)

    def walk():
        return ExploreRequest(model="builtin:faces", anchors=(rng.randrange(999),
                                                              rng.randrange(999)),
                              mode="walk", frames=rng.randint(2, 4), width=64, height=64)

    def music():
        return MusicRequest(model="builtin:composer", prompt="a lively jig",
                            seed=rng.randrange(10**6), duration=rng.choice((1.0, 2.0)))

    def text():
        return TextRequest(model=str(text_model), prompt="Once upon a time",
                           seed=rng.randrange(10**6), max_new_tokens=rng.randint(2, 12))

    return [("faces", faces), ("eyes", eyes), ("point", point), ("walk", walk),
            ("music", music), ("text", text)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--cancel", type=float, default=0.2, help="share of jobs cancelled")
    ap.add_argument("--in-flight", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stuck-after", type=float, default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the outputs folder")
    args = ap.parse_args()

    from studio.core.environment import configure_logging, setup_environment

    setup_environment()
    configure_logging()
    from PySide6.QtCore import QCoreApplication, QTimer

    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.runtime.worker import JobQueue
    from tests.engines.tiny_text import build_tiny_gpt2
    from tests.faults.inject import NUMBERED, output_files, temp_files

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="studio-soak-"))
    os.environ["STUDIO_HOME"] = str(work / "home")
    text_model = build_tiny_gpt2(work / "models")
    out = work / "outputs"
    history = History(work / "home" / "history.sqlite")
    queue = JobQueue(Settings(output_dir=str(out), device="cpu"), history)
    kinds = make_requests(rng, text_model)

    submitted: dict[int, tuple[str, float]] = {}  # job id → (kind, when)
    ended: dict[int, str] = {}  # job id → "done" | "failed" | "cancelled"
    failures: list[tuple[str, str]] = []
    rss: list[float] = []
    started = time.monotonic()

    def end(job_id: int, state: str, message: str = "") -> None:
        if job_id in ended or job_id not in submitted:
            return
        ended[job_id] = state
        if state == "failed":
            failures.append((submitted[job_id][0], message))
        n = len(ended)
        if n == max(1, args.jobs // 10):
            rss.append(rss_mb())  # after warm-up: every model loaded once
        if n % max(1, args.jobs // 10) == 0:
            print(f"  {n}/{args.jobs} jobs ended, RSS {rss_mb():.0f} MB")
        top_up()

    queue.job_finished.connect(lambda i, _r, _p: end(i, "done"))
    queue.job_failed.connect(lambda i, m: end(i, "failed", m))
    queue.job_cancelled.connect(lambda i: end(i, "cancelled"))

    def top_up() -> None:
        while len(submitted) < args.jobs and len(submitted) - len(ended) < args.in_flight:
            kind, make = rng.choice(kinds)
            job_id = queue.submit(make())
            submitted[job_id] = (kind, time.monotonic())
            if rng.random() < args.cancel:
                QTimer.singleShot(rng.randint(0, 300), lambda i=job_id: queue.cancel(i))
        if len(ended) >= args.jobs:
            app.quit()

    def watchdog() -> None:
        now = time.monotonic()
        if any(now - t > args.stuck_after for i, (_k, t) in submitted.items() if i not in ended):
            app.quit()

    dog = QTimer()
    dog.timeout.connect(watchdog)
    dog.start(1000)
    print(f"soak: {args.jobs} jobs, cancel {args.cancel:.0%}, in {work}")
    QTimer.singleShot(0, top_up)
    app.exec()
    queue.shutdown()
    queue._thread.wait(20000)
    rss_end = rss_mb()

    stuck = [(submitted[i][0], i) for i in submitted if i not in ended]
    states = Counter(ended.values())
    files = output_files(out)
    indexed = {str(item.path) for item in history.recent(limit=10**6)}
    unindexed = [p for p in files if str(p.resolve()) not in indexed]
    temps = temp_files(out)
    twice = 0
    for day in {p.parent for p in files}:
        numbers = Counter(NUMBERED.match(p.stem).group(1)  # type: ignore[union-attr]
                          for p in day.iterdir() if p.is_file() and NUMBERED.match(p.name)
                          and p.suffix in (".png", ".gif", ".wav", ".md"))
        twice += sum(1 for k in numbers.values() if k > 1)
    history.close()

    print(f"\n{len(ended)} of {args.jobs} jobs ended in {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    print(f"crashes (failed jobs): {len(failures)}")
    for kind, message in failures[:10]:
        print(f"  {kind}: {message}")
    print(f"stuck jobs: {len(stuck)}" + (f" {stuck[:10]}" if stuck else ""))
    growth = rss_end - rss[0] if rss else 0.0
    print(f"RSS: {rss[0] if rss else 0:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
          f"({growth:+.0f} MB)")
    print(f"outputs: {len(files)} files, {len(unindexed)} not indexed, {len(temps)} temp "
          f"files left, {twice} numbers used twice")
    bad = failures or stuck or unindexed or temps or twice
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
