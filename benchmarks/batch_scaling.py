"""Batch throughput: the plain CLI loop vs `studio batch` locally vs 1 and 2 Ray actors.

The same N requests (builtin:faces, 64², distinct seeds) run four ways in one run:

- the plain CLI loop: one `python -m studio gen image` process per request (what a shell
  script does: the interpreter, torch and the model load every time); measured on a few
  requests and reported per job;
- `studio batch` in this process (engines.batch.LocalPool: one Runner, the model loads once);
- a local Ray cluster (127.0.0.1) with 1 actor and with 2 actors (studio.cluster.RayPool),
  actor start and model load included, results written and indexed by the driver.

The scheduler's overhead per job is the wall time the driver spends per job beyond the
generation the actors report (dispatch, transfer of the result, atomic write, index),
from the 1-actor run. The machine's load average is printed beside the numbers.

    .venv/bin/python benchmarks/batch_scaling.py --jobs 16 --cli-jobs 3 --warm-jobs 60

Cold runs include starting the actors and loading the model once per actor; warm runs
are a second file on the same pool (the models already loaded), the steady state of a
long batch.

Not a pass/fail test; needs Ray (`pip install 'studio[cluster]'`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

print = functools.partial(print, flush=True)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def request_file(folder: Path, n: int, first_seed: int) -> Path:
    path = folder / f"jobs-{first_seed}.jsonl"
    lines = [json.dumps({"kind": "image", "model": "builtin:faces", "width": 64, "height": 64,
                         "seed": first_seed + i}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_loop(out: Path, n: int) -> float:
    """Seconds per job of one `studio gen image` process per request."""
    t0 = time.perf_counter()
    for i in range(n):
        subprocess.run([sys.executable, "-m", "studio", "gen", "image", "--model",
                        "builtin:faces", "--width", "64", "--height", "64", "--seed",
                        str(900 + i), "--out", str(out)], check=True, cwd=REPO,
                       capture_output=True)
    return (time.perf_counter() - t0) / n


def run_pool(pool, file: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, generation seconds the workers report, jobs done)."""
    from studio.core.history import History
    from studio.engines import batch

    jobs, _ = batch.read_request_file(file)
    seconds: list[float] = []
    inner = pool.run

    def timed(todo, cancel):
        for outcome in inner(todo, cancel):
            seconds.append(outcome.seconds)
            yield outcome

    pool.run = timed
    t0 = time.perf_counter()
    with History.open_default() as history:
        summary = batch.drive(jobs, pool, out, history)
    wall = time.perf_counter() - t0
    assert summary.ok and summary.done == len(jobs), summary.lines()
    return wall, sum(seconds), summary.done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--cli-jobs", type=int, default=3)
    parser.add_argument("--warm-jobs", type=int, default=60)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ["STUDIO_HOME"] = str(home)
    out = home / "out"
    n = args.jobs
    print(f"{n} jobs of builtin:faces 64², {load()}")

    per_cli = cli_loop(out / "cli", args.cli_jobs)
    print(f"plain CLI loop ({args.cli_jobs} processes)      {per_cli * 1000:8.0f} ms/job   "
          f"{1 / per_cli:6.2f} jobs/s   {load()}")

    from studio.core.settings import Settings
    from studio.engines.batch import LocalPool

    settings = Settings(output_dir=str(out / "local"))
    local = LocalPool(settings)
    wall, gen, done = run_pool(local, request_file(home, n, 1000), out / "local")
    print(f"studio batch, local (cold: load)      {wall / done * 1000:8.0f} ms/job   "
          f"{done / wall:6.2f} jobs/s   {load()}")
    wall, gen, done = run_pool(local, request_file(home, args.warm_jobs, 1500), out / "local")
    local_rate = done / wall
    print(f"studio batch, local (warm)            {wall / done * 1000:8.0f} ms/job   "
          f"{local_rate:6.2f} jobs/s   x{local_rate * per_cli:.1f} vs CLI loop   "
          f"driver overhead {(wall - gen) / done * 1000:.1f} ms/job   {load()}")

    import ray

    from studio.cluster import ray_pool

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env=ray_pool.local_runtime_env(), log_to_driver=False)
    print(f"ray.init (local, 2 CPUs)              {time.perf_counter() - t0:8.1f} s")
    try:
        for actors, first in ((1, 2000), (2, 3000)):
            pool = ray_pool.RayPool(Settings(output_dir=str(out / f"ray{actors}")),
                                    actors=actors)
            wall, gen, done = run_pool(pool, request_file(home, n, first), out / f"ray{actors}")
            # steady state: a second file on the warm actors (models already loaded)
            warm, warm_gen, warm_done = run_pool(pool,
                                                 request_file(home, args.warm_jobs, first + 500),
                                                 out / f"ray{actors}")
            pool.close()
            rate = warm_done / warm
            overhead = (warm - warm_gen / actors) / warm_done * 1000
            print(f"ray, {actors} actor{'s' if actors > 1 else ' '} (cold: start + load)     "
                  f"{wall / done * 1000:8.0f} ms/job   {done / wall:6.2f} jobs/s   {load()}")
            print(f"ray, {actors} actor{'s' if actors > 1 else ' '} (warm)                   "
                  f"{warm / warm_done * 1000:8.0f} ms/job   {rate:6.2f} jobs/s   "
                  f"x{rate * per_cli:.1f} vs CLI loop   x{rate / local_rate:.2f} vs local   "
                  f"scheduler overhead {overhead:.1f} ms/job   {load()}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
