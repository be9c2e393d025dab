"""Start-up: process start → Studio's window on screen, against a bare PySide6 window.

Each run is a fresh `python` subprocess; the time is taken from just before it is started
(wall clock, so parent and child share one clock) to two moments the child reports:

- **shown**: the window's first frame complete (the event-loop turn after the top-level
  window's first paint, so its children have been painted too; the bare child exits there);
- **ready**: the Art panel built and painted too, the window fully usable (Studio builds
  its first page on the event-loop turn after the first paint, then sends
  `MainWindow.ready`).

The probe watches the window only, never the whole application: an application-wide
Python event filter makes PySide wrap every object that receives an event, and the first
object of a class it does not export (a main window's layout, an animation timer: any
window with content has them) makes it create every class of QtCore, QtGui and QtWidgets
at once (~170 enum types, 30–40 ms here) — a cost the probe would add to Studio's side
only (the bare window has no content).

Studio's child does what `studio` with no arguments does (`studio.ui.app.start_gui`, then
the event loop) in a private Studio home, with its bytecode cached as an install
has it. `--against PATH` measures a second
checkout (an older commit, say) in the same runs, for a before/after under the same load.
The sides alternate run by run (A B C, C B A, ...) so a change in machine load hits all of
them alike; medians, per-pair ratios and the load average are printed.

`--tabs` then opens every other tab in turn (Music … Lab), each timed from the click to
its page's first paint (each page is built on its first showing).

    python benchmarks/startup.py [--runs 9] [--against /path/to/other/checkout] [--tabs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_line, median, paired, ratios

#: the tabs --tabs opens after the window is ready, in this order (Art is open already)
TAB_KEYS = (("music", "Music"), ("text", "Text"), ("explore", "Explore"),
            ("gallery", "Gallery"), ("models", "Models"), ("lab", "Lab"))

_PAINTS = r"""
import json, os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

PHASES = {}


def report():
    PHASES.setdefault("shown", time.time())
    print(json.dumps({"ready": PHASES.pop("ready_at", time.time()), **PHASES}), flush=True)
    os._exit(0)  # the benchmark ends when the window is usable, not at shutdown


class FirstFrame(QObject):
    # on the window only: its first paint starts the frame, the next turn ends it
    def __init__(self, window, done):
        super().__init__(window)
        self.done = done
        window.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self.done)
        return False


"""

BARE = _PAINTS + r"""
from PySide6.QtWidgets import QMainWindow
app = QApplication([])
window = QMainWindow()
window.setWindowTitle("bare")
window.resize(1280, 820)
FirstFrame(window, report)
window.show()
QTimer.singleShot(5000, report)  # a platform that never paints still ends the run
app.exec()
"""

STUDIO = _PAINTS + r"""
t = time.time()
import studio.ui.app as studio_app
PHASES["imported"] = time.time() - t
t = time.time()
if hasattr(studio_app, "start_gui"):  # what `studio` does before its event loop
    app, ctx = studio_app.start_gui([])
    window = next(w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow")
else:  # a checkout from before start_gui: what its run_gui did
    from studio.core import paths
    from studio.core.environment import configure_logging, setup_environment
    setup_environment()
    configure_logging(log_file=paths.studio_home() / "studio.log")
    app = studio_app.make_application([])
    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.runtime.context import AppContext
    from studio.ui.main_window import MainWindow
    ctx = AppContext(Settings.load(), History.open_default())
    window = MainWindow(ctx)
    window.show()
PHASES["built"] = time.time() - t


TABS = [t for t in os.environ.get("STARTUP_TABS", "").split(",") if t]


def open_tabs():
    # --tabs: each other tab opened in turn, timed from the click to its page painted
    if not TABS or not hasattr(window, "pages"):
        report()
        return
    key = TABS.pop(0)
    t = time.time()
    window.show_tab(key)  # builds the page (its first showing)

    def painted():
        PHASES[f"tab {key}"] = time.time() - t
        QTimer.singleShot(50, open_tabs)

    FirstFrame(window.pages[key], painted)


def shown():
    PHASES["shown"] = time.time()
    pages = getattr(window, "pages", None)
    PHASES["art_in_first_frame"] = pages is None or "art" in pages
    if hasattr(window, "ready"):  # the Art panel is built and painted next
        window.ready.connect(lambda: (PHASES.setdefault("ready_at", time.time()),
                                      open_tabs()))
    else:  # a checkout that builds everything before its first paint
        report()


FirstFrame(window, shown)
QTimer.singleShot(10000, report)
app.exec()
"""


def run_once(code: str, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds from starting the child to its first paint and to its Art panel painted."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=cwd, env=dict(env, PYTHONPATH=str(cwd)), timeout=120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"the child did not report (exit {out.returncode}):\n"
                         f"{out.stderr[-2000:]}")
    report = json.loads(lines[-1])
    report["shown"] -= start
    report["ready"] -= start
    return report


def summary(name: str, runs: list[dict[str, float]], bare: list[float]) -> str:
    shown = [r["shown"] for r in runs]
    ready = [r["ready"] for r in runs]
    line = (f"{name:22s} shown {median(shown):6.3f} s (min {min(shown):.3f}, max "
            f"{max(shown):.3f}) ×{median(ratios(shown, bare)):5.2f}   ready "
            f"{median(ready):6.3f} s ×{median(ratios(ready, bare)):5.2f}")
    if "imported" in runs[0]:
        line += (f"\n{'':22s} import {median([r['imported'] for r in runs]):.3f} s, "
                 f"start_gui (logging, theme, history, context, window shown) "
                 f"{median([r['built'] for r in runs]):.3f} s")
    tabs = [k for k in runs[0] if k.startswith("tab ")]
    if tabs:
        line += f"\n{'':22s} opening a tab (click → page painted): " + ", ".join(
            f"{k[4:]} {median([r[k] for r in runs if k in r]):.3f} s" for k in tabs)
    eager = sum(bool(r.get("art_in_first_frame")) for r in runs)
    if eager:
        line += f"\n{'':22s} the Art panel was in the first frame in {eager}/{len(runs)} runs"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="paired runs (median taken)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another Studio checkout measured in the same runs")
    parser.add_argument("--tabs", action="store_true",
                        help="then open every other tab in turn, timed to its page painted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-startup-") as home:
        # bytecode cached, as in an installed Studio (in a private folder: nothing is
        # written into the checkouts or the environment)
        env = dict(os.environ, STUDIO_HOME=home, PYTHONPYCACHEPREFIX=str(Path(home, "pyc")))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        if args.tabs:
            env["STARTUP_TABS"] = ",".join(key for key, _title in TAB_KEYS)
        sides: dict[str, Callable[[], dict[str, float]]] = {
            "bare PySide6 window": lambda: run_once(BARE, REPO, env),
            "Studio": lambda: run_once(STUDIO, REPO, env),
        }
        if args.against is not None:
            other = args.against.resolve()
            sides[f"Studio at {other.name}"] = lambda: run_once(STUDIO, other, env)
        for side in sides.values():  # warm the file cache (and create the private home)
            side()
        before = machine_line()
        results = paired(max(1, args.runs), sides)
        after = machine_line()
    print(f"{before} before; {after.split(', ', 1)[1]} after "
          f"({args.runs} paired runs, medians; × = median per-pair ratio to bare)")
    bare = [r["shown"] for r in results.pop("bare PySide6 window")]
    print(f"{'bare PySide6 window':22s} shown {median(bare):6.3f} s (min {min(bare):.3f}, "
          f"max {max(bare):.3f})")
    for name, runs in results.items():
        print(summary(name, runs, bare))
    print("aim: Studio shown ≤ 2× bare")


if __name__ == "__main__":
    main()
