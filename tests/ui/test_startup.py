"""Start-up: what the window's first frame costs, checked without timing it.

The first frame is the event-loop turn after the window's first paint. Before it, Studio
imports no module it only needs later (the rotating log file, secrets/OpenSSL, psutil, XML,
numpy), and nothing makes PySide create every Qt class at once (an application-wide
Python event filter does that the first time an object of a class it does not export
gets an event); the Art panel, the memory reading, the drop filter and the garbage
collector come after it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import environment
from studio.core.paths import REPO_ROOT
from studio.ui.status_bar import MEMORY_INTERVAL_MS, StatusBar, resident_bytes
from tests.ui import close_ctx, make_ctx

FIRST_FRAME_PROBE = r"""
import gc, json, logging, os, sys
import PySide6.QtWidgets as QtWidgets
lazy_classes = "QWizard" not in vars(QtWidgets)  # this PySide makes its classes on first use
from PySide6.QtCore import QEvent, QObject, QTimer
before_studio = set(sys.modules)  # what the interpreter or its environment loaded already
import studio.ui.app as studio_app

app, ctx = studio_app.start_gui([])
window = next(w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow")
LATER = ("logging.handlers", "secrets", "hmac", "_hashlib", "psutil", "socket", "pickle",
         "xml.sax", "urllib.request", "numpy", "PIL", "studio.ui.art_panel")
report = {"lazy_classes": lazy_classes}


def first_frame():
    report.update(imported=[m for m in LATER if m in sys.modules and m not in before_studio],
                  every_class_made="QWizard" in vars(QtWidgets),
                  art="art" in window.pages, memory=window.status.memory_label.text(),
                  drop_filter=window._watching_drops, collecting=gc.isenabled())
    window.ready.connect(ready)


def ready():
    report.update(art_when_ready="art" in window.pages,
                  memory_when_ready=window.status.memory_label.text(),
                  drop_filter_when_ready=window._watching_drops,
                  collecting_when_ready=gc.isenabled(),
                  handlers_before_a_record="logging.handlers" in set(sys.modules) - before_studio)
    logging.getLogger("studio.probe").warning("a record for the log file")
    report["handlers_after_a_record"] = "logging.handlers" in sys.modules
    logging.shutdown()
    print(json.dumps(report), flush=True)
    os._exit(0)


class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            QTimer.singleShot(0, first_frame)
        return False


window.installEventFilter(FirstPaint(window))
QTimer.singleShot(60000, lambda: os._exit(3))
app.exec()
"""


def _probe(code: str, home: Path, timeout: int) -> dict:
    """Run a probe script in a fresh process with its own Studio home; its last JSON line."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_HOME=str(home),
               PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"the probe did not report (exit {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_the_first_frame_comes_before_what_only_later_work_needs(tmp_path: Path) -> None:
    """A fresh process (this test session has imported everything already) does what
    `studio` does; the probe watches the window only, as benchmarks/startup.py does."""
    report = _probe(FIRST_FRAME_PROBE, tmp_path, timeout=180)
    assert report["imported"] == []
    if report["lazy_classes"]:
        assert not report["every_class_made"]
    assert not report["art"] and report["art_when_ready"]
    assert report["memory"] == "" and report["memory_when_ready"].startswith("Memory: ")
    assert not report["drop_filter"] and report["drop_filter_when_ready"]
    assert not report["collecting"] and report["collecting_when_ready"]  # gc back on
    assert not report["handlers_before_a_record"] and report["handlers_after_a_record"]
    assert "a record for the log file" in (tmp_path / "studio.log").read_text(encoding="utf-8")


def test_the_log_file_made_at_the_first_record_still_rotates(tmp_path: Path) -> None:
    log_file = tmp_path / "studio.log"
    handler = environment._DetailsFile(log_file, max_bytes=400)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("studio.test_rotation")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        assert not log_file.exists()  # nothing opened before the first record
        for n in range(30):
            logger.info("record %02d %s", n, "x" * 20)
    finally:
        logger.removeHandler(handler)
        handler.close()
    old = tmp_path / "studio.log.1"
    assert old.is_file() and not (tmp_path / "studio.log.2").exists()  # one old file kept
    assert log_file.stat().st_size <= 400 and old.stat().st_size <= 400
    assert log_file.read_text(encoding="utf-8").splitlines()[-1] == f"INFO record 29 {'x' * 20}"


def test_a_log_file_that_cannot_be_written_never_complains(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    handler = environment._DetailsFile(blocker / "studio.log", max_bytes=1000)
    logger = logging.getLogger("studio.test_unwritable")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("nowhere to go")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="no /proc here")
def test_the_memory_reading_from_proc_is_what_psutil_says() -> None:
    import psutil

    ours, theirs = resident_bytes(), psutil.Process().memory_info().rss
    assert ours is not None and abs(ours - theirs) <= 0.02 * theirs


def test_the_status_bar_reads_memory_on_its_first_tick_not_at_construction(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    try:
        bar = StatusBar(ctx)
        qtbot.addWidget(bar)
        qtbot.wait(20)
        assert bar.memory_label.text() == ""
        assert bar._timer.isActive() and bar._timer.interval() == MEMORY_INTERVAL_MS
        bar.update_memory()  # what each tick does
        assert bar.memory_label.text().startswith("Memory: ")
        assert "resident" in bar.memory_label.toolTip()
    finally:
        close_ctx(ctx, qtbot)


FAILED_START_PROBE = r"""
import gc, json
from PySide6.QtWidgets import QMessageBox
from studio.core.errors import StudioError
from studio.core.history import History
import studio.ui.app as studio_app


def refuse(cls):
    raise StudioError("the index is locked by another Studio")


said = []
History.open_default = classmethod(refuse)
QMessageBox.critical = staticmethod(lambda _parent, _title, text: said.append(text))
before = gc.isenabled()
started = studio_app.start_gui([])
print(json.dumps({"before": before, "started": started is not None,
                  "after": gc.isenabled(), "said": said}), flush=True)
"""


def test_a_start_that_fails_turns_the_collector_back_on(tmp_path: Path) -> None:
    """No history index, no window: start_gui says so in a box and leaves gc as it was."""
    report = _probe(FAILED_START_PROBE, tmp_path, timeout=120)
    assert report["before"] and not report["started"] and report["after"]
    assert len(report["said"]) == 1 and "locked by another Studio" in report["said"][0]


def test_a_page_is_built_with_the_drop_filter_out_and_takes_drops_after(qtbot, tmp_path):
    """Building a page restyles each new widget many times over; the window's drop filter
    (a Python call per event) sits that out, and is back for the page's text boxes."""
    from studio.ui.main_window import MainWindow
    from tests.ui.test_main_window import drop_file, save_a1111_png

    ctx = make_ctx(tmp_path)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.ready, timeout=10000):
            window.show()
        assert window._watching_drops  # since the Art page was built
        filtering: list[bool] = []
        make_music = window._factories["music"]

        def spy():
            filtering.append(window._watching_drops)
            return make_music()

        window._factories["music"] = spy
        window.show_tab("music")  # the tab's first showing builds the page
        assert filtering == [False] and window._watching_drops and window.is_built("music")
        png = save_a1111_png(tmp_path / "a1111.png", "a lighthouse at dusk\nSteps: 12, "
                             "Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 64x64, Model: m")
        prompt = window.music.prompt
        prompt.setPlainText("calm piano")
        with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
            assert drop_file(prompt.viewport(), png)
        # the recipe went to Art; the music prompt did not get the file's path pasted in
        assert prompt.toPlainText() == "calm piano"
        assert window.art.prompt.toPlainText() == "a lighthouse at dusk"
        window.close()
    finally:
        close_ctx(ctx, qtbot)


def test_a_picture_dropped_on_the_art_canvas_is_its_init_image_not_a_recipe(qtbot, tmp_path):
    """The window takes files dropped on text boxes (they would paste the path); a widget
    that accepts drops itself keeps them, whatever order the filters were installed in."""
    from studio.ui.main_window import MainWindow
    from tests.ui.test_main_window import A1111_TEXT, drop_file, save_a1111_png

    ctx = make_ctx(tmp_path)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.ready, timeout=10000):
            window.show()
        png = save_a1111_png(tmp_path / "a1111.png", A1111_TEXT)
        canvas = window.art.mask_canvas
        assert canvas.image().isNull()
        with qtbot.assertNotEmitted(window.recipe_loaded, wait=300):
            assert drop_file(canvas, png)
        assert canvas.image().size().width() == 64
        # the prompt box beside it still hands the same file to the window
        with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
            assert drop_file(window.art.prompt.viewport(), png)
        assert window.art.prompt.toPlainText() == "a lighthouse at dusk, oil painting"
        window.close()
    finally:
        close_ctx(ctx, qtbot)


def test_building_every_page_shows_no_widget_as_a_window_of_its_own(qtbot, tmp_path):
    """A widget shown before it has a parent is a window for a moment, and the platform may
    give it the activation (then the main window's shortcuts are dead until a click). No
    page does that, so the window keeps the activation without taking it back."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QWidget

    from studio.ui.main_window import MainWindow

    class Shown(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.windows: list[str] = []

        def eventFilter(self, obj, event):  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Show and isinstance(obj, QWidget) and \
                    obj.isWindow() and not isinstance(obj, MainWindow):
                self.windows.append(f"{type(obj).__name__} {obj.objectName()}")
            return False

    ctx = make_ctx(tmp_path)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    shown = Shown()
    QApplication.instance().installEventFilter(shown)
    try:
        with qtbot.waitSignal(window.ready, timeout=10000):
            window.show()
        for name in window._factories:
            window.show_tab(name)
        assert all(window.is_built(name) for name in window._factories)
        assert shown.windows == []
        window.close()
    finally:
        QApplication.instance().removeEventFilter(shown)
        close_ctx(ctx, qtbot)
