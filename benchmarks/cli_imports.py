"""`studio --help` and `studio info FILE`: wall time, and whether they import numpy, Qt,
a panel or torch (read from `python -X importtime`). The window's start-up is
benchmarks/startup.py's.

Each figure is a fresh process (medians of --runs), so nothing is warm but the OS page
cache; `info` reads a PNG Studio itself wrote, with its recipe.

    .venv/bin/python benchmarks/cli_imports.py [--runs 5]

Aim (issue 18): neither imports numpy or any panel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, machine_info, machine_line, median


def cli(args: list[str], env: dict[str, str]) -> tuple[float, set[str]]:
    """Wall time of `studio ARGS` and the modules of interest it imported (-X importtime)."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "studio", *args],
                          capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - t0
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    found = {n for n in names if n == "numpy" or n.startswith(("studio.ui", "PySide6", "torch"))}
    return seconds, found


def sample_png(home: Path) -> Path:
    """An output with its recipe, written by Studio itself (in a child: this process stays
    free of numpy)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import numpy as np; "
            "from pathlib import Path; from studio.core.requests import ImageRequest; "
            "from studio.core.results import Result; from studio.core.outputs import save_result; "
            "r = ImageRequest(model='m', prompt='a fox', seed=3).resolved(); "
            "print(save_result(Result(request=r, modality='image', "
            f"images=[np.zeros((64, 64, 3), np.uint8)], info={{}}), Path({str(home)!r}))[0])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="studio-startup-"))
    env = {**os.environ, "STUDIO_HOME": str(home)}
    print(machine_line(), flush=True)
    png = sample_png(home / "out")
    out: dict[str, object] = {"benchmark": "cli_imports", "runs": args.runs}
    for name, cmd in (("help", ["--help"]), ("info", ["info", str(png)])):
        runs = [cli(cmd, env) for _ in range(args.runs)]
        seconds = median([r[0] for r in runs])
        heavy = sorted(set().union(*(r[1] for r in runs)))
        print(f"studio {' '.join(cmd[:1])}: {seconds:.2f} s; imports numpy/Qt/panels/torch: "
              f"{', '.join(heavy) if heavy else 'none'}")
        out[f"{name}_s"] = round(seconds, 3)
        out[f"{name}_heavy_imports"] = heavy
    print(machine_line())
    print(json.dumps({**out, **machine_info()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
