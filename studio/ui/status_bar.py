"""The status bar: one-line notices on the left; device, loaded models and memory on the right."""

from __future__ import annotations

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from studio.ui.queue_dock import model_label
from studio.ui.widgets import human_bytes

MEMORY_INTERVAL_MS = 2000
MESSAGE_MS = 8000


class StatusBar(QStatusBar):
    """Shows what the machine is doing: device, models in memory, this process's RSS."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setSizeGripEnabled(True)
        self._real_device: str | None = None
        self.device_label = QLabel()
        self.models_label = QLabel()
        self.memory_label = QLabel()
        for label in (self.models_label, self.device_label, self.memory_label):
            label.setObjectName("statusItem")
            self.addPermanentWidget(label)
        self._process = psutil.Process()
        self._timer = QTimer(self)
        self._timer.setInterval(MEMORY_INTERVAL_MS)
        self._timer.timeout.connect(self.update_memory)
        self._timer.start()
        ctx.jobs.models_changed.connect(self.set_models)
        ctx.settings_changed.connect(lambda _s: self.update_device())
        ctx.message.connect(self.notify)
        self.update_device()
        self.set_models([])
        self.update_memory()

    def notify(self, text: str) -> None:
        """A one-line notice that fades after a few seconds."""
        self.showMessage(text, MESSAGE_MS)

    def update_device(self) -> None:
        wanted = self.ctx.settings.device
        if self._real_device:
            text = self._real_device
            tip = f"Running on {self._real_device} (setting: {wanted})"
        else:
            text = "auto" if wanted == "auto" else wanted
            tip = "Device from Settings; the real one shows after the first job"
        self.device_label.setText(f"Device: {text}")
        self.device_label.setToolTip(tip)

    def set_models(self, loaded: list) -> None:
        """From the worker's models_changed: [{model, device, dtype, bytes}]."""
        if loaded:
            last = loaded[-1]
            self._real_device = str(last.get("device") or "") or self._real_device
            names = [model_label(self.ctx, str(m.get("model", ""))) for m in loaded]
            total = sum(int(m.get("bytes") or 0) for m in loaded)
            text = names[0] if len(names) == 1 else f"{len(names)} models"
            if total:
                text += f" · {human_bytes(total)}"
            self.models_label.setText(f"Loaded: {text}")
            self.models_label.setToolTip("\n".join(
                f"{m.get('model')} · {m.get('device')} · {m.get('dtype')} · "
                f"{human_bytes(int(m.get('bytes') or 0))}" for m in loaded))
        else:
            self.models_label.setText("No model loaded")
            self.models_label.setToolTip("Models load on the first job that needs them")
        self.update_device()

    def update_memory(self) -> None:
        try:
            rss = self._process.memory_info().rss
        except psutil.Error:
            return
        self.memory_label.setText(f"Memory: {human_bytes(rss)}")
        self.memory_label.setToolTip("Memory used by Studio (resident set size)")
