"""The Gallery's details pane: the selected output, every field of its recipe, actions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.ui.gallery.model import describe_size, describe_time, field_of, request_of
from studio.ui.images import kind_of
from studio.ui.queue_dock import short_model
from studio.ui.widgets import (
    ImageView,
    MessageLabel,
    StarRating,
    copy_icon,
    folder_icon,
    play_icon,
    section_label,
)

KIND_NAMES = {"image": "Picture", "music": "Music", "text": "Text", "explore": "Explorer walk"}


def describe_recipe(request: dict[str, Any]) -> str:
    """Every field of a stored recipe, one "Name: value" line each, in the recipe's order."""
    lines = []
    for key, value in request.items():
        if key == "notes":
            continue
        label = key.replace("_", " ").capitalize()
        if isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
        elif value is None or value == "":
            text = "—"
        else:
            text = str(value)
        lines.append(f"{label}: {text}")
    return "\n".join(lines)


def recipe_text(item: Any, infotext: str = "") -> str:
    """What "Copy recipe" copies: the A1111 infotext when the picture has one, else JSON."""
    if infotext:
        return infotext
    return json.dumps(request_of(item), indent=2, ensure_ascii=False, default=str)


class DetailsPane(QWidget):
    """The selected output: a larger view, its recipe fields, rating and actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsPane")
        self.view = ImageView("Select an output to see its details.")
        self.view.setMinimumHeight(220)
        self.prompt = QLabel("")
        self.prompt.setWordWrap(True)
        self.prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.prompt.setObjectName("promptText")
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(6)
        for name in ("Kind", "Model", "Seed", "Size", "Created", "File"):
            value = QLabel("")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.fields[name] = value
            label = QLabel(name)
            label.setObjectName("muted")
            form.addRow(label, value)
        self.rating = StarRating()
        rating_label = QLabel("Rating")
        rating_label.setObjectName("muted")
        form.addRow(rating_label, self.rating)
        self.use_button = QPushButton("Use these settings")
        self.use_button.setObjectName("primary")
        self.use_button.setToolTip("Fill the matching panel with this output's recipe")
        self.open_button = QPushButton("Open file")
        self.folder_button = QPushButton(folder_icon(), "Show folder")
        self.play_button = QPushButton(play_icon(), "Play")
        self.play_button.setToolTip("Play this piece")
        self.play_button.hide()
        self.init_button = QPushButton("Use as init")
        self.init_button.setToolTip("Start the next Art picture from this one (img2img, "
                                    "inpainting)")
        self.view_button = QPushButton("View")
        self.view_button.setToolTip("Show the picture over the whole window (double-click)")
        self.copy_image_button = QPushButton(copy_icon(), "Copy image")
        self.copy_image_button.setToolTip("Put the picture on the clipboard (Ctrl+C)")
        self.copy_recipe_button = QPushButton(copy_icon(), "Copy recipe")
        self.copy_recipe_button.setToolTip(
            "Copy the A1111 infotext (pictures) or the recipe as JSON")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the file to the trash folder (Del; Ctrl+Z undoes)")
        self.parameters = QPlainTextEdit()
        self.parameters.setObjectName("parameters")
        self.parameters.setReadOnly(True)
        self.parameters.setMaximumHeight(150)
        self.parameters.setPlaceholderText("No recipe is stored for this output.")
        self.infotext = QPlainTextEdit()
        self.infotext.setObjectName("infotext")
        self.infotext.setReadOnly(True)
        self.infotext.setMaximumHeight(96)
        self.infotext_label = section_label("A1111 infotext")
        self.plot = QLabel("")
        self.plot.setWordWrap(True)
        self.plot.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot_label = section_label("X/Y/Z plot")
        self.model_name = short_model  # GalleryPanel swaps in the catalog's names
        self.message = MessageLabel()
        actions = QHBoxLayout()
        actions.setSpacing(6)
        actions.addWidget(self.open_button)
        actions.addWidget(self.folder_button)
        actions.addWidget(self.play_button)
        actions.addWidget(self.view_button)
        actions.addWidget(self.delete_button)
        copies = QHBoxLayout()
        copies.setSpacing(6)
        copies.addWidget(self.copy_image_button)
        copies.addWidget(self.copy_recipe_button)
        copies.addWidget(self.init_button)
        copies.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(14, 14, 16, 14)
        col.setSpacing(8)
        col.addWidget(self.view, 1)
        col.addWidget(section_label("Prompt"))
        col.addWidget(self.prompt)
        col.addLayout(form)
        col.addWidget(section_label("Parameters"))
        col.addWidget(self.parameters)
        col.addWidget(self.infotext_label)
        col.addWidget(self.infotext)
        col.addWidget(self.plot_label)
        col.addWidget(self.plot)
        col.addWidget(self.use_button)
        col.addLayout(actions)
        col.addLayout(copies)
        col.addWidget(self.message)
        self.show_item(None)

    def show_item(self, item: Any, image: QImage | None = None, missing: bool = False) -> None:
        has = item is not None
        for w in (self.use_button, self.open_button, self.folder_button, self.rating,
                  self.copy_recipe_button, self.delete_button):
            w.setEnabled(has)
        self.message.clear_message()
        self.set_infotext("")
        self.set_plot("")
        self.parameters.setPlainText(describe_recipe(request_of(item)) if has else "")
        kind = (field_of(item, "modality") or kind_of(str(field_of(item, "path", "")))
                if has else "")
        self.copy_image_button.setEnabled(kind == "image" and not missing)
        for button in (self.view_button, self.init_button):
            button.setVisible(kind == "image")
            button.setEnabled(kind == "image" and not missing)
        if not has:
            self.view.set_image(None)
            self.prompt.setText("")
            for label in self.fields.values():
                label.setText("")
            self.rating.set_rating(0)
            self.play_button.hide()
            return
        req = request_of(item)
        path = str(field_of(item, "path", ""))
        prompt = field_of(item, "prompt") or req.get("prompt") or ""
        self.prompt.setText(prompt or "(no prompt)")
        model = str(field_of(item, "model") or req.get("model") or "")
        self.fields["Model"].setText(self.model_name(model))
        self.fields["Model"].setToolTip(model)
        self.fields["Kind"].setText(KIND_NAMES.get(kind, kind))
        seed = field_of(item, "seed")
        self.fields["Seed"].setText(str(seed if seed is not None else req.get("seed", "")))
        self.fields["Size"].setText(describe_size(item))
        self.fields["Created"].setText(describe_time(field_of(item, "created")))
        self.fields["File"].setText(Path(path).name + ("  (file missing)" if missing else ""))
        self.fields["File"].setToolTip(path)
        self.rating.set_rating(int(field_of(item, "rating", 0) or 0))
        self.play_button.setVisible(kind == "music" and not missing)
        self.open_button.setEnabled(not missing)
        self.view.set_image(image, "file missing" if missing else "")
        if missing:
            self.message.show_error("This file is missing: it was moved or deleted.")



    def set_plot(self, text: str) -> None:
        """The plot a grid image was made of (its recipe's axes; hidden for other pictures)."""
        self.plot.setText(text)
        self.plot.setVisible(bool(text))
        self.plot_label.setVisible(bool(text))

    def set_infotext(self, text: str) -> None:
        """The A1111 parameters text read from the file (pictures only; hidden when none)."""
        self.infotext.setPlainText(text)
        self.infotext.setVisible(bool(text))
        self.infotext_label.setVisible(bool(text))
