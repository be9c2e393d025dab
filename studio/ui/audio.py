"""Audio playback with sounddevice: play, pause, stop, seek, volume, loop, growing audio.

The PortAudio callback runs on its own thread and shares only plain attributes with
the GUI thread: the sample buffer (swapped, never resized in place), a valid-length
count, the play frame counter and a seek request (target + serial number). No locks.
A QTimer on the GUI thread reads the counter ~30 times a second and emits `position`.

While audio is still arriving (`begin_stream` … `end_stream`) the play head waits at the
end of what has arrived instead of stopping. A missing or busy output device is reported
through `message`, never raised: generation and saving work without a sound card.

Some outputs (ALSA's null device in tests, some virtual sinks) take samples as fast as
they are given; the callback then paces itself to real time so the play head, looping
and CPU use behave as with a real card.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.text import first_line

log = logging.getLogger(__name__)

POSITION_INTERVAL_MS = 33
PACE_SLACK_MIN_S = 0.1  # how far ahead of real time a device may take samples before we
# wait; at least twice the stream's own latency, so a real card is never slowed down


def _sounddevice() -> Any:
    """The sounddevice module, or a one-sentence reason why playback is unavailable."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio itself is missing
        raise RuntimeError(
            "Playback needs the PortAudio library (libportaudio2), which is not installed; "
            "music is still generated and saved."
        ) from exc
    except ImportError as exc:
        raise RuntimeError(
            "Playback needs the sounddevice package, which is not installed; "
            "music is still generated and saved."
        ) from exc
    return sounddevice


def device_message(exc: BaseException) -> str:
    """One sentence about why the output device could not be used."""
    text = first_line(exc)
    low = text.lower()
    if "busy" in low or "unavailable" in low or "in use" in low:
        return (f"The audio output device is busy or unavailable ({text}); close other "
                "programs using it and press Play again. Music is still saved.")
    if any(k in low for k in ("no default output", "invalid device", "no device",
                              "querying device -1")):
        return ("No audio output device was found, so nothing can be played here; "
                "music is still generated and saved.")
    if "sample rate" in low:
        return f"The audio output device does not accept this sample rate ({text})."
    return f"Audio playback failed ({text}); music is still generated and saved."


class AudioPlayer(QObject):
    """Plays float32 (channels, n) audio through the default output device."""

    position_changed = Signal(float)  # seconds
    state_changed = Signal(str)  # "playing" | "paused" | "stopped"
    duration_changed = Signal(float)  # seconds of audio available
    finished = Signal()  # reached the end (not looping)
    message = Signal(str)  # one sentence: no device, device busy...

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._data = np.zeros((0, 1), np.float32)  # (capacity, channels), swapped on growth
        self._length = 0  # valid frames in _data
        self._rate = 0
        self._frame = 0  # next frame the callback will play (written by the callback)
        self._seek_target = 0
        self._seek_serial = 0
        self._seen_serial = 0
        self._volume = 1.0
        self._loop = False
        self._growing = False
        self._ended = False  # set by the callback when it stops at the end
        self._stream: Any = None
        self._state = "stopped"
        self._pace_t0 = 0.0
        self._pace_frames = 0
        self._pace_slack = PACE_SLACK_MIN_S
        self._timer = QTimer(self)
        self._timer.setInterval(POSITION_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._last_position = -1.0

    # ─── the audio ────────────────────────────────────────────────────────────────────
    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def channels(self) -> int:
        return int(self._data.shape[1])

    @property
    def duration(self) -> float:
        return self._length / self._rate if self._rate else 0.0

    @property
    def state(self) -> str:
        return self._state

    @property
    def is_playing(self) -> bool:
        return self._state == "playing"

    @property
    def is_growing(self) -> bool:
        return self._growing

    def audio(self) -> np.ndarray:
        """A copy of the audio held, float32 (channels, n)."""
        return np.ascontiguousarray(self._data[: self._length].T)

    def set_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        """Replace the audio (stops playback and rewinds)."""
        self.stop()
        frames = _frames(audio)
        self._data = frames
        self._length = frames.shape[0]
        self._rate = int(sample_rate)
        self._growing = False
        self._set_frame(0)
        self.duration_changed.emit(self.duration)
        self._emit_position(force=True)

    def clear(self) -> None:
        self.set_audio(np.zeros((1, 0), np.float32), self._rate or 1)

    def begin_stream(self, sample_rate: int = 0, channels: int = 1) -> None:
        """Start a growing piece: `append` chunks, then `end_stream`."""
        self.stop()
        self._data = np.zeros((0, max(1, channels)), np.float32)
        self._length = 0
        self._rate = int(sample_rate)
        self._growing = True
        self._set_frame(0)
        self.duration_changed.emit(0.0)
        self._emit_position(force=True)

    def append(self, chunk: np.ndarray, sample_rate: int | None = None) -> None:
        """Add a chunk to the end (the play head may be waiting for it)."""
        frames = _frames(chunk)
        if sample_rate:
            if self._length and self._rate and int(sample_rate) != self._rate:
                raise ValueError("a chunk's sample rate differs from the audio's")
            self._rate = int(sample_rate)
        if self._length == 0 and frames.shape[1] != self._data.shape[1]:
            self._data = np.zeros((0, frames.shape[1]), np.float32)
        if frames.shape[1] != self._data.shape[1]:
            raise ValueError("a chunk's channel count differs from the audio's")
        n = frames.shape[0]
        end = self._length + n
        if end > self._data.shape[0]:  # grow: a new array, swapped in whole
            bigger = np.zeros((max(end, 2 * self._data.shape[0], 4096), frames.shape[1]),
                              np.float32)
            bigger[: self._length] = self._data[: self._length]
            bigger[self._length : end] = frames
            self._data = bigger
        else:  # the callback never reads past _length, so writing here is safe
            self._data[self._length : end] = frames
        self._length = end
        self.duration_changed.emit(self.duration)

    def end_stream(self, final: np.ndarray | None = None, sample_rate: int | None = None) -> None:
        """The piece is complete; `final`, when given, replaces what arrived (same position)."""
        if final is not None:
            frames = _frames(final)
            self._data = frames
            self._length = frames.shape[0]
            if sample_rate:
                self._rate = int(sample_rate)
            self.duration_changed.emit(self.duration)
        self._growing = False

    # ─── transport ────────────────────────────────────────────────────────────────────
    def play(self) -> bool:
        """Start or resume; False (and a `message`) when there is no usable device."""
        if self._state == "playing":
            return True
        if not self._rate or (self._length == 0 and not self._growing):
            return False
        if self.position_frames() >= self._length and not self._growing:
            self._set_frame(0)
        try:
            sd = _sounddevice()
            stream = sd.OutputStream(
                samplerate=self._rate,
                channels=self.channels,
                dtype="float32",
                callback=self._callback,
            )
            self._ended = False
            self._pace_t0 = 0.0
            self._pace_frames = 0
            self._pace_slack = max(PACE_SLACK_MIN_S, 2 * float(stream.latency) + 0.05)
            stream.start()
        except RuntimeError as exc:
            self.message.emit(str(exc))
            return False
        except Exception as exc:  # PortAudioError and friends: a sentence, never a crash
            log.info("audio output failed: %s", exc)
            self.message.emit(device_message(exc))
            return False
        self._stream = stream
        self._set_state("playing")
        self._timer.start()
        return True

    def pause(self) -> None:
        if self._state != "playing":
            return
        self._close_stream()
        self._set_state("paused")
        self._emit_position(force=True)

    def toggle(self) -> None:
        if self._state == "playing":
            self.pause()
        else:
            self.play()

    def stop(self) -> None:
        """Stop and rewind to the start."""
        self._close_stream()
        self._set_frame(0)
        if self._state != "stopped":
            self._set_state("stopped")
        self._emit_position(force=True)

    def seek(self, seconds: float) -> None:
        """Move the play head (while playing too)."""
        if not self._rate:
            return
        frame = round(max(0.0, seconds) * self._rate)
        frame = min(frame, self._length)
        self._set_frame(frame)
        self._emit_position(force=True)

    def set_volume(self, volume: float) -> None:
        self._volume = float(min(max(volume, 0.0), 1.0))

    @property
    def volume(self) -> float:
        return self._volume

    def set_loop(self, loop: bool) -> None:
        self._loop = bool(loop)

    @property
    def loop(self) -> bool:
        return self._loop

    def position(self) -> float:
        return self.position_frames() / self._rate if self._rate else 0.0

    def position_frames(self) -> int:
        if self._seek_serial != self._seen_serial:
            return self._seek_target
        return self._frame

    def close(self) -> None:
        """Release the device (call before the app quits)."""
        self._close_stream()
        self._timer.stop()

    # ─── internals ────────────────────────────────────────────────────────────────────
    def _set_frame(self, frame: int) -> None:
        if self._stream is None:
            self._frame = frame
            self._seek_target = frame
            self._seen_serial = self._seek_serial
        else:  # the callback owns _frame while playing: hand it a request
            self._seek_target = frame
            self._seek_serial += 1

    def _set_state(self, state: str) -> None:
        self._state = state
        self.state_changed.emit(state)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._timer.stop()
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # a device that vanished mid-play
                log.info("closing the audio stream failed: %s", exc)
        if self._seek_serial != self._seen_serial:  # a seek the callback never saw
            self._frame = self._seek_target
            self._seen_serial = self._seek_serial

    def _emit_position(self, force: bool = False) -> None:
        pos = self.position()
        if force or abs(pos - self._last_position) > 1e-4:
            self._last_position = pos
            self.position_changed.emit(pos)

    def _tick(self) -> None:
        if self._ended and self._stream is not None:
            self._ended = False
            self._close_stream()
            self._set_frame(0)
            self._set_state("stopped")
            self._emit_position(force=True)
            self.finished.emit()
            return
        self._emit_position()

    def _callback(self, out: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        """Fill `out` (PortAudio thread): read counters, copy samples, advance the counter."""
        if self._seek_serial != self._seen_serial:
            serial = self._seek_serial
            self._frame = self._seek_target
            self._seen_serial = serial
        data = self._data
        length = min(self._length, data.shape[0])
        frame = self._frame
        volume = self._volume
        filled = 0
        while filled < frames:
            take = min(frames - filled, length - frame)
            if take > 0:
                out[filled : filled + take] = data[frame : frame + take]
                if volume != 1.0:
                    out[filled : filled + take] *= volume
                filled += take
                frame += take
                continue
            if self._growing:  # wait for the next chunk at the end of what has arrived
                break
            if self._loop and length > 0:
                frame = 0
                continue
            out[filled:] = 0
            self._frame = frame
            self._ended = True
            self._pace(frames)
            raise _callback_stop()
        if filled < frames:
            out[filled:] = 0
        self._frame = frame
        self._pace(frames)

    def _pace(self, frames: int) -> None:
        """Wait when the device takes samples faster than real time (null/virtual sinks)."""
        now = time.monotonic()
        if self._pace_t0 == 0.0:
            self._pace_t0 = now
        self._pace_frames += frames
        ahead = self._pace_frames / self._rate - (now - self._pace_t0)
        if ahead > self._pace_slack:
            time.sleep(ahead - self._pace_slack / 2)


def _callback_stop() -> BaseException:
    import sounddevice

    return sounddevice.CallbackStop()


def _frames(audio: np.ndarray) -> np.ndarray:
    """(n, channels) float32 frames from (channels, n) or 1-D audio."""
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2:
        raise ValueError(f"audio must be (channels, n), not {data.shape}")
    return np.ascontiguousarray(data.T)
