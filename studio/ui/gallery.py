"""The Gallery: every output in the history index, searchable, with its recipe at hand.

History queries and thumbnail decoding run on the pool (run_in_pool); the GUI
thread only turns finished QImages into pixmaps, so scrolling never stalls.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import Request
from studio.runtime.tasks import run_in_pool
from studio.ui.images import fit_square, kind_of, load_thumbnail, placeholder_image
from studio.ui.queue_dock import model_label, short_model
from studio.ui.widgets import (
    ImageView,
    MessageLabel,
    StarRating,
    folder_icon,
    guarded,
    play_icon,
    refresh_icon,
    section_label,
)

log = logging.getLogger(__name__)

THUMB = 148
SEARCH_LIMIT = 2000
MODALITIES = (("All outputs", None), ("Images", "image"), ("Music", "music"), ("Text", "text"))


def field_of(item: Any, name: str, default: Any = None) -> Any:
    """Read a field of a history item whether it is an object or a mapping."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def request_of(item: Any) -> dict:
    req = field_of(item, "request") or {}
    return req if isinstance(req, dict) else {}


def describe_size(item: Any) -> str:
    """"512 × 768" for pictures, "12.0 s" for music, "" for text."""
    req = request_of(item)
    kind = field_of(item, "modality") or req.get("kind", "")
    if kind == "music":
        dur = field_of(item, "duration") or req.get("duration")
        return f"{float(dur):.1f} s" if dur else ""
    w = field_of(item, "width") or req.get("width")
    h = field_of(item, "height") or req.get("height")
    return f"{w} × {h}" if w and h else ""


def describe_time(value: Any) -> str:
    """A stored timestamp (ISO text, usually UTC, or seconds) in local time."""
    if value is None or value == "":
        return ""
    try:
        if isinstance(value, (int, float)):
            when = _dt.datetime.fromtimestamp(float(value))
        else:
            when = _dt.datetime.fromisoformat(str(value))
            if when.tzinfo is not None:
                when = when.astimezone()
    except (ValueError, OSError, OverflowError):
        return str(value)
    return when.strftime("%Y-%m-%d %H:%M")


class ThumbnailCache:
    """Pixmaps by (path, mtime), decoded on the pool, least recently used dropped."""

    def __init__(self, on_ready: Callable[[str], None], capacity: int = 600,
                 size: int = THUMB) -> None:
        self._items: OrderedDict[str, QIcon] = OrderedDict()
        self._pending: set[str] = set()
        self._on_ready = on_ready
        self.capacity = capacity
        self.size = size
        self.placeholders = {
            k: QIcon(QPixmap.fromImage(placeholder_image(k, size)))
            for k in ("image", "music", "text", "missing", "file")
        }

    def get(self, path: str) -> QIcon | None:
        """The cached icon, or None after asking the pool to make it."""
        icon = self._items.get(path)
        if icon is not None:
            self._items.move_to_end(path)
            return icon
        if path not in self._pending:
            self._pending.add(path)
            size = self.size
            run_in_pool(lambda: fit_square(load_thumbnail(path, size), size),
                        lambda img: self._done(path, img),
                        on_failed=lambda _m: self._done(path, placeholder_image("missing", size)))
        return None

    def _done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._items[path] = QIcon(QPixmap.fromImage(image))
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        self._on_ready(path)

    def forget(self, path: str) -> None:
        self._items.pop(path, None)

    def is_loading(self) -> bool:
        return bool(self._pending)


class GalleryModel(QAbstractListModel):
    """History items as a list model; thumbnails fill in as the pool makes them."""

    ItemRole = Qt.ItemDataRole.UserRole + 1
    PathRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[Any] = []
        self._row_of: dict[str, int] = {}
        self.thumbs = ThumbnailCache(guarded(self, self._thumb_ready))

    def set_items(self, items: list[Any]) -> None:
        """Show a new query result; new outputs on top are inserted (the view keeps its
        place and selection) instead of resetting the whole model."""
        items = list(items)
        old = [str(field_of(it, "path")) for it in self.items]
        new = [str(field_of(it, "path")) for it in items]
        added = len(new) - len(old)
        if old and new == old:
            self.items = items
            self.dataChanged.emit(self.index(0), self.index(len(items) - 1))
        elif old and added > 0 and new[added:] == old:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self.items = items
            self._row_of = {p: r for r, p in enumerate(new)}
            self.endInsertRows()
        else:
            self.beginResetModel()
            self.items = items
            self._row_of = {p: r for r, p in enumerate(new)}
            self.endResetModel()

    def rowCount(  # noqa: N802 - Qt API
        self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()
    ) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        path = str(field_of(item, "path", ""))
        if role == Qt.ItemDataRole.DisplayRole:
            prompt = (field_of(item, "prompt") or request_of(item).get("prompt") or "").strip()
            return (prompt[:40] + "…") if len(prompt) > 40 else (prompt or Path(path).name)
        if role == Qt.ItemDataRole.DecorationRole:
            icon = self.thumbs.get(path)
            if icon is not None:
                return icon
            kind = field_of(item, "modality") or kind_of(path)
            return self.thumbs.placeholders.get(kind, self.thumbs.placeholders["file"])
        if role == Qt.ItemDataRole.ToolTipRole:
            prompt = field_of(item, "prompt") or request_of(item).get("prompt") or ""
            return f"{prompt}\n{path}" if prompt else path
        if role == self.ItemRole:
            return item
        if role == self.PathRole:
            return path
        return None

    def _thumb_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class DetailsPane(QWidget):
    """The selected output: a larger view, its recipe fields, rating and actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsPane")
        self.view = ImageView("Select an output to see its details.")
        self.view.setMinimumHeight(220)
        self.prompt = QLabel("")
        self.prompt.setWordWrap(True)
        self.prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.prompt.setObjectName("promptText")
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(6)
        for name in ("Model", "Seed", "Size", "Created", "File"):
            value = QLabel("")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.fields[name] = value
            label = QLabel(name)
            label.setObjectName("muted")
            form.addRow(label, value)
        self.rating = StarRating()
        rating_label = QLabel("Rating")
        rating_label.setObjectName("muted")
        form.addRow(rating_label, self.rating)
        self.use_button = QPushButton("Use these settings")
        self.use_button.setObjectName("primary")
        self.use_button.setToolTip("Fill the matching panel with this output's recipe")
        self.open_button = QPushButton("Open file")
        self.folder_button = QPushButton(folder_icon(), "Show folder")
        self.play_button = QPushButton(play_icon(), "Play")
        self.play_button.setToolTip("Play this piece")
        self.play_button.hide()
        self.model_name = short_model  # GalleryPanel swaps in the catalog's names
        self.message = MessageLabel()
        actions = QHBoxLayout()
        actions.setSpacing(6)
        actions.addWidget(self.open_button)
        actions.addWidget(self.folder_button)
        actions.addWidget(self.play_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(14, 14, 16, 14)
        col.setSpacing(8)
        col.addWidget(self.view, 1)
        col.addWidget(section_label("Prompt"))
        col.addWidget(self.prompt)
        col.addLayout(form)
        col.addWidget(self.use_button)
        col.addLayout(actions)
        col.addWidget(self.message)
        self.show_item(None)

    def show_item(self, item: Any, image: QImage | None = None, missing: bool = False) -> None:
        has = item is not None
        for w in (self.use_button, self.open_button, self.folder_button, self.rating):
            w.setEnabled(has)
        self.message.clear_message()
        if not has:
            self.view.set_image(None)
            self.prompt.setText("")
            for label in self.fields.values():
                label.setText("")
            self.rating.set_rating(0)
            self.play_button.hide()
            return
        req = request_of(item)
        path = str(field_of(item, "path", ""))
        prompt = field_of(item, "prompt") or req.get("prompt") or ""
        self.prompt.setText(prompt or "(no prompt)")
        model = str(field_of(item, "model") or req.get("model") or "")
        self.fields["Model"].setText(self.model_name(model))
        self.fields["Model"].setToolTip(model)
        seed = field_of(item, "seed")
        self.fields["Seed"].setText(str(seed if seed is not None else req.get("seed", "")))
        self.fields["Size"].setText(describe_size(item))
        self.fields["Created"].setText(describe_time(field_of(item, "created")))
        self.fields["File"].setText(Path(path).name + ("  (file missing)" if missing else ""))
        self.fields["File"].setToolTip(path)
        self.rating.set_rating(int(field_of(item, "rating", 0) or 0))
        kind = field_of(item, "modality") or kind_of(path)
        self.play_button.setVisible(kind == "music" and not missing)
        self.open_button.setEnabled(not missing)
        self.view.set_image(image, "file missing" if missing else "")
        if missing:
            self.message.show_error("This file is missing: it was moved or deleted.")


class GalleryPanel(QWidget):
    """A searchable grid over the history index with a details pane."""

    play_requested = Signal(str)  # a music output's path: the music panel may play it
    refreshed = Signal(int)  # number of items shown (tests and status)

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._query_serial = 0
        self._selected: Any = None
        self._build()
        # only jobs that saved something change the history (explorer frames save nothing)
        ctx.jobs.job_finished.connect(lambda _i, _r, paths: self.refresh() if paths else None)
        self.refresh()

    def _build(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, models, seeds…")
        self.search.setClearButtonEnabled(True)
        self.modality = QComboBox()
        for label, value in MODALITIES:
            self.modality.addItem(label, value)
        self.refresh_button = QToolButton()
        self.refresh_button.setIcon(refresh_icon())
        self.refresh_button.setToolTip("Refresh")
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.modality)
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

        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(16, 14, 8, 14)
        lcol.setSpacing(10)
        lcol.addLayout(bar)
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

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.modality.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button.clicked.connect(self.refresh)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._select(cur))
        self.grid.doubleClicked.connect(lambda _i: self.open_file())
        self.details.use_button.clicked.connect(self.use_settings)
        self.details.open_button.clicked.connect(self.open_file)
        self.details.folder_button.clicked.connect(self.open_folder)
        self.details.play_button.clicked.connect(self._play)
        self.details.rating.rating_changed.connect(self._rate)

    # ------------------------------------------------------------------ data
    def refresh(self) -> None:
        """Query the history on the pool; the newest answer wins."""
        self._query_serial += 1
        serial = self._query_serial
        text = self.search.text().strip()
        modality = self.modality.currentData()
        history = self.ctx.history

        def query() -> list[Any]:
            return list(history.search(text, modality=modality, limit=SEARCH_LIMIT))

        run_in_pool(query, guarded(self, lambda items: self._loaded(serial, items)),
                    on_failed=guarded(self, lambda msg: self._failed(serial, msg)))

    def _loaded(self, serial: int, items: list[Any]) -> None:
        if serial != self._query_serial:
            return
        keep = str(field_of(self._selected, "path", "")) if self._selected is not None else ""
        self.model.set_items(items)
        n = len(items)
        self.count_label.setText(f"{n} item" + ("" if n == 1 else "s"))
        self.empty_label.setVisible(n == 0)
        if n == 0 and (self.search.text() or self.modality.currentData()):
            self.empty_label.setText("No outputs match.")
        else:
            self.empty_label.setText(
                "Nothing here yet: what you generate appears in the gallery.")
        row = next((r for r, it in enumerate(items) if str(field_of(it, "path", "")) == keep), -1)
        if row >= 0:
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

    # ------------------------------------------------------------------ selection
    def _select(self, index: QModelIndex) -> None:
        item = self.model.data(index, GalleryModel.ItemRole) if index.isValid() else None
        self._selected = item
        if item is None:
            self.details.show_item(None)
            return
        path = Path(str(field_of(item, "path", "")))
        missing = not path.exists()
        self.details.show_item(item, None, missing)
        if missing:
            return
        kind = field_of(item, "modality") or kind_of(path)
        if kind == "image":
            run_in_pool(lambda: load_thumbnail(path, 1024),
                        guarded(self, lambda img: self._big_loaded(item, img)))
        else:
            self.details.view.set_image(load_thumbnail(path, 320) if kind == "text"
                                        else placeholder_image(kind, 320))

    def _big_loaded(self, item: Any, image: QImage) -> None:
        if item is self._selected:
            self.details.view.set_image(image)

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
        self.ctx.use_recipe(request)

    def _path(self) -> Path | None:
        return Path(str(field_of(self._selected, "path"))) if self._selected is not None else None

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
