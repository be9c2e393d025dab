"""The Music panel's "Composition" section: the composer's explicit controls.

Key, metre, tempo, form, style, instruments, soundfont, motif and stems are request
fields (studio/core/music.py holds the option lists); every choice starts at "auto", which
leaves it to the prompt words and the seed. `understood_line` is the "I understood" line
shown under the prompt: a pure core call (composer_prompt.understand), cheap enough to
run as the user types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QWidget,
)

from studio.core import music
from studio.core.composer_prompt import describe, resolve, understand
from studio.core.errors import StudioError
from studio.core.fields import spec
from studio.core.requests import MusicRequest
from studio.ui.forms import field_grid, spin_box

CONTROLS = ("key", "meter", "bpm", "form", "style", "instruments", "soundfont", "motif",
            "stems")
SEED_PROBES = (0, 1, 2, 3)  # seeds that show whether the seed still decides something
RANDOM_NOTE = " (a random seed picks what the words and controls leave open)"
#: the instruments offered in the pick menu (any name in music.INSTRUMENTS may be typed)
PICKS = ("piano", "violin", "viola", "cello", "guitar", "harp", "flute", "oboe", "clarinet",
         "bassoon", "horn", "trumpet", "organ", "choir", "strings", "accordion", "banjo",
         "mandolin", "tin whistle", "erhu", "koto")
KEYS: tuple[str, ...] = tuple(f"{n} {m}" for m in ("major", "minor") for n in music.PITCH_NAMES)


def understood_line(request: MusicRequest) -> str:
    """"I understood: D minor, 3/4, 76 bpm, …" for a request, or the sentence that says
    which control cannot be honoured."""
    try:
        said, resolved = understand(request)
    except StudioError as exc:
        return f"Cannot follow that: {exc}"
    line = f"I understood: {describe(resolved)}"
    if request.seed == -1 and len({describe(resolve(said, s)) for s in SEED_PROBES}) > 1:
        line += RANDOM_NOTE  # the line shows one draw; the real seed is drawn at Generate
    return line


def _combo(field: str, options: Sequence[str], *, editable: bool = False) -> QComboBox:
    box = QComboBox()
    box.addItems([music.AUTO, *options])
    box.setEditable(editable)
    box.setToolTip(spec(MusicRequest, field).tip)
    return box


class CompositionControls(QWidget):
    """The composer's controls; `changed` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = _combo("key", KEYS, editable=True)
        self.meter = _combo("meter", music.METERS)
        self.form = _combo("form", music.FORMS)
        self.style = _combo("style", music.STYLES)
        self.bpm = spin_box(spec(MusicRequest, "bpm"))
        assert isinstance(self.bpm, QDoubleSpinBox)
        self.bpm.setSpecialValueText("auto")  # 0 bpm: from the tempo words
        self.instruments = QLineEdit()
        self.instruments.setPlaceholderText("auto, or e.g. violin, guitar")
        self.instruments.setToolTip(spec(MusicRequest, "instruments").tip)
        self.instrument_button = QToolButton()
        self.instrument_button.setText("+")
        self.instrument_button.setToolTip("Add an instrument (the first plays the tune)")
        self.instrument_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.instrument_menu = QMenu(self.instrument_button)
        for name in PICKS:
            self.instrument_menu.addAction(name).triggered.connect(
                lambda _c=False, n=name: self.add_instrument(n))
        self.instrument_button.setMenu(self.instrument_menu)
        self.soundfont = _combo("soundfont", [p.name for p in music.available_soundfonts()])
        self.motif = QLineEdit()
        self.motif.setPlaceholderText("none: a MIDI file to start from")
        self.motif.setToolTip(spec(MusicRequest, "motif").tip)
        self.motif_button = QToolButton()
        self.motif_button.setText("…")
        self.motif_button.setToolTip("Choose a MIDI file (or a past piece's .mid) as the motif")
        self.motif_start = ""  # where the motif picker opens (the panel: the output folder)
        self.stems = QCheckBox("Stems")
        self.stems.setToolTip(spec(MusicRequest, "stems").tip)
        motif_row = QHBoxLayout()
        motif_row.setSpacing(4)
        motif_row.addWidget(self.motif, 1)
        motif_row.addWidget(self.motif_button)
        instrument_row = QHBoxLayout()
        instrument_row.setSpacing(4)
        instrument_row.addWidget(self.instruments, 1)
        instrument_row.addWidget(self.instrument_button)
        self.labels: dict[str, QLabel] = {
            name: QLabel(spec(MusicRequest, name).short) for name in CONTROLS if name != "stems"}
        self.setLayout(field_grid([
            [self.pair("key"), self.pair("meter")],
            [self.pair("bpm"), self.pair("form")],
            [self.pair("style"), self.pair("soundfont")],
            [(self.labels["instruments"], instrument_row)],
            [(self.labels["motif"], motif_row)],
            [("", self.stems)],
        ], margins=(0, 0, 0, 0)))
        for box in (self.key, self.meter, self.form, self.style, self.soundfont):
            box.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.bpm.valueChanged.connect(lambda _v: self.changed.emit())
        self.instruments.textChanged.connect(lambda _t: self.changed.emit())
        self.motif.textChanged.connect(lambda _t: self.changed.emit())
        self.stems.toggled.connect(lambda _b: self.changed.emit())
        self.motif_button.clicked.connect(self.pick_motif)

    def pair(self, name: str) -> tuple[QLabel, QWidget]:
        return self.labels[name], self.widget(name)

    def widget(self, name: str) -> QWidget:
        return getattr(self, name)

    def widgets(self) -> dict[str, Sequence[QWidget]]:
        """Field → its widgets (and label), for the panel's optional_widgets."""
        out: dict[str, Sequence[QWidget]] = {}
        for name in CONTROLS:
            shown: list[QWidget] = [self.widget(name)]
            if name in self.labels:
                shown.append(self.labels[name])
            if name == "motif":
                shown.append(self.motif_button)
            if name == "instruments":
                shown.append(self.instrument_button)
            out[name] = shown
        return out

    def values(self) -> dict[str, Any]:
        """The controls as MusicRequest keyword arguments."""
        return {
            "key": self.key.currentText().strip() or music.AUTO,
            "meter": self.meter.currentText(),
            "bpm": float(round(self.bpm.value())),
            "form": self.form.currentText(),
            "style": self.style.currentText(),
            "instruments": self.instruments.text().strip() or music.AUTO,
            "soundfont": self.soundfont.currentText(),
            "motif": self.motif.text().strip(),
            "stems": self.stems.isChecked(),
        }

    def set_values(self, request: MusicRequest) -> None:
        """Show a request's controls (a value not in a list is added to it)."""
        for name in ("key", "meter", "form", "style", "soundfont"):
            box: QComboBox = self.widget(name)  # type: ignore[assignment]
            value = str(getattr(request, name)) or music.AUTO
            if box.findText(value) < 0:
                box.addItem(value)
            box.setCurrentText(value)
        self.bpm.setValue(float(request.bpm))
        self.instruments.setText("" if music.is_auto(request.instruments)
                                 else request.instruments)
        self.motif.setText(request.motif)
        self.stems.setChecked(bool(request.stems))

    def changed_from_defaults(self, request: MusicRequest) -> bool:
        return any(getattr(request, n) != spec(MusicRequest, n).default for n in CONTROLS)

    def add_instrument(self, name: str) -> None:
        """Append an instrument to the list (once)."""
        names = [n.strip() for n in self.instruments.text().split(",") if n.strip()]
        if name not in names:
            self.instruments.setText(", ".join([*names, name]))

    def pick_motif(self) -> None:
        start = str(Path(self.motif.text()).parent) if self.motif.text() else self.motif_start
        path, _filter = QFileDialog.getOpenFileName(
            self, "Choose a motif", start, "MIDI files (*.mid *.midi)")
        if path:
            self.motif.setText(path)


def extend_row() -> tuple[QWidget, QPushButton, QDoubleSpinBox]:
    """The Extend button with its "+N s" spin box (the seconds to add), side by side."""
    button = QPushButton("Extend")
    button.setToolTip("Continue this piece: the same recipe, going on from its end by the "
                      "seconds beside")
    seconds = QDoubleSpinBox()
    seconds.setRange(0.5, 600.0)
    seconds.setDecimals(1)
    seconds.setValue(10.0)
    seconds.setPrefix("+")
    seconds.setSuffix(" s")
    seconds.setToolTip("Seconds to add when extending")
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(4)
    row.addWidget(button, 1)
    row.addWidget(seconds)
    holder = QWidget()
    holder.setLayout(row)
    return holder, button, seconds
