"""The main window: tabs, routing, drag & drop of recipes, queue dock, settings, state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from studio.core.paths import REPO_ROOT
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.ui.main_window import MainWindow
from studio.ui.settings_dialog import SettingsDialog
from tests.ui import PanelJobs, click_check, close_ctx, make_ctx, use_slow_engine

A1111_TEXT = (
    "a lighthouse at dusk, oil painting\n"
    "Negative prompt: blurry\n"
    "Steps: 14, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, "
    "Size: 640x448, Model: my-model, Version: v1.10.1"
)


@pytest.fixture
def ctx(qtbot, tmp_path):
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


@pytest.fixture
def window(qtbot, ctx):
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def drop_file(target, path: Path) -> bool:
    """Drag a file over a widget and drop it, as a file manager would (with the path as
    text too, like real file managers, so text boxes would take it if let)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    mime.setText(str(path))
    pos = QPointF(target.width() / 2, target.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


def test_window_opens_with_all_tabs_queue_and_status(window, qtbot):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Art", "Music", "Text", "Explore", "Gallery", "Models", "Lab"]
    assert window.queue.isVisible()
    assert window.queue.empty.isVisible()
    assert window.status.device_label.text() == "Device: cpu"
    assert window.status.models_label.text() == "No model loaded"
    qtbot.waitUntil(lambda: window.status.memory_label.text().startswith("Memory: "))
    assert not window.windowIcon().isNull()
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "View", "Help"]


GUI_IMPORT_PROBE = r"""
import builtins, json, sys, threading, time, traceback

HEAVY = {"torch", "diffusers", "transformers"}
on_gui_thread = []  # (module, where) for every heavy import made by the GUI thread


def note(name):
    if name.split(".")[0] in HEAVY and threading.current_thread() is threading.main_thread():
        frames = [f for f in traceback.extract_stack()[:-2] if "importlib" not in f.filename]
        where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in frames[-3:])
        on_gui_thread.append((name, where))


class Probe:  # sees first loads, also via importlib.import_module
    def find_spec(self, name, path=None, target=None):
        note(name)
        return None


sys.meta_path.insert(0, Probe())
_import = builtins.__import__


def probing_import(name, *args, **kwargs):  # sees every import statement, even cached ones
    note(name)
    return _import(name, *args, **kwargs)


builtins.__import__ = probing_import

from studio.ui.app import make_application
app = make_application([])
from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.context import AppContext
from studio.ui.main_window import MainWindow

ctx = AppContext(Settings.load(), History.open_default())
window = MainWindow(ctx)
window.show()
done = []
ctx.catalog_changed.connect(lambda e: done.append(len(e)))
ctx.rescan_models()
deadline = time.monotonic() + 60
while not done and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
for name in ("art", "music", "text", "explore", "gallery", "models"):  # visit every tab
    window.show_tab(name)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
print(json.dumps({"gui_thread": on_gui_thread, "scanned": bool(done),
                  "qt": "PySide6.QtWidgets" in sys.modules}), flush=True)
window.close()
"""


def test_gui_thread_never_imports_the_ml_stack():
    """Opening the window, scanning models and visiting every tab must not import torch,
    diffusers or transformers on the GUI thread (the worker thread may: that is its job).

    Checked in a fresh process (this test session imports torch for the tiny models) with
    an import probe that records which thread asks for each heavy module."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", GUI_IMPORT_PROBE], capture_output=True,
                         text=True, cwd=REPO_ROOT, env=env, timeout=180)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"the probe did not report (exit {out.returncode}): {out.stderr[-2000:]}"
    report = json.loads(lines[-1])
    assert report["qt"] and report["scanned"]
    assert report["gui_thread"] == [], f"the GUI thread imported: {report['gui_thread']}"


def test_use_recipe_routes_to_the_art_panel_and_switches_tab(window, ctx, qtbot):
    window.show_tab("gallery")
    request = ImageRequest(model="builtin:eyes", prompt="green eyes", seed=77, steps=9,
                           guidance=4.5, width=128, height=192, scheduler="DDIM", batch_size=3)
    ctx.use_recipe(request)
    assert window.current_tab() == "art"
    art = window.art
    assert art.prompt.toPlainText() == "green eyes"
    assert art.model.current_model() == "builtin:eyes"
    assert (art.seed.value(), art.steps.value(), art.guidance.value()) == (77, 9, 4.5)
    assert (art.width_box.value(), art.height_box.value()) == (128, 192)
    assert art.scheduler.currentText() == "DDIM" and art.batch.value() == 3
    assert art.size_preset.currentText() == "Custom"


def test_prompt_for_art_fills_the_prompt(window, ctx):
    window.show_tab("text")
    ctx.prompt_for_art.emit("a castle made of clouds")
    assert window.current_tab() == "art"
    assert window.art.prompt.toPlainText() == "a castle made of clouds"


def test_dropping_a_png_with_a_recipe_fills_the_art_panel(window, qtbot, tmp_path):
    png = tmp_path / "from-a1111.png"
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    Image.fromarray(np.zeros((448, 640, 3), np.uint8)).save(png, pnginfo=info)
    window.show_tab("gallery")
    with qtbot.waitSignal(window.recipe_loaded, timeout=10000) as sig:
        assert drop_file(window, png)
    assert isinstance(sig.args[0], ImageRequest)
    art = window.art
    assert window.current_tab() == "art"
    assert art.prompt.toPlainText() == "a lighthouse at dusk, oil painting"
    assert art.negative.toPlainText() == "blurry"
    assert (art.seed.value(), art.steps.value()) == (1234, 14)
    assert art.guidance.value() == pytest.approx(5.5)
    assert (art.width_box.value(), art.height_box.value()) == (640, 448)
    # A1111's sampler and schedule type, each in its own box
    assert (art.scheduler.currentText(), art.fields["schedule"].currentText()) == \
        ("DPM++ 2M", "Karras")
    # a model this machine lacks stays visible, marked as such
    assert art.model.currentText().endswith("(not found)")


def test_dropping_onto_the_prompt_box_loads_the_recipe_not_the_path(window, qtbot, tmp_path):
    png = tmp_path / "dropped.png"
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    Image.fromarray(np.zeros((448, 640, 3), np.uint8)).save(png, pnginfo=info)
    prompt = window.art.prompt
    prompt.setPlainText("old prompt")
    with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
        assert drop_file(prompt.viewport(), png)
    assert prompt.toPlainText() == "a lighthouse at dusk, oil painting"


def test_dropping_a_file_without_a_recipe_says_so_in_one_sentence(window, qtbot, tmp_path):
    png = tmp_path / "holiday.png"
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(png)
    before = window.art.prompt.toPlainText()
    with qtbot.waitSignal(window.drop_failed, timeout=10000) as sig:
        assert drop_file(window, png)
    message = sig.args[0]
    assert message and "\n" not in message and "Traceback" not in message
    assert window.status.currentMessage() == message
    assert window.art.prompt.toPlainText() == before
    # a file of a kind that never holds recipes: still one sentence
    odd = tmp_path / "notes.xyz"
    odd.write_text("hello")
    with qtbot.waitSignal(window.drop_failed, timeout=10000) as sig:
        drop_file(window, odd)
    assert "\n" not in sig.args[0] and "notes.xyz" in sig.args[0]


def test_dragging_text_is_refused(window):
    mime = QMimeData()
    mime.setText("just words")
    enter = QDragEnterEvent(window.rect().center(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_queue_dock_lists_jobs_and_cancels_them_one_by_one(window, ctx, qtbot, monkeypatch):
    use_slow_engine(monkeypatch)
    art = window.art
    art.model.set_model("slow:40")
    art.steps.setValue(200)
    art.width_box.setValue(64)
    art.height_box.setValue(64)
    dock = window.queue
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_started, timeout=60000, check_params_cb=jobs.mine):
        for _ in range(3):
            qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dock.rows) == 3)
    running = [r for r in dock.rows.values() if r.running]
    waiting = [r for r in dock.rows.values() if not r.running]
    assert len(running) == 1 and len(waiting) == 2
    assert waiting[0].state.text() == "Waiting · #1"
    assert "2 queued" in art.generate_button.text()
    # ✕ on a waiting job removes just that one
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=5000,
                          check_params_cb=lambda i: i == waiting[-1].job_id):
        qtbot.mouseClick(waiting[-1].button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dock.rows) == 2)
    assert dock.windowTitle() == "Queue (2)"
    # Clear queue keeps the running job
    qtbot.mouseClick(dock.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dock.rows) == 1)
    assert next(iter(dock.rows.values())).running
    # Cancel all stops it too
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=10000,
                          check_params_cb=lambda i: i == running[0].job_id):
        qtbot.mouseClick(dock.cancel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dock.rows)
    assert art.progress.status.text() == "Cancelled."
    # the three jobs are listed under Recent, newest first
    assert [f.state for f in dock.recent] == ["Cancelled"] * 3
    assert [r.state.text() for r in dock.recent_rows.values()] == ["Cancelled"] * 3
    assert not dock.empty.isVisible()
    assert not list((Path(ctx.settings.output_dir)).rglob("*.png"))


def test_a_finished_job_can_load_its_settings_again(window, ctx, qtbot, monkeypatch):
    use_slow_engine(monkeypatch)
    art = window.art
    art.apply_request(ImageRequest(model="slow:1", prompt="again", steps=2, width=64,
                                   height=64))
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000,
                          check_params_cb=jobs.mine) as sig:
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    drawn_seed = sig.args[1].request.seed
    dock = window.queue
    qtbot.waitUntil(lambda: len(dock.recent_rows) == 1)
    row = next(iter(dock.recent_rows.values()))
    assert row.state.text().startswith("Done · ")
    art.prompt.setPlainText("something else")
    window.show_tab("gallery")
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    assert window.current_tab() == "art"
    assert art.prompt.toPlainText() == "again"
    assert art.seed.value() == drawn_seed  # the seed it really used, not "random"


def test_status_bar_follows_loaded_models(window, ctx, qtbot, monkeypatch):
    use_slow_engine(monkeypatch)
    art = window.art
    art.model.set_model("slow:1")
    art.steps.setValue(2)
    art.width_box.setValue(64)
    art.height_box.setValue(64)
    jobs = PanelJobs(art)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000, check_params_cb=jobs.mine):
        qtbot.mouseClick(art.generate_button, Qt.MouseButton.LeftButton)
    # other panels may have loaded models too (the explorer renders when it opens)
    label = window.status.models_label
    qtbot.waitUntil(lambda: "slow:1" in label.toolTip())
    assert label.text().startswith("Loaded: ")
    assert window.status.device_label.text() == "Device: cpu"


def test_settings_dialog_saves_and_applies(window, ctx, qtbot, tmp_path):
    dialog = window.open_settings()
    assert isinstance(dialog, SettingsDialog)
    qtbot.waitExposed(dialog)
    models = tmp_path / "more-models"
    models.mkdir()
    dialog.add_model_dir(str(models))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    click_check(qtbot, dialog.previews)
    assert not dialog.pickle_warning.property("active")
    click_check(qtbot, dialog.allow_pickle)
    assert dialog.pickle_warning.property("active")
    dialog.memory.setValue(2048)
    with qtbot.waitSignal(ctx.catalog_changed, timeout=10000):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
    s = ctx.settings
    assert s.model_dirs == [str(models)] and s.device == "cpu"
    assert s.live_previews is False and s.allow_pickle is True and s.memory_budget_mb == 2048
    assert ctx.jobs.settings is s
    saved = Settings.load()
    assert saved.model_dirs == [str(models)] and saved.memory_budget_mb == 2048


def test_window_geometry_and_last_recipe_survive_a_restart(qtbot, tmp_path):
    ctx1 = make_ctx(tmp_path)
    w1 = MainWindow(ctx1)
    qtbot.addWidget(w1)
    w1.show()
    # the offscreen screen is 800 px wide: restoring clamps wider windows, so stay narrow
    size = (max(760, w1.minimumSizeHint().width()), 640)
    w1.resize(*size)
    w1.show_tab("gallery")
    w1.art.prompt.setPlainText("remember me")
    w1.art.seed.set_value(4242)
    w1.close()
    close_ctx(ctx1, qtbot)

    ctx2 = make_ctx(tmp_path)
    w2 = MainWindow(ctx2)
    qtbot.addWidget(w2)
    w2.show()
    try:
        assert (w2.width(), w2.height()) == size
        assert w2.current_tab() == "gallery"
        assert w2.art.prompt.toPlainText() == "remember me"
        assert w2.art.seed.value() == 4242
    finally:
        w2.close()
        close_ctx(ctx2, qtbot)


LAZY_PROBE = r"""
import json, sys, time
from studio.ui.app import make_application
app = make_application([])
from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.context import AppContext
from studio.ui.main_window import MainWindow

PANELS = ("studio.ui.music_panel", "studio.ui.text_panel", "studio.ui.explore.panel",
          "studio.ui.gallery", "studio.ui.models_view")
ctx = AppContext(Settings.load(), History.open_default())
window = MainWindow(ctx)
window.show()
for _ in range(10):
    app.processEvents()
    time.sleep(0.01)
at_start = [m for m in PANELS if m in sys.modules]
numpy_at_start = "numpy" in sys.modules
window.show_tab("music")
app.processEvents()
print(json.dumps({"at_start": at_start, "numpy": numpy_at_start,
                  "music": "studio.ui.music_panel" in sys.modules,
                  "text": "studio.ui.text_panel" in sys.modules}), flush=True)
window.close()
"""


def test_only_the_art_panel_is_imported_until_a_tab_is_shown():
    """Start-up: the other panels' modules are imported when their tab is first shown, and
    nothing the window shows first needs numpy (a fresh process: this test session has
    imported every panel already)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"the probe did not report (exit {out.returncode}): {out.stderr[-2000:]}"
    report = json.loads(lines[-1])
    assert report == {"at_start": [], "numpy": False, "music": True, "text": False}


def test_a_tab_is_built_when_its_tab_is_clicked(window, qtbot):
    assert window.is_built("art")
    assert not any(window.is_built(k) for k in ("music", "text", "explore", "gallery",
                                                "models"))
    bar = window.tabs.tabBar()
    music_tab = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Music")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(music_tab).center())
    assert window.current_tab() == "music"
    assert window.is_built("music") and not window.is_built("text")
    frame = window.tabs.currentWidget()
    assert frame.widget() is window.music and window.music.isVisible()


def test_a_music_recipe_builds_the_music_panel_on_demand(window, ctx):
    from studio.core.requests import MusicRequest

    assert not window.is_built("music")
    ctx.use_recipe(MusicRequest(model="builtin:composer", prompt="calm piano", seed=33,
                                duration=4.0))
    assert window.is_built("music") and window.current_tab() == "music"
    assert window.music.prompt.toPlainText() == "calm piano"
    assert window.music.seed.value() == 33


def save_a1111_png(path: Path, text: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", text)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, pnginfo=info)
    return path


def test_file_open_loads_a_recipe_and_shows_what_the_import_changed(window, qtbot, tmp_path,
                                                                    monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    png = save_a1111_png(tmp_path / "a1111.png", (
        "a fox in the snow\nNegative prompt: blurry\n"
        "Steps: 12, Sampler: DPM adaptive, CFG scale: 6, Seed: 77, Size: 64x64, Model: m"))
    asked = []

    def pick(parent, caption, folder, filters):
        asked.append(filters)
        return str(png), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(pick))
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    window.show_tab("gallery")
    with qtbot.waitSignal(window.recipe_loaded, timeout=10000):
        window.open_action.trigger()
    assert "*.png" in asked[0] and "*.wav" in asked[0] and "*.md" in asked[0]
    assert window.current_tab() == "art"
    assert window.art.prompt.toPlainText() == "a fox in the snow"
    assert window.art.seed.value() == 77
    notice = window.notice
    assert notice.isVisible()
    assert "AUTOMATIC1111" in notice.text() and "a1111.png" in notice.text()
    assert "Sampler 'DPM adaptive' is not available here; using Euler a." in notice.text()
    # it stays until closed (not a status-bar flash)
    qtbot.wait(50)
    assert notice.isVisible()
    qtbot.mouseClick(notice.close_button, Qt.MouseButton.LeftButton)
    assert not notice.isVisible()


def test_a_dropped_recipe_without_changes_shows_no_notice(window, qtbot, tmp_path):
    png = save_a1111_png(tmp_path / "plain.png", (
        "a fox\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 77, Size: 64x64, Model: m"))
    with qtbot.waitSignal(window.recipe_notes, timeout=10000) as sig:
        assert drop_file(window, png)
    assert sig.args[0] == []
    assert not window.notice.isVisible()


def test_file_open_of_a_bad_file_is_one_line(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *_a: (str(bad), "")))
    with qtbot.waitSignal(window.drop_failed, timeout=10000) as sig:
        window.open_action.trigger()
    assert sig.args[0] and "\n" not in sig.args[0] and "broken.png" in sig.args[0]
    assert window.status.currentMessage() == sig.args[0]
    assert not window.notice.isVisible()


def test_the_art_panel_is_built_on_the_turn_after_the_first_paint(qtbot, ctx, qapp, tmp_path):
    """Start-up: the window paints before its Art panel exists, builds it on the next turn
    of the event loop with the theme lifted meanwhile (restored, the panel styled), then
    says it is ready; drops still reach the window afterwards."""
    from studio.ui.app import stylesheet
    from studio.ui.art_panel import ArtPanel

    qapp.setStyleSheet(stylesheet())
    try:
        w = MainWindow(ctx)
        qtbot.addWidget(w)
        assert "art" not in w.pages and w._frames["art"].widget() is None
        painted: list[bool] = []
        w.ready.connect(lambda: painted.append(w._frames["art"].widget() is not None))
        with qtbot.waitSignal(w.ready, timeout=10000):
            w.show()
        assert painted == [True]  # built by the time ready fired
        art = w.pages["art"]
        assert isinstance(art, ArtPanel) and w.art is art and w._frames["art"].widget() is art
        assert qapp.styleSheet() == stylesheet()
        assert art.isVisible()
        qtbot.wait(50)
        with qtbot.assertNotEmitted(w.ready, wait=50):  # once only
            w.update()
        path = save_a1111_png(tmp_path / "a1111.png", A1111_TEXT)
        with qtbot.waitSignal(w.recipe_loaded, timeout=10000):
            assert drop_file(art.prompt, path)
        w.close()
    finally:
        qapp.setStyleSheet("")


def test_a_saved_art_request_waits_for_the_art_panel(qtbot, ctx):
    """The request the Art panel held at close comes back when the panel is built, and a
    window closed before that keeps it for the next start."""
    first = MainWindow(ctx)
    qtbot.addWidget(first)
    first.art.set_prompt("a red fox in snow")
    first.close()

    second = MainWindow(ctx)
    qtbot.addWidget(second)
    assert "art" not in second.pages
    second.close()  # never shown: the saved request is written back as it was

    third = MainWindow(ctx)
    qtbot.addWidget(third)
    assert "art" not in third.pages
    with qtbot.waitSignal(third.ready, timeout=10000):
        third.show()
    assert third.pages["art"].request().prompt == "a red fox in snow"
    third.close()
