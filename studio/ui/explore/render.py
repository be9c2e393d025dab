"""The Render tab: size, steps, preview steps and size, CFG, sampler, negative prompt.

Each field is enabled only where the model's family applies it; the tab is shown only
for families with steps. Values go to the session as they change; finishing an edit
renders the point again.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from studio.core.requests import SCHEDULERS
from studio.runtime.explore_session import ExploreSession, RenderSettings

PROGRESSIVE_NOTE = ("Diffusion renders a quick preview while you drag (fewer steps, smaller, "
                    "decoded cheaply) and the full frame when the pad settles.")


def _spin(low: int, high: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    return box


class RenderPage(QWidget):
    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.steps = _spin(1, 150)
        self.preview_steps = _spin(1, 50)
        self.preview_steps.setToolTip("Steps of the quick preview rendered while dragging")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.width_box = _spin(64, 2048, 64)
        self.height_box = _spin(64, 2048, 64)
        self.preview_size = _spin(64, 1024, 64)
        self.scheduler = QComboBox()
        self.scheduler.addItems(SCHEDULERS)
        self.scheduler.setToolTip("Deterministic samplers (Euler, DDIM, DPM++) make walks "
                                  "end exactly on the anchors' own images")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("negative prompt (optional)")
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow(self.note)
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_box)
        form.addRow("Size", size)
        form.addRow("Steps", self.steps)
        form.addRow("Preview steps", self.preview_steps)
        form.addRow("Preview size", self.preview_size)
        form.addRow("CFG scale", self.guidance)
        form.addRow("Sampler", self.scheduler)
        form.addRow("Negative", self.negative)
        #: widget → the request field that decides whether it applies
        self.fields: dict[QWidget, str] = {
            self.steps: "steps", self.preview_steps: "steps", self.preview_size: "steps",
            self.guidance: "guidance", self.width_box: "width", self.height_box: "height",
            self.scheduler: "scheduler", self.negative: "negative",
        }
        self._show_settings()
        for box in (self.steps, self.width_box, self.height_box, self.preview_steps,
                    self.preview_size):
            box.valueChanged.connect(self._push)
            box.editingFinished.connect(session.rerender)
        self.guidance.valueChanged.connect(self._push)
        self.guidance.editingFinished.connect(session.rerender)
        self.negative.textChanged.connect(self._push)
        self.negative.editingFinished.connect(session.rerender)
        self.scheduler.currentIndexChanged.connect(self._scheduler_changed)
        session.settings_changed.connect(self._show_settings)
        session.model_changed.connect(lambda _m: self.show_capabilities())

    def _push(self, *_args: object) -> None:
        self.session.render = RenderSettings(
            steps=self.steps.value(), preview_steps=self.preview_steps.value(),
            guidance=self.guidance.value(), width=self.width_box.value(),
            height=self.height_box.value(), preview_size=self.preview_size.value(),
            scheduler=self.scheduler.currentText(), negative=self.negative.text())

    def _scheduler_changed(self, _index: int) -> None:
        self._push()
        self.session.rerender()

    def _show_settings(self) -> None:
        r = self.session.render
        for widget in self.fields:
            widget.blockSignals(True)
        self.steps.setValue(r.steps)
        self.preview_steps.setValue(r.preview_steps)
        self.guidance.setValue(r.guidance)
        self.width_box.setValue(r.width)
        self.height_box.setValue(r.height)
        self.preview_size.setValue(r.preview_size)
        if r.scheduler in SCHEDULERS:
            self.scheduler.setCurrentText(r.scheduler)
        self.negative.setText(r.negative)
        for widget in self.fields:
            widget.blockSignals(False)

    def show_capabilities(self) -> None:
        """Enable what the model's family applies; explain the preview where it has steps."""
        progressive = self.session.progressive
        for widget, name in self.fields.items():
            widget.setEnabled(progressive and self.session.applies(name))
        self.note.setText(PROGRESSIVE_NOTE if self.session.progressive else "")
