"""The Music panel: prompt → music, heard and seen while it is being generated.

The form builds a MusicRequest and submits it to ctx.jobs. Audio arrives as growing
chunks (job_preview, kind "audio"): they go to the waveform, the spectrogram and the
player, so the play head can start before the end. "Play as it arrives" starts playback
once the remaining generation time fits in the audio already buffered (so playback never
has to wait). Past pieces (this session's and the history's) are listed and replayable
(`studio.ui.music_pieces`); "Use as motif" makes a composer piece's notes the next
piece's motif. The "Melody from" picker (`studio.ui.music_melody`) shows for MusicGen-Melody
models only, and only then is its reference in the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTabWidget,
    QToolButton,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.families import DEFAULT_BUILTIN, Family
from studio.core.requests import MusicRequest, Request
from studio.core.results import Preview, Progress, Result
from studio.core.text import format_duration
from studio.runtime.context import AppContext
from studio.runtime.saving import export_audio_copy, export_midi_copy
from studio.runtime.tasks import run_in_pool
from studio.ui.audio import AudioPlayer
from studio.ui.forms import FieldForm, field_grid
from studio.ui.music_controls import (
    CONTROLS,
    CompositionControls,
    extend_row,
    understood_line,
)
from studio.ui.music_melody import MelodyPicker
from studio.ui.music_pieces import PiecesList, motif_file
from studio.ui.panel import GeneratePanel, canvas_column, list_with_buttons, reveal_folder
from studio.ui.piano_roll import PianoRoll
from studio.ui.waveform import SpectrogramView, WaveformView
from studio.ui.widgets import CollapsibleSection, folder_icon, guarded, play_icon, section_label

FIELDS = ("duration", "guidance", "temperature", "top_k", "top_p", "blend_prompt", "blend")
SAMPLING = ("temperature", "top_k", "top_p")
AUTOPLAY_MARGIN_S = 0.5  # start early playback only with this much audio to spare
RECENT_PIECES = 30
UNDERSTOOD_DELAY_MS = 250  # the "I understood" line waits for a pause in typing
AUDIO_ONLY = "MusicGen writes audio only: there are no notes to show."
NO_MIDI = "No notes: this piece has no .mid beside it."
NO_MOTIF = "This piece has no notes to use as a motif: only the composer writes MIDI."


@dataclass
class Piece:
    """What the player holds: a finished result, a file, or a job still streaming."""

    title: str
    request: Request | None = None
    path: Path | None = None
    result: Result | None = None
    job_id: int | None = None


class MusicPanel(GeneratePanel):
    """Text-to-music: the form on the left; waveform, spectrogram and transport on the right."""

    modality = "music"
    noun = "music"
    request_type = MusicRequest
    prompt_placeholder = "Describe the music… (Ctrl+Enter generates)"
    prompt_lines = 4
    model_tip = "The music model: the built-in composer or a MusicGen folder"
    cancelled_text = "Cancelled: nothing was saved."

    generated = Signal(list)  # [Path] of the last finished job

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._shown: int | None = None  # the job whose audio the player holds
        self._piece: Piece | None = None
        self._eta: float | None = None
        self._autoplayed = False
        self.notes_status = ""  # why the piano roll shows no notes ("" when it does)
        self.player = AudioPlayer(self)
        self._build()
        self.assemble(self._canvas())
        self._connect()
        self._update_transport()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.player.close)
        self._load_recent()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.fields = FieldForm(MusicRequest, FIELDS, sliders=("blend",))
        self.duration = self.fields["duration"]
        self.guidance = self.fields["guidance"]
        self.temperature = self.fields["temperature"]
        self.top_k = self.fields["top_k"]
        self.top_p = self.fields["top_p"]
        self.blend_prompt = self.fields["blend_prompt"]
        self.blend = self.fields["blend"]
        self.blend_prompt.setPlaceholderText("A second prompt, e.g. fast rock guitar")
        self.blend_prompt.setToolTip(
            "Blend the prompt's conditioning toward this prompt's: MusicGen lerps the two "
            "text encodings; the composer lerps its style/mode/metre conditioning, takes "
            "key, metre and instrument from the heavier prompt and moves the tempo between")
        self.blend_label = QLabel("0 %")
        self.blend_label.setMinimumWidth(40)
        self.blend.valueChanged.connect(lambda v: self.blend_label.setText(f"{v} %"))
        sampling = QWidget()
        sampling.setLayout(field_grid([[self.fields.pair(n)] for n in SAMPLING],
                                      margins=(14, 0, 0, 0)))
        self.sampling = CollapsibleSection("Sampling", sampling)
        blend_row = QHBoxLayout()
        blend_row.addWidget(self.blend, 1)
        blend_row.addWidget(self.blend_label)
        blending = QWidget()
        blending.setLayout(field_grid([[self.fields.pair("blend_prompt")],
                                       [(self.fields.labels["blend"], blend_row)]],
                                      margins=(14, 0, 0, 0)))
        self.blending = CollapsibleSection("Blend toward", blending)

        self.understood = QLabel("")
        self.understood.setObjectName("muted")
        self.understood.setWordWrap(True)
        self.understood.setToolTip("What the composer takes from the prompt and the controls "
                                   "(before generating), then what it played")
        self._understood_timer = QTimer(self)
        self._understood_timer.setSingleShot(True)
        self._understood_timer.setInterval(UNDERSTOOD_DELAY_MS)
        self._understood_timer.timeout.connect(self.update_understood)
        self.composition = CompositionControls()
        self.composition.motif_start = str(self.ctx.settings.output_path)  # past pieces' .mid
        self.composition_section = CollapsibleSection("Composition", self.composition)
        self.composition_section.set_expanded(True)
        self.melody = MelodyPicker(self._past_pieces)  # MusicGen-Melody only
        self.melody.start = str(self.ctx.settings.output_path)
        self.melody.hide()  # until a MusicGen-Melody model is chosen

        form = self.form
        form.addWidget(self.understood)
        form.addSpacing(8)
        form.addWidget(self.composition_section)
        form.addWidget(self.melody)
        form.addSpacing(6)
        form.addWidget(section_label("Settings"))
        form.addLayout(field_grid([
            [self.fields.pair("duration"), self.fields.pair("guidance")],
            [("Seed", self.seed)],
        ]))
        form.addSpacing(6)
        form.addWidget(self.sampling)
        form.addWidget(self.blending)

    def _canvas(self) -> QWidget:
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
        self.roll = PianoRoll()
        self.roll.setToolTip("The notes, a lane per track; click to move the play head")
        self.roll.set_placeholder("The notes of a composer piece appear here.")
        self.views = QTabWidget()
        self.views.addTab(self.spectrogram, "Spectrogram")
        self.views.addTab(self.roll, "Piano roll")
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

        self.pieces = PiecesList()
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Save a copy of this piece as WAV or FLAC, recipe included")
        self.open_folder_button = QPushButton(folder_icon(), "Open folder")
        self.open_folder_button.setToolTip("Show the output folder in your file manager")
        self.export_midi_button = QPushButton("Export MIDI…")
        self.export_midi_button.setToolTip("Save a copy of this piece's notes as a MIDI file")
        self.motif_button = QPushButton("Use as motif")
        self.motif_button.setToolTip("Start the next composer piece from this piece's notes")
        extend, self.extend_button, self.extend_seconds = extend_row()
        bottom = list_with_buttons(self.pieces, [self.save_button, self.export_midi_button,
                                                 self.motif_button, extend,
                                                 self.open_folder_button])
        return canvas_column([self.title, (self.waveform, 3), (self.views, 2), transport,
                              self.progress, section_label("Pieces"), bottom], spacing=8)

    def _connect(self) -> None:
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
        self.player.position_changed.connect(self.roll.set_position)
        self.roll.seek_requested.connect(self.player.seek)
        self.player.duration_changed.connect(self.roll.set_duration)
        self.export_midi_button.clicked.connect(self.save_midi_as)
        self.extend_button.clicked.connect(self.extend)
        self.prompt.textChanged.connect(self._understood_timer.start)
        self.composition.changed.connect(self._understood_timer.start)
        self.seed.changed.connect(self._understood_timer.start)
        self.pieces.play_requested.connect(self.play_file)
        self.pieces.motif_requested.connect(self.use_as_motif)
        self.motif_button.clicked.connect(self._use_shown_as_motif)
        self.save_button.clicked.connect(self.save_as)
        self.open_folder_button.clicked.connect(self.open_folder)
        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.waveform)
        space.setContext(Qt.ShortcutContext.WidgetShortcut)
        space.activated.connect(self.toggle_play)
        self.waveform.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    # ------------------------------------------------------------------ the form
    def request(self) -> MusicRequest:
        """The form as a request (not yet validated: submit() does that)."""
        return MusicRequest(**self.common_values(), **self.fields.values(),  # type: ignore[arg-type]
                            **self.composition.values(),
                            **({} if self.melody.isHidden() else self.melody.values()))

    def optional_widgets(self) -> dict[str, Sequence[QWidget]]:
        return {"guidance": (self.guidance, self.fields.labels["guidance"]),  # not the composer
                "blend_prompt": (self.blending,), "melody": (self.melody,),
                **self.composition.widgets()}  # the composer only

    def on_model_changed(self, model: str) -> None:
        unused = self.grey_out_unused(model)
        self.composition_section.setVisible(not set(CONTROLS) <= set(unused))
        family = self.family_of(model)
        self.melody.setVisible(family is not None and family.applies("melody"))
        self.update_understood()

    def family_of(self, model: str) -> Family | None:
        """The family of a model id in the catalog (None: unknown)."""
        entry = next((e for e in self.ctx.models if e.id == model), None)
        return entry.descriptor if entry is not None else None

    def update_understood(self) -> None:
        """The "I understood" line for the form as it stands (composer models only)."""
        self._understood_timer.stop()
        family = self.family_of(self.model.current_model())
        if family is not None and not family.applies("key"):
            self.understood.setText("")
            self.understood.hide()
            return
        self.understood.setText(understood_line(self.request()))
        self.understood.show()

    def fill(self, request: Request) -> None:
        assert isinstance(request, MusicRequest)
        self.fields.set_values(request)
        self.composition.set_values(request)
        self.melody.set_values(request)
        self.sampling.set_expanded(self.fields.changed(request, SAMPLING)
                                   or self.sampling.is_expanded())
        blended = bool(request.blend_prompt) or request.blend > 0
        self.blending.set_expanded(blended or self.blending.is_expanded())

    def _past_pieces(self) -> list[tuple[str, str]]:
        """(label, path) of the listed pieces with audio (for the melody picker)."""
        items = (self.pieces.item(r) for r in range(self.pieces.count()))
        return [(i.text(), self.pieces.path_of(i)) for i in items
                if Path(self.pieces.path_of(i)).suffix.lower() in (".wav", ".flac", ".ogg")]

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
        self.show_notes(path, request)
        self._remember(path, piece_label(request, title), audio.shape[-1] / rate if rate else 0.0)
        if not self.jobs.busy():  # the status line speaks of this piece now, not the last job
            self.progress.reset(path.name)
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
        piece = self._piece
        if piece is None:
            return
        result = piece.result or Result(piece.request or MusicRequest(prompt=piece.title),
                                        "music", audio=self.player.audio(),
                                        sample_rate=self.player.sample_rate)
        export_audio_copy(
            self.ctx, result, path,
            guarded(self, lambda p: self.message.show_info(f"Saved {Path(p).name}.")),
            guarded(self, lambda m: self.message.show_error(f"Could not save: {m}")))

    def midi_path(self) -> Path | None:
        """The .mid beside the piece in the player, when there is one."""
        piece = self._piece
        mid = piece.path.with_suffix(".mid") if piece and piece.path else None
        return mid if mid is not None and mid.is_file() else None

    def save_midi_as(self) -> None:
        source = self.midi_path()
        if source is None:
            self.message.show_info("This piece has no MIDI: only the composer writes notes.")
            return
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export MIDI as", str(source), "MIDI files (*.mid)")
        if path:
            self.export_midi(Path(path))

    def export_midi(self, path: Path) -> None:
        """Copy the piece's .mid to `path` off the GUI thread (through the runtime)."""
        source = self.midi_path()
        if source is None:
            self.message.show_info("This piece has no MIDI: only the composer writes notes.")
            return
        export_midi_copy(
            source, path,
            guarded(self, lambda p: self.message.show_info(f"Saved {Path(p).name}.")),
            guarded(self, lambda m: self.message.show_error(f"Could not save: {m}")))

    def extend(self) -> int | None:
        """Queue the piece in the player again, continued from its end by the seconds in
        the spin box (its own recipe, with extend_from set)."""
        piece = self._piece
        if (piece is None or piece.path is None or not isinstance(piece.request, MusicRequest)
                or (piece.job_id is not None and piece.result is None)):
            self.message.show_info("Pick a finished piece made by Studio to extend it.")
            return None
        request = piece.request.replace(extend_from=str(piece.path),
                                        duration=float(self.extend_seconds.value()))
        return self.submit(request)

    def use_as_motif(self, path: str | Path) -> bool:
        """Make a past composer piece's notes the motif of the next piece (its .mid), with
        the composer chosen when the model in the form cannot take a motif."""
        mid = motif_file(path)
        if mid is None:
            self.message.show_info(NO_MOTIF)
            return False
        family = self.family_of(self.model.current_model())
        if family is None or not family.applies("motif"):
            request = _request_in(Path(path))
            used = self.family_of(request.model) if request is not None else None
            self.model.set_model(request.model if request is not None and used is not None
                                 and used.applies("motif") else DEFAULT_BUILTIN["music"])
        self.composition.motif.setText(str(mid))
        self.composition_section.set_expanded(True)
        self.message.show_info(f"Motif: {mid.name}. Generate writes a piece on its notes.")
        return True

    def _use_shown_as_motif(self) -> None:
        if self._piece is not None and self._piece.path is not None:
            self.use_as_motif(self._piece.path)

    def open_folder(self) -> None:
        folder = self._piece.path.parent if self._piece and self._piece.path else None
        reveal_folder(folder or self.ctx.settings.output_path)

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

    def show_notes(self, wav: Path | None, request: Request | None) -> str:
        """Load the .mid beside a piece into the piano roll; returns (and keeps in
        `notes_status`) the sentence shown instead of notes, "" when notes are shown."""
        self.roll.clear()
        family = self.family_of(request.model) if request is not None else None
        mid = wav.with_suffix(".mid") if wav is not None else None
        status = NO_MIDI
        if mid is not None and mid.is_file():
            try:
                self.roll.load(mid)
                self.roll.set_duration(self.player.duration)
                status = ""
            except StudioError as exc:
                status = str(exc)
        elif family is not None and not family.applies("key"):
            status = AUDIO_ONLY
        self.roll.set_placeholder(status or NO_MIDI)
        self.notes_status = status
        self._update_transport()
        return status

    def _on_position(self, seconds: float) -> None:
        self.waveform.set_position(seconds)
        self.spectrogram.set_position(seconds)
        self._update_time()

    def _update_time(self) -> None:
        total = self.player.duration
        if self.player.is_growing and self._piece and self._piece.request is not None:
            total = max(total, getattr(self._piece.request, "duration", 0.0))
        position = format_duration(self.player.position(), clock=True)
        self.time_label.setText(f"{position} / {format_duration(total, clock=True)}")

    def _update_transport(self) -> None:
        playing = self.player.is_playing
        self.play_button.setText("Pause" if playing else "Play")
        has_audio = self.player.duration > 0 or self.player.is_growing
        for w in (self.play_button, self.stop_button):
            w.setEnabled(has_audio)
        piece = self._piece
        done = piece is not None and (piece.job_id is None or piece.result is not None)
        self.save_button.setEnabled(done)
        self.export_midi_button.setEnabled(done and self.midi_path() is not None)
        self.motif_button.setEnabled(done and self.midi_path() is not None)
        self.extend_button.setEnabled(done and piece is not None and piece.path is not None
                                      and isinstance(piece.request, MusicRequest))
        self._update_time()

    def _player_message(self, text: str) -> None:
        self.message.show_error(text)
        self.ctx.message.emit(text)
        self._update_transport()

    def _maybe_autoplay(self) -> None:
        """Start early playback once generating the rest takes less than what is buffered."""
        if (not self.autoplay.isChecked() or self._autoplayed or self.player.is_playing
                or self._shown is None or self._shown != self.jobs.current):
            return
        buffered = self.player.duration - self.player.position()
        if self._eta is not None and buffered > 0 and self._eta + AUTOPLAY_MARGIN_S <= buffered:
            self._autoplayed = self.player.play()

    # ------------------------------------------------------------------ job signals
    def on_started(self, job_id: int, request: Request) -> None:
        self._eta = None
        self._autoplayed = False
        self._show(Piece(request.prompt or "Untitled", request, job_id=job_id), None, 0)
        self.roll.clear()
        self.roll.set_placeholder("The notes appear when the piece is finished.")
        expected = float(getattr(request, "duration", 0.0) or 0.0)
        self.waveform.set_expected_duration(expected)
        self.spectrogram.set_expected_duration(expected)

    def on_progress(self, job_id: int, progress: Progress) -> None:
        self.progress.set_progress(progress)
        if progress.step >= progress.total:
            self._eta = 0.0
        elif progress.eta_s > 0:
            self._eta = progress.eta_s
        self._maybe_autoplay()

    def on_preview(self, job_id: int, preview: Preview) -> None:
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

    def on_finished(self, job_id: int, result: Result, paths: list[Path]) -> None:
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
            self.show_notes(wav, request)
            if self.autoplay.isChecked() and not self._autoplayed and not self.player.is_playing:
                self._autoplayed = self.player.play()
        played = result.info.get("understood") if isinstance(result.info, dict) else None
        if played:
            self.understood.setText(f"Played: {played}")
            self.understood.show()
        if wav is not None:
            self._remember(wav, piece_label(request, title),
                           audio.shape[-1] / rate if rate else 0.0)
        self.progress.finish(self.finish_line(f"Done in {self.took():.1f} s",
                                              request.seed,
                                              [wav] if wav is not None else []))
        self._update_transport()
        self.generated.emit(paths)

    def on_failed(self, job_id: int, message: str) -> None:
        self._end_job(job_id)
        super().on_failed(job_id, message)

    def on_cancelled(self, job_id: int, was_running: bool) -> None:
        self._end_job(job_id)
        super().on_cancelled(job_id, was_running)

    def _end_job(self, job_id: int) -> None:
        if self._shown == job_id:
            self.player.end_stream()
            self.waveform.set_expected_duration(0)
            self.spectrogram.set_expected_duration(0)
        self._update_transport()

    # ------------------------------------------------------------------ pieces list
    def _remember(self, path: Path, title: str, seconds: float, *, at_top: bool = True) -> None:
        self.pieces.remember(path, title, seconds, at_top=at_top)

    def _load_recent(self) -> None:
        history = self.ctx.history

        def read() -> list:
            return history.recent(limit=RECENT_PIECES, modality="music")

        run_in_pool(read, self._recent_loaded)

    def _recent_loaded(self, items: list) -> None:
        for item in items:
            if item.exists:
                self._remember(item.path, piece_label(item.to_request(),
                                                      item.prompt or item.path.stem),
                               float(item.duration or 0.0), at_top=False)


def piece_label(request: Request | None, title: str) -> str:
    """A piece's line in the list: its prompt, and the blend when it has one (blends of
    one prompt toward others would otherwise look identical)."""
    if isinstance(request, MusicRequest) and request.blend > 0 and request.blend_prompt:
        return f"{title} → {request.blend_prompt} ({request.blend:.0%})"
    return title


def _request_in(path: Path) -> MusicRequest | None:
    """The music request stored in a file we wrote, if any."""
    try:
        from studio.core.formats.audio import read_recipe

        request = read_recipe(path).to_request()
    except (StudioError, OSError, ValueError):
        return None
    return request if isinstance(request, MusicRequest) else None
