"""Notes → MIDI bytes (pretty_midi) and → audio (tinysoundfont with a General MIDI soundfont).

The soundfont is Debian's FluidR3_GM when installed (fuller, 142 MB) and
otherwise TimGM6mb, which the pretty_midi wheel carries, so rendering never
needs a system library. tinysoundfont reads both, so one code path renders
either. Rendering is incremental: the engine feeds notes as bars are
composed and pulls audio up to the last time whose events are all known, so
previews are exact slices of the final audio.
"""

from __future__ import annotations

import heapq
import io
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.errors import ModelError

SAMPLE_RATE = 44100
DRUM_CHANNEL = 9

# Looked up in order; STUDIO_SOUNDFONT (a path) comes before all of them.
SYSTEM_SOUNDFONTS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
# Output gain in dB per soundfont file name, before any calibration.
GAIN_DB = {"TimGM6mb.sf2": 6.0}
# Calibration: each instrument's probe note (G4, mezzo-forte) is brought to this RMS.
TARGET_RMS = 0.07
PROBE_PITCH, PROBE_VELOCITY = 67, 80
MAX_GAIN = 4.0


@dataclass(frozen=True, order=True)
class PerfNote:
    """A note as played: seconds, absolute MIDI pitch, velocity, MIDI channel."""

    start: float
    end: float
    pitch: int
    velocity: int
    channel: int = 0


def bundled_soundfont() -> Path:
    """TimGM6mb.sf2 from the pretty_midi package (6 MB, General MIDI)."""
    import importlib.util

    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.origin:
        raise ModelError("The pretty_midi package is missing; install it to render music.")
    return Path(spec.origin).parent / "TimGM6mb.sf2"


def system_soundfonts() -> list[Path]:
    """Better soundfonts installed on this machine, best first."""
    out = []
    env = os.environ.get("STUDIO_SOUNDFONT")
    if env:
        out.append(Path(env).expanduser())
    out += [Path(p) for p in SYSTEM_SOUNDFONTS]
    return out


def find_soundfont() -> Path:
    """The soundfont to render with: a system one when present, else TimGM6mb."""
    for path in system_soundfonts():
        if path.is_file():
            return path
    path = bundled_soundfont()
    if not path.is_file():
        raise ModelError(
            "No General MIDI soundfont found: install fluid-soundfont-gm, or reinstall "
            "pretty_midi (it carries TimGM6mb.sf2)."
        )
    return path


_SYNTHS: dict[tuple[str, int], object] = {}
_SYNTH_LOCK = threading.Lock()


def _synth(path: Path, sample_rate: int) -> tuple[object, int]:
    """A loaded tinysoundfont synth per soundfont (loading FluidR3 takes ~0.6 s)."""
    import tinysoundfont

    key = (str(path), sample_rate)
    with _SYNTH_LOCK:
        if key not in _SYNTHS:
            synth = tinysoundfont.Synth(gain=GAIN_DB.get(path.name, 0.0), samplerate=sample_rate)
            try:
                sfid = synth.sfload(str(path))
            except Exception as exc:
                raise ModelError(
                    f"The soundfont {path} could not be loaded: it is not a readable "
                    f"SoundFont 2 file.") from exc
            _SYNTHS[key] = (synth, sfid)
        return _SYNTHS[key]  # type: ignore[return-value]


class StreamRenderer:
    """Renders notes fed in any order, up to a horizon before which all notes are known."""

    def __init__(self, programs: dict[int, int], soundfont: Path | None = None,
                 sample_rate: int = SAMPLE_RATE, levels: dict[int, float] | None = None) -> None:
        """`levels` (channel → loudness relative to TARGET_RMS) turns on calibration."""
        self.soundfont = soundfont or find_soundfont()
        self.sample_rate = sample_rate
        self._lock = _SYNTH_LOCK
        self.synth, self.sfid = _synth(self.soundfont, sample_rate)
        self._events: list[tuple[int, int, int, int, int, int]] = []
        self._order = 0
        self.pos = 0  # samples rendered so far
        self.gain = 1.0
        with self._lock:
            self._silence()
            for ch, program in programs.items():
                self.synth.program_select(ch, self.sfid, 0, int(program),
                                          is_drums=ch == DRUM_CHANNEL)
                self.synth.control_change(ch, 7, 127)
            if levels:
                self._calibrate(levels)

    def _calibrate(self, levels: dict[int, float]) -> None:
        """Even out instruments: GM presets differ in loudness by 5x and more.

        Each channel plays a probe note; channel volumes (CC7, amplitude ∝ value²)
        bring them to their relative levels, and one output gain to TARGET_RMS.
        """
        want: dict[int, float] = {}
        for ch, level in levels.items():
            self.synth.noteon(ch, PROBE_PITCH, PROBE_VELOCITY)
            n = int(0.5 * self.sample_rate)
            probe = np.frombuffer(self.synth.generate(n), dtype=np.float32)
            self.synth.noteoff(ch, PROBE_PITCH)
            self._silence()
            rms = float(np.sqrt(np.mean(probe.astype(np.float64) ** 2)))
            want[ch] = TARGET_RMS * level / max(rms, 1e-4)
        top = max(want.values())
        for ch, g in want.items():
            self.synth.control_change(ch, 7, max(1, round(127 * (g / top) ** 0.5)))
        self.gain = float(min(MAX_GAIN, max(1.0 / MAX_GAIN, top)))

    def _silence(self) -> None:
        """Stop every voice and let the quick release die out, so runs start identically."""
        self.synth.sounds_off()
        for _ in range(20):
            block = np.frombuffer(self.synth.generate(2205), dtype=np.float32)
            if not block.any():
                break

    def add(self, notes: Iterable[PerfNote]) -> None:
        for n in notes:
            on = max(self.pos, round(n.start * self.sample_rate))
            off = max(on + 1, round(n.end * self.sample_rate))
            # note-offs sort before note-ons at the same sample (kind 0 < 1)
            heapq.heappush(self._events, (off, 0, self._order, n.channel, n.pitch, 0))
            heapq.heappush(self._events, (on, 1, self._order, n.channel, n.pitch, n.velocity))
            self._order += 1

    def render_until(self, seconds: float) -> np.ndarray:
        """Audio from the last call up to `seconds`, float32 (2, n)."""
        target = max(self.pos, round(seconds * self.sample_rate))
        chunks: list[np.ndarray] = []
        with self._lock:
            while self.pos < target:
                nxt = self._events[0][0] if self._events else target
                if nxt <= self.pos:
                    _t, kind, _o, ch, key, vel = heapq.heappop(self._events)
                    if kind == 1:
                        self.synth.noteon(ch, key, vel)
                    else:
                        self.synth.noteoff(ch, key)
                    continue
                n = min(nxt, target) - self.pos
                buf = self.synth.generate(n)
                chunks.append(np.frombuffer(buf, dtype=np.float32).reshape(-1, 2).copy())
                self.pos += n
        if not chunks:
            return np.zeros((2, 0), dtype=np.float32)
        audio = np.concatenate(chunks).T.copy()
        if self.gain != 1.0:
            audio *= np.float32(self.gain)
        return soft_limit(audio)

    def close(self) -> None:
        with self._lock:
            self._silence()


def soft_limit(audio: np.ndarray, knee: float = 0.8) -> np.ndarray:
    """Leave samples below the knee alone and bend louder ones smoothly under 1.0."""
    out = audio.astype(np.float32, copy=True)
    loud = np.abs(out) > knee
    if loud.any():
        x = np.abs(out[loud]) - knee
        out[loud] = np.sign(out[loud]) * (knee + (1 - knee) * np.tanh(x / (1 - knee)))
    return out


def render_notes(notes: list[PerfNote], programs: dict[int, int], seconds: float,
                 soundfont: Path | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """All notes at once: float32 (2, round(seconds * sample_rate))."""
    r = StreamRenderer(programs, soundfont, sample_rate)
    r.add(notes)
    audio = r.render_until(seconds)
    r.close()
    return fade_out(audio, sample_rate)


def fade_out(audio: np.ndarray, sample_rate: int, seconds: float = 0.05) -> np.ndarray:
    n = min(audio.shape[-1], int(seconds * sample_rate))
    if n:
        audio[..., -n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return audio


def midi_bytes(notes: list[PerfNote], programs: dict[int, int], qpm: float,
               ts: str = "4/4", names: dict[int, str] | None = None,
               key: tuple[int, str] | None = None, marker: str = "") -> bytes:
    """A type-1 MIDI file of the notes, one track per channel, with tempo and metre
    (and, when given, the key signature and a text event: our marker for extending)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(qpm))
    num, den = (int(x) for x in ts.split("/"))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    if key is not None:
        number = key[0] % 12 + (12 if key[1] == "minor" else 0)
        pm.key_signature_changes.append(pretty_midi.KeySignature(number, 0.0))
    if marker:
        pm.text_events.append(pretty_midi.Text(marker, 0.0))
    for ch in sorted(programs):
        inst = pretty_midi.Instrument(program=int(programs[ch]), is_drum=ch == DRUM_CHANNEL,
                                      name=(names or {}).get(ch, f"channel {ch}"))
        for n in sorted(x for x in notes if x.channel == ch):
            inst.notes.append(pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch),
                                               start=float(n.start), end=float(n.end)))
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()
