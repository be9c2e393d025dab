"""A MIDI file as plain data: tracks of notes in seconds, tempo, metre, key, our marker.

One loader for everything that reads notes back: the piano roll (a lane per track),
a motif imported into the composer, a Studio piece being extended. Plain Python on
pretty_midi (no torch, no Qt).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import RequestError

#: the text event the composer writes at time 0, so that its pieces can be extended
MARKER = "studio composer"


@dataclass(frozen=True, order=True)
class MidiNote:
    start: float
    end: float
    pitch: int
    velocity: int = 80


@dataclass
class MidiTrack:
    name: str
    program: int
    is_drum: bool = False
    notes: list[MidiNote] = field(default_factory=list)


@dataclass
class MidiData:
    tracks: list[MidiTrack]
    tempo_qpm: float
    time_signature: str
    key: tuple[int, str] | None  # (tonic pitch class, "major" | "minor") when the file says
    marker: str  # our text event ("studio composer style=… form=…"), "" for other files
    duration: float

    @property
    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def marker_fields(self) -> dict[str, str]:
        """key=value pairs of our marker ({} for a file Studio did not write)."""
        if not self.marker.startswith(MARKER):
            return {}
        pairs = (p.split("=", 1) for p in self.marker[len(MARKER):].split() if "=" in p)
        return {k: v.replace("_", " ") for k, v in pairs}


def read_midi(source: Path | bytes) -> MidiData:
    """Read a MIDI file (path or bytes); a file that is not MIDI is one RequestError sentence."""
    import pretty_midi  # type: ignore[import-untyped]

    name = source.name if isinstance(source, Path) else "the MIDI data"
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as exc:
        raise RequestError(f"Could not read {name}: {exc.strerror or exc}.") from exc
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as exc:  # mido raises many kinds for a file that is not MIDI
        raise RequestError(f"{name} is not a readable MIDI file ({type(exc).__name__}).") \
            from exc
    tempos = pm.get_tempo_changes()[1]
    qpm = float(tempos[0]) if len(tempos) else 120.0
    ts = pm.time_signature_changes[0] if pm.time_signature_changes else None
    key = None
    if pm.key_signature_changes:
        number = pm.key_signature_changes[0].key_number
        key = (number % 12, "major" if number < 12 else "minor")
    marker = next((t.text for t in pm.text_events if t.text.startswith(MARKER)), "")
    tracks = [
        MidiTrack(inst.name or f"track {i + 1}", int(inst.program), bool(inst.is_drum),
                  sorted(MidiNote(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
                         for n in inst.notes))
        for i, inst in enumerate(pm.instruments)
    ]
    return MidiData(tracks, qpm, f"{ts.numerator}/{ts.denominator}" if ts else "4/4", key,
                    marker, float(pm.get_end_time()))


def read_notes(path: Path) -> MidiData:
    """read_midi for an input the user chose: a file without notes is refused."""
    data = read_midi(path)
    if data.note_count == 0:
        raise RequestError(f"The MIDI file {path.name} has no notes.")
    return data
