"""The one object every panel gets: settings, history, the job queue, the model catalog.

Like Krita AI Diffusion's root model: plain state with `*_changed` signals, so
panels never reach into each other. Cross-panel requests ("use these settings",
"send to Art") are signals here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal

from studio.core import catalog
from studio.core.catalog import ModelEntry
from studio.core.history import History
from studio.core.settings import Settings
from studio.runtime.worker import JobQueue

if TYPE_CHECKING:
    from studio.core.requests import Request


class AppContext(QObject):
    settings_changed = Signal(object)  # Settings
    catalog_changed = Signal(list)  # [ModelEntry]
    recipe_requested = Signal(object)  # Request: fill the right panel with it
    prompt_for_art = Signal(str)  # "Send to Art" from the Text panel
    message = Signal(str)  # a one-line notice for the status bar

    def __init__(self, settings: Settings, history: History, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.history = history
        self.jobs = JobQueue(settings, history, self)
        self.models: list[ModelEntry] = list(catalog.BUILTINS)
        self._pool = QThreadPool.globalInstance()

    def update_settings(self, settings: Settings) -> None:
        settings.save()
        self.settings = settings
        self.jobs.set_settings(settings)
        self.settings_changed.emit(settings)
        self.rescan_models()

    def rescan_models(self) -> None:
        """Scan model folders off the GUI thread; catalog_changed fires when done."""
        from studio.runtime.tasks import run_in_pool

        run_in_pool(lambda: catalog.scan(self.settings), self._set_models, self._pool)

    def _set_models(self, entries: list[ModelEntry]) -> None:
        self.models = entries
        self.catalog_changed.emit(entries)

    def models_for(self, modality: str) -> list[ModelEntry]:
        return catalog.for_modality(self.models, modality, self.settings)  # no refused pickles

    def use_recipe(self, request: Request) -> None:
        self.recipe_requested.emit(request)

    def shutdown(self) -> None:
        self.jobs.shutdown()
