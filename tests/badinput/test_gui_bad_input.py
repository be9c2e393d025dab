"""Bad input in the GUI, table-driven: the forms and the drops (issue 10).

Every case runs against a real MainWindow over a real AppContext (offscreen Qt) and
asserts the rule the CLI suite asserts for argv: the user sees exactly ONE sentence (the
panel's message line, or the status bar for a drop / File → Open), nothing logged a
traceback, the window still answers (a good recipe dropped afterwards loads), and no file,
not even a temporary `.part`, appeared in the output folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import Qt

from studio.core.requests import MusicRequest
from studio.ui.main_window import MainWindow
from tests.ui import close_ctx, make_ctx
from tests.ui.test_main_window import drop_file

WAIT = 15000
GOOD_RECIPE = ("a fox in the snow\n"
               "Steps: 12, Sampler: Euler a, CFG scale: 6, Seed: 77, Size: 64x64, Model: m")


@dataclass
class Env:
    """What a case may use: the window, qtbot, a scratch folder (not the outputs)."""

    window: MainWindow
    qtbot: object
    scratch: Path
    monkeypatch: pytest.MonkeyPatch
    fixture: Callable[[str], object]  # a fixture only some cases need (request.getfixturevalue)


@pytest.fixture
def env(qtbot, tmp_path, monkeypatch, request):
    ctx = make_ctx(tmp_path)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    yield Env(window, qtbot, scratch, monkeypatch, request.getfixturevalue)
    window.close()
    close_ctx(ctx, qtbot)


# ---------------------------------------------------------------- the user's actions
def click_generate(panel) -> None:
    from pytestqt.qtbot import QtBot

    QtBot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)


def art(model: str = "builtin:faces", prompt: str = "a fox", negative: str = "",
        seed: str | None = None) -> Callable[[Env], object]:
    def act(e: Env):
        panel = e.window.art
        if model:
            panel.model.set_model(model)
        else:  # nothing chosen (an empty catalog shows no entry)
            panel.model.setCurrentIndex(-1)
        panel.prompt.setPlainText(prompt)
        panel.negative.setPlainText(negative)
        panel.width_box.setValue(64)
        panel.height_box.setValue(64)
        if seed is not None:
            panel.seed.edit.setFocus()
            panel.seed.edit.selectAll()
            e.qtbot.keyClicks(panel.seed.edit, seed)  # the validator decides what stays
        click_generate(panel)
        return panel
    return act


def art_file(name: str, content: bytes) -> Callable[[Env], object]:
    """A file in the scratch folder chosen as the Art model."""
    def act(e: Env):
        path = e.scratch / name
        path.write_bytes(content)
        return art(model=str(path))(e)
    return act


def art_deleted_model(e: Env):
    path = e.scratch / "gone.safetensors"
    path.write_bytes(b"x")
    e.window.art.model.set_model(str(path))
    path.unlink()  # chosen, then deleted before Generate
    return art(model=str(path))(e)


def art_catalog_entry_deleted(e: Env):
    """A diffusion folder found by the scan and listed in the picker, deleted before
    Generate (the catalog still lists it: no rescan ran)."""
    import shutil

    tiny_sd = e.fixture("tiny_sd")
    models = e.scratch / "models"
    shutil.copytree(tiny_sd, models / "vanished-sd")
    ctx = e.window.ctx
    ctx.settings.model_dirs = [str(models)]
    with e.qtbot.waitSignal(ctx.catalog_changed, timeout=WAIT):
        ctx.rescan_models()
    chosen = str(models / "vanished-sd")
    assert chosen in e.window.art.model.model_ids()
    shutil.rmtree(models / "vanished-sd")
    return art(model=chosen)(e)


def music(**fields) -> Callable[[Env], object]:
    def act(e: Env):
        panel = e.window.music
        e.window.show_tab("music")
        request = MusicRequest(**{"model": "builtin:composer", "prompt": "a calm tune",
                                  "duration": 4.0, **fields})
        if set(fields) <= {"model", "prompt", "blend", "blend_prompt"}:
            panel.apply_request(request)  # what the form shows, then the button
            click_generate(panel)
        else:  # motif / soundfont / extend reach the panel only through a recipe
            panel.submit(request)
        return panel
    return act


def music_scratch(field: str, name: str, content: bytes) -> Callable[[Env], object]:
    def act(e: Env):
        path = e.scratch / name
        path.write_bytes(content)
        return music(**{field: str(path)})(e)
    return act


def text(model: str = "builtin:smollm2", prompt: str = "hello", stops: str = "",
         **request) -> Callable[[Env], object]:
    def act(e: Env):
        panel = e.window.text
        e.window.show_tab("text")
        panel.model.set_model(model)
        panel.prompt.setPlainText(prompt)
        panel.stops.setText(stops)
        if request:
            panel.submit(panel.request().replace(**request))
        else:
            click_generate(panel)
        return panel
    return act


def text_gguf(e: Env):
    return text(model=str(e.scratch / "gone.gguf"))(e)


def explore_model(model: str) -> Callable[[Env], object]:
    def act(e: Env):
        panel = e.window.explore
        e.window.show_tab("explore")
        panel.session.set_model(model)
        return panel
    return act


def explore_anchor(name: str, make: Callable[[Path], None]) -> Callable[[Env], object]:
    def act(e: Env):
        panel = e.window.explore
        e.window.show_tab("explore")
        path = e.scratch / name
        make(path)
        panel.session.anchor_from_path(0, path)
        return panel
    return act


def drop(name: str, make: Callable[[Path], None], *, via: str = "drop"):
    def act(e: Env):
        path = e.scratch / name
        make(path)
        if via == "open":
            from PySide6.QtWidgets import QFileDialog

            e.monkeypatch.setattr(QFileDialog, "getOpenFileName",
                                  staticmethod(lambda *_a: (str(path), "")))
            e.window.open_action.trigger()
        elif via == "prompt":  # onto the Art prompt box: the path must not be pasted
            e.window.art.prompt.setPlainText("my words")
            assert drop_file(e.window.art.prompt.viewport(), path)
        else:
            e.window.show_tab("gallery")
            assert drop_file(e.window, path)
        return "drop"
    return act


# ---------------------------------------------------------------- files of every kind
def plain_png(path: Path) -> None:
    Image.new("RGB", (8, 8)).save(path)


def wav_without_recipe(path: Path) -> None:
    import soundfile

    soundfile.write(path, np.zeros(800, np.float32), 8000)


def broken_front_matter(path: Path) -> None:
    """A front-matter block that is never closed (a lenient reader still finds no recipe)."""
    path.write_text("---\nstudio:\n  kind: text\n  model: [x\n", encoding="utf-8")


def not_utf8_markdown(path: Path) -> None:
    path.write_bytes(b"---\nprompt: \xff\xfe\n---\nbody")


def random_bytes(size: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(np.random.default_rng(7).bytes(size))


def write(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def folder(path: Path) -> None:
    path.mkdir()


def nothing(path: Path) -> None:
    """A path that no longer exists (it was there when it was dragged)."""


SURROGATE = "blurry \udcff"

# (id, action, a piece of the one sentence expected, or None when any sentence will do)
CASES: list = [
    # ── Art ──
    pytest.param(art(model=""), "Choose a model first", id="art-no-model"),
    pytest.param(art_deleted_model, "gone.safetensors", id="art-deleted-model"),
    pytest.param(art_catalog_entry_deleted, "vanished-sd", id="art-catalog-entry-deleted"),
    pytest.param(art(seed="99999999999999999999999"), "seed", id="art-seed-too-big"),
    pytest.param(art_file("style.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "),
                 None, id="art-lora-like-file"),
    pytest.param(art_file("embedding.pt", b"not a pickle at all"), None, id="art-junk-pt"),
    pytest.param(art_file("notes.txt", b"hello"), None, id="art-text-file-as-model"),
    pytest.param(art(model="builtin:smollm2"), "makes text", id="art-text-model"),
    pytest.param(art(model="builtin:composer"), "makes music", id="art-music-model"),
    # ── Music ──
    pytest.param(music(blend=0.5, blend_prompt=""), "blend", id="music-blend-no-prompt"),
    pytest.param(music(model="builtin:smollm2"), "makes text, not music.", id="music-text-model"),
    pytest.param(music(model="builtin:faces"), "not music", id="music-image-model"),
    pytest.param(music(motif="/no/such/motif.mid"), "motif", id="music-missing-motif"),
    pytest.param(music_scratch("motif", "motif.mid", b"not midi"), None, id="music-junk-motif"),
    pytest.param(music(soundfont="NoSuchFont"), "oundfont", id="music-unknown-soundfont"),
    pytest.param(music_scratch("extend_from", "other.wav", b"RIFF\x00\x00"), None,
                 id="music-extend-not-a-studio-piece"),
    pytest.param(music(extend_from="/no/such/piece.wav"), "extend", id="music-extend-missing"),
    # ── Text ──
    pytest.param(text(prompt="  \n "), "Write a prompt first", id="text-empty-prompt"),
    pytest.param(text(preset="no-such-form"), "preset", id="text-unknown-preset"),
    pytest.param(text(preset="haiku", stop=("\n",)), "cannot be finished",
                 id="text-preset-vs-stop"),
    pytest.param(text(stop=("",)), "non-empty", id="text-empty-stop-string"),
    pytest.param(text(max_new_tokens=0), "Max new tokens", id="text-zero-tokens"),
    pytest.param(text_gguf, "gone.gguf", id="text-missing-gguf"),
    pytest.param(text(model="builtin:faces"), "not text", id="text-image-model"),
    # ── Explore ──
    pytest.param(explore_anchor("plain.png", plain_png), None, id="explore-anchor-no-recipe"),
    pytest.param(explore_anchor("fake.png", write(b"just some words")), None,
                 id="explore-anchor-text-as-png"),
    pytest.param(explore_anchor("gone.png", nothing), None, id="explore-anchor-missing"),
    pytest.param(explore_model("builtin:smollm2"), "cannot be explored", id="explore-text-model"),
    pytest.param(explore_model("builtin:composer"), "cannot be explored",
                 id="explore-music-model"),
    # ── drops and File → Open ──
    pytest.param(drop("empty.png", write(b"")), "empty.png", id="drop-zero-byte-png"),
    pytest.param(drop("words.png", write(b"hello, I am text")), "words.png",
                 id="drop-text-as-png"),
    pytest.param(drop("plain.png", plain_png), "plain.png", id="drop-png-no-recipe"),
    pytest.param(drop("a-folder", folder), "a-folder", id="drop-folder"),
    pytest.param(drop("quiet.wav", wav_without_recipe), "quiet.wav", id="drop-wav-no-recipe"),
    pytest.param(drop("broken.md", broken_front_matter), "broken.md", id="drop-md-broken-yaml"),
    pytest.param(drop("latin1.md", not_utf8_markdown), "UTF-8", id="drop-md-not-utf8"),
    pytest.param(drop("notes.xyz", write(b"?")), "notes.xyz", id="drop-unknown-suffix"),
    pytest.param(drop("noise.flac", random_bytes(1 << 20)), "noise.flac",
                 id="drop-random-flac"),
    pytest.param(drop("gone.png", nothing), "gone.png", id="drop-missing-path"),
    pytest.param(drop("plain.png", plain_png, via="prompt"), "plain.png",
                 id="drop-on-the-prompt-box"),
    pytest.param(drop("empty.png", write(b""), via="open"), "empty.png", id="open-zero-byte-png"),
    pytest.param(drop("a-folder", folder, via="open"), "a-folder", id="open-folder"),
    pytest.param(drop("noise.flac", random_bytes(1 << 20), via="open"), "noise.flac",
                 id="open-random-flac"),
    pytest.param(drop("gone.md", nothing, via="open"), "gone.md", id="open-missing-path"),
]


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def shown(where, window: MainWindow) -> str:
    if where == "drop":
        return window.status.currentMessage()
    return where.message.text() if where.message.isVisible() else ""


@pytest.mark.parametrize(("act", "expected"), CASES)
def test_gui_bad_input_is_one_sentence(env, act, expected, caplog, capfd):
    window, qtbot = env.window, env.qtbot
    caplog.set_level(logging.DEBUG)
    outputs = Path(window.ctx.settings.output_dir)
    before = files_in(outputs)
    failed: list[str] = []
    window.drop_failed.connect(failed.append)

    where = act(env)

    if where == "drop":
        qtbot.waitUntil(lambda: bool(failed), timeout=WAIT)
        message = failed[0]
        assert window.status.currentMessage() == message
        assert not window.notice.isVisible()  # the status line alone, no second message
        assert window.art.prompt.toPlainText() in ("", "my words")
    else:
        qtbot.waitUntil(lambda: bool(shown(where, window)), timeout=WAIT)
        message = shown(where, window)
        qtbot.waitUntil(lambda: not getattr(where, "busy", lambda: False)(), timeout=WAIT)
        assert shown(where, window) == message  # one sentence, not replaced by a second
    assert message.strip() and "\n" not in message, repr(message)
    assert "Traceback" not in message
    if expected is not None:
        assert expected in message, message
    logged = caplog.text + capfd.readouterr().err
    assert "Traceback" not in logged, logged

    # the window still answers: a good recipe dropped now loads
    good = env.scratch / "good.png"
    info = PngInfo()
    info.add_text("parameters", GOOD_RECIPE)
    Image.new("RGB", (64, 64)).save(good, pnginfo=info)
    with qtbot.waitSignal(window.recipe_loaded, timeout=WAIT):
        assert drop_file(window, good)
    assert window.art.prompt.toPlainText() == "a fox in the snow"

    left = [p for p in files_in(outputs) if p not in before]
    assert left == [], left
    assert not any(p.name.endswith(".part") for p in files_in(outputs))
    assert os.path.isdir(env.scratch)


@pytest.mark.parametrize("box", ["prompt", "negative"])
def test_a_pasted_lone_surrogate_never_reaches_a_request(env, box):
    """Qt's text boxes drop a lone surrogate on the way in, so the request built from the
    form is valid UTF-8 and the CLI's "not UTF-8" sentence can never be needed here."""
    from PySide6.QtWidgets import QApplication

    panel = env.window.art
    target = getattr(panel, box)
    QApplication.clipboard().setText(SURROGATE)
    target.setFocus()
    target.paste()
    assert target.toPlainText().startswith("blurry")
    request = panel.request()
    request.validate()
    (request.prompt + request.negative).encode("utf-8")


def test_seed_text_that_is_not_a_number_cannot_be_typed(env):
    """The seed box takes digits only (or -1): letters typed or pasted never get in, so a
    request never carries a seed that is not a number."""
    seed = env.window.art.seed
    seed.edit.setFocus()
    env.qtbot.keyClicks(seed.edit, "12ab!3")
    assert seed.edit.text() == "123" and seed.value() == 123
    seed.edit.clear()
    env.qtbot.keyClicks(seed.edit, "seed")
    assert seed.edit.text() == "" and seed.value() == -1
