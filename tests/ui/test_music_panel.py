"""The Music panel with a tiny real MusicGen, the real worker, real clicks and the ALSA
null device; and the waveform/spectrogram views growing chunk by chunk."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from studio.core.formats.audio import save_audio
from studio.core.recipes import read_recipe
from studio.core.requests import MusicRequest
from studio.core.results import Result
from studio.ui.music_panel import MusicPanel
from studio.ui.waveform import BLOCK, SpectrogramView, WaveformView
from tests.ui import close_ctx, make_ctx, output_files, scan

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

RATE = 16000


@pytest.fixture
def panel(qtbot, tmp_path, tiny):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny.parent)])
    p = MusicPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    qtbot.waitExposed(p)
    scan(ctx, qtbot)
    yield p
    p.player.close()
    close_ctx(ctx, qtbot)


def fill(qtbot, panel: MusicPanel, model: Path, prompt: str, seconds: float, seed: int) -> None:
    panel.model.set_model(str(model))
    panel.prompt.setFocus()
    qtbot.keyClicks(panel.prompt, prompt)
    panel.duration.setValue(seconds)
    panel.seed.set_value(seed)


def test_the_picker_lists_the_composer_first_then_musicgen_folders(panel, tiny):
    ids = panel.model.model_ids()
    assert ids[0] == "builtin:composer"
    assert str(tiny) in ids


def test_generate_grows_the_waveform_plays_and_saves(panel, qtbot, tiny):
    ctx = panel.ctx
    fill(qtbot, panel, tiny, "a calm piano melody", 3.0, 1234)
    grown: list[float] = []
    ctx.jobs.job_preview.connect(lambda _i, _p: grown.append(panel.waveform.duration))
    states: list[str] = []
    panel.player.state_changed.connect(states.append)
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.waveform.span == pytest.approx(3.0), timeout=30000)
    _job, result, paths = sig.args
    # chunks reached the views as they arrived: the waveform grew step by step
    assert len(grown) >= 3 and grown == sorted(grown) and grown[0] < 3.0
    assert panel.waveform.duration == pytest.approx(3.0)
    assert panel.spectrogram.duration == pytest.approx(3.0)
    assert panel.player.duration == pytest.approx(3.0)
    assert np.array_equal(panel.player.audio(), result.audio)
    # "Play as it arrives" started playback (during generation or right at the end)
    assert "playing" in states
    # the piece is saved, with its recipe, and listed
    wav = paths[0]
    assert wav.suffix == ".wav" and wav.exists()
    recipe = read_recipe(wav)
    assert recipe.request["prompt"] == "a calm piano melody" and recipe.request["seed"] == 1234
    assert panel.pieces.count() >= 1
    assert panel.pieces.item(0).data(Qt.ItemDataRole.UserRole) == str(wav)
    assert panel.progress.status.text().startswith("Done in")
    assert panel.save_button.isEnabled()
    # the play head follows playback, and a click on the waveform seeks
    qtbot.waitUntil(lambda: panel.waveform.position > 0, timeout=5000)
    panel.player.pause()
    qtbot.mouseClick(panel.waveform, Qt.MouseButton.LeftButton,
                     pos=QPoint(panel.waveform.width() // 2, panel.waveform.height() // 2))
    assert panel.player.position() == pytest.approx(1.5, abs=0.05)
    assert panel.waveform.position == pytest.approx(1.5, abs=0.05)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert panel.player.state == "stopped" and panel.player.position() == 0.0


def test_cancel_writes_nothing(panel, qtbot, tiny, tmp_path):
    ctx = panel.ctx
    fill(qtbot, panel, tiny, "endless jazz", 60.0, 5)
    with qtbot.waitSignal(ctx.jobs.job_preview, timeout=60000):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.cancel_button.isEnabled()
    with qtbot.waitSignal(ctx.jobs.job_cancelled, timeout=30000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert output_files(tmp_path / "outputs", ".wav") == []
    assert panel.progress.status.text().startswith("Cancelled")
    assert 0 < panel.player.duration < 60.0 and not panel.player.is_growing
    assert not panel.save_button.isEnabled()  # a cancelled piece cannot be saved


def test_a_failed_job_is_one_sentence(panel, qtbot, tmp_path):
    panel.model.set_model(str(tmp_path / "no-such-musicgen"))
    with qtbot.waitSignal(panel.ctx.jobs.job_failed, timeout=30000):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.message.isVisible() and "was not found" in panel.message.text()
    assert "\n" not in panel.message.text()


def test_apply_request_fills_the_form(panel, tiny):
    request = MusicRequest(model=str(tiny), prompt="sad strings", seed=99, duration=12.5,
                           temperature=0.8, top_k=50, top_p=0.9, guidance=4.0)
    panel.apply_request(request)
    assert panel.request() == request
    assert panel.sampling.is_expanded()
    panel.apply_request(request.replace(model="/somewhere/else"))
    assert panel.request().model == "/somewhere/else"  # kept, shown as "(not found)"


def test_play_file_from_the_gallery_and_save_as_flac(panel, qtbot, tmp_path):
    t = np.arange(2 * RATE) / RATE
    audio = (0.4 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32)
    request = MusicRequest(model="builtin:composer", prompt="a hum", seed=3, duration=2.0)
    wav = save_audio(Result(request, "music", audio=audio, sample_rate=RATE), tmp_path)[0]
    assert panel.play_file(wav)
    assert panel.title.text() == "a hum" and panel.player.is_playing
    assert panel.waveform.duration == pytest.approx(2.0)
    qtbot.waitUntil(lambda: panel.waveform.position > 0.05, timeout=5000)
    target = tmp_path / "copy.flac"
    panel.export(target)
    qtbot.waitUntil(target.exists, timeout=10000)
    assert read_recipe(target).to_request() == request
    # a file that is not audio: a sentence, and the player keeps what it had
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    assert not panel.play_file(bad)
    assert panel.message.isVisible() and panel.player.duration == pytest.approx(2.0)


def chunks_of(audio: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *sizes])
    return [audio[:, a:b] for a, b in itertools.pairwise(edges)]


def test_views_built_from_chunks_equal_views_built_at_once(qtbot):
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((2, 3 * RATE)) * 0.2).astype(np.float32)
    sizes = [RATE // 2, 777, RATE - 777, RATE, RATE // 2]
    grown_wave, whole_wave = WaveformView(), WaveformView()
    grown_spec, whole_spec = SpectrogramView(), SpectrogramView()
    for w in (grown_wave, whole_wave, grown_spec, whole_spec):
        qtbot.addWidget(w)
    grown_wave.set_expected_duration(3.0)
    for chunk in chunks_of(audio, sizes):
        grown_wave.append(chunk, RATE)
        grown_spec.append(chunk, RATE)
    whole_wave.set_audio(audio, RATE)
    whole_spec.set_audio(audio, RATE)
    for a, b in zip(grown_wave.envelope(), whole_wave.envelope(), strict=True):
        assert np.array_equal(a, b)
    mono = audio.mean(axis=0)
    mins, maxs = whole_wave.envelope()
    assert mins.size == -(-mono.size // BLOCK)
    assert mins[0] == mono[:BLOCK].min() and maxs[-1] == mono[(mins.size - 1) * BLOCK:].max()
    assert np.array_equal(grown_spec.columns(), whole_spec.columns())
    assert grown_spec.column_count() == 1 + (mono.size - grown_spec.n_fft) // grown_spec.hop


def test_waveform_columns_span_the_expected_duration(qtbot):
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(400, 100)
    view.set_expected_duration(4.0)
    view.append(np.full((1, RATE), 0.5, np.float32), RATE)  # 1 s of 4
    mins, maxs = view.columns(400)
    assert mins.size == 100 and np.all(maxs == 0.5)
    assert view.seconds_at(200) == pytest.approx(1.0)  # clamped to what has arrived
    view.set_position(0.5)
    view.grab()  # paints without error, played and unplayed parts


def test_spectrogram_puts_a_tone_in_the_right_row(qtbot):
    view = SpectrogramView()
    qtbot.addWidget(view)
    t = np.arange(RATE) / RATE
    low = (0.5 * np.sin(2 * np.pi * 200 * t))[None].astype(np.float32)
    high = (0.5 * np.sin(2 * np.pi * 4000 * t))[None].astype(np.float32)
    view.append(low, RATE)
    loud_low = int(np.argmax(view.columns()[:, 5]))
    view.clear()
    view.append(high, RATE)
    loud_high = int(np.argmax(view.columns()[:, 5]))
    assert loud_high < loud_low  # high frequencies are drawn nearer the top
    assert view.columns().max() > 200  # a half-scale sine is near the top of the scale
    view.resize(300, 120)
    view.grab()


def test_blend_toward_reaches_the_submitted_request(panel, qtbot, tiny):
    ctx = panel.ctx
    assert not panel.blending.is_expanded()  # folded away until wanted
    assert panel.request().blend == 0.0 and panel.request().blend_prompt == ""
    qtbot.mouseClick(panel.blending.toggle, Qt.MouseButton.LeftButton)
    assert panel.blend_prompt.isVisible() and panel.blend.isVisible()
    fill(qtbot, panel, tiny, "a calm piano melody", 1.0, 77)
    qtbot.keyClicks(panel.blend_prompt, "fast rock guitar")
    panel.blend.setValue(35)
    assert panel.blend_label.text() == "35 %"
    submitted: list[MusicRequest] = []
    ctx.jobs.job_started.connect(lambda _id, request: submitted.append(request))
    with qtbot.waitSignal(ctx.jobs.job_finished, timeout=60000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    request = submitted[0]
    assert (request.prompt, request.blend_prompt, request.blend) == (
        "a calm piano melody", "fast rock guitar", 0.35)
    assert sig.args[1].request.blend == 0.35
    # a blend with no second prompt is refused in one sentence, before any job starts
    panel.blend_prompt.clear()
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert "blend toward" in panel.message.text()


def test_apply_request_fills_and_opens_the_blend(panel, tiny):
    request = MusicRequest(model=str(tiny), prompt="sad strings", seed=9,
                           blend_prompt="happy synth", blend=0.6)
    panel.apply_request(request)
    assert panel.request() == request
    assert panel.blending.is_expanded() and panel.blend_label.text() == "60 %"
    panel.apply_request(request.replace(blend_prompt="", blend=0.0))
    assert panel.request().blend == 0.0 and panel.request().blend_prompt == ""


def test_the_spectrogram_is_analysed_off_the_gui_thread(qtbot, monkeypatch):
    import threading

    from studio.runtime import spectrum

    threads: list[threading.Thread] = []
    feed = spectrum.Spectrum.feed

    def recording(self, samples):
        threads.append(threading.current_thread())
        return feed(self, samples)

    monkeypatch.setattr(spectrum.Spectrum, "feed", recording)
    view = SpectrogramView()
    qtbot.addWidget(view)
    audio = (np.random.default_rng(1).standard_normal((1, 20 * RATE)) * 0.1).astype(np.float32)
    view.set_audio(audio, RATE)  # returns at once; the columns arrive by a queued signal
    qtbot.waitUntil(lambda: view._count > 0 and view._feed.pending() == 0, timeout=20000)
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert view._count == 1 + (audio.shape[1] - view.n_fft) // view.hop
    view.set_audio(audio[:, : RATE], RATE)  # a new piece: the old one's columns are gone
    assert view.column_count() == 1 + (RATE - view.n_fft) // view.hop


def test_save_as_goes_through_the_runtime_and_is_indexed(panel, qtbot, tmp_path):
    t = np.arange(RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 330 * t))[None].astype(np.float32)
    request = MusicRequest(model="builtin:composer", prompt="a short hum", seed=4, duration=1.0)
    wav = save_audio(Result(request, "music", audio=audio, sample_rate=RATE), tmp_path)[0]
    assert panel.play_file(wav)
    panel.player.stop()
    target = tmp_path / "kept" / "copy.wav"
    panel.export(target)
    qtbot.waitUntil(lambda: panel.message.text() == "Saved copy.wav.", timeout=10000)
    rows = panel.ctx.history.recent(modality="music")
    assert target in [r.path for r in rows]  # the gallery knows the copy
    assert not list(target.parent.glob(".*"))  # written atomically: no temp file left
    panel.export(tmp_path / "copy.mp3")  # a sentence, not a traceback
    qtbot.waitUntil(lambda: panel.message.text().startswith("Could not save:"), timeout=10000)
    assert "\n" not in panel.message.text()


def test_a_blend_shows_in_the_pieces_list_and_the_status_follows_the_piece(panel, tmp_path):
    t = np.arange(RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    plain = MusicRequest(model="builtin:composer", prompt="calm piano", seed=1, duration=1.0)
    blended = plain.replace(blend_prompt="fast drums", blend=0.4)
    paths = [save_audio(Result(r, "music", audio=audio, sample_rate=RATE), tmp_path)[0]
             for r in (plain, blended)]
    panel.progress.finish("Done in 1.0 s · seed 9 · saved old.wav")
    for path in paths:
        assert panel.play_file(path)
        panel.player.stop()
        assert panel.progress.status.text() == path.name  # not the last job's line
    labels = [panel.pieces.item(r).text() for r in range(panel.pieces.count())]
    assert any(label.endswith("calm piano → fast drums (40%)") for label in labels)
    assert any(label.endswith("calm piano") for label in labels)


def test_guidance_is_greyed_out_for_the_composer_that_does_not_read_it(panel, tiny):
    panel.model.set_model("builtin:composer")
    assert not panel.guidance.isEnabled()  # its family descriptor has no "guidance"
    panel.model.set_model(str(tiny))  # MusicGen reads it
    assert panel.guidance.isEnabled()


def test_musicgen_hides_the_composition_and_has_no_notes_to_show(panel, qtbot, tiny):
    from studio.ui.music_panel import AUDIO_ONLY

    panel.model.set_model("builtin:composer")
    assert panel.composition_section.isVisibleTo(panel)
    assert panel.understood.text().startswith("I understood:")
    panel.model.set_model(str(tiny))
    assert not panel.composition_section.isVisibleTo(panel)  # MusicGen reads none of them
    assert not panel.understood.isVisibleTo(panel)
    fill(qtbot, panel, tiny, "a calm piano melody", 1.0, 8)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=60000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert not [p for p in sig.args[2] if p.suffix == ".mid"]
    assert panel.notes_status == AUDIO_ONLY and panel.roll.lanes() == []
    assert not panel.export_midi_button.isEnabled()
    assert panel.extend_button.isEnabled()  # MusicGen continues audio
