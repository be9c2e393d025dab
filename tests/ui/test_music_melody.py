"""The Music panel's "Melody from" picker with a tiny real MusicGen-Melody (and a tiny
MusicGen beside it), the real worker and real widgets: shown for that family only, a
file or a past piece as the reference, a piece rendered and its recipe brought back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.core.formats.audio import read_recipe, write_wav
from studio.core.requests import MusicRequest
from studio.ui import music_melody
from studio.ui.music_panel import MusicPanel
from tests.tiny_musicgen_melody import CHROMA, cached_tiny_musicgen_melody
from tests.ui import close_ctx, make_ctx, scan

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture(scope="module")
def melody_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_musicgen_melody(tmp_path_factory)


@pytest.fixture
def panel(qtbot, tmp_path, tiny, melody_model):
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny.parent), str(melody_model.parent)])
    p = MusicPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    qtbot.waitExposed(p)
    scan(ctx, qtbot)
    p.autoplay.setChecked(False)
    yield p
    p.player.close()
    close_ctx(ctx, qtbot)


def a_tone(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rate = CHROMA["sampling_rate"]
    t = np.arange(2 * rate) / rate
    path = folder / "la.wav"
    with open(path, "wb") as f:
        write_wav(f, (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None], rate)
    return path


def generate(panel: MusicPanel, qtbot, seconds: float = 1.0, seed: int = 5):
    panel.prompt.setPlainText("a calm piano melody")
    panel.duration.setValue(seconds)
    panel.seed.set_value(seed)
    with qtbot.waitSignal(panel.ctx.jobs.job_finished, timeout=120000) as sig:
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    return sig.args[1], next(p for p in sig.args[2] if p.suffix == ".wav")


def test_the_picker_shows_for_the_melody_family_only(panel, tiny, melody_model, tmp_path,
                                                     monkeypatch, qtbot):
    picker = panel.melody
    for model in ("builtin:composer", str(tiny)):
        panel.model.set_model(model)
        assert picker.isHidden(), model
        assert panel.request().melody == ""
    panel.model.set_model(str(melody_model))
    assert picker.isVisible()
    assert panel.blending.isEnabled() is False  # MusicGen-Melody does not blend prompts
    assert not panel.composition_section.isVisible()
    tone = a_tone(tmp_path / "refs")
    monkeypatch.setattr(music_melody.QFileDialog, "getOpenFileName",
                        lambda *_a, **_k: (str(tone), music_melody.AUDIO_FILTER))
    qtbot.mouseClick(picker.file_button, Qt.MouseButton.LeftButton)
    assert picker.path.text() == str(tone) and panel.request().melody == str(tone)
    # switching to MusicGen leaves the reference out of its request
    panel.model.set_model(str(tiny))
    assert panel.request().melody == ""
    panel.model.set_model(str(melody_model))
    assert panel.request().melody == str(tone)


def test_a_piece_follows_a_file_then_a_past_piece_and_its_recipe_comes_back(
        panel, melody_model, tmp_path, qtbot):
    panel.model.set_model(str(melody_model))
    tone = a_tone(tmp_path / "refs")
    panel.melody.path.setText(str(tone))
    first, wav = generate(panel, qtbot)
    assert first.info["melody"]["pitch_classes"].split()[0] == "A"
    kept = Path(read_recipe(wav).request["melody"])
    assert kept.read_bytes() == tone.read_bytes() and kept != tone
    # the past-piece menu offers what the pieces list holds; choosing one sets it
    panel.melody.fill_menu()
    actions = panel.melody.menu.actions()
    offered = [a.toolTip() for a in actions]
    assert str(wav) in offered
    actions[offered.index(str(wav))].trigger()
    assert panel.request().melody == str(wav)
    second, _wav2 = generate(panel, qtbot, seed=6)
    assert second.request.melody.endswith(".wav") and second.info["melody"]["frames"] > 0
    # the first piece's recipe brings its (kept) reference back into the picker
    panel.melody.path.clear()
    request = read_recipe(wav).to_request()
    assert isinstance(request, MusicRequest)
    panel.apply_request(request)
    assert panel.melody.path.text() == str(kept) and panel.melody.isVisible()
    again, _wav3 = generate(panel, qtbot)
    assert np.array_equal(again.audio, first.audio)
