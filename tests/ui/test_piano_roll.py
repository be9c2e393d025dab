"""The piano roll with real widgets: lanes per track, notes drawn, play head, click to seek,
and following an AudioPlayer on ALSA's null device."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from studio.core.errors import RequestError
from studio.core.midi import read_midi
from studio.ui.audio import AudioPlayer
from studio.ui.piano_roll import COLOURS, PianoRoll


def two_tracks(path: Path) -> Path:
    """A melody (C5 D5 E5 F5, half a second each) over a bass (C3 held 2 s)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    melody = pretty_midi.Instrument(program=40, name="violin")
    for i, pitch in enumerate((72, 74, 76, 77)):
        melody.notes.append(pretty_midi.Note(90, pitch, i * 0.5, i * 0.5 + 0.5))
    bass = pretty_midi.Instrument(program=42, name="cello")
    bass.notes.append(pretty_midi.Note(70, 48, 0.0, 2.0))
    pm.instruments += [melody, bass]
    buf = io.BytesIO()
    pm.write(buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def roll(qtbot, tmp_path):
    widget = PianoRoll()
    qtbot.addWidget(widget)
    widget.resize(400, 200)
    widget.load(two_tracks(tmp_path / "piece.mid"))
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def colour_at(widget: PianoRoll, x: float, y: float):
    image = widget.grab().toImage()
    return image.pixelColor(int(x), int(y))


def test_a_lane_per_track_with_its_notes_drawn(roll):
    assert roll.lanes() == [("violin", 4), ("cello", 1)]
    assert roll.duration == pytest.approx(2.0)
    # the first melody note sits in the top lane, the bass note in the bottom one
    first = roll.note_rect(0, roll.midi.tracks[0].notes[0])
    bass = roll.note_rect(1, roll.midi.tracks[1].notes[0])
    assert roll.lane_rect(0).contains(first.center()) and roll.lane_rect(1).contains(bass.center())
    assert first.width() == pytest.approx(roll.width() / 4, abs=1)
    # higher notes are drawn higher in their lane
    last = roll.note_rect(0, roll.midi.tracks[0].notes[-1])
    assert last.top() < first.top()
    roll.set_position(0.0)
    c = colour_at(roll, first.center().x() + 3, first.center().y())
    played = COLOURS[0].lighter(140)
    assert (c.red(), c.green(), c.blue()) == (played.red(), played.green(), played.blue())
    c = colour_at(roll, last.center().x(), last.center().y())
    assert (c.red(), c.green(), c.blue()) == (COLOURS[0].red(), COLOURS[0].green(),
                                              COLOURS[0].blue())


def test_click_to_seek_emits_the_seconds_under_the_pointer(qtbot, roll):
    with qtbot.waitSignal(roll.seek_requested, timeout=2000) as sig:
        qtbot.mouseClick(roll, Qt.MouseButton.LeftButton, pos=QPoint(300, 50))
    assert sig.args[0] == pytest.approx(300 / 400 * 2.0, abs=0.01)


def test_the_play_head_follows_the_player_on_the_null_device(qtbot, roll):
    player = AudioPlayer()
    try:
        player.set_audio(np.zeros((1, 2 * 16000), np.float32), 16000)
        player.position_changed.connect(roll.set_position)
        roll.seek_requested.connect(player.seek)
        assert player.play()
        qtbot.waitUntil(lambda: roll.position > 0.2, timeout=5000)
        assert roll.position == pytest.approx(player.position(), abs=0.2)
        qtbot.mouseClick(roll, Qt.MouseButton.LeftButton, pos=QPoint(300, 50))
        assert player.position() >= 1.45
        qtbot.waitUntil(lambda: roll.position >= 1.45, timeout=5000)
    finally:
        player.close()


def test_a_file_that_is_not_midi_is_one_sentence(qtbot, tmp_path):
    widget = PianoRoll()
    qtbot.addWidget(widget)
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"not midi at all")
    with pytest.raises(RequestError, match="not a readable MIDI file"):
        widget.load(bad)
    widget.set_midi(read_midi(two_tracks(tmp_path / "ok.mid")))
    widget.clear()
    assert widget.lanes() == [] and widget.duration == 0.0
