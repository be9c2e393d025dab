"""The Gallery's data: history items as a list model, and thumbnails made on the pool.

Thumbnail decoding runs on the pool (run_in_pool); the GUI thread only turns finished
QImages into pixmaps, so scrolling never stalls.
"""

from __future__ import annotations

import datetime as _dt
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QWidget

from studio.runtime.tasks import run_in_pool
from studio.ui.images import fit_square, kind_of, load_thumbnail, placeholder_image
from studio.ui.widgets import guarded

THUMB = 148


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


