"""The anchor cards: one per pad corner (seed, a prompt where the model has one, "from a
saved output", remove), bound to an ExploreSession's anchors."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.explore import MAX_ANCHORS
from studio.core.seeds import draw_seed
from studio.runtime.explore_session import ExploreSession
from studio.ui.explore.pad import ANCHOR_COLOURS
from studio.ui.widgets import SeedField, close_icon, folder_icon


class ColourDot(QWidget):
    def __init__(self, colour: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = colour
        self.setFixedSize(14, 14)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.colour)
        p.drawEllipse(QRectF(1, 1, 12, 12))


class AnchorCard(QFrame):
    """One anchor: its seed (dice for a new one), a prompt, "from a saved output", remove.

    Signals carry the card's index; the row turns them into session calls.
    """

    seed_changed = Signal(int, int)  # index, seed
    prompt_typed = Signal(int, str)  # every keystroke: recorded, not rendered
    prompt_done = Signal(int)  # editing finished: render
    remove_requested = Signal(int)
    file_requested = Signal(int)

    def __init__(self, index: int, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("anchorCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.index = index
        self.dot = ColourDot(ANCHOR_COLOURS[index])
        self.title = QLabel(f"Anchor {index + 1}")
        self.title.setObjectName("sectionLabel")
        self.seed = SeedField(allow_reuse=False)
        self.seed.set_value(seed)
        self.seed.dice.setToolTip("A new random seed for this anchor")
        self.seed.dice.clicked.disconnect()
        self.seed.dice.clicked.connect(lambda: self._set_seed(draw_seed()))
        self.seed.edit.editingFinished.connect(self._seed_edited)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("prompt for this anchor")
        self.prompt.textChanged.connect(lambda text: self.prompt_typed.emit(self.index, text))
        self.prompt.editingFinished.connect(lambda: self.prompt_done.emit(self.index))
        self.from_file = QToolButton()
        self.from_file.setIcon(folder_icon())
        self.from_file.setToolTip("Take seed and prompt from a saved output…")
        self.from_file.clicked.connect(lambda: self.file_requested.emit(self.index))
        self.remove = QToolButton()
        self.remove.setIcon(close_icon())
        self.remove.setToolTip("Remove this anchor")
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self.index))
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(6)
        top.addWidget(self.dot)
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.from_file)
        top.addWidget(self.remove)
        col = QVBoxLayout(self)
        col.setContentsMargins(8, 6, 8, 8)
        col.setSpacing(4)
        col.addLayout(top)
        col.addWidget(self.seed)
        col.addWidget(self.prompt)
        self._last_seed = seed

    def set_index(self, index: int) -> None:
        self.index = index
        self.dot.colour = ANCHOR_COLOURS[index]
        self.dot.update()
        self.title.setText(f"Anchor {index + 1}")

    def seed_value(self) -> int:
        """The anchor's seed; an empty box gets a fresh one (the explorer needs fixed seeds)."""
        try:
            value = self.seed.value()
        except ValueError:
            value = -1
        if value == -1:
            value = draw_seed()
            self.seed.set_value(value)
        return value

    def show_anchor(self, seed: int, prompt: str) -> None:
        """Show the session's values (only what differs, so typing is not disturbed)."""
        if seed != self._last_seed:
            self.seed.set_value(seed)
            self._last_seed = seed
        if prompt != self.prompt.text():
            self.prompt.setText(prompt)

    def _set_seed(self, seed: int) -> None:
        self.seed.set_value(seed)
        self._last_seed = seed
        self.seed_changed.emit(self.index, seed)

    def _seed_edited(self) -> None:
        value = self.seed_value()
        if value != self._last_seed:
            self._set_seed(value)


class AnchorRow(QWidget):
    """The anchor cards and "+ Anchor", kept in step with the session's anchors."""

    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.cards: list[AnchorCard] = []
        self.add_button = QPushButton("+ Anchor")
        self.add_button.setToolTip("Add an anchor (up to four: the pad's corners)")
        self.add_button.clicked.connect(lambda: session.add_anchor(draw_seed()))
        self.row = QHBoxLayout()
        self.row.setSpacing(8)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(10)
        outer.addLayout(self.row, 1)
        outer.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignBottom)
        session.anchors_changed.connect(self.sync)
        session.model_changed.connect(lambda _m: self._update_prompts())
        self.sync()

    def seeds(self) -> list[int]:
        """The seeds shown (an empty box draws one, and the session records it)."""
        seeds = [c.seed_value() for c in self.cards]
        for i, seed in enumerate(seeds):
            if i < len(self.session.anchors) and self.session.anchors[i].seed != seed:
                self.session.set_anchor(i, seed=seed, render=False)
        return seeds

    def remove(self, card: AnchorCard) -> None:
        self.session.remove_anchor(card.index)

    def sync(self) -> None:
        """Add or drop cards to match the session, then show each anchor's values."""
        anchors = self.session.anchors
        while len(self.cards) > len(anchors):
            card = self.cards.pop()
            card.setParent(None)
            card.deleteLater()
        while len(self.cards) < len(anchors):
            card = AnchorCard(len(self.cards), anchors[len(self.cards)].seed)
            card.seed_changed.connect(lambda i, s: self.session.set_anchor(i, seed=s))
            card.prompt_typed.connect(
                lambda i, text: self.session.set_anchor(i, prompt=text, render=False))
            card.prompt_done.connect(lambda i: self.session.set_anchor(i))
            card.remove_requested.connect(self.session.remove_anchor)
            card.file_requested.connect(self._from_file)
            self.cards.append(card)
            self.row.addWidget(card, 1)
        for i, (card, anchor) in enumerate(zip(self.cards, anchors, strict=True)):
            card.set_index(i)
            card.show_anchor(anchor.seed, anchor.prompt)
            card.remove.setEnabled(len(anchors) > 1)
        self.add_button.setEnabled(len(anchors) < MAX_ANCHORS)
        self._update_prompts()

    def _update_prompts(self) -> None:
        """Prompts only where the model has a text condition, named as its family names it."""
        label = self.session.prompt_label
        text = "prompt for this anchor" if label == "Prompt" else f"{label.lower()} for this anchor"
        for card in self.cards:
            card.prompt.setVisible(self.session.conditional)
            card.prompt.setPlaceholderText(text)

    def _from_file(self, index: int) -> None:
        start = str(self.session.jobs.settings.output_path)
        path, _ = QFileDialog.getOpenFileName(
            self, "Take an anchor from a saved output", start,
            "Outputs (*.png *.jpg *.jpeg *.webp *.gif *.mp4);;All files (*)")
        if path:
            self.session.anchor_from_path(index, Path(path))
