""""Use as motif" on a past composer piece: from the Music panel's pieces list (right-click),
its button, and the gallery, with the real composer, the real worker and real widgets."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.core.midi import read_midi
from studio.ui.music_panel import NO_MOTIF, MusicPanel
from studio.ui.music_pieces import motif_file
from tests.ui import close_ctx, make_ctx, scan

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture
def panel(qtbot, tmp_path, tiny):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny.parent)])
    p = MusicPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    qtbot.waitExposed(p)
    scan(ctx, qtbot)
    p.model.set_model("builtin:composer")
    p.autoplay.setChecked(False)
    yield p
    p.player.close()
    close_ctx(ctx, qtbot)


def compose(panel: MusicPanel, qtbot, prompt: str, seed: int, **controls):
    panel.prompt.setPlainText(prompt)
    panel.duration.setValue(3.0)
    panel.seed.set_value(seed)
    for name, value in controls.items():
        getattr(panel.composition, name).setText(value)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    return sig.args[1], next(p for p in sig.args[2] if p.suffix == ".wav")


def right_click_motif(panel: MusicPanel, qtbot, path) -> None:
    """Right-click the piece in the list and choose "Use as motif"."""
    row = panel.pieces.row_of(path)
    assert row >= 0
    item = panel.pieces.item(row)
    panel.pieces.scrollToItem(item)
    pos = panel.pieces.visualItemRect(item).center()
    panel.pieces.customContextMenuRequested.emit(pos)  # what a right-click there emits
    menu = panel.pieces.menu
    assert menu is not None and [a.text() for a in menu.actions()] == ["Play", "Use as motif"]
    action = menu.actions()[1]
    assert action.isEnabled()
    action.trigger()


def test_a_past_piece_becomes_the_motif_in_one_click(panel, qtbot, tiny):
    _first, wav = compose(panel, qtbot, "a jig in D major", 11)
    mid = wav.with_suffix(".mid")
    assert motif_file(wav) == mid and panel.motif_button.isEnabled()
    # the piece in the player: the panel's button
    qtbot.mouseClick(panel.motif_button, Qt.MouseButton.LeftButton)
    assert panel.composition.motif.text() == str(mid)
    assert panel.request().motif == str(mid)
    panel.composition.motif.clear()
    # a piece in the list, with MusicGen chosen meanwhile: the composer comes back
    panel.model.set_model(str(tiny))
    assert not panel.composition.motif.isEnabled()  # MusicGen takes no motif
    right_click_motif(panel, qtbot, wav)
    assert panel.model.current_model() == "builtin:composer"
    assert panel.composition.motif.isEnabled()
    assert panel.composition.motif.text() == str(mid)
    assert mid.name in panel.message.text()
    # the next piece is written on those notes
    second, _wav2 = compose(panel, qtbot, "a jig in D major", 12)
    assert second.request.motif == str(mid)
    assert second.info["motif"]["file"] == str(mid) and second.info["motif"]["bars"] > 0
    assert read_midi(mid).tracks  # the motif file is untouched, still readable
    # a MusicGen piece has no notes: one sentence, the motif unchanged
    audio_only = wav.with_name("audio-only.wav")
    audio_only.write_bytes(wav.read_bytes())
    assert not panel.use_as_motif(audio_only)
    assert panel.message.text() == NO_MOTIF
    assert panel.composition.motif.text() == str(mid)


def test_the_gallery_sends_a_piece_as_motif(qtbot, panel):
    from studio.ui.main_window import MainWindow

    _result, wav = compose(panel, qtbot, "an air in G major", 3)
    window = MainWindow(panel.ctx)
    qtbot.addWidget(window)
    window.show_tab("gallery")
    gallery = window.gallery
    with qtbot.waitSignal(gallery.refreshed, timeout=10000):
        gallery.refresh()
    gallery.select_row(gallery.row_of_path(wav.resolve()))
    with qtbot.waitSignal(gallery.motif_requested, timeout=5000):
        gallery.use_as_motif()
    assert window.current_tab() == "music"
    assert window.music.composition.motif.text() == str(wav.with_suffix(".mid").resolve())
    window.close()
