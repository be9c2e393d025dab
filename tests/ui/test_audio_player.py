"""The audio player on ALSA's null device (tests/data/asound-null.conf): real PortAudio
streams, real callbacks, no sound card. Also: what happens without a usable device."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from studio.ui.audio import AudioPlayer, device_message

RATE = 16000


def tone(seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.stack([0.5 * np.sin(2 * np.pi * 330 * (c + 1) * t)
                     for c in range(channels)]).astype(np.float32)


@pytest.fixture
def player(qtbot):
    p = AudioPlayer()
    yield p
    p.close()


def test_the_null_device_is_the_default_output():
    import sounddevice

    out = sounddevice.query_devices(kind="output")
    assert out["max_output_channels"] > 0


def test_play_seek_pause_stop(qtbot, player):
    player.set_audio(tone(3.0), RATE)
    assert player.duration == pytest.approx(3.0) and player.state == "stopped"
    positions: list[float] = []
    player.position_changed.connect(positions.append)
    with qtbot.waitSignal(player.state_changed, timeout=5000) as sig:
        assert player.play()
    assert sig.args == ["playing"]
    qtbot.waitUntil(lambda: player.position() > 0.2, timeout=5000)
    # the device is paced to real time: far from the end after a moment
    assert player.position() < 2.0 and player.is_playing
    player.seek(2.0)
    assert player.position() == pytest.approx(2.0)
    qtbot.waitUntil(lambda: player.position() > 2.1, timeout=5000)
    player.pause()
    paused_at = player.position()
    assert player.state == "paused" and paused_at >= 2.0
    qtbot.wait(150)
    assert player.position() == paused_at  # nothing moves while paused
    player.seek(0.5)  # seeking while paused moves the head without playing
    assert player.position() == pytest.approx(0.5) and player.state == "paused"
    assert player.play()
    qtbot.waitUntil(lambda: player.position() > 0.55, timeout=5000)
    player.stop()
    assert player.state == "stopped" and player.position() == 0.0
    assert positions and positions == [p for p in positions if p >= 0]


def test_reaching_the_end_stops_and_rewinds(qtbot, player):
    player.set_audio(tone(0.3), RATE)
    with qtbot.waitSignal(player.finished, timeout=5000):
        player.play()
    assert player.state == "stopped" and player.position() == 0.0


def test_loop_keeps_playing_past_the_end(qtbot, player):
    player.set_audio(tone(0.3), RATE)
    player.set_loop(True)
    finished = []
    player.finished.connect(lambda: finished.append(True))
    positions: list[float] = []
    player.position_changed.connect(positions.append)
    player.play()
    qtbot.waitUntil(lambda: any(b < a for a, b in itertools.pairwise(positions)), timeout=5000)
    assert player.is_playing and not finished


def test_growing_audio_waits_at_the_end_then_continues(qtbot, player):
    player.begin_stream(RATE)
    player.append(tone(0.3), RATE)
    assert player.is_growing and player.play()
    qtbot.waitUntil(lambda: player.position() >= 0.3 - 1e-9, timeout=5000)
    qtbot.wait(200)
    assert player.is_playing and player.position() == pytest.approx(0.3)  # waiting
    player.append(tone(0.3), RATE)
    assert player.duration == pytest.approx(0.6)
    with qtbot.waitSignal(player.finished, timeout=5000):
        player.end_stream()
    assert player.state == "stopped"


def test_many_chunks_grow_the_buffer(player):
    player.begin_stream(RATE, channels=2)
    pieces = [tone(0.25, channels=2) * (i + 1) / 10 for i in range(10)]
    for piece in pieces:
        player.append(piece, RATE)
    assert player.channels == 2 and player.duration == pytest.approx(2.5)
    assert np.array_equal(player.audio(), np.concatenate(pieces, axis=1))
    final = np.concatenate(pieces, axis=1) * 0.5
    player.end_stream(final, RATE)
    assert not player.is_growing and np.array_equal(player.audio(), final)
    with pytest.raises(ValueError):
        player.append(tone(0.1), 8000)


def test_the_callback_applies_volume_and_fills_silence(player):
    import sounddevice

    player.set_audio(np.full((1, 10), 0.8, np.float32), RATE)
    player.set_volume(0.5)
    out = np.ones((16, 1), np.float32)
    with pytest.raises(sounddevice.CallbackStop):  # the end: PortAudio drains and stops
        player._callback(out, 16, None, None)
    np.testing.assert_allclose(out[:10, 0], 0.4)
    assert not out[10:].any()


@pytest.mark.parametrize(("error", "expected"), [
    ("Error querying device -1", "No audio output device"),
    ("Error opening OutputStream: Device unavailable [PaErrorCode -9985]", "busy"),
])
def test_no_or_busy_device_is_a_message_not_a_crash(qtbot, player, monkeypatch, error, expected):
    import sounddevice

    def refuse(*_args, **_kwargs):
        raise sounddevice.PortAudioError(error)

    monkeypatch.setattr(sounddevice, "OutputStream", refuse)
    player.set_audio(tone(0.5), RATE)
    with qtbot.waitSignal(player.message, timeout=1000) as sig:
        assert player.play() is False
    assert expected in sig.args[0] and "saved" in sig.args[0]
    assert player.state == "stopped"
    assert expected in device_message(sounddevice.PortAudioError(error))


def test_missing_portaudio_is_a_message(qtbot, player, monkeypatch):
    from studio.ui import audio

    def missing():
        raise RuntimeError("Playback needs the PortAudio library (libportaudio2).")

    monkeypatch.setattr(audio, "_sounddevice", missing)
    player.set_audio(tone(0.5), RATE)
    with qtbot.waitSignal(player.message, timeout=1000) as sig:
        assert not player.play()
    assert "PortAudio" in sig.args[0]
