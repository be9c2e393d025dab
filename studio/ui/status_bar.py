"""The status bar: one-line notices on the left; device, loaded models and memory on the right."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from studio.runtime.machine import expected_device
from studio.ui.queue_dock import model_label
from studio.ui.widgets import human_bytes

MEMORY_INTERVAL_MS = 2000
MESSAGE_MS = 8000


class StatusBar(QStatusBar):
    """Shows what the machine is doing: device, models in memory, this process's RSS.

    The truth at every moment: "Loading X…" from the worker's model_loading until
    models_changed says the load ended (loaded, failed or stopped); the device of the
    model in use, or before any load the one the Settings' choice resolves to here.
    """

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setSizeGripEnabled(True)
        self._loaded: list[dict] = []
        self._loading: tuple[str, str] | None = None  # (model id, device)
        self.device_label = QLabel()
        self.models_label = QLabel()
        self.memory_label = QLabel()
        for label in (self.models_label, self.device_label, self.memory_label):
            label.setObjectName("statusItem")
            self.addPermanentWidget(label)
        self._process: Any = None  # psutil.Process, where /proc cannot tell (made when needed)
        self._timer = QTimer(self)
        self._timer.setInterval(MEMORY_INTERVAL_MS)
        self._timer.timeout.connect(self.update_memory)
        self._timer.start()
        ctx.jobs.model_loading.connect(self.set_loading)
        ctx.jobs.models_changed.connect(self.set_models)
        ctx.settings_changed.connect(lambda _s: self.update_device())
        ctx.message.connect(self.notify)
        self.set_models([])
        # the first reading comes with the first tick, or when the window says it is ready
        # (MainWindow.ready): never before the first frame, which psutil's import would slow

    def notify(self, text: str) -> None:
        """A one-line notice that fades after a few seconds."""
        self.showMessage(text, MESSAGE_MS)

    def current_device(self) -> tuple[str, bool]:
        """(device, known): the loading or last used model's, else what Settings resolve to."""
        if self._loading is not None and self._loading[1]:
            return self._loading[1], True
        if self._loaded and self._loaded[-1].get("device"):
            return str(self._loaded[-1]["device"]), True
        wanted = self.ctx.settings.device
        return expected_device(wanted) or wanted, False

    def update_device(self) -> None:
        wanted = self.ctx.settings.device
        device, known = self.current_device()
        if known:
            tip = f"Running on {device} (setting: {wanted})"
        elif wanted == "auto" and device != "auto":
            tip = f"Settings say auto, which is {device} on this machine"
        else:
            tip = "Device from Settings"
        self.device_label.setText(f"Device: {device}")
        self.device_label.setToolTip(tip)

    def set_loading(self, model: str, device: str) -> None:
        """From the worker's model_loading: a load starts (models_changed ends it)."""
        self._loading = (model, device)
        self._show_models()

    def set_models(self, loaded: list) -> None:
        """From the worker's models_changed: [{model, device, dtype, bytes}]."""
        self._loaded = list(loaded)
        self._loading = None
        self._show_models()

    def _show_models(self) -> None:
        loaded = self._loaded
        names = [model_label(self.ctx, str(m.get("model", ""))) for m in loaded]
        lines = [f"{m.get('model')} · {m.get('device')} · {m.get('dtype')} · "
                 f"{human_bytes(int(m.get('bytes') or 0))}" for m in loaded]
        if self._loading is not None:
            model, device = self._loading
            text = f"Loading {model_label(self.ctx, model)}…"
            if loaded:
                text += f" · {len(loaded)} loaded"
            self.models_label.setText(text)
            self.models_label.setToolTip("\n".join([f"Loading {model} on {device}", *lines]))
        elif loaded:
            total = sum(int(m.get("bytes") or 0) for m in loaded)
            text = names[0] if len(names) == 1 else f"{len(names)} models"
            if total:
                text += f" · {human_bytes(total)}"
            self.models_label.setText(f"Loaded: {text}")
            self.models_label.setToolTip("\n".join(lines))
        else:
            self.models_label.setText("No model loaded")
            self.models_label.setToolTip("Models load on the first job that needs them")
        self.update_device()

    def update_memory(self) -> None:
        rss = resident_bytes()
        if rss is None:
            import psutil  # where /proc cannot tell (macOS, Windows)

            try:
                if self._process is None:
                    self._process = psutil.Process()
                rss = int(self._process.memory_info().rss)
            except psutil.Error:
                return
        self.memory_label.setText(f"Memory: {human_bytes(rss)}")
        self.memory_label.setToolTip("Memory used by Studio (resident set size)")


_STATM = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """This process's resident set size from /proc (Linux), None where there is none.

    A file read, where psutil's import costs tens of milliseconds; what psutil reports
    on Linux too (statm's second field, in pages)."""
    try:
        fields = _STATM.read_bytes().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
