"""The GUI entry point: the window first, then the model scan; the ML stack stays in the worker.

Nothing here imports torch, diffusers or transformers: the worker thread
imports them lazily when the first job needs them, so the window opens at once.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio import __version__

if TYPE_CHECKING:
    from studio.runtime.context import AppContext
    from studio.ui.main_window import MainWindow

log = logging.getLogger(__name__)

ACCENT = "#7c5cff"

STYLESHEET = """
QMainWindow, QDialog { background: #1d1e23; }
QMenuBar { background: #1d1e23; padding: 2px 4px; }
QMenuBar::item { padding: 4px 10px; border-radius: 4px; }
QMenuBar::item:selected { background: #2e2f37; }
QMenu { background: #24252b; border: 1px solid #34353d; padding: 4px; }
QMenu::item { padding: 5px 26px 5px 18px; border-radius: 4px; }
QMenu::item:selected { background: #3a3550; }
QToolTip { background: #2a2b33; color: #e8e8ee; border: 1px solid #3a3b45; padding: 4px; }

QTabWidget::pane { border: none; }
QTabBar { qproperty-drawBase: 0; }
QTabBar::tab {
    background: transparent; color: #9a9cab; padding: 9px 20px; margin: 0 2px;
    border: none; border-bottom: 2px solid transparent; font-weight: 600;
}
QTabBar::tab:hover { color: #d8d9e2; }
QTabBar::tab:selected { color: #ffffff; border-bottom: 2px solid %(accent)s; }

QWidget#formColumn { background: #202127; }
QScrollArea { background: #202127; }

QLabel#sectionLabel { color: #8d8fa0; font-weight: 600; }
QLabel#muted { color: #8d8fa0; }
QLabel#promptText { color: #e6e6ec; }
QLabel#message[level="error"] { color: #ff8080; }
QLabel#message[level="info"] { color: #8fd6a4; }
QLabel#warning { color: #6d6f7c; }
QLabel#warning[active="true"] { color: #ffb454; }
QLabel#statusItem { color: #9a9cab; padding: 0 10px; border-left: 1px solid #33343c; }

QPlainTextEdit, QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox, QListWidget {
    background: #15161a; border: 1px solid #33343c; border-radius: 6px;
    selection-background-color: %(accent)s;
}
QPlainTextEdit { padding: 4px; }
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox { padding: 4px 6px; min-height: 20px; }
QPlainTextEdit:focus, QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus,
QComboBox:focus { border: 1px solid %(accent)s; }
QPlainTextEdit:disabled, QLineEdit:disabled, QSpinBox:disabled, QDoubleSpinBox:disabled,
QComboBox:disabled { color: #5d5f6a; background: #1a1b20; }
QComboBox::drop-down { border: none; width: 24px; }
QComboBox::down-arrow { image: url(%(icons)s/chevron-down.svg); width: 10px; height: 10px; }
QComboBox::down-arrow:disabled { image: url(%(icons)s/chevron-down-disabled.svg); }
QSpinBox, QDoubleSpinBox { padding-right: 20px; }
QSpinBox::up-button, QDoubleSpinBox::up-button {
    subcontrol-origin: border; subcontrol-position: top right; width: 20px;
    border: none; border-top-right-radius: 6px; background: transparent;
}
QSpinBox::down-button, QDoubleSpinBox::down-button {
    subcontrol-origin: border; subcontrol-position: bottom right; width: 20px;
    border: none; border-bottom-right-radius: 6px; background: transparent;
}
QSpinBox::up-button:hover, QDoubleSpinBox::up-button:hover,
QSpinBox::down-button:hover, QDoubleSpinBox::down-button:hover { background: #2a2b33; }
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {
    image: url(%(icons)s/chevron-up.svg); width: 9px; height: 9px;
}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow {
    image: url(%(icons)s/chevron-down.svg); width: 9px; height: 9px;
}
QSpinBox::up-arrow:disabled, QDoubleSpinBox::up-arrow:disabled,
QSpinBox::up-arrow:off, QDoubleSpinBox::up-arrow:off {
    image: url(%(icons)s/chevron-up-disabled.svg);
}
QSpinBox::down-arrow:disabled, QDoubleSpinBox::down-arrow:disabled,
QSpinBox::down-arrow:off, QDoubleSpinBox::down-arrow:off {
    image: url(%(icons)s/chevron-down-disabled.svg);
}
QDialogButtonBox { dialogbuttonbox-buttons-have-icons: 0; }
QCheckBox { spacing: 8px; }
QCheckBox::indicator {
    width: 16px; height: 16px; border: 1px solid #4a4b56; border-radius: 4px;
    background: #15161a;
}
QCheckBox::indicator:checked {
    background: %(accent)s; border-color: %(accent)s; image: url(%(icons)s/check.svg);
}
QComboBox QAbstractItemView {
    background: #24252b; border: 1px solid #3a3b45; selection-background-color: #3a3550;
}

QPushButton {
    background: #2b2c33; border: 1px solid #3a3b44; border-radius: 6px;
    padding: 6px 14px; color: #e6e6ec;
}
QPushButton:hover { background: #33343c; border-color: #4a4b56; }
QPushButton:pressed { background: #25262c; }
QPushButton:disabled { color: #5d5f6a; background: #24252a; border-color: #2e2f36; }
QPushButton#primary {
    background: qlineargradient(x1:0, y1:0, x2:1, y2:0, stop:0 #7c5cff, stop:1 #5b7cff);
    border: none; color: white; font-weight: 700;
}
QPushButton#primary:hover {
    background: qlineargradient(x1:0, y1:0, x2:1, y2:0, stop:0 #8d71ff, stop:1 #6d8bff);
}
QPushButton#primary:disabled { background: #3a3550; color: #9a97b0; }
QToolButton { border: 1px solid transparent; border-radius: 6px; padding: 3px; }
QToolButton:hover { background: #2e2f37; border-color: #3a3b44; }
QToolButton#sectionToggle { color: #c9cad3; font-weight: 600; padding: 4px 0; }
QToolButton#sectionToggle:hover { background: transparent; border-color: transparent; }

QProgressBar { background: #2a2b31; border: none; border-radius: 3px; }
QProgressBar::chunk { background: %(accent)s; border-radius: 3px; }

QListView#resultsStrip, QListView#galleryGrid, QListWidget#queueList {
    background: #17181c; border: 1px solid #2b2c33; border-radius: 8px; padding: 4px;
}
QListView#galleryGrid::item, QListView#resultsStrip::item { border-radius: 6px; padding: 4px; }
QListView#galleryGrid::item:selected, QListView#resultsStrip::item:selected {
    background: #3a3550; color: white;
}
QListView#galleryGrid::item:hover, QListView#resultsStrip::item:hover { background: #26272e; }
QListWidget#queueList::item { border-bottom: 1px solid #26272d; }

QDockWidget { color: #c9cad3; font-weight: 600; }
QDockWidget::title { background: #1d1e23; padding: 8px 10px; text-align: left; }
QDockWidget > QWidget { background: #1d1e23; }
QMainWindow::separator { background: #2a2b31; width: 1px; height: 1px; }
QMainWindow::separator:hover { background: %(accent)s; }
QSplitter::handle { background: #2a2b31; }
QSplitter::handle:horizontal { width: 1px; }
QStatusBar { background: #18191d; color: #9a9cab; border-top: 1px solid #2a2b31; }
QStatusBar::item { border: none; }
QSlider::groove:horizontal { height: 4px; background: #33343c; border-radius: 2px; }
QSlider::sub-page:horizontal { background: %(accent)s; border-radius: 2px; }
QSlider::handle:horizontal {
    background: #e6e6ec; width: 14px; height: 14px; margin: -5px 0; border-radius: 7px;
}
QScrollBar:vertical { background: transparent; width: 10px; margin: 2px; }
QScrollBar::handle:vertical { background: #3a3b44; border-radius: 4px; min-height: 24px; }
QScrollBar:horizontal { background: transparent; height: 10px; margin: 2px; }
QScrollBar::handle:horizontal { background: #3a3b44; border-radius: 4px; min-width: 24px; }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; }
QScrollBar::add-page, QScrollBar::sub-page { background: transparent; }
"""


def stylesheet() -> str:
    """The theme's QSS with the accent colour and the icon folder filled in."""
    from studio.core.paths import assets_dir

    icons = (assets_dir() / "icons").as_posix()
    return STYLESHEET % {"accent": ACCENT, "icons": icons}


def apply_theme(app: QApplication, *, style: bool = True) -> None:
    """A calm dark theme on Fusion: the same look on every platform.

    style=False: the application was made with Fusion already (`-style Fusion`, as
    make_application does), which spares the QStyle object's wrapper (its Python enums
    are a few milliseconds of the start-up)."""
    if style:
        from PySide6.QtWidgets import QStyleFactory

        fusion = QStyleFactory.create("Fusion")
        if fusion is not None:
            app.setStyle(fusion)
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1d1e23",
        QPalette.ColorRole.WindowText: "#e6e6ec",
        QPalette.ColorRole.Base: "#15161a",
        QPalette.ColorRole.AlternateBase: "#202127",
        QPalette.ColorRole.Text: "#e6e6ec",
        QPalette.ColorRole.Button: "#2b2c33",
        QPalette.ColorRole.ButtonText: "#e6e6ec",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#2a2b33",
        QPalette.ColorRole.ToolTipText: "#e8e8ee",
        QPalette.ColorRole.PlaceholderText: "#6f7180",
        QPalette.ColorRole.Link: "#9d86ff",
        QPalette.ColorRole.Mid: "#33343c",
        QPalette.ColorRole.Dark: "#141518",
        QPalette.ColorRole.Light: "#3a3b44",
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5d5f6a"))
    app.setPalette(pal)
    app.setStyleSheet(stylesheet())


def make_application(argv: Sequence[str] = ()) -> QApplication:
    """The QApplication with Studio's names, icon and theme (reused if one exists)."""
    from studio.ui.images import app_icon

    QApplication.setApplicationName("Studio")
    QApplication.setApplicationDisplayName("Studio")
    QApplication.setOrganizationName("Studio")
    QApplication.setOrganizationDomain("studio.local")
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("studio")
    app = QApplication.instance()
    made_here = app is None
    if app is None:  # Fusion from the start (a -style given in argv still wins)
        app = QApplication([sys.argv[0] if sys.argv else "studio", "-style", "Fusion", *argv])
    app.setWindowIcon(app_icon())
    apply_theme(app, style=not made_here)
    return app


def start_gui(argv: Sequence[str] = ()) -> tuple[QApplication, AppContext] | None:
    """Everything `studio` does before its event loop (the start-up benchmark runs this):
    logging, the application, settings, history, context, the window shown. None when
    it cannot start (a box has said why)."""
    # The cyclic garbage collector stays off until the window is ready: what start-up
    # makes (modules, classes, enums, widgets) lives as long as the process, and the
    # collector would walk it some 25 times before the first frame (5–10 ms here).
    collecting = gc.isenabled()
    gc.disable()
    try:
        started = _start(argv)
    except BaseException:
        if collecting:
            gc.enable()
        raise
    if started is None:
        if collecting:
            gc.enable()
        return None
    app, ctx, window = started
    if collecting:
        window.ready.connect(gc.enable)
    return app, ctx


def _start(argv: Sequence[str]) -> tuple[QApplication, AppContext, MainWindow] | None:
    from studio.core import paths
    from studio.core.environment import configure_logging, setup_environment

    setup_environment()
    configure_logging(log_file=paths.studio_home() / "studio.log")  # details there, not here
    app = make_application(argv)

    from studio.core.errors import StudioError
    from studio.core.history import History
    from studio.core.settings import Settings
    from studio.runtime.context import AppContext

    settings = Settings.load()
    try:
        history = History.open_default()
    except (StudioError, OSError) as exc:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Studio", f"Studio could not open its history index: {exc}")
        return None
    ctx = AppContext(settings, history)
    window = open_window(ctx, [Path(a) for a in argv
                               if not a.startswith("-") and Path(a).is_file()])
    return app, ctx, window


def run_gui(argv: Sequence[str] = ()) -> int:
    """Open the window (a file argument loads its recipe). When the window closes the
    process ends with its exit status (see the end); 1 is returned when it cannot start."""
    started = start_gui(argv)
    if started is None:
        return 1
    app, ctx = started
    history = ctx.history
    stop_on_signals(app)
    try:
        code = app.exec()
    finally:
        ctx.shutdown()
        try:
            history.close()
        except Exception:  # closing an index that failed mid-way is not worth a traceback
            log.debug("history close failed", exc_info=True)
    # The engine thread may still be inside a long C call (the launch warm-up importing
    # torch, a model load given up at close): letting the interpreter finalise under it
    # crashes the process. Everything worth keeping is closed above; leave at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def open_window(ctx: AppContext, files: Sequence[Path] = ()) -> MainWindow:
    """Build and show the window; everything else waits for its first frame.

    The window paints first, then builds its Art page (`MainWindow.ready`), and only then
    do the model scan, the recovery of killed saves, the ML warm-up (the worker imports
    torch: the one hiccup left, at launch rather than in the first job) and a file given
    on the command line start, so none of them competes with the first frame.
    """
    from studio.ui.main_window import MainWindow, style_sheet_lifted

    with style_sheet_lifted():  # nothing else is on screen yet: the shell is styled once
        window = MainWindow(ctx)

    def ready() -> None:
        ctx.rescan_models()
        start_recovery(ctx, window)
        ctx.jobs.warm_up()
        if files:
            window.load_recipe_file(Path(files[0]))

    window.ready.connect(ready)
    window.show()
    return window


def start_recovery(ctx, window=None) -> None:
    """Off the GUI thread: remove temp files killed saves left, index outputs they wrote.

    The gallery refreshes when anything was indexed. The Models tab's Rescan can call this
    too (it is cheap when there is nothing to do).
    """
    from studio.core.recovery import output_folders, recover
    from studio.runtime.tasks import run_in_pool

    history = ctx.history
    folders = output_folders(ctx.settings)

    def done(found) -> None:
        # only a gallery already built: one built later reads the index then (asking for
        # window.gallery would build the page now)
        pages = getattr(window, "pages", {})
        if found and found.indexed and "gallery" in pages:
            pages["gallery"].refresh()

    run_in_pool(lambda: recover(history, folders), done)


def stop_on_signals(app: QApplication) -> None:
    """SIGTERM and Ctrl+C close the window cleanly (the worker stops, the index closes).

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++: a
    short timer gives the interpreter a moment to notice the signal.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return

    def quit_app(*_args: object) -> None:
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, quit_app)
    ticker = QTimer(app)
    ticker.setInterval(250)
    ticker.timeout.connect(lambda: None)
    ticker.start()
