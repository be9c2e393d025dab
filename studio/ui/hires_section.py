"""The Art panel's "Hires fix" group and its "Upscale" menu for a finished picture.

The hires fix renders at the form's size, enlarges (latent, Lanczos or an installed
upscaler model) and re-renders at the larger size with its own steps and strength: one
job, one output. Its spin boxes come from the `hires_*` field metadata of ImageRequest;
the upscalers offered are the built-in two plus every upscaler model the catalog lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QMenu, QVBoxLayout, QWidget

from studio.core.catalog import ModelEntry
from studio.core.fields import spec
from studio.core.requests import BUILTIN_UPSCALERS, ImageRequest
from studio.core.upscale import LANCZOS, SCALES
from studio.ui.forms import FieldForm, field_grid

HIRES_FIELDS = ("hires_scale", "hires_steps", "hires_strength")
BUILTIN_LABELS = {"latent": "Latent", "lanczos": "Lanczos"}


def upscaler_models(models: Sequence[ModelEntry]) -> list[ModelEntry]:
    """The installed upscaler models (not the built-in Lanczos, which is always offered)."""
    return [e for e in models if e.descriptor is not None and e.descriptor.serves("upscale")
            and e.id != LANCZOS]


class HiresSection(QWidget):
    """Enable, upscaler, scale, second-pass steps and denoising strength of the hires fix."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enable = QCheckBox("Render small, then refine at a larger size")
        self.enable.setToolTip("The hires fix: one job, one output at the larger size")
        self.fields = FieldForm(ImageRequest, HIRES_FIELDS)
        self.scale = self.fields["hires_scale"]
        self.steps = self.fields["hires_steps"]
        self.strength = self.fields["hires_strength"]
        self.upscaler = QComboBox()
        self.upscaler.setToolTip(spec(ImageRequest, "hires_upscaler").tip)
        self.set_upscalers([])
        self.target = QLabel("")
        self.target.setObjectName("muted")
        self.target.setWordWrap(True)
        self._base = (512, 512)
        self.body = QWidget()
        self.body.setLayout(field_grid([
            [("Upscaler", self.upscaler)],
            [self.fields.pair("hires_scale"), self.fields.pair("hires_steps")],
            [self.fields.pair("hires_strength")],
        ], margins=(14, 0, 0, 0)))
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addWidget(self.enable)
        col.addWidget(self.body)
        col.addWidget(self.target)
        self.enable.toggled.connect(self._toggled)
        for box in (self.scale, self.steps, self.strength):
            box.valueChanged.connect(self._update)
        self.upscaler.currentIndexChanged.connect(self._update)
        self._update()

    # ------------------------------------------------------------------ choices
    def set_upscalers(self, models: Sequence[ModelEntry]) -> None:
        """Latent, Lanczos, then the installed upscaler models (the choice is kept)."""
        keep = self.upscaler.currentData() or "latent"
        self.upscaler.blockSignals(True)
        self.upscaler.clear()
        for name in BUILTIN_UPSCALERS:
            self.upscaler.addItem(BUILTIN_LABELS.get(name, name), name)
        for entry in upscaler_models(models):
            self.upscaler.addItem(entry.name, entry.id)
        self._select_upscaler(str(keep))
        self.upscaler.blockSignals(False)

    def _select_upscaler(self, name: str) -> None:
        index = self.upscaler.findData(name)
        if index < 0:  # a recipe's upscaler that is not installed: shown, the job says so
            self.upscaler.addItem(f"{name} (not installed)", name)
            index = self.upscaler.count() - 1
        self.upscaler.setCurrentIndex(index)

    def set_base_size(self, width: int, height: int) -> None:
        self._base = (width, height)
        self._update()

    # ------------------------------------------------------------------ values
    def is_on(self) -> bool:
        """Ticked, and not greyed out (a family without it, or an init image)."""
        return self.enable.isChecked() and self.isEnabled()

    def values(self) -> dict[str, Any]:
        """The hires fields as request keyword arguments; off: the defaults (scale 1)."""
        if not self.is_on():
            defaults = ImageRequest()
            return {n: getattr(defaults, n) for n in (*HIRES_FIELDS, "hires_upscaler")}
        return {**self.fields.values(), "hires_upscaler": str(self.upscaler.currentData())}

    def fill(self, request: ImageRequest) -> None:
        self.fields.set_values(request)
        self._select_upscaler(request.hires_upscaler)
        self.enable.setChecked(request.hires)
        self._update()

    def _toggled(self, on: bool) -> None:
        if on and self.scale.value() <= 1.0:
            self.scale.setValue(2.0)
        self._update()

    def _update(self, *_args: object) -> None:
        on = self.enable.isChecked()
        self.body.setEnabled(on)
        if on:
            w, h = self._base
            big = ImageRequest(width=w, height=h, hires_scale=self.scale.value()).hires_size()
            steps = self.steps.value() or "as many"
            self.target.setText(f"Renders {w}×{h}, enlarges with "
                                f"{self.upscaler.currentText()} and repaints at "
                                f"{big[0]}×{big[1]} ({steps} steps).")
        else:
            self.target.setText("Off: one pass at the form's size.")
        self.changed.emit()


def upscale_menu(parent: QWidget, models: Sequence[ModelEntry], choose: Any) -> QMenu:
    """"Upscale" on a result: ×2 and ×4 with Lanczos and with each installed upscaler
    model; `choose(model_id, scale)` is called with the pick."""
    menu = QMenu(parent)
    choices = [("Lanczos", LANCZOS)] + [(e.name, e.id) for e in upscaler_models(models)]
    for name, model in choices:
        for scale in SCALES:
            action = menu.addAction(f"{name} ×{scale}")
            action.setData((model, scale))
            action.triggered.connect(lambda _on=False, m=model, s=scale: choose(m, s))
    return menu
