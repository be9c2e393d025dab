"""`studio gen image --lora NAME:W` (repeatable) and LoRAs in `studio models --all`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.recipes import read_recipe
from studio.engines.lora import save_kohya
from tests.engines.test_lora import make_lora, save_peft

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


@pytest.fixture()
def models(tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    (root / "Lora").mkdir(parents=True)
    peft_file = save_peft(root / "Lora", "inkwash", make_lora(tiny_sd, 1))
    save_kohya(root / "Lora" / "ink-kohya.safetensors", load_file(str(peft_file)), base="sd_v1")
    monkeypatch.setenv("STUDIO_MODELS", str(root))
    return root


def _args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["gen", "image", "--model", str(model), "--prompt", "a red fox", "--seed", "5",
            "--steps", "2", "--width", "64", "--height", "64", "--scheduler", "Euler",
            "--out", str(out), "--quiet", *extra]


def test_lora_flags_render_and_are_recorded(tiny_sd, models, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(_args(tiny_sd, out, "--lora", "inkwash:0.8", "--lora", "ink-kohya:0.2")) == 0
    (path,) = [Path(line) for line in capsys.readouterr().out.split()]
    text = Image.open(path).text["parameters"]
    assert text.startswith("a red fox <lora:inkwash:0.8> <lora:ink-kohya:0.2>\n")
    assert 'Lora hashes: "inkwash: ' in text and ", ink-kohya: " in text
    assert read_recipe(path).request["loras"] == ["inkwash:0.8", "ink-kohya:0.2"]


@pytest.mark.parametrize(("flag", "needle"), [
    ("inkwash:lots", "The LoRA weight 'lots' in 'inkwash:lots' is not a number."),
    ("nosuch:1", "LoRA 'nosuch' was not found"),
])
def test_a_bad_lora_flag_is_one_sentence(flag, needle, tiny_sd, models, tmp_path,
                                         capsys) -> None:
    out = tmp_path / "out"
    assert main(_args(tiny_sd, out, "--lora", flag)) == EXIT_BAD_INPUT
    said = capsys.readouterr().err.strip().splitlines()[-1]  # after the loader's progress bar
    assert said.startswith("studio: ") and needle in said
    assert not out.exists() or not list(out.rglob("*.png"))


def test_models_lists_loras_with_their_base(models, capsys) -> None:
    assert main(["models", "--all"]) == 0
    listing = capsys.readouterr().out
    kohya = next(line for line in listing.splitlines() if "ink-kohya" in line)
    assert "LoRA (SD 1.x)" in kohya
    assert any("inkwash.safetensors" in line and "LoRA" in line for line in listing.splitlines())
