"""The Models tab: what is on this computer, what is loaded, and what can be downloaded.

It shows plain data: the catalog (ctx.models, refreshed by ctx.rescan_models on a
pool thread), the worker's models_changed snapshots, and the progress signals of
runtime.downloads (which runs the transfers). It never loads a model, never blocks
the GUI thread and never reaches the network unless the user presses Download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import catalog, downloads
from studio.core.catalog import ModelEntry, format_size
from studio.core.downloads import CatalogItem, DownloadProgress
from studio.core.errors import StudioError
from studio.runtime.downloads import Downloads

log = logging.getLogger(__name__)

MODALITY_TITLES = (("image", "Images"), ("music", "Music"), ("text", "Text"))
HELPERS_TITLE = "Helpers (previews, VAEs, LoRAs, embeddings, other pipelines)"
SOURCE_NAMES = {"builtin": "built-in", "models": "models/", "folder": "folder",
                "hf-cache": "HF cache"}
ID_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Name", "Family", "Format", "Size", "Found in", "Loaded")
CATALOG_COLUMNS = ("Model", "Kind", "Size", "Licence", "Status", "")
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@dataclass
class _Row:
    """One catalog row's widgets and download state."""

    item: CatalogItem
    row: int
    status: QLabel
    bar: QProgressBar
    button: QPushButton
    last: DownloadProgress | None = field(default=None)


class ModelsView(QWidget):
    """Models on disk by modality (with loaded state and Unload), and the download catalog."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.endpoint: str | None = None  # None: HF_ENDPOINT or huggingface.co (tests: local)
        self.probe_network = True
        self._loaded: dict[str, dict] = {}
        self._entries: list[ModelEntry] = list(ctx.models)
        self._rows: dict[str, _Row] = {}
        self.downloads = Downloads(self)
        self.downloads.progress.connect(self._on_progress)
        self.downloads.finished.connect(self._on_finished)
        self.downloads.failed.connect(self._on_failed)
        self.downloads.cancelled.connect(self._on_cancelled)
        self._build()
        ctx.catalog_changed.connect(self.set_entries)
        ctx.jobs.models_changed.connect(self.set_loaded)
        ctx.settings_changed.connect(lambda _s: self._refresh_all())
        self.set_entries(self._entries)
        self._load_catalog()
        app = QCoreApplication.instance()
        if app is not None:  # a running download must not hold the app open at exit
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        title = QLabel("Models on this computer")
        title.setObjectName("sectionLabel")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, family or folder")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(lambda _t: self._apply_filter())
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Look through models/, your model folders and the "
                                      "Hugging Face cache again")
        self.rescan_button.clicked.connect(self.rescan)
        self.unload_button = QPushButton("Unload")
        self.unload_button.setToolTip("Free the memory the selected model holds")
        self.unload_button.clicked.connect(self.unload_selected)
        self.unload_all_button = QPushButton("Unload all")
        self.unload_all_button.clicked.connect(self.unload_all)
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.filter_edit, 2)
        for b in (self.rescan_button, self.unload_button, self.unload_all_button):
            top.addWidget(b)
        layout.addLayout(top)

        self.memory_label = QLabel()
        self.memory_label.setObjectName("muted")
        self.issues_label = QLabel()
        self.issues_label.setObjectName("warning")
        self.issues_label.setProperty("active", True)
        info = QHBoxLayout()
        info.addWidget(self.memory_label, 1)
        info.addWidget(self.issues_label)
        layout.addLayout(info)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        get_title = QLabel("Get models")
        get_title.setObjectName("sectionLabel")
        self.dest_label = QLabel()
        self.dest_label.setObjectName("muted")
        self.dest_label.setWordWrap(True)
        self.table = QTableWidget(0, len(CATALOG_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(CATALOG_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        th = self.table.horizontalHeader()
        for col in (1, 2, 5):
            th.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for col, width in ((0, 230), (3, 200)):
            th.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            th.resizeSection(col, width)
        th.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        th.setMinimumSectionSize(60)
        self.message_label = QLabel()
        self.message_label.setObjectName("message")
        self.message_label.setWordWrap(True)
        lower_layout.addWidget(get_title)
        lower_layout.addWidget(self.dest_label)
        lower_layout.addWidget(self.table, 1)
        lower_layout.addWidget(self.message_label)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)

    # ------------------------------------------------------------------ installed models
    def set_entries(self, entries: list[ModelEntry]) -> None:
        """Rebuild the tree from a catalog scan (ctx.catalog_changed)."""
        self._entries = list(entries)
        selected = self.selected_id()
        self.tree.clear()
        groups: dict[str, list[ModelEntry]] = {m: [] for m, _t in MODALITY_TITLES}
        helpers: list[ModelEntry] = []
        for e in self._entries:
            if e.role == "generate" and e.modality in groups:
                groups[e.modality].append(e)
            else:
                helpers.append(e)
        sections = [(t, groups[m]) for m, t in MODALITY_TITLES] + [(HELPERS_TITLE, helpers)]
        for title, members in sections:
            if not members and title == HELPERS_TITLE:
                continue
            top = QTreeWidgetItem([f"{title} ({len(members)})"])
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            for e in members:
                item = QTreeWidgetItem(self._row_texts(e))
                item.setData(0, ID_ROLE, e.id)
                item.setToolTip(0, self._tooltip(e))
                item.setToolTip(len(COLUMNS) - 1, self._tooltip(e))
                item.setTextAlignment(3, RIGHT)
                top.addChild(item)
                if e.id == selected:
                    item.setSelected(True)
            top.setExpanded(title != HELPERS_TITLE)
        issues = catalog.last_issues()
        if issues:
            noun = "file" if len(issues) == 1 else "files"
            self.issues_label.setText(f"{len(issues)} {noun} skipped (hover for why)")
            self.issues_label.setToolTip("\n".join(issues[:50]))
        else:
            self.issues_label.setText("")
            self.issues_label.setToolTip("")
        self._apply_filter()
        self._update_buttons()
        self._update_memory_label()
        self._refresh_catalog_status()

    def _row_texts(self, e: ModelEntry) -> list[str]:
        fmt = e.format + (" (pickled)" if e.pickled and "pickle" not in e.format else "")
        where = SOURCE_NAMES.get(e.source, e.source or "")
        if e.source in ("folder", "hf-cache") or not where:
            where = f"{where}: {e.location}" if where else e.location
        family = f"{e.family} for {e.base}" if e.base and e.role != "generate" else e.family
        return [e.name, family, fmt, format_size(e.size_bytes) if e.size_bytes else "",
                where, self._loaded_text(e)]

    def _loaded_text(self, e: ModelEntry) -> str:
        info = self._loaded.get(e.id)
        if info is not None:
            return f"Loaded · {format_size(int(info.get('bytes') or 0))} · {info.get('device')}"
        if e.pickled and not self.ctx.settings.allow_pickle:
            return "Needs setting"
        if e.note.startswith("Not installed"):
            return "Not installed"
        return ""

    def _tooltip(self, e: ModelEntry) -> str:
        lines = [e.id, f"{e.family} · {e.format}"]
        if e.repo_id:
            lines.append(f"Hugging Face repo: {e.repo_id}")
        if e.pickled:
            lines.append(catalog.PICKLE_NOTE if not self.ctx.settings.allow_pickle else
                         "Pickled checkpoint: loaded with weights_only=True (allowed in Settings).")
        elif e.note:
            lines.append(e.note)
        if e.family == catalog.EMBEDDING:
            lines.append(f"Write {e.name} in a prompt to use it.")
        elif e.role != "generate":
            lines.append("Used by Studio as a helper; not offered in the panels' model pickers.")
        return "\n".join(lines)

    def _apply_filter(self) -> None:
        text = self.filter_edit.text().strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            visible = 0
            for j in range(top.childCount()):
                child = top.child(j)
                hay = " ".join(child.text(c) for c in range(len(COLUMNS))).lower()
                hide = bool(text) and text not in hay and text not in str(child.data(0, ID_ROLE))
                child.setHidden(hide)
                visible += not hide
            top.setHidden(bool(text) and visible == 0)

    def entry_item(self, model_id: str) -> QTreeWidgetItem | None:
        """The tree row of a model id (tests, selection)."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                if top.child(j).data(0, ID_ROLE) == model_id:
                    return top.child(j)
        return None

    def selected_id(self) -> str:
        items = self.tree.selectedItems()
        return str(items[0].data(0, ID_ROLE) or "") if items else ""

    def select(self, model_id: str) -> None:
        item = self.entry_item(model_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    # ------------------------------------------------------------------ loaded models
    def set_loaded(self, loaded: list) -> None:
        """From ctx.jobs.models_changed: [{model, name, device, dtype, bytes, budget_bytes}]."""
        self._loaded = {str(m.get("model")): dict(m) for m in loaded}
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                child = top.child(j)
                entry = catalog.find(self._entries, str(child.data(0, ID_ROLE)))
                if entry is not None:
                    child.setText(len(COLUMNS) - 1, self._loaded_text(entry))
        self._update_memory_label()
        self._update_buttons()

    def _update_memory_label(self) -> None:
        loaded = list(self._loaded.values())
        used = sum(int(m.get("bytes") or 0) for m in loaded)
        budget = max((int(m.get("budget_bytes") or 0) for m in loaded), default=0)
        mb = int(self.ctx.settings.memory_budget_mb or 0)
        budget_text = (format_size(budget) if budget else
                       format_size(mb * 1024 * 1024) if mb else "automatic")
        if loaded:
            names = ", ".join(str(m.get("name") or Path(str(m.get("model"))).name)
                              for m in loaded)
            text = f"Loaded: {names} · {format_size(used)} in use · budget {budget_text}"
        else:
            text = f"No models loaded · memory budget {budget_text}"
        self.memory_label.setText(text)
        self.memory_label.setToolTip(
            "Loading a model that would go over the budget unloads the least recently used "
            "ones first. Set the budget in Settings (0 = from this computer's memory)."
        )

    def _update_buttons(self) -> None:
        self.unload_button.setEnabled(self.selected_id() in self._loaded)
        self.unload_all_button.setEnabled(bool(self._loaded))

    def unload_selected(self) -> None:
        model = self.selected_id()
        if model:
            self.ctx.jobs.unload(model)

    def unload_all(self) -> None:
        self.ctx.jobs.unload(None)

    def rescan(self) -> None:
        self.ctx.rescan_models()

    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        model = str(item.data(0, ID_ROLE) or "") if item is not None else ""
        if not model:
            return
        menu = QMenu(self)
        unload = QAction("Unload", menu)
        unload.setEnabled(model in self._loaded)
        unload.triggered.connect(lambda: self.ctx.jobs.unload(model))
        copy = QAction("Copy model id", menu)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(model))
        menu.addAction(unload)
        menu.addAction(copy)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def _refresh_all(self) -> None:
        self.set_entries(self._entries)
        self._load_catalog()

    # ------------------------------------------------------------------ catalog & downloads
    def _load_catalog(self) -> None:
        """Fill the 'Get models' table from models/catalog.json (keeps running downloads)."""
        try:
            items = downloads.load_catalog()
        except StudioError as exc:
            items = []
            self._show_message(str(exc), error=True)
        running = {k: r for k, r in self._rows.items() if self.downloads.is_running(k)}
        self.table.setRowCount(0)
        self._rows = {}
        root = downloads.download_root(self.ctx.settings)
        self.dest_label.setText(f"Suggested models, downloaded from Hugging Face only when you "
                                f"press Download. They go to {root}.")
        for item in items:
            row = self.table.rowCount()
            self.table.insertRow(row)
            name = QTableWidgetItem(item.name)
            name.setToolTip(f"{item.repo}\n{item.description}")
            kind = QTableWidgetItem(item.family + (" · previews" if item.role == "preview"
                                                   else ""))
            size = QTableWidgetItem(f"~{format_size(item.size_bytes)}" if item.size_bytes else "")
            licence = QTableWidgetItem(item.licence)
            licence.setToolTip(item.licence_url or item.licence)
            for col, cell in enumerate((name, kind, size, licence)):
                self.table.setItem(row, col, cell)
            status_box = QWidget()
            box = QHBoxLayout(status_box)
            box.setContentsMargins(4, 0, 4, 0)
            status = QLabel()
            status.setObjectName("muted")
            bar = QProgressBar()
            bar.setMinimumWidth(260)
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setVisible(False)
            box.addWidget(status, 1)
            box.addWidget(bar, 1)
            self.table.setCellWidget(row, 4, status_box)
            button = QPushButton("Download")
            button.clicked.connect(lambda _c=False, i=item.id: self._toggle(i))
            self.table.setCellWidget(row, 5, button)
            r = _Row(item, row, status, bar, button)
            old = running.get(item.id)
            if old is not None:
                r.last = old.last
            self._rows[item.id] = r
        self._refresh_catalog_status()

    def _refresh_catalog_status(self) -> None:
        for r in self._rows.values():
            if self.downloads.is_running(r.item.id):
                self._show_running(r)
                continue
            r.bar.setVisible(False)
            r.status.setVisible(True)
            r.button.setText("Download")
            r.button.setEnabled(True)
            folder = downloads.installed_path(r.item, self.ctx.settings)
            if folder is not None:
                r.status.setText(f"Installed in {folder.parent}")
                r.status.setToolTip(str(folder))
                r.button.setText("Installed")
                r.button.setEnabled(False)
                continue
            partial = downloads.partial_bytes(r.item, self.ctx.settings)
            if partial:
                r.status.setText(f"{format_size(partial)} fetched so far")
                r.button.setText("Resume")
            else:
                r.status.setText("")

    def _show_running(self, r: _Row) -> None:
        r.status.setVisible(False)
        r.bar.setVisible(True)
        r.button.setText("Cancel")
        r.button.setEnabled(not self.downloads.is_cancelling(r.item.id))
        p = r.last
        if p is None or p.state == "connecting" or not p.bytes_total:
            r.bar.setRange(0, 0)  # busy
            r.bar.setFormat("Connecting…")
        else:
            r.bar.setRange(0, 1000)
            r.bar.setValue(int(1000 * min(1.0, p.fraction)))
            r.bar.setFormat(p.text())
        r.bar.setToolTip(p.file if p is not None else "")

    def row_for(self, item_id: str) -> _Row | None:
        return self._rows.get(item_id)

    def _toggle(self, item_id: str) -> None:
        r = self._rows.get(item_id)
        if r is None:
            return
        if self.downloads.is_running(item_id):
            self.cancel_download(item_id)
        else:
            self.start_download(item_id)

    def start_download(self, item_id: str) -> None:
        """Start downloading a catalog item (runtime.downloads runs it; signals come back)."""
        r = self._rows.get(item_id)
        if r is None or self.downloads.is_running(item_id):
            return
        r.last = None
        self._show_message("")
        dest = downloads.download_root(self.ctx.settings)
        self.downloads.start(r.item, dest, endpoint=self.endpoint, probe=self.probe_network)
        self._show_running(r)

    def cancel_download(self, item_id: str) -> None:
        r = self._rows.get(item_id)
        if r is not None and self.downloads.cancel(item_id):
            r.button.setEnabled(False)
            r.bar.setFormat("Stopping…")

    def is_downloading(self) -> bool:
        return self.downloads.is_running()

    def _on_progress(self, item_id: str, progress: DownloadProgress) -> None:
        r = self._rows.get(item_id)
        if r is None:
            return
        r.last = progress
        if not self.downloads.is_cancelling(item_id):
            self._show_running(r)

    def _on_finished(self, item_id: str, folder: str) -> None:
        r = self._rows.get(item_id)
        name = r.item.name if r is not None else item_id
        self._show_message(f"{name} is ready in {folder}.")
        self.ctx.message.emit(f"Downloaded {name}.")
        self._refresh_catalog_status()
        self.ctx.rescan_models()

    def _on_failed(self, item_id: str, message: str) -> None:
        self._refresh_catalog_status()
        self._show_message(message, error=True)
        self.ctx.message.emit(message)

    def _on_cancelled(self, item_id: str, message: str) -> None:
        self._refresh_catalog_status()
        self._show_message(message)

    def _show_message(self, text: str, *, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setProperty("level", "error" if error else "info")
        self.message_label.style().unpolish(self.message_label)
        self.message_label.style().polish(self.message_label)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel running downloads (they resume next time) and wait for their threads."""
        return self.downloads.shutdown(timeout_ms)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown(2000)
        super().closeEvent(event)

    def apply_request(self, request) -> None:
        """Panels share this entry point; a recipe has nothing to fill in here."""
