"""A notice bar that stays until the user closes it: for what must be read, not flashed.

The status bar's messages vanish after a few seconds; what an import had to change, or
an "Undo" after a delete, needs to stay on screen until it is read or acted on.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget


class Notice(QFrame):
    """A line (or a few) of text, an optional action button and a close button."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#notice { background: #2b2940; border: 1px solid #5a4fb0; "
                           "border-radius: 6px; } #notice QLabel { color: #e6e3ff; }")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.action_button = QPushButton("")
        self.action_button.hide()
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        row.setSpacing(8)
        row.addWidget(self.label, 1)
        row.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self._action: Callable[[], None] | None = None
        self.action_button.clicked.connect(self._act)
        self.close_button.clicked.connect(self.dismiss)
        self.hide()

    def show_notice(self, text: str, action: str = "",
                    on_action: Callable[[], None] | None = None) -> None:
        """Show `text` (replacing any earlier notice), with a button when `action` is set."""
        self.label.setText(text)
        self._action = on_action
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action and on_action))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def dismiss(self) -> None:
        if not self.isHidden():
            self.hide()
            self._action = None
            self.closed.emit()

    def _act(self) -> None:
        action, self._action = self._action, None
        self.hide()
        if action is not None:
            action()
