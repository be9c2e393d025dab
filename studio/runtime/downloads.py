"""Catalog downloads in the background: one task per item, cancellable, with progress.

The Models tab only binds these signals (they carry the catalog item's id and
arrive in the GUI thread); the transfer itself is `core.downloads.download`, run
as a `runtime.tasks.Task` on a small pool of its own so that two downloads never
hold up the thread pool that scans folders and reads files.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal, SignalInstance

from studio.core import downloads
from studio.core.downloads import CatalogItem, DownloadProgress
from studio.core.errors import Cancelled, StudioError
from studio.runtime.tasks import Task

log = logging.getLogger(__name__)

MAX_RUNNING = 2  # downloads at once; more wait in the pool's queue


class Downloads(QObject):
    """Runs and tracks downloads by item id (one at a time per item)."""

    progress = Signal(str, object)  # item id, DownloadProgress
    finished = Signal(str, str)  # item id, folder
    failed = Signal(str, str)  # item id, one sentence
    cancelled = Signal(str, str)  # item id, one sentence

    def __init__(self, parent: QObject | None = None, *, max_running: int = MAX_RUNNING) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_running)
        self._tasks: dict[str, Task] = {}

    def start(self, item: CatalogItem, dest: Path, *, endpoint: str | None = None,
              probe: bool = True) -> bool:
        """Download `item` into `dest`; False (nothing started) when it is already running."""
        if item.id in self._tasks:
            return False

        def fetch(task: Task) -> str:
            try:
                folder = downloads.download(item, dest, endpoint=endpoint, probe=probe,
                                            cancel=task.cancel_event, on_progress=task.report)
            except (Cancelled, StudioError):
                raise
            except Exception as exc:  # never a traceback in the window; the log has it
                log.exception("download of %s failed", item.id)
                raise StudioError(f"The download of {item.name} failed: {exc}.") from exc
            return str(folder)

        task = Task(fetch)
        item_id = item.id
        task.progress.connect(lambda p: self._on_progress(item_id, p))
        task.done.connect(lambda folder: self._end(item_id, self.finished, folder))
        task.failed.connect(lambda text: self._end(item_id, self.failed, text))
        task.cancelled.connect(lambda text: self._end(item_id, self.cancelled, text))
        self._tasks[item_id] = task
        task.start(self._pool)
        return True

    def cancel(self, item_id: str) -> bool:
        """Ask a running download to stop (what it fetched stays for the next try)."""
        task = self._tasks.get(item_id)
        if task is None:
            return False
        task.cancel()
        return True

    def is_running(self, item_id: str | None = None) -> bool:
        """Whether that item (or any item) is downloading, until its last signal is handled."""
        return bool(self._tasks) if item_id is None else item_id in self._tasks

    def is_cancelling(self, item_id: str) -> bool:
        task = self._tasks.get(item_id)
        return task is not None and task.is_cancelled()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every download (they resume next time) and wait for their threads."""
        for task in self._tasks.values():
            task.cancel()
        return self._pool.waitForDone(timeout_ms)

    def _on_progress(self, item_id: str, progress: DownloadProgress) -> None:
        if item_id in self._tasks:
            self.progress.emit(item_id, progress)

    def _end(self, item_id: str, signal: SignalInstance, text: str) -> None:
        self._tasks.pop(item_id, None)
        signal.emit(item_id, text)
