"""The Music panel's Composition section, "I understood" line, piano roll, Extend and
Export MIDI, with the real built-in composer, the real worker and ALSA's null device."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint, Qt

from studio.core.midi import read_midi
from studio.core.requests import MusicRequest
from studio.ui.music_controls import PICKS, RANDOM_NOTE, CompositionControls, understood_line
from studio.ui.music_panel import MusicPanel
from tests.ui import click_check, close_ctx, make_ctx, scan

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture
def panel(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    p = MusicPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    qtbot.waitExposed(p)
    scan(ctx, qtbot)
    p.model.set_model("builtin:composer")
    yield p
    p.player.close()
    close_ctx(ctx, qtbot)


def bpm_in(line: str) -> float:
    match = re.search(r"(\d+) bpm", line)
    assert match, line
    return float(match.group(1))


def test_the_controls_reach_the_request_and_come_back(panel, qtbot):
    c = panel.composition
    assert panel.composition_section.isVisible()
    assert panel.request().key == "auto" and panel.request().bpm == 0.0
    assert c.bpm.text() == "auto"  # 0 bpm reads as auto
    c.key.setCurrentText("D minor")
    c.meter.setCurrentText("6/8")
    c.bpm.setValue(96)
    c.form.setCurrentText("AABB")
    c.style.setCurrentText("fiddle")
    qtbot.keyClicks(c.instruments, "violin, guitar")
    click_check(qtbot, c.stems)
    request = panel.request()
    assert (request.key, request.meter, request.bpm, request.form, request.style,
            request.instruments, request.stems) == (
        "D minor", "6/8", 96.0, "AABB", "fiddle", "violin, guitar", True)
    request.validate()  # what the widgets offer is what the request accepts
    other = MusicRequest(model="builtin:composer", prompt="a hymn", seed=5, key="Bb major",
                         meter="3/4", bpm=60.0, form="phrases", style="chorale",
                         instruments="organ", stems=False)
    panel.apply_request(other)
    assert panel.request() == other
    panel.apply_request(MusicRequest(model="builtin:composer", prompt="x", seed=1))
    assert panel.request().instruments == "auto" and not c.stems.isChecked()


def test_the_understood_line_follows_the_prompt(panel, qtbot):
    panel.prompt.setFocus()
    qtbot.keyClicks(panel.prompt, "slow waltz in D minor")
    qtbot.waitUntil(lambda: "D minor, 3/4" in panel.understood.text(), timeout=5000)
    line = panel.understood.text()
    assert line.startswith("I understood: D minor")
    assert bpm_in(line) < 90  # "slow" is slow
    assert line == understood_line(panel.request())
    # a control wins over the words, and the line follows it
    panel.composition.meter.setCurrentText("6/8")
    qtbot.waitUntil(lambda: "6/8" in panel.understood.text(), timeout=5000)
    # a control the composer cannot honour is one sentence, not a traceback
    panel.composition.instruments.setText("kazoo")
    qtbot.waitUntil(lambda: "kazoo" in panel.understood.text(), timeout=5000)
    assert panel.understood.text().startswith("Cannot follow that:")


def test_understood_line_is_a_pure_core_call(qtbot):
    request = MusicRequest(model="builtin:composer", prompt="a fast reel", seed=3,
                           key="G major", bpm=120.0)
    line = understood_line(request)
    assert line.startswith("I understood: G major") and bpm_in(line) == 120
    # with a random seed, the line says when the seed still decides something
    loose = MusicRequest(model="builtin:composer", prompt="a tune", seed=-1)
    assert understood_line(loose).endswith(RANDOM_NOTE)
    assert not understood_line(loose.replace(seed=4)).endswith(RANDOM_NOTE)
    fixed = loose.replace(prompt="a slow waltz in D minor")
    assert not understood_line(fixed).endswith(RANDOM_NOTE)
    controls = CompositionControls()
    qtbot.addWidget(controls)
    fired: list[int] = []
    controls.changed.connect(lambda: fired.append(1))
    controls.form.setCurrentText("AABA")
    assert fired and controls.values()["form"] == "AABA"
    # the pick menu appends instruments to the list, each once
    for name in ("cello", "harp", "cello"):
        next(a for a in controls.instrument_menu.actions() if a.text() == name).trigger()
    assert controls.values()["instruments"] == "cello, harp"
    MusicRequest(model="builtin:composer", instruments=", ".join(PICKS)).validate()


def generate(panel: MusicPanel, qtbot, prompt: str, seconds: float, seed: int):
    panel.prompt.setPlainText(prompt)
    panel.duration.setValue(seconds)
    panel.seed.set_value(seed)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    return sig.args


def test_a_composer_piece_shows_its_notes_follows_playback_extends_and_exports(
        panel, qtbot, tmp_path):
    panel.autoplay.setChecked(False)
    panel.composition.instruments.setText("violin, guitar")
    _job, result, paths = generate(panel, qtbot, "a jig in D major", 3.0, 11)
    wav = next(p for p in paths if p.suffix == ".wav")
    mid = wav.with_suffix(".mid")
    assert mid.is_file()
    # the notes are in the roll, a lane per track, as in the file
    lanes = panel.roll.lanes()
    assert lanes and sum(n for _name, n in lanes) == sum(
        len(t.notes) for t in read_midi(mid).tracks)
    assert panel.understood.text() == f"Played: {result.info['understood']}"
    # the roll's play head follows playback on the null device; a click on it seeks
    panel.views.setCurrentWidget(panel.roll)
    assert panel.player.play()
    qtbot.waitUntil(lambda: panel.roll.position > 0.2, timeout=5000)
    panel.player.pause()
    assert panel.roll.position == pytest.approx(panel.player.position(), abs=0.2)
    qtbot.mouseClick(panel.roll, Qt.MouseButton.LeftButton,
                     pos=QPoint(panel.roll.width() // 2, panel.roll.height() // 2))
    assert panel.player.position() == pytest.approx(panel.roll.duration / 2, abs=0.1)
    # Export MIDI copies the notes through the runtime
    target = tmp_path / "kept" / "tune.mid"
    panel.export_midi(target)
    qtbot.waitUntil(lambda: panel.message.text() == "Saved tune.mid.", timeout=10000)
    assert target.read_bytes() == mid.read_bytes()
    # Extend: the same recipe, continued from the piece, queued like Generate
    panel.extend_seconds.setValue(2.0)
    submitted: list[MusicRequest] = []
    panel.ctx.jobs.job_started.connect(lambda _id, request: submitted.append(request))
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.extend_button, Qt.MouseButton.LeftButton)
    asked = submitted[0]
    assert asked.extend_from == str(wav) and asked.duration == 2.0
    assert asked.instruments == "violin, guitar" and asked.seed == 11
    longer = sig.args[1]
    assert longer.audio.shape[-1] > result.audio.shape[-1]
    assert panel.player.duration > 3.0 + 1.5
    # picking the first piece in the list loads its notes again
    row = next(r for r in range(panel.pieces.count())
               if panel.pieces.item(r).data(Qt.ItemDataRole.UserRole) == str(wav))
    item = panel.pieces.item(row)
    panel.pieces.scrollToItem(item)
    qtbot.mouseClick(panel.pieces.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.pieces.visualItemRect(item).center())
    qtbot.waitUntil(lambda: panel.title.text() == "a jig in D major"
                    and panel.player.duration == pytest.approx(3.0, abs=0.05), timeout=5000)
    assert panel.roll.lanes() == lanes


def test_extend_and_export_midi_need_a_piece(panel, qtbot, tmp_path):
    assert not panel.extend_button.isEnabled() and not panel.export_midi_button.isEnabled()
    assert panel.extend() is None
    assert "extend" in panel.message.text()
    panel.export_midi(tmp_path / "x.mid")
    assert "no MIDI" in panel.message.text()
    assert not (tmp_path / "x.mid").exists()
