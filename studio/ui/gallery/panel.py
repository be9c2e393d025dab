"""The Gallery: every output in the history index, filtered, with its recipe at hand.

History queries, thumbnails, full-size pictures, recipe reads and deletes all run on the
pool (run_in_pool, runtime.trashcan); the GUI thread only shows what comes back, so
scrolling and filtering never stall.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QLabel,
    QListView,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import Request
from studio.core.trash import Trashed
from studio.runtime.tasks import run_in_pool
from studio.runtime.trashcan import TrashCan
from studio.ui.gallery.details import DetailsPane, recipe_text
from studio.ui.gallery.filters import FilterRow, Filters
from studio.ui.gallery.lightbox import Lightbox, read_full_image
from studio.ui.gallery.model import THUMB, GalleryModel, field_of, request_of
from studio.ui.images import kind_of, load_thumbnail, placeholder_image
from studio.ui.notice import Notice
from studio.ui.queue_dock import model_label
from studio.ui.widgets import guarded, refresh_icon

log = logging.getLogger(__name__)

SEARCH_LIMIT = 2000


def kind_of_item(item: Any) -> str:
    return str(field_of(item, "modality") or kind_of(str(field_of(item, "path", ""))))


class GalleryPanel(QWidget):
    """A filtered grid over the history index with a details pane and a lightbox."""

    play_requested = Signal(str)  # a music output's path: the music panel may play it
    open_requested = Signal(str)  # a text's path: open it as File → Open does (a chat whole)
    motif_requested = Signal(str)  # "Use as motif": a composer piece's path for the Music panel
    refreshed = Signal(int)  # number of items shown (tests and status)
    copied = Signal(str)  # "image" or "recipe": what was put on the clipboard
    infotext_loaded = Signal(str)  # the selected picture's A1111 text ("" when none)

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._query_serial = 0
        self._selected: Any = None
        self._infotext = ""
        self._want_path = ""  # select this output when it appears (after an Undo)
        self.trash = TrashCan(ctx.history, lambda: ctx.settings.output_path, self)
        self._build()
        # only jobs that saved something change the history (explorer frames save nothing)
        ctx.jobs.job_finished.connect(lambda _i, _r, paths: self.refresh() if paths else None)
        self.refresh()

    def _build(self) -> None:
        self.filters = FilterRow()
        self.search = self.filters.search
        self.modality = self.filters.modality
        self.rating_filter = self.filters.rating
        self.model_filter = self.filters.model
        self.date_filter = self.filters.date
        self.refresh_button = QToolButton()
        self.refresh_button.setIcon(refresh_icon())
        self.refresh_button.setToolTip("Refresh")
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(self.filters, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.count_label)

        self.model = GalleryModel(self)
        self.grid = QListView()
        self.grid.setObjectName("galleryGrid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 22, THUMB + 40))
        self.grid.setSpacing(6)
        self.grid.setWordWrap(False)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setModel(self.model)
        self.empty_label = QLabel("Nothing here yet: what you generate appears in the gallery.")
        self.empty_label.setObjectName("muted")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice = Notice()  # "Moved … to the trash. [Undo]"

        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(16, 14, 8, 14)
        lcol.setSpacing(10)
        lcol.addLayout(bar)
        lcol.addWidget(self.notice)
        lcol.addWidget(self.grid, 1)
        lcol.addWidget(self.empty_label)

        self.details = DetailsPane()
        self.details.model_name = lambda model: model_label(self.ctx, model)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([780, 380])
        splitter.setChildrenCollapsible(False)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)
        self._lightbox: Lightbox | None = None

        self.filters.changed.connect(self.refresh)
        self.refresh_button.clicked.connect(self.refresh)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._select(cur))
        self.grid.doubleClicked.connect(self._activated)
        d = self.details
        d.use_button.clicked.connect(self.use_settings)
        d.open_button.clicked.connect(self.open_file)
        d.folder_button.clicked.connect(self.open_folder)
        d.play_button.clicked.connect(self._play)
        d.rating.rating_changed.connect(self._rate)
        d.view_button.clicked.connect(self.open_lightbox)
        d.copy_image_button.clicked.connect(self.copy_image)
        d.copy_recipe_button.clicked.connect(self.copy_recipe)
        d.delete_button.clicked.connect(self.delete_selected)
        self.trash.trashed.connect(self._trashed)
        self.trash.restored.connect(self._restored)
        self.trash.failed.connect(self._trash_failed)
        for keys, slot, where in (
                (QKeySequence.StandardKey.Copy, self.copy_selected, self.grid),
                (QKeySequence.StandardKey.Delete, self.delete_selected, self.grid),
                (QKeySequence.StandardKey.Undo, self.undo_delete, self)):
            shortcut = QShortcut(QKeySequence(keys), where)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # ------------------------------------------------------------------ data
    def filter_values(self) -> Filters:
        return self.filters.values()

    def refresh(self) -> None:
        """Query the history on the pool; the newest answer wins."""
        self._query_serial += 1
        serial = self._query_serial
        f = self.filters.values()
        history = self.ctx.history

        def query() -> tuple[list[Any], list[str]]:
            items = history.filtered(f.text, f.modality, min_rating=f.min_rating,
                                     model=f.model, since=f.since, limit=SEARCH_LIMIT)
            return list(items), history.models()

        run_in_pool(query, guarded(self, lambda answer: self._loaded(serial, f, *answer)),
                    on_failed=guarded(self, lambda msg: self._failed(serial, msg)))

    def _loaded(self, serial: int, filters: Filters, items: list[Any],
                models: list[str]) -> None:
        if serial != self._query_serial:
            return
        self.filters.set_models(models, lambda m: model_label(self.ctx, m))
        keep = self._want_path or (
            str(field_of(self._selected, "path", "")) if self._selected is not None else "")
        old_row = self.grid.currentIndex().row()
        self.model.set_items(items)
        n = len(items)
        self.count_label.setText(f"{n} item" + ("" if n == 1 else "s"))
        self.empty_label.setVisible(n == 0)
        if n == 0 and filters.narrowed:
            self.empty_label.setText("No outputs match.")
        else:
            self.empty_label.setText(
                "Nothing here yet: what you generate appears in the gallery.")
        row = next((r for r, it in enumerate(items) if str(field_of(it, "path", "")) == keep), -1)
        if row < 0 and keep and self._selected is not None and not Path(keep).exists() \
                and old_row >= 0 and n:
            row = min(old_row, n - 1)  # the selected output was deleted: its neighbour
        if row >= 0:
            self._want_path = ""
            self.grid.setCurrentIndex(self.model.index(row))
        else:
            self._selected = None
            self.details.show_item(None)
        self.refreshed.emit(n)

    def _failed(self, serial: int, message: str) -> None:
        if serial == self._query_serial:
            self.count_label.setText("")
            self.ctx.message.emit(f"Could not read the history: {message}")
            self.refreshed.emit(0)

    def item_count(self) -> int:
        return self.model.rowCount()

    def items(self) -> list[Any]:
        return list(self.model.items)

    def select_row(self, row: int) -> None:
        self.grid.setCurrentIndex(self.model.index(row))

    def selected_item(self) -> Any:
        return self._selected

    def row_of_path(self, path: str | Path) -> int:
        key = str(path)
        return next((r for r, it in enumerate(self.model.items)
                     if str(field_of(it, "path", "")) == key), -1)

    # ------------------------------------------------------------------ selection
    def _select(self, index: QModelIndex) -> None:
        item = self.model.data(index, GalleryModel.ItemRole) if index.isValid() else None
        self._selected = item
        self._infotext = ""
        if item is None:
            self.details.show_item(None)
            return
        path = Path(str(field_of(item, "path", "")))
        missing = not path.exists()
        self.details.show_item(item, None, missing)
        if missing:
            return
        kind = kind_of_item(item)
        if kind == "image":
            run_in_pool(lambda: load_thumbnail(path, 1024),
                        guarded(self, lambda img: self._big_loaded(item, img)))
            run_in_pool(lambda: _infotext_of(path),
                        guarded(self, lambda text: self._infotext_read(item, text)))
        else:
            self.details.view.set_image(load_thumbnail(path, 320) if kind == "text"
                                        else placeholder_image(kind, 320))

    def _big_loaded(self, item: Any, image: QImage) -> None:
        if item is self._selected:
            self.details.view.set_image(image)

    def _infotext_read(self, item: Any, text: str) -> None:
        if item is self._selected:
            self._infotext = text
            self.details.set_infotext(text)
            self.infotext_loaded.emit(text)

    # ------------------------------------------------------------------ actions
    def use_settings(self) -> None:
        """Send the selected output's request to its panel (the main window routes it)."""
        item = self._selected
        if item is None:
            return
        try:
            request = Request.from_dict(request_of(item))
        except StudioError as exc:
            self.details.message.show_error(f"This output's recipe cannot be used: {exc}")
            return
        except (TypeError, ValueError):
            self.details.message.show_error("This output has no usable recipe.")
            return
        path = self._path()
        if request.kind == "text" and path is not None and path.is_file():
            self.open_requested.emit(str(path))  # a chat comes back with every turn
            return
        self.ctx.use_recipe(request)

    def use_as_motif(self) -> None:
        """Start the next composer piece from the selected piece's notes (its .mid)."""
        path = self._path()
        if path is not None and kind_of_item(self._selected) == "music":
            self.motif_requested.emit(str(path))

    def _path(self) -> Path | None:
        return Path(str(field_of(self._selected, "path"))) if self._selected is not None else None

    def _activated(self, index: QModelIndex) -> None:
        """Double-click: a picture opens in the lightbox, anything else in its own app."""
        item = self.model.data(index, GalleryModel.ItemRole)
        if item is not None and kind_of_item(item) == "image":
            self.open_lightbox()
        else:
            self.open_file()

    def open_file(self) -> None:
        path = self._path()
        if path is not None and path.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def open_folder(self) -> None:
        path = self._path()
        if path is not None and path.parent.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))

    def _play(self) -> None:
        path = self._path()
        if path is not None:
            self.play_requested.emit(str(path))

    def _rate(self, stars: int) -> None:
        item = self._selected
        if item is None:
            return
        item_id = field_of(item, "id")
        try:
            self.ctx.history.set_rating(item_id, stars)
        except Exception as exc:  # the index may be read-only or gone; say so once
            log.warning("rating failed: %s", exc)
            self.details.message.show_error("Could not save the rating.")
            return
        updated = {**item, "rating": stars} if isinstance(item, dict) else (
            dataclasses.replace(item, rating=stars) if dataclasses.is_dataclass(item) else item)
        row = self.grid.currentIndex().row()
        if 0 <= row < len(self.model.items) and self.model.items[row] is item:
            self.model.items[row] = updated
        self._selected = updated

    # ------------------------------------------------------------------ lightbox
    @property
    def lightbox(self) -> Lightbox:
        """The full-window view, made on first use over this panel's window."""
        if self._lightbox is None:
            self._lightbox = Lightbox(self.window())
            self._lightbox.current_changed.connect(self._lightbox_moved)
            self._lightbox.closed.connect(self.grid.setFocus)
        return self._lightbox

    def open_lightbox(self) -> None:
        """Show the selected picture over the window; ←/→ walk the grid's pictures."""
        path = self._path()
        if path is None or not path.exists() or kind_of_item(self._selected) != "image":
            return
        pictures = [str(field_of(it, "path", "")) for it in self.model.items
                    if kind_of_item(it) == "image"]
        self.lightbox.open(pictures, pictures.index(str(path)))

    def _lightbox_moved(self, path: str) -> None:
        row = self.row_of_path(path)
        if row >= 0 and row != self.grid.currentIndex().row():
            self.grid.setCurrentIndex(self.model.index(row))

    # ------------------------------------------------------------------ clipboard
    def copy_selected(self) -> None:
        """Ctrl+C in the grid: the picture for a picture, the recipe for anything else."""
        if self._selected is not None and kind_of_item(self._selected) == "image":
            self.copy_image()
        else:
            self.copy_recipe()

    def copy_image(self) -> None:
        """Put the selected picture, at full size, on the clipboard (decoded on the pool)."""
        path = self._path()
        if path is None or not path.exists():
            return

        def done(image: QImage) -> None:
            QApplication.clipboard().setImage(image)
            self.ctx.message.emit(f"Copied {path.name} to the clipboard.")
            self.copied.emit("image")

        run_in_pool(lambda: read_full_image(path), guarded(self, done),
                    on_failed=guarded(self, self.details.message.show_error))

    def copy_recipe(self) -> None:
        """The A1111 infotext (pictures that have one) or the recipe as JSON."""
        if self._selected is None:
            return
        QApplication.clipboard().setText(recipe_text(self._selected, self._infotext))
        self.ctx.message.emit("Copied the recipe to the clipboard.")
        self.copied.emit("recipe")

    # ------------------------------------------------------------------ trash
    def delete_selected(self) -> None:
        """Move the selected output (and its companions) to the trash; Undo puts it back."""
        path = self._path()
        if path is None:
            return
        self.details.delete_button.setEnabled(False)
        self.trash.delete(path)

    def undo_delete(self) -> bool:
        """Put the most recent delete back (Ctrl+Z or the notice's Undo)."""
        entry = self.trash.last()
        if entry is None:
            return False
        self._want_path = str(entry.path)
        self.notice.dismiss()
        return self.trash.undo()

    def _trashed(self, entry: Trashed) -> None:
        self.model.thumbs.forget(str(entry.path))
        self.notice.show_notice(f"Moved {entry.path.name} to the trash folder.", "Undo",
                                self.undo_delete)
        self.refresh()

    def _restored(self, path: Path) -> None:
        self.notice.show_notice(f"Put {Path(path).name} back.")
        self.refresh()

    def _trash_failed(self, message: str) -> None:
        self._want_path = ""
        self.details.delete_button.setEnabled(self._selected is not None)
        self.notice.show_notice(message)


def _infotext_of(path: Path) -> str:
    """The A1111 parameters text a picture carries ("" when none or unreadable)."""
    from studio.core.recipes import read_recipe

    try:
        return read_recipe(path).parameters or ""
    except StudioError:
        return ""
