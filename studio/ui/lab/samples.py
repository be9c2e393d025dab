"""The Lab's samples strip: what the model makes every N steps, so the artist sees it learn.

Each `samples` signal of a run (step, files) adds a tile for each of its first few files
at the right end of a horizontal strip: an image as a thumbnail, text as a short label (the
whole text in its tooltip), audio as a play button, MIDI as a button that opens it in the
system's player. The strip keeps the newest `MAX_TILES` tiles so a long run does not grow
without bound.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.ui.widgets import play_icon

log = logging.getLogger(__name__)

THUMB = 96  # px, the side of an image tile
MAX_TILES = 80
PER_STEP = 4  # tiles per step: the strip shows learning across steps (all are in samples/)
TEXT_CHARS = 90  # the label of a text sample; the tooltip has more
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
MIDI_SUFFIXES = {".mid", ".midi"}
TEXT_SUFFIXES = {".txt", ".md", ".abc"}
STEP_RE = re.compile(r"step-(\d+)")


def sample_kind(path: Path) -> str:
    """"image" | "audio" | "midi" | "text" | "" (a file the strip does not show)."""
    suffix = path.suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES),
                           ("midi", MIDI_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return ""


def step_of(path: Path) -> int | None:
    """The step a sample file was made at, from its name (step-000200-0.png)."""
    found = STEP_RE.match(path.name)
    return int(found.group(1)) if found else None


class SampleTile(QFrame):
    """One sample and the step it was made at."""

    def __init__(self, step: int, path: Path, strip: SamplesStrip) -> None:
        super().__init__()
        self.setObjectName("sampleTile")
        self.step = step
        self.path = path
        self.kind = sample_kind(path)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 4, 4, 4)
        col.setSpacing(2)
        self.body: QWidget
        if self.kind == "image":
            self.body = QLabel()
            pixmap = QPixmap(str(path))
            if not pixmap.isNull():
                self.body.setPixmap(pixmap.scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation if pixmap.width() < THUMB
                    else Qt.TransformationMode.SmoothTransformation))
            else:
                self.body.setText("unreadable")
            self.body.setFixedSize(THUMB, THUMB)
            self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        elif self.kind == "text":
            text = _read_text(path)
            short = " ".join(text.split())
            self.body = QLabel(short[:TEXT_CHARS] + ("…" if len(short) > TEXT_CHARS else ""))
            self.body.setWordWrap(True)
            self.body.setFixedWidth(2 * THUMB)
            self.body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            self.body.setToolTip(text[:2000])
        else:
            button = QToolButton()
            button.setIcon(play_icon())
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setText("Play" if self.kind == "audio" else "MIDI")
            button.setToolTip(f"Play {path.name}" if self.kind == "audio"
                              else f"Open {path.name} in your MIDI player")
            button.clicked.connect(lambda: strip.play(path))
            button.setFixedSize(THUMB, THUMB // 2 + 16)
            self.body = button
        col.addWidget(self.body, 0, Qt.AlignmentFlag.AlignHCenter)
        col.addStretch(1)  # every caption on one line along the strip's bottom
        self.caption = QLabel(f"step {step}")
        self.caption.setObjectName("muted")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(self.caption)
        self.setToolTip(self.toolTip() or path.name)
        self.setFixedHeight(THUMB + 32)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"({exc.strerror or exc})"


def _drop(row: QHBoxLayout, tile: QWidget) -> None:
    """Take a tile off the strip now (deleteLater alone leaves it painted until then)."""
    row.removeWidget(tile)
    tile.hide()
    tile.setParent(None)
    tile.deleteLater()


class SamplesStrip(QScrollArea):
    """A horizontal strip of sample tiles, newest at the right (scrolled into view)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMB + 48)
        inner = QWidget()
        self.row = QHBoxLayout(inner)
        self.row.setContentsMargins(4, 2, 4, 2)
        self.row.setSpacing(6)
        self.empty = QLabel("Samples appear here as the model learns.")
        self.empty.setObjectName("muted")
        self.row.addWidget(self.empty)
        self.row.addStretch(1)
        self.setWidget(inner)
        self.tiles: list[SampleTile] = []
        self._player = None  # an AudioPlayer, made on the first Play
        # new tiles widen the strip after layout: follow its end once the range has grown
        self.horizontalScrollBar().rangeChanged.connect(self._range_changed)

    def add(self, step: int, files: list[str] | list[Path]) -> None:
        """Tiles for the first PER_STEP files of one step's samples (unknown kinds left out)."""
        shown = 0
        for name in files:
            path = Path(name)
            if not sample_kind(path) or shown >= PER_STEP:
                continue
            shown += 1
            tile = SampleTile(step, path, self)
            self.row.insertWidget(self.row.count() - 1, tile)  # before the stretch
            self.tiles.append(tile)
        while len(self.tiles) > MAX_TILES:
            _drop(self.row, self.tiles.pop(0))
        self.empty.setVisible(not self.tiles)

    def load_folder(self, folder: Path) -> None:
        """Show the samples a past run left in its samples/ folder, in step order."""
        self.clear()
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        by_step: dict[int, list[Path]] = {}
        for path in files:
            step = step_of(path)
            if step is not None and sample_kind(path):
                by_step.setdefault(step, []).append(path)
        for step in sorted(by_step)[-MAX_TILES:]:
            self.add(step, by_step[step])

    def clear(self) -> None:
        for tile in self.tiles:
            _drop(self.row, tile)
        self.tiles = []
        self.empty.setVisible(True)

    def steps(self) -> list[int]:
        return [t.step for t in self.tiles]

    def _range_changed(self, _low: int, high: int) -> None:
        self.horizontalScrollBar().setValue(high)

    def play(self, path: Path) -> None:
        """Audio plays in the app (sounddevice); MIDI opens in the system's player."""
        if sample_kind(path) == "midi":
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
            return
        from studio.core.formats.audio import read_audio
        from studio.ui.audio import AudioPlayer

        try:
            audio, rate = read_audio(path)
        except StudioError as exc:
            log.info("could not play %s: %s", path, exc)
            return
        if self._player is None:
            self._player = AudioPlayer(self)
        self._player.set_audio(audio, rate)
        self._player.play()
