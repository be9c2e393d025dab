"""Settings: where outputs go, where models live, which device, memory, previews and the
CPU speed-ups for image models (OpenVINO, fast decode, bfloat16)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.paths import bundled_models_dir, default_output_dir
from studio.core.settings import DEVICES, IMAGE_RUNTIMES, Settings

DEVICE_LABELS = {
    "auto": "Automatic (best available)",
    "cpu": "CPU",
    "cuda": "CUDA (NVIDIA GPU)",
    "mps": "MPS (Apple GPU)",
}
RUNTIME_LABELS = {
    "auto": "Automatic (OpenVINO when installed)",
    "pytorch": "PyTorch",
    "openvino": "OpenVINO",
}


class SettingsDialog(QDialog):
    """Edits a copy of the settings; OK hands it to ctx.update_settings (saved, rescanned)."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        s: Settings = ctx.settings

        self.output_dir = QLineEdit(s.output_dir)
        self.output_dir.setPlaceholderText(str(default_output_dir()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_dir, 1)
        out_row.addWidget(browse)

        self.model_dirs = QListWidget()
        self.model_dirs.addItems(s.model_dirs)
        self.model_dirs.setMinimumHeight(80)
        self.model_dirs.setMaximumHeight(130)
        self.model_dirs.setToolTip("Folders searched for diffusers, transformers, GGUF and "
                                   "single-file checkpoints (besides the bundled models/)")
        add = QPushButton("Add…")
        add.clicked.connect(self._add_model_dir)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_model_dir)
        self.model_dirs.currentRowChanged.connect(
            lambda r: self.remove_button.setEnabled(r >= 0))
        self.remove_button.setEnabled(False)
        dir_buttons = QVBoxLayout()
        dir_buttons.addWidget(add)
        dir_buttons.addWidget(self.remove_button)
        dir_buttons.addStretch(1)
        dirs_row = QHBoxLayout()
        dirs_row.addWidget(self.model_dirs, 1)
        dirs_row.addLayout(dir_buttons)
        bundled = QLabel(f"Always searched too: {bundled_models_dir()}")
        bundled.setObjectName("muted")
        bundled.setWordWrap(True)
        dirs_col = QVBoxLayout()
        dirs_col.setSpacing(4)
        dirs_col.addLayout(dirs_row)
        dirs_col.addWidget(bundled)

        self.device = QComboBox()
        for d in DEVICES:
            self.device.addItem(DEVICE_LABELS.get(d, d), d)
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))

        self.memory = QSpinBox()
        self.memory.setRange(0, 1024 * 1024)
        self.memory.setSingleStep(512)
        self.memory.setSuffix(" MB")
        self.memory.setSpecialValueText("Automatic")
        self.memory.setValue(s.memory_budget_mb)
        self.memory.setToolTip("How much memory loaded models may use before the least "
                               "recently used one is unloaded; 0 = decide from the machine")

        self.runtime = QComboBox()
        for r in IMAGE_RUNTIMES:
            self.runtime.addItem(RUNTIME_LABELS.get(r, r), r)
        self.runtime.setCurrentIndex(max(0, self.runtime.findData(s.image_runtime)))
        self.runtime.setToolTip(
            "How image models run on the CPU. OpenVINO is about twice as fast per step, but "
            "converts each model once first (minutes for a full-size one) and keeps a second "
            "copy of its weights in memory. GPUs always use PyTorch.")
        self.fast_decode = QCheckBox("Fast final decode with the tiny autoencoder (TAESD)")
        self.fast_decode.setChecked(s.fast_decode)
        self.fast_decode.setToolTip(
            "When a TAESD is installed in a model folder, the finished image is decoded with "
            "it: over ten times faster on a CPU, with slightly softer detail.")
        self.cpu_bf16 = QCheckBox("bfloat16 on CPUs that support it")
        self.cpu_bf16.setChecked(s.cpu_bf16)
        self.cpu_bf16.setToolTip(
            "Faster on CPUs with AVX512-BF16 or AMX, at a slightly coarser precision; "
            "ignored on other CPUs and on GPUs.")

        self.previews = QCheckBox("Show live previews while generating")
        self.previews.setChecked(s.live_previews)
        self.previews.setToolTip("Turn off to save a little time on slow machines")

        self.allow_pickle = QCheckBox("Allow pickled checkpoints (.ckpt, .bin, .pt)")
        self.allow_pickle.setChecked(s.allow_pickle)
        self.pickle_warning = QLabel(
            "Pickled files can run code when loaded. Studio loads them with weights_only, "
            "but only enable this for files from sources you trust; prefer .safetensors.")
        self.pickle_warning.setWordWrap(True)
        self.pickle_warning.setObjectName("warning")
        self.allow_pickle.toggled.connect(self._pickle_toggled)
        self._pickle_toggled(s.allow_pickle)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(10)
        form.addRow("Output folder", out_row)
        form.addRow("Model folders", dirs_col)
        form.addRow("Device", self.device)
        form.addRow("Memory budget", self.memory)
        form.addRow("Image runtime", self.runtime)
        form.addRow("", self.fast_decode)
        form.addRow("", self.cpu_bf16)
        form.addRow("", self.previews)
        form.addRow("", self.allow_pickle)
        form.addRow("", self.pickle_warning)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        col = QVBoxLayout(self)
        col.setContentsMargins(20, 18, 20, 16)
        col.setSpacing(14)
        col.addLayout(form)
        col.addWidget(buttons)

    def _pickle_toggled(self, on: bool) -> None:
        self.pickle_warning.setEnabled(on)
        self.pickle_warning.setProperty("active", on)
        self.pickle_warning.style().unpolish(self.pickle_warning)
        self.pickle_warning.style().polish(self.pickle_warning)

    def _browse_output(self) -> None:
        start = self.output_dir.text() or str(default_output_dir())
        folder = QFileDialog.getExistingDirectory(self, "Output folder", start)
        if folder:
            self.output_dir.setText(folder)

    def _add_model_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder")
        if folder:
            self.add_model_dir(folder)

    def add_model_dir(self, folder: str) -> None:
        existing = [self.model_dirs.item(i).text() for i in range(self.model_dirs.count())]
        if folder not in existing:
            self.model_dirs.addItem(folder)

    def _remove_model_dir(self) -> None:
        row = self.model_dirs.currentRow()
        if row >= 0:
            self.model_dirs.takeItem(row)

    def settings(self) -> Settings:
        """The edited settings (a new object; the current ones are untouched)."""
        return dataclasses.replace(
            self.ctx.settings,
            output_dir=self.output_dir.text().strip(),
            model_dirs=[self.model_dirs.item(i).text() for i in range(self.model_dirs.count())],
            device=self.device.currentData(),
            allow_pickle=self.allow_pickle.isChecked(),
            memory_budget_mb=self.memory.value(),
            live_previews=self.previews.isChecked(),
            image_runtime=self.runtime.currentData(),
            fast_decode=self.fast_decode.isChecked(),
            cpu_bf16=self.cpu_bf16.isChecked(),
        )

    def accept(self) -> None:
        self.ctx.update_settings(self.settings())
        super().accept()
