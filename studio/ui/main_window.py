"""The main window: one tab per modality, the gallery and models, a queue dock, a status bar.

It wires panels to the shared AppContext and routes cross-panel requests
("use these settings", a dropped file's recipe, "send to Art") to the right tab.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio import __version__ as _version
from studio.core import paths
from studio.core.errors import StudioError
from studio.core.text import first_line
from studio.runtime.context import AppContext
from studio.runtime.tasks import run_in_pool
from studio.ui.images import app_icon
from studio.ui.notice import Notice
from studio.ui.queue_dock import QueueDock
from studio.ui.status_bar import StatusBar
from studio.ui.widgets import guarded

if TYPE_CHECKING:  # the event classes too: PySide makes each class (and its enums) on first use
    from PySide6.QtGui import (
        QCloseEvent,
        QDragEnterEvent,
        QDragMoveEvent,
        QDropEvent,
        QPaintEvent,
        QShowEvent,
    )

    from studio.core.chat import Conversation
    from studio.core.requests import Request
    from studio.ui.art_panel import ArtPanel
    from studio.ui.explore_panel import ExplorePanel
    from studio.ui.gallery import GalleryPanel
    from studio.ui.models_view import ModelsView
    from studio.ui.music_panel import MusicPanel
    from studio.ui.settings_dialog import SettingsDialog
    from studio.ui.text_panel import TextPanel

log = logging.getLogger(__name__)

#: request kind → tab key; kinds registered later (explorer) fall back to "explore"
KIND_TO_TAB = {"image": "art", "music": "music", "text": "text", "explore": "explore"}
TABS = (("art", "Art"), ("music", "Music"), ("text", "Text"), ("explore", "Explore"),
        ("gallery", "Gallery"), ("models", "Models"), ("lab", "Lab"))


#: the Art page is built this long after show() at the latest, and `ready` sent this long
#: after it is built, painted or not (a platform that shows without painting, say)
FIRST_FRAME_FALLBACK_MS = 1000

#: who wrote a recipe, as Recipe.source names it → how the notice names it
SOURCE_NAMES = {"studio": "Studio", "a1111": "AUTOMATIC1111", "comfyui": "ComfyUI",
                "invokeai": "InvokeAI", "fooocus": "Fooocus", "novelai": "NovelAI"}


def window_state_store() -> QSettings:
    """Window geometry lives beside settings.json (so tests with their own home stay apart)."""
    return QSettings(str(paths.studio_home() / "window.ini"), QSettings.Format.IniFormat)


@contextmanager
def style_sheet_lifted() -> Iterator[None]:
    """Widgets built inside are styled once, when the application's style sheet comes back.

    Under an application style sheet Qt restyles a whole subtree each time it is
    reparented, so a panel built bottom-up (rows into groups into columns) pays for its
    styling once per level: the Art panel builds 2–4× faster with the sheet lifted, even
    counting the restyling of the widgets already shown when it returns. Nothing is painted
    in between (no event is processed inside), so nobody sees the window unstyled.
    """
    app = QApplication.instance()
    sheet = app.styleSheet() if isinstance(app, QApplication) else ""
    if not sheet:
        yield
        return
    app.setStyleSheet("")
    try:
        yield
    finally:
        app.setStyleSheet(sheet)


class MainWindow(QMainWindow):
    """Studio's window. Construct with an AppContext; closing it shuts the context down."""

    recipe_loaded = Signal(object)  # the Request a dropped file filled a panel with
    drop_failed = Signal(str)  # the sentence shown when a dropped file holds no recipe
    recipe_notes = Signal(list)  # what the import of a dropped/opened file had to change
    #: once, when the Art page (built on the event-loop turn after the first paint) has been
    #: painted too: the moment to start work that would slow those frames (model scan,
    #: ML warm-up)
    ready = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._closed = False
        self.setWindowTitle("Studio")
        if QApplication.windowIcon().isNull():  # else the application's (drawn once) is ours
            self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)

        # Start-up: the window paints first. The Art panel (and its module) is built on the
        # event-loop turn right after that first paint, or as soon as anything asks for it
        # (`window.art`); the other pages the first time their tab is shown or something is
        # routed to them.
        self.pages: dict[str, QWidget] = {}  # the pages built so far
        self._art_state: str | None = None  # the saved Art request, for the Art panel
        self._first_frame_done = False
        self._awaiting_art_paint = False  # ready waits for the Art panel's first paint
        self._ready_sent = False
        self._factories: dict[str, Callable[[], QWidget]] = {
            "art": self._make_art, "music": self._make_music, "text": self._make_text,
            "explore": self._make_explore, "gallery": self._make_gallery,
            "models": self._make_models, "lab": self._make_lab,
        }
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setObjectName("mainTabs")
        self._frames: dict[str, QScrollArea] = {}
        for key, title in TABS:
            # a page wider or taller than the window scrolls instead of growing the window
            frame = QScrollArea()
            frame.setObjectName("pageFrame")
            frame.setWidgetResizable(True)
            frame.setFrameShape(QScrollArea.Shape.NoFrame)
            self._frames[key] = frame
            self.tabs.addTab(frame, title)
        self.tabs.currentChanged.connect(lambda _i: self.page(self.current_tab()))
        # what an import had to change stays on screen until it is read
        self.notice = Notice()
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.notice)
        col.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.queue = QueueDock(ctx, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.queue)
        self.resizeDocks([self.queue], [250], Qt.Orientation.Horizontal)
        self.status = StatusBar(ctx, self)
        self.setStatusBar(self.status)
        self.ready.connect(self.status.update_memory)  # its first reading, after the frame
        self._build_menus()

        # text boxes accept dropped files as text; a file dropped anywhere loads its recipe.
        # The filter that sees every widget's drops is installed once a page exists (nothing
        # before can take a drop): an application-wide Python filter makes PySide wrap every
        # object that gets an event, and the first of a class it does not export (this
        # window's layout, an animation timer) makes it create every Qt class at once,
        # ~30 ms that would come before the first frame.
        self._drop_types = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)
        self._watching_drops = False

        ctx.recipe_requested.connect(self.route_request)
        ctx.prompt_for_art.connect(self.send_prompt_to_art)
        self.resize(1280, 820)
        self.restore_state()

    # ------------------------------------------------------------------ pages
    def page(self, key: str) -> QWidget:
        """The page of a tab, built (and its module imported) on first use.

        The drop filter sits the build out: Qt restyles each new widget every time it is
        reparented (a panel is assembled bottom-up), and each of those events would be a
        Python call (the Music or Text page builds in about half the time without it)."""
        if key not in self.pages:
            self._unwatch_drops()
            try:
                self._build(key)
            finally:
                self._watch_drops()
        return self.pages[key]

    def _build(self, key: str) -> QWidget:
        page = self.pages.get(key)
        if page is None:
            page = self._factories[key]()
            self.pages[key] = page
            self._frames[key].setWidget(page)
        return page

    def _watch_drops(self) -> None:
        """Install the application-wide drop filter (once; never after close)."""
        if not self._watching_drops and not self._closed:
            self._watching_drops = True
            QApplication.instance().installEventFilter(self)

    def _unwatch_drops(self) -> None:
        if self._watching_drops:
            self._watching_drops = False
            QApplication.instance().removeEventFilter(self)

    def is_built(self, key: str) -> bool:
        """Whether a page exists. Art is the eager page: asking about it builds it now (as
        `window.art` does) if the turn after the first paint has not come yet."""
        if key == "art":
            self.page("art")
        return key in self.pages

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if not self._first_frame_done:
            # the next turn of the event loop, once this first frame is on screen
            QTimer.singleShot(0, self, self._after_first_frame)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._first_frame_done:  # a platform that shows without painting, say
            QTimer.singleShot(FIRST_FRAME_FALLBACK_MS, self, self._after_first_frame)

    def _after_first_frame(self) -> None:
        """Build the Art page now that the window is on screen, then say it is ready."""
        if self._first_frame_done or self._closed:
            return
        self._first_frame_done = True
        if "art" not in self.pages:
            # restyling sends every widget a few events: the drop filter sits them out
            self._unwatch_drops()
            try:
                with style_sheet_lifted():
                    self._build("art")
            finally:
                self._watch_drops()
        self._watch_drops()
        if self._frames["art"].isVisible():  # once the Art panel is on screen too
            self._awaiting_art_paint = True
            QTimer.singleShot(FIRST_FRAME_FALLBACK_MS, self, self._emit_ready)
        else:  # another tab was restored: nothing more to wait for
            QTimer.singleShot(0, self, self._emit_ready)

    def _emit_ready(self) -> None:
        self._awaiting_art_paint = False
        if not self._ready_sent and not self._closed:
            self._ready_sent = True
            self.ready.emit()

    def _make_art(self) -> QWidget:
        from studio.ui.art_panel import ArtPanel

        art = ArtPanel(self.ctx)
        if self._art_state is not None:
            self._restore_art(art)
        return art

    @property
    def art(self) -> ArtPanel:
        return self.page("art")  # type: ignore[return-value]

    def _make_music(self) -> QWidget:
        from studio.ui.music_panel import MusicPanel

        return MusicPanel(self.ctx)

    def _make_text(self) -> QWidget:
        from studio.ui.text_panel import TextPanel

        return TextPanel(self.ctx)

    def _make_explore(self) -> QWidget:
        from studio.ui.explore_panel import ExplorePanel

        return ExplorePanel(self.ctx)

    def _make_gallery(self) -> QWidget:
        from studio.ui.gallery import GalleryPanel

        gallery = GalleryPanel(self.ctx)
        gallery.play_requested.connect(self._play)
        gallery.open_requested.connect(lambda path: self.load_recipe_file(Path(path)))
        gallery.motif_requested.connect(self._use_as_motif)
        gallery.init_requested.connect(self.send_init_to_art)
        return gallery

    def _make_models(self) -> QWidget:
        from studio.ui.models_view import ModelsView

        return ModelsView(self.ctx)

    def _make_lab(self) -> QWidget:
        from studio.ui.lab.panel import LabPanel

        return LabPanel(self.ctx)

    @property
    def music(self) -> MusicPanel:
        return self.page("music")  # type: ignore[return-value]

    @property
    def text(self) -> TextPanel:
        return self.page("text")  # type: ignore[return-value]

    @property
    def explore(self) -> ExplorePanel:
        return self.page("explore")  # type: ignore[return-value]

    @property
    def gallery(self) -> GalleryPanel:
        return self.page("gallery")  # type: ignore[return-value]

    @property
    def models(self) -> ModelsView:
        return self.page("models")  # type: ignore[return-value]

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = QAction("Open…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setToolTip("Load the recipe of a picture, piece or text")
        self.open_action.triggered.connect(self.open_file_dialog)
        file_menu.addAction(self.open_action)
        self.open_output_action = QAction("Open output folder", self)
        self.open_output_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_output_action.triggered.connect(self.open_output_folder)
        file_menu.addAction(self.open_output_action)
        self.settings_action = QAction("Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        rescan = QAction("Rescan model folders", self)
        rescan.triggered.connect(self.ctx.rescan_models)
        file_menu.addAction(rescan)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view = bar.addMenu("&View")
        for n, (key, title) in enumerate(TABS, start=1):
            action = QAction(title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{n}"))
            action.triggered.connect(lambda _c=False, k=key: self.show_tab(k))
            view.addAction(action)
        view.addSeparator()
        queue_action = self.queue.toggleViewAction()
        queue_action.setText("Queue")
        queue_action.setShortcut(QKeySequence("Ctrl+Shift+Q"))
        view.addAction(queue_action)

        help_menu = bar.addMenu("&Help")
        shortcuts = QAction("Keyboard shortcuts", self)
        shortcuts.triggered.connect(self.show_shortcuts)
        help_menu.addAction(shortcuts)
        about = QAction("About Studio", self)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def show_tab(self, key: str) -> None:
        self.tabs.setCurrentWidget(self._frames[key])

    def current_tab(self) -> str:
        frame = self.tabs.currentWidget()
        return next(k for k, w in self._frames.items() if w is frame)

    def open_output_folder(self) -> None:
        folder = self.ctx.settings.output_path
        folder.mkdir(parents=True, exist_ok=True)
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def open_file_dialog(self) -> None:
        """File → Open: any output or another app's picture; its recipe fills a panel."""
        from PySide6.QtWidgets import QFileDialog

        from studio.core.recipes import READERS

        suffixes = " ".join(f"*{s}" for s in sorted(READERS))
        start = str(self.ctx.settings.output_path)
        name, _filter = QFileDialog.getOpenFileName(
            self, "Open a recipe", start,
            f"Pictures, music and text with a recipe ({suffixes});;All files (*)")
        if name:
            self.load_recipe_file(Path(name))

    def open_settings(self) -> SettingsDialog:
        from studio.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.ctx, self)
        dialog.open()
        return dialog

    def show_about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.about(
            self, "About Studio",
            f"<h3>Studio {_version}</h3>"
            "<p>Pictures, music and text from models on your own machine. "
            "Nothing leaves your computer.</p>"
            "<p>Every output carries its recipe: drop a file on the window "
            "(or open it with File → Open) to load its settings again.</p>")

    def show_shortcuts(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.information(
            self, "Keyboard shortcuts",
            "Ctrl+O\tOpen a file's recipe\nCtrl+Enter\tGenerate\nEsc\tCancel the panel's jobs\n"
            "Ctrl+1 … Ctrl+7\tSwitch tabs\nCtrl+Shift+Q\tShow or hide the queue\n"
            "Ctrl+,\tSettings\nCtrl+Shift+O\tOpen the output folder\nCtrl+Q\tQuit")

    # ------------------------------------------------------------------ routing
    def route_request(self, request: Request) -> None:
        """Fill the panel that makes this kind of output and bring it to the front."""
        key = KIND_TO_TAB.get(request.kind, "explore")
        page = self.page(key)
        model = request.model
        if model and not any(e.id == model for e in self.ctx.models):
            # other apps record "sd15.safetensors", not our path: find what is installed
            from studio.core.recipes import match_model

            found = match_model(model, self.ctx.models)
            if found:
                request = request.replace(model=found)
        try:
            page.apply_request(request)
        except StudioError as exc:
            self.status.notify(str(exc))
            return
        self.show_tab(key)
        article = "an" if request.kind[:1] in ("a", "e", "i", "o", "u") else "a"
        self.status.notify(f"Loaded {article} {request.kind} recipe into {key.title()}.")

    def send_prompt_to_art(self, text: str) -> None:
        self.art.set_prompt(text)
        self.show_tab("art")

    def send_init_to_art(self, path: str) -> None:
        """"Use as init" in the gallery: the Art canvas starts from that picture."""
        if self.art.use_file_as_init(path):
            self.show_tab("art")

    def _play(self, path: str) -> None:
        """The gallery's play button: the Music panel plays it."""
        self.show_tab("music")
        try:
            self.music.play_file(path)
        except Exception:  # a player problem is one line in the status bar, not a crash
            log.exception("playing %s failed", path)
            self.status.notify(f"Could not play {Path(path).name}.")

    def _use_as_motif(self, path: str) -> None:
        """The gallery's "Use as motif": the Music panel takes the piece's notes."""
        self.show_tab("music")
        self.music.use_as_motif(path)

    # ------------------------------------------------------------------ drag & drop
    @staticmethod
    def _dropped_files(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def _takes_own_drops(self, widget: QWidget) -> bool:
        """Whether a widget (or one it sits in) accepts drops itself and is no text box: the
        Lab's data-folder field, the Art canvas. Text boxes accept anything as text, so a
        file dropped on them is the window's; a widget that asked for drops keeps its own,
        whatever order the application's event filters were installed in."""
        # here, not at import: PySide makes each class (and its enums) on first use
        from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLineEdit

        text_inputs = (QAbstractScrollArea, QLineEdit, QAbstractSpinBox, QComboBox)
        w: QWidget | None = widget
        while w is not None and w is not self:
            parent = w.parentWidget()
            in_text_box = isinstance(parent, QAbstractScrollArea) and w is parent.viewport()
            if w.acceptDrops() and not in_text_box and not isinstance(w, text_inputs):
                return True
            w = parent
        return False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        """Files dragged over any widget of this window (a prompt box included) are ours,
        unless the widget takes drops itself (`_takes_own_drops`).

        It also sees the Art panel's first paint, after which the window is ready."""
        kind = event.type()
        if self._awaiting_art_paint and kind == QEvent.Type.Paint and obj is self.pages.get(
                "art"):
            self._awaiting_art_paint = False
            QTimer.singleShot(0, self, self._emit_ready)  # after this frame is out
        if kind not in self._drop_types or obj is self:
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self:
            return False
        if not self._dropped_files(event):  # plain text drags go to the text boxes
            return False
        if self._takes_own_drops(obj):
            return False
        if event.type() == QEvent.Type.Drop:
            self.dropEvent(event)
        else:
            event.acceptProposedAction()
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if self._dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt API
        if self._dropped_files(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        files = self._dropped_files(event)
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.load_recipe_file(files[0])

    def load_recipe_file(self, path: Path) -> None:
        """Read a file's recipe on the pool, then fill the right panel (or say why not).

        Dropped files and File → Open both come here. What the import had to change
        (a seed folded, a sampler replaced, parts dropped) is shown in a notice that
        stays until closed.
        """
        path = Path(path)
        self.status.notify(f"Reading the recipe in {path.name}…")
        unreadable = f"{path.name} holds no recipe Studio can read."

        def read() -> tuple[Request, list[str], str, Conversation | None, dict | None] | str:
            from studio.core.chat import RECORD_KEY, Conversation
            from studio.core.recipes import read_recipe

            try:
                recipe = read_recipe(path)
                request = recipe.to_request()
                front = recipe.raw.get("front_matter") or {}
                conversation = (Conversation.from_record(recipe.request, front[RECORD_KEY], path)
                                if isinstance(front, dict) and RECORD_KEY in front else None)
            except StudioError as exc:
                return first_line(exc, unreadable)
            except Exception:  # any other failure is still one sentence, never a traceback
                log.debug("reading a recipe from %s failed", path, exc_info=True)
                return unreadable
            notes = list(recipe.notes)
            extra = recipe.request.get("notes")
            for note in extra if isinstance(extra, list) else []:
                if isinstance(note, str) and note not in notes:
                    notes.append(note)
            from studio.core.grid import grid_recipe_in  # a grid image's plot, or None

            return request, notes, recipe.source, conversation, grid_recipe_in(recipe.raw)

        run_in_pool(read, guarded(self, lambda value: self._recipe_read(value, path)),
                    on_failed=guarded(self, lambda _m: self._recipe_read(unreadable, path)))

    def _recipe_read(self, value: tuple[Request, list[str], str, Conversation | None,
                                        dict | None] | str, path: Path) -> None:
        if isinstance(value, str):
            self.notice.dismiss()
            self.status.notify(value)
            self.drop_failed.emit(value)
            return
        request, notes, source, conversation, plot = value
        self.route_request(request)
        if plot is not None and request.kind == "image":  # a grid image: its plot too
            self.art.apply_plot(plot)
        if conversation is not None:  # a saved chat: every turn back, ready to go on
            self.text.chat.load(conversation)
            self.text.set_mode("chat")
        if notes:
            who = SOURCE_NAMES.get(source, source)
            lines = "\n".join(f"• {n}" for n in notes)
            self.notice.show_notice(
                f"{path.name} ({who}): the recipe was loaded with these changes:\n{lines}")
        else:
            self.notice.dismiss()
        self.recipe_notes.emit(list(notes))
        self.recipe_loaded.emit(request)

    # ------------------------------------------------------------------ state
    def restore_state(self) -> None:
        store = window_state_store()
        geometry = store.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = store.value("window/state")
        if state is not None:
            self.restoreState(state)
        tab = store.value("window/tab")
        if isinstance(tab, str) and tab in self._frames:
            self.show_tab(tab)
        art = store.value("art/request")
        if isinstance(art, str) and art:  # the Art panel takes it when it is built
            self._art_state = art
            if "art" in self.pages:
                self._restore_art(self.art)

    def _restore_art(self, art: ArtPanel) -> None:
        """Fill the Art panel with the request it held when Studio last closed."""
        from studio.core.requests import ImageRequest, Request

        state, self._art_state = self._art_state, None
        try:
            request = Request.from_dict(json.loads(state)) if state else None
        except (ValueError, StudioError):
            request = None
        if isinstance(request, ImageRequest):
            art.apply_request(request)
            art.message.clear_message()

    def save_state(self) -> None:
        store = window_state_store()
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState())
        store.setValue("window/tab", self.current_tab())
        if "art" in self.pages:
            store.setValue("art/request", json.dumps(self.art.request().to_dict()))
        elif self._art_state is not None:  # closed before it was built: keep what it had
            store.setValue("art/request", self._art_state)
        store.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if not self._closed:
            self._unwatch_drops()
            self._closed = True
            try:
                self.save_state()
            except Exception:  # a read-only home must not stop Studio from closing
                log.warning("could not save the window state", exc_info=True)
            self.ctx.shutdown()
        super().closeEvent(event)
