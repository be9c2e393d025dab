"""The Art panel's prompt boxes and sampling controls, with real typing.

The token counter counts with the model's own CLIP tokenizer off the GUI thread
("n/75", "n/150" past one chunk), notes a syntax error that leaves text literal, and is
hidden for models without CLIP; the seed box takes 64-bit seeds (and nothing larger);
the schedule type, clip skip and VAE controls write the request, read a recipe back and
grey out for a GAN.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.core.errors import RequestError
from studio.core.requests import ImageRequest
from studio.ui.art_panel import ArtPanel
from tests.ui import close_ctx, make_ctx, scan

TOP = 2**64 - 1


@pytest.fixture
def art(qtbot, tmp_path, tiny_sd):
    extra = tmp_path / "extra"
    (extra / "VAE").mkdir(parents=True)
    (extra / "VAE" / "kl-f8-anime.safetensors").write_bytes(b"listed, never loaded here")
    ctx = make_ctx(tmp_path, model_dirs=[str(tiny_sd.parent), str(extra)])
    scan(ctx, qtbot)
    panel = ArtPanel(ctx)
    panel.tokens.delay_ms = 50
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.model.set_model(str(tiny_sd))
    yield panel
    panel.close()
    close_ctx(ctx, qtbot)


def _expected(tiny_sd: Path, text: str) -> str:
    from transformers import CLIPTokenizer

    from studio.engines.prompt_encoding import count_tokens

    tokens, limit = count_tokens(CLIPTokenizer.from_pretrained(str(tiny_sd / "tokenizer")), text)
    return f"{tokens}/{limit}"


def _type(qtbot, box, text: str) -> None:
    box.setFocus()
    qtbot.keyClicks(box, text)


def test_the_counter_counts_what_is_typed(art, qtbot, tiny_sd) -> None:
    box = art.prompt
    _type(qtbot, box, "a red fox")
    expected = _expected(tiny_sd, "a red fox")
    qtbot.waitUntil(lambda: box.counter.isVisible() and box.counter.text() == expected,
                    timeout=60000)
    assert expected.endswith("/75") and not box.note.isVisible()
    long = " a red fox" * 16  # past one 75-token chunk (the tiny BPE: ~5 a phrase)
    box.moveCursor(box.textCursor().MoveOperation.End)
    qtbot.keyClicks(box, long)
    expected = _expected(tiny_sd, "a red fox" + long)
    qtbot.waitUntil(lambda: box.counter.text() == expected, timeout=60000)
    tokens, limit = map(int, expected.split("/"))
    assert tokens > 75 and limit == 150
    # the counter sits inside the box, at its top right
    assert box.rect().contains(box.counter.geometry())


def test_a_syntax_error_is_noted_and_the_negative_box_counts_too(art, qtbot, tiny_sd) -> None:
    _type(qtbot, art.prompt, "a (red fox")
    qtbot.waitUntil(lambda: art.prompt.note.isVisible(), timeout=60000)
    assert "Unbalanced brackets" in art.prompt.note.text()
    assert art.prompt.note.text().startswith("⚠")
    art.prompt.selectAll()
    qtbot.keyClick(art.prompt, Qt.Key.Key_Backspace)
    _type(qtbot, art.prompt, "a red fox")
    qtbot.waitUntil(lambda: not art.prompt.note.isVisible(), timeout=60000)
    _type(qtbot, art.negative, "blurry")
    expected = _expected(tiny_sd, "blurry")
    qtbot.waitUntil(lambda: art.negative.counter.text() == expected, timeout=60000)


def test_no_counter_for_a_model_without_clip(art, qtbot) -> None:
    _type(qtbot, art.prompt, "a red fox")
    qtbot.waitUntil(art.prompt.counter.isVisible, timeout=60000)
    art.model.set_model("builtin:faces")
    qtbot.waitUntil(lambda: not art.prompt.counter.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: art.tokens.running == 0)


def test_the_seed_box_takes_64_bit_seeds(art, qtbot) -> None:
    art.seed.edit.setFocus()
    qtbot.keyClicks(art.seed.edit, str(TOP))
    assert art.seed.value() == TOP and art.request().seed == TOP
    art.seed.edit.clear()
    qtbot.keyClicks(art.seed.edit, "18446744073709551616")  # 2**64: kept, and said at once
    assert art.seed.edit.text() == "18446744073709551616"
    with pytest.raises(RequestError, match="seed must be -1"):
        art.request().validate()
    art.seed.edit.clear()
    qtbot.keyClicks(art.seed.edit, "12a3")  # letters never get in
    assert art.seed.edit.text() == "123"
    art.seed.edit.clear()
    qtbot.keyClicks(art.seed.edit, "-1")
    assert art.seed.value() == -1
    art.apply_request(ImageRequest(model=art.model.current_model(), seed=1234567890123456789))
    assert art.seed.edit.text() == "1234567890123456789"


def test_schedule_clip_skip_and_vae_controls(art, qtbot) -> None:
    schedule, clip, vae = (art.fields[n] for n in ("schedule", "clip_skip", "vae"))
    assert schedule.currentText() == "Automatic" and clip.value() == 1
    assert [vae.itemText(i) for i in range(vae.count())] == ["Automatic",
                                                             "kl-f8-anime.safetensors"]
    art.scheduler.setCurrentText("DPM++ 2M SDE")
    schedule.setCurrentText("Exponential")
    clip.setFocus()
    clip.selectAll()
    qtbot.keyClicks(clip, "2")
    vae.setCurrentIndex(1)
    request = art.request()
    assert (request.scheduler, request.schedule, request.clip_skip, request.vae) == \
        ("DPM++ 2M SDE", "Exponential", 2, "kl-f8-anime.safetensors")
    vae.setCurrentIndex(0)
    assert art.request().vae == ""  # Automatic: the model's own
    # an old recipe's combined name shows as sampler + schedule type
    art.apply_request(ImageRequest(model=art.model.current_model(), scheduler="DPM++ 2M Karras",
                                   vae="other.safetensors"))
    assert (art.scheduler.currentText(), schedule.currentText()) == ("DPM++ 2M", "Karras")
    assert vae.currentText() == "other.safetensors"  # a VAE typed or read, kept as text
    art.model.set_model("builtin:faces")
    art.on_model_changed("builtin:faces")
    assert not any(w.isEnabled() for w in (schedule, clip, vae))
