"""The Music panel: prompt → music, heard and seen while it is being generated.

The form builds a MusicRequest and submits it to ctx.jobs. Audio arrives as growing
chunks (job_preview, kind "audio"): they go to the waveform, the spectrogram and the
player, so the play head can start before the end. "Play as it arrives" starts playback
once the remaining generation time fits in the audio already buffered (so playback never
has to wait). Past pieces (this session's and the history's) are listed and replayable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.requests import MusicRequest, Request
from studio.core.results import Preview, Progress, Result
from studio.runtime.tasks import run_in_pool
from studio.runtime.tracker import JobTracker
from studio.ui.art_panel import FormScroll
from studio.ui.audio import AudioPlayer
from studio.ui.waveform import SpectrogramView, WaveformView
from studio.ui.widgets import (
    CollapsibleSection,
    MessageLabel,
    ModelPicker,
    ProgressRow,
    SeedField,
    folder_icon,
    play_icon,
    section_label,
)

AUTOPLAY_MARGIN_S = 0.5  # start early playback only with this much audio to spare
RECENT_PIECES = 30


def clock(seconds: float) -> str:
    """0:07 · 1:05 · 1:02:03."""
    total = max(0, int(seconds + 1e-6))
    minutes, sec = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


@dataclass
class Piece:
    """What the player holds: a finished result, a file, or a job still streaming."""

    title: str
    request: Request | None = None
    path: Path | None = None
    result: Result | None = None
    job_id: int | None = None


class _PromptEdit(QPlainTextEdit):
    """A multi-line prompt box; Tab moves focus on instead of typing a tab."""

    def __init__(self, placeholder: str, lines: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, self.minimumHeight())


class MusicPanel(QWidget):
    """Text-to-music: the form on the left; waveform, spectrogram and transport on the right."""

    generated = Signal(list)  # [Path] of the last finished job

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs = JobTracker(ctx.jobs, self)  # this panel's jobs and their signals
        self._shown: int | None = None  # the job whose audio the player holds
        self._piece: Piece | None = None
        self._started_at = 0.0
        self._eta: float | None = None
        self._autoplayed = False
        self.player = AudioPlayer(self)
        self._build()
        self._connect()
        self._update_buttons()
        self._update_transport()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.player.close)
        self._load_recent()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model = ModelPicker(self.ctx, "music")
        self.model.setToolTip("The music model: the built-in composer or a MusicGen folder")
        self.prompt = _PromptEdit("Describe the music… (Ctrl+Enter generates)", 4)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.5, 600.0)
        self.duration.setDecimals(1)
        self.duration.setSingleStep(1.0)
        self.duration.setValue(10.0)
        self.duration.setSuffix(" s")
        self.duration.setToolTip("Length of the piece in seconds")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setDecimals(1)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(3.0)
        self.guidance.setToolTip("Guidance (CFG): how closely to follow the prompt; "
                                 "1 or less turns it off (twice as fast)")
        self.seed = SeedField()
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setDecimals(2)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(1.0)
        self.temperature.setToolTip("Higher is more adventurous; 0 always picks the likeliest")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100000)
        self.top_k.setValue(250)
        self.top_k.setToolTip("Sample among the k likeliest tokens (0 = no limit)")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.0, 1.0)
        self.top_p.setDecimals(2)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.0)
        self.top_p.setToolTip("Nucleus sampling: keep the likeliest tokens up to this "
                              "probability mass (0 = off)")
        sampling = QWidget()
        sgrid = QGridLayout(sampling)
        sgrid.setContentsMargins(14, 0, 0, 0)
        sgrid.addWidget(QLabel("Temperature"), 0, 0)
        sgrid.addWidget(self.temperature, 0, 1)
        sgrid.addWidget(QLabel("Top-k"), 1, 0)
        sgrid.addWidget(self.top_k, 1, 1)
        sgrid.addWidget(QLabel("Top-p"), 2, 0)
        sgrid.addWidget(self.top_p, 2, 1)
        self.sampling = CollapsibleSection("Sampling", sampling)

        self.blend_prompt = QLineEdit()
        self.blend_prompt.setPlaceholderText("A second prompt, e.g. fast rock guitar")
        self.blend_prompt.setToolTip(
            "Blend the prompt's conditioning toward this prompt's: MusicGen lerps the two "
            "text encodings; the composer lerps its style/mode/metre conditioning, takes "
            "key, metre and instrument from the heavier prompt and moves the tempo between")
        self.blend = QSlider(Qt.Orientation.Horizontal)
        self.blend.setRange(0, 100)
        self.blend.setValue(0)
        self.blend.setToolTip("0 % is only the prompt, 100 % only the blend prompt")
        self.blend_label = QLabel("0 %")
        self.blend_label.setMinimumWidth(40)
        self.blend.valueChanged.connect(lambda v: self.blend_label.setText(f"{v} %"))
        blending = QWidget()
        bgrid = QGridLayout(blending)
        bgrid.setContentsMargins(14, 0, 0, 0)
        bgrid.addWidget(QLabel("Toward"), 0, 0)
        bgrid.addWidget(self.blend_prompt, 0, 1, 1, 2)
        bgrid.addWidget(QLabel("Blend"), 1, 0)
        bgrid.addWidget(self.blend, 1, 1)
        bgrid.addWidget(self.blend_label, 1, 2)
        self.blending = CollapsibleSection("Blend toward", blending)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Generate (Ctrl+Enter). Clicking again queues more.")
        self.generate_button.setMinimumHeight(36)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this panel's running and waiting jobs (Esc)")
        self.cancel_button.setMinimumHeight(36)
        self.message = MessageLabel()

        form = QWidget()
        form.setObjectName("formColumn")
        col = QVBoxLayout(form)
        col.setContentsMargins(16, 14, 16, 14)
        col.setSpacing(6)
        col.addWidget(section_label("Model"))
        col.addWidget(self.model)
        col.addSpacing(8)
        col.addWidget(section_label("Prompt"))
        col.addWidget(self.prompt, 2)
        col.addSpacing(8)
        col.addWidget(section_label("Settings"))
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.addWidget(QLabel("Duration"), 0, 0)
        grid.addWidget(self.duration, 0, 1)
        grid.addWidget(QLabel("Guidance"), 0, 2)
        grid.addWidget(self.guidance, 0, 3)
        grid.addWidget(QLabel("Seed"), 1, 0)
        grid.addWidget(self.seed, 1, 1, 1, 3)
        col.addLayout(grid)
        col.addSpacing(6)
        col.addWidget(self.sampling)
        col.addWidget(self.blending)
        col.addSpacing(10)
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.generate_button, 3)
        buttons.addWidget(self.cancel_button, 1)
        col.addLayout(buttons)
        col.addWidget(self.message)
        col.addStretch(1)
        scroll = FormScroll()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # the listening column -----------------------------------------------------
        self.title = QLabel("No music yet")
        self.title.setObjectName("muted")
        self.title.setWordWrap(True)
        self.waveform = WaveformView()
        self.waveform.set_placeholder("Your music appears here as it is generated.\n"
                                      "Write a prompt and press Generate.")
        self.waveform.setToolTip("Click or drag to move the play head")
        self.spectrogram = SpectrogramView()
        self.spectrogram.setToolTip("Spectrogram (log frequency); click to move the play head")
        self.play_button = QToolButton()
        self.play_button.setIcon(play_icon())
        self.play_button.setText("Play")
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.play_button.setToolTip("Play / pause (Space)")
        self.stop_button = QToolButton()
        self.stop_button.setText("■ Stop")
        self.stop_button.setToolTip("Stop and go back to the start")
        self.loop_button = QToolButton()
        self.loop_button.setText("⟳ Loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setToolTip("Play the piece over and over")
        self.time_label = QLabel("0:00 / 0:00")
        self.time_label.setObjectName("muted")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(80)
        self.volume.setFixedWidth(110)
        self.volume.setToolTip("Volume")
        self.autoplay = QCheckBox("Play as it arrives")
        self.autoplay.setChecked(True)
        self.autoplay.setToolTip("Start playing while the music is still being generated, "
                                 "as soon as it can play through without waiting")
        transport = QHBoxLayout()
        transport.setSpacing(6)
        for w in (self.play_button, self.stop_button, self.loop_button):
            transport.addWidget(w)
        transport.addWidget(self.time_label)
        transport.addStretch(1)
        transport.addWidget(self.autoplay)
        transport.addWidget(QLabel("Volume"))
        transport.addWidget(self.volume)

        self.progress = ProgressRow()
        self.pieces = QListWidget()
        self.pieces.setObjectName("pieces")
        self.pieces.setToolTip("Past pieces: click one to play it")
        self.pieces.setMaximumHeight(130)
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Save a copy of this piece as WAV or FLAC, recipe included")
        self.open_folder_button = QPushButton(folder_icon(), "Open folder")
        self.open_folder_button.setToolTip("Show the output folder in your file manager")
        side = QVBoxLayout()
        side.setSpacing(6)
        side.addWidget(self.save_button)
        side.addWidget(self.open_folder_button)
        side.addStretch(1)
        bottom = QHBoxLayout()
        bottom.setSpacing(10)
        bottom.addWidget(self.pieces, 1)
        bottom.addLayout(side)

        canvas = QWidget()
        canvas.setObjectName("canvasColumn")
        right = QVBoxLayout(canvas)
        right.setContentsMargins(14, 14, 16, 14)
        right.setSpacing(8)
        right.addWidget(self.title)
        right.addWidget(self.waveform, 3)
        right.addWidget(self.spectrogram, 2)
        right.addLayout(transport)
        right.addWidget(self.progress)
        right.addWidget(section_label("Pieces"))
        right.addLayout(bottom)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(canvas)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 820])
        splitter.setChildrenCollapsible(False)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

    def _connect(self) -> None:
        jobs = self.jobs
        jobs.started.connect(self._on_started)
        jobs.status.connect(lambda _id, text: self.progress.set_status(text))
        jobs.progress.connect(self._on_progress)
        jobs.preview.connect(self._on_preview)
        jobs.finished.connect(self._on_finished)
        jobs.failed.connect(self._on_failed)
        jobs.cancelled.connect(self._on_cancelled)
        jobs.changed.connect(self._update_buttons)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.play_button.clicked.connect(self.toggle_play)
        self.stop_button.clicked.connect(self.player.stop)
        self.loop_button.toggled.connect(self.player.set_loop)
        self.volume.valueChanged.connect(lambda v: self.player.set_volume(v / 100))
        self.player.set_volume(self.volume.value() / 100)
        self.player.position_changed.connect(self._on_position)
        self.player.duration_changed.connect(lambda _d: self._update_time())
        self.player.state_changed.connect(lambda _s: self._update_transport())
        self.player.message.connect(self._player_message)
        self.waveform.seek_requested.connect(self.player.seek)
        self.spectrogram.seek_requested.connect(self.player.seek)
        self.pieces.itemClicked.connect(self._piece_clicked)
        self.save_button.clicked.connect(self.save_as)
        self.open_folder_button.clicked.connect(self.open_folder)
        scope = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, slot in (("Ctrl+Return", self.generate), ("Ctrl+Enter", self.generate),
                           (Qt.Key.Key_Escape, self.cancel)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(scope)
            shortcut.activated.connect(slot)
        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.waveform)
        space.setContext(Qt.ShortcutContext.WidgetShortcut)
        space.activated.connect(self.toggle_play)
        self.waveform.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    # ------------------------------------------------------------------ the form
    def request(self) -> MusicRequest:
        """The form as a request (not yet validated: submit() does that)."""
        return MusicRequest(
            model=self.model.current_model(),
            prompt=self.prompt.toPlainText().strip(),
            seed=self.seed.value(),
            duration=round(self.duration.value(), 2),
            temperature=round(self.temperature.value(), 3),
            top_k=self.top_k.value(),
            top_p=round(self.top_p.value(), 3),
            guidance=round(self.guidance.value(), 2),
            blend_prompt=self.blend_prompt.text().strip(),
            blend=self.blend.value() / 100,
        )

    def apply_request(self, request: Request) -> None:
        """Fill the form from a request (a recipe, the gallery, a dropped file)."""
        if not isinstance(request, MusicRequest):
            self.message.show_error(f"That recipe is for {request.kind or 'another'} "
                                    "generation, not for music.")
            return
        if request.model:
            self.model.set_model(request.model)
        self.prompt.setPlainText(request.prompt)
        self.seed.set_value(request.seed)
        self.duration.setValue(request.duration)
        self.guidance.setValue(request.guidance)
        self.temperature.setValue(request.temperature)
        self.top_k.setValue(request.top_k)
        self.top_p.setValue(request.top_p)
        defaults = MusicRequest()
        changed = (request.temperature, request.top_k, request.top_p) != (
            defaults.temperature, defaults.top_k, defaults.top_p)
        self.sampling.set_expanded(changed or self.sampling.is_expanded())
        self.blend_prompt.setText(request.blend_prompt)
        self.blend.setValue(round(request.blend * 100))
        blended = bool(request.blend_prompt) or request.blend > 0
        self.blending.set_expanded(blended or self.blending.is_expanded())
        self.message.show_info("Settings loaded from the recipe.")

    # ------------------------------------------------------------------ actions
    def generate(self) -> int | None:
        """Queue the form as a job; a bad field is reported under the buttons."""
        try:
            job_id = self.jobs.submit(self.request())
        except StudioError as exc:
            self.message.show_error(str(exc))
            return None
        except ValueError as exc:
            self.message.show_error(str(exc).splitlines()[0])
            return None
        self.message.clear_message()
        if self.jobs.current is None:
            self.progress.start("Queued…")
        return job_id

    def cancel(self) -> None:
        """Stop this panel's running job and drop the ones waiting behind it."""
        self.jobs.cancel_all()

    def busy(self) -> bool:
        return self.jobs.busy()

    def toggle_play(self) -> None:
        if self.player.is_playing:
            self.player.pause()
        else:
            self._play()

    def _play(self) -> bool:
        if self.player.duration <= 0 and not self.player.is_growing:
            self.message.show_info("Nothing to play yet: generate a piece or pick one below.")
            return False
        return self.player.play()

    def play_file(self, path: str | Path) -> bool:
        """Load a WAV/FLAC (e.g. from the gallery), show it and play it."""
        from studio.core.formats.audio import read_audio

        path = Path(path)
        try:
            audio, rate = read_audio(path)
        except StudioError as exc:
            self.message.show_error(str(exc))
            return False
        request = _request_in(path)
        title = request.prompt if request is not None and request.prompt else path.stem
        self._show(Piece(title, request, path), audio, rate)
        self._remember(path, title, audio.shape[-1] / rate if rate else 0.0)
        return self._play()

    def save_as(self) -> None:
        """Save a copy of the piece in the player (WAV or FLAC, with its recipe)."""
        piece = self._piece
        if piece is None or (piece.job_id is not None and piece.result is None):
            self.message.show_info("Nothing to save yet: wait for the piece to finish.")
            return
        start = str(piece.path.with_suffix("")) if piece.path else str(
            self.ctx.settings.output_path / "music")
        path, _filter = QFileDialog.getSaveFileName(
            self, "Save music as", start + ".wav", "WAV audio (*.wav);;FLAC audio (*.flac)")
        if path:
            self.export(Path(path))

    def export(self, path: Path) -> None:
        """Write the piece in the player to `path` (.wav or .flac) off the GUI thread."""
        from studio.core.formats.audio import export_audio

        piece = self._piece
        if piece is None:
            return
        result = piece.result or Result(piece.request or MusicRequest(prompt=piece.title),
                                        "music", audio=self.player.audio(),
                                        sample_rate=self.player.sample_rate)
        run_in_pool(lambda: export_audio(result, path),
                    lambda p: self.message.show_info(f"Saved {Path(p).name}."),
                    on_failed=lambda m: self.message.show_error(f"Could not save: {m}"))

    def open_folder(self) -> None:
        folder = self._piece.path.parent if self._piece and self._piece.path else None
        folder = folder or self.ctx.settings.output_path
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # ------------------------------------------------------------------ display
    def _show(self, piece: Piece, audio: np.ndarray | None, rate: int) -> None:
        """Put a piece in the player and the views (audio None: a stream begins)."""
        self._piece = piece
        self.title.setText(piece.title or "Untitled")
        if audio is None:
            self.player.begin_stream(rate)
            self.waveform.clear()
            self.spectrogram.clear()
        else:
            self.player.set_audio(audio, rate)
            self.waveform.set_audio(audio, rate)
            self.spectrogram.set_audio(audio, rate)
            self.waveform.set_expected_duration(0)
            self.spectrogram.set_expected_duration(0)
        self._shown = piece.job_id
        self._update_transport()

    def _on_position(self, seconds: float) -> None:
        self.waveform.set_position(seconds)
        self.spectrogram.set_position(seconds)
        self._update_time()

    def _update_time(self) -> None:
        total = self.player.duration
        if self.player.is_growing and self._piece and self._piece.request is not None:
            total = max(total, getattr(self._piece.request, "duration", 0.0))
        self.time_label.setText(f"{clock(self.player.position())} / {clock(total)}")

    def _update_transport(self) -> None:
        playing = self.player.is_playing
        self.play_button.setText("Pause" if playing else "Play")
        has_audio = self.player.duration > 0 or self.player.is_growing
        for w in (self.play_button, self.stop_button):
            w.setEnabled(has_audio)
        piece = self._piece
        self.save_button.setEnabled(piece is not None and (piece.job_id is None or
                                                           piece.result is not None))
        self._update_time()

    def _player_message(self, text: str) -> None:
        self.message.show_error(text)
        self.ctx.message.emit(text)
        self._update_transport()

    def _update_buttons(self) -> None:
        waiting = self.jobs.waiting
        self.cancel_button.setEnabled(self.jobs.busy())
        self.generate_button.setText(f"Generate  (+{waiting} queued)" if waiting else "Generate")

    def _maybe_autoplay(self) -> None:
        """Start early playback once generating the rest takes less than what is buffered."""
        if (not self.autoplay.isChecked() or self._autoplayed or self.player.is_playing
                or self._shown is None or self._shown != self.jobs.current):
            return
        buffered = self.player.duration - self.player.position()
        if self._eta is not None and buffered > 0 and self._eta + AUTOPLAY_MARGIN_S <= buffered:
            self._autoplayed = self.player.play()

    # ------------------------------------------------------------------ job signals
    def _on_started(self, job_id: int, request: Request) -> None:
        self._started_at = time.perf_counter()
        self._eta = None
        self._autoplayed = False
        self.progress.start("Starting…")
        self._show(Piece(request.prompt or "Untitled", request, job_id=job_id), None, 0)
        expected = float(getattr(request, "duration", 0.0) or 0.0)
        self.waveform.set_expected_duration(expected)
        self.spectrogram.set_expected_duration(expected)

    def _on_progress(self, job_id: int, progress: Progress) -> None:
        self.progress.set_progress(progress)
        if progress.step >= progress.total:
            self._eta = 0.0
        elif progress.eta_s > 0:
            self._eta = progress.eta_s
        self._maybe_autoplay()

    def _on_preview(self, job_id: int, preview: Preview) -> None:
        if job_id != self._shown or preview.kind != "audio":
            return
        chunk = np.asarray(preview.data, dtype=np.float32)
        if chunk.ndim == 1:
            chunk = chunk[None, :]
        if not chunk.size or not preview.sample_rate:
            return
        self.player.append(chunk, preview.sample_rate)
        self.waveform.append(chunk, preview.sample_rate)
        self.spectrogram.append(chunk, preview.sample_rate)
        self._update_transport()
        self._maybe_autoplay()

    def _on_finished(self, job_id: int, result: Result, paths: list) -> None:
        paths = [Path(p) for p in paths]
        wav = next((p for p in paths if p.suffix.lower() in (".wav", ".flac")), None)
        request = result.request
        title = request.prompt or "Untitled"
        rate = int(result.sample_rate)
        audio = result.audio if result.audio is not None else np.zeros((1, 0), np.float32)
        piece = Piece(title, request, wav, result, job_id)
        if self._shown == job_id:
            self._piece = piece
            streamed = self.player.duration
            self.player.end_stream(audio, rate)
            if abs(streamed * rate - audio.shape[-1]) > 0.5:  # previews off or partial
                self.waveform.set_audio(audio, rate)
                self.spectrogram.set_audio(audio, rate)
            self.waveform.set_expected_duration(0)
            self.spectrogram.set_expected_duration(0)
            if self.autoplay.isChecked() and not self._autoplayed and not self.player.is_playing:
                self._autoplayed = self.player.play()
        seed = getattr(request, "seed", -1)
        if isinstance(seed, int) and seed >= 0:
            self.seed.set_last_seed(seed)
        if wav is not None:
            self._remember(wav, title, audio.shape[-1] / rate if rate else 0.0)
        took = time.perf_counter() - self._started_at
        where = f" · saved {wav.name}" if wav is not None else ""
        self.progress.finish(f"Done in {took:.1f} s · seed {seed}{where}")
        self._update_transport()
        self.generated.emit(paths)

    def _on_failed(self, job_id: int, message: str) -> None:
        self._end_job(job_id)
        self.progress.reset("Failed.")
        self.message.show_error(message)

    def _on_cancelled(self, job_id: int, was_running: bool) -> None:
        self._end_job(job_id)
        if was_running or not self.jobs.busy():
            self.progress.reset("Cancelled: nothing was saved.")

    def _end_job(self, job_id: int) -> None:
        if self._shown == job_id:
            self.player.end_stream()
            self.waveform.set_expected_duration(0)
            self.spectrogram.set_expected_duration(0)
        self._update_transport()

    # ------------------------------------------------------------------ pieces list
    def _remember(self, path: Path, title: str, seconds: float, *, at_top: bool = True) -> None:
        """Add a piece to the list (once per path)."""
        for row in range(self.pieces.count()):
            if self.pieces.item(row).data(Qt.ItemDataRole.UserRole) == str(path):
                return
        label = f"{clock(seconds)}  ·  {title}" if seconds else title
        item = QListWidgetItem(label)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        if at_top:
            self.pieces.insertItem(0, item)
        else:
            self.pieces.addItem(item)

    def _piece_clicked(self, item: QListWidgetItem) -> None:
        path = item.data(Qt.ItemDataRole.UserRole)
        if path:
            self.play_file(path)

    def _load_recent(self) -> None:
        history = getattr(self.ctx, "history", None)
        if history is None:
            return

        def read() -> list:
            return history.recent(limit=RECENT_PIECES, modality="music")

        run_in_pool(read, self._recent_loaded)

    def _recent_loaded(self, items: list) -> None:
        for item in items:
            if item.exists:
                self._remember(item.path, item.prompt or item.path.stem,
                               float(item.duration or 0.0), at_top=False)


def _request_in(path: Path) -> MusicRequest | None:
    """The music request stored in a file we wrote, if any."""
    try:
        from studio.core.formats.audio import read_recipe

        request = read_recipe(path).to_request()
    except (StudioError, OSError, ValueError):
        return None
    return request if isinstance(request, MusicRequest) else None
