"""Start-up: process start → Studio's window shown, against a bare PySide6 window.

Each run is a fresh `python` subprocess that exits as soon as its window has been painted
once; the time is taken from just before the subprocess is started to the moment it
reports the paint (wall clock, so both sides share one clock). Studio's child does what
`studio` with no arguments does (application, settings, history, context, window) in a
private Studio home; the bare child shows an empty QMainWindow. The two alternate, run by
run, so a change in machine load hits both; the medians and their ratio are printed with
the load average.

    python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SHOWN = r"""
import json, os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer


class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            report()
        return False


def report():
    print(json.dumps({"shown": time.time(), **PHASES}), flush=True)
    os._exit(0)  # the benchmark ends at the first paint, not at shutdown


"""

BARE = _SHOWN + r"""
PHASES = {}
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
window = QMainWindow()
window.setWindowTitle("bare")
window.resize(1280, 820)
window.installEventFilter(FirstPaint(window))
window.show()
QTimer.singleShot(2000, report)  # a platform that never paints still ends the run
app.exec()
"""

STUDIO = _SHOWN + r"""
PHASES = {}
t = time.time()
from studio.ui.app import make_application
app = make_application([])
from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.context import AppContext
from studio.ui.main_window import MainWindow
PHASES["imported"] = time.time() - t
t = time.time()
ctx = AppContext(Settings.load(), History.open_default())
window = MainWindow(ctx)
PHASES["built"] = time.time() - t
window.installEventFilter(FirstPaint(window))
window.show()
QTimer.singleShot(2000, report)
app.exec()
"""


def run_once(code: str, env: dict[str, str]) -> dict[str, float]:
    """Seconds from starting the child to its first paint (and its own phases)."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"the child did not report (exit {out.returncode}):\n"
                         f"{out.stderr[-2000:]}")
    report = json.loads(lines[-1])
    return {"total": report.pop("shown") - start, **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="paired runs (median taken)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-startup-") as home:
        env = dict(os.environ, STUDIO_HOME=home)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        run_once(STUDIO, env)  # warm the file cache (and create the private home)
        run_once(BARE, env)
        load_before = os.getloadavg()
        bare: list[float] = []
        studio: list[dict[str, float]] = []
        for _ in range(max(1, args.runs)):
            bare.append(run_once(BARE, env)["total"])
            studio.append(run_once(STUDIO, env))
        load_after = os.getloadavg()
    b = statistics.median(bare)
    s = statistics.median(r["total"] for r in studio)
    imported = statistics.median(r["imported"] for r in studio)
    built = statistics.median(r["built"] for r in studio)
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after ({args.runs} paired runs, medians)")
    print(f"bare PySide6 window   {b:6.3f} s   (min {min(bare):.3f}, max {max(bare):.3f})")
    print(f"Studio window         {s:6.3f} s   (min {min(r['total'] for r in studio):.3f}, "
          f"max {max(r['total'] for r in studio):.3f})")
    print(f"  imports {imported:.3f} s, context + window built {built:.3f} s")
    print(f"ratio Studio / bare   {s / b:6.2f}×   (aim ≤ 2×)")


if __name__ == "__main__":
    main()
