"""Files and models the bad-input cases need, built once per module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


class _Pickled:
    """Something a pickled checkpoint may hold: it runs code when unpickled."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


@pytest.fixture(scope="session")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.engines.tiny_text import tiny_gpt2_once

    root = tmp_path_factory.getbasetemp() / "tiny-text-models"
    root.mkdir(exist_ok=True)
    return tiny_gpt2_once(root)


@pytest.fixture(scope="session")
def pickled_model(gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 with its weights as a pickled pytorch_model.bin holding code."""
    import torch

    folder = tmp_path_factory.mktemp("pickled") / "pickled-gpt2"
    shutil.copytree(gpt2, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save({"transformer.wte.weight": torch.zeros(2, 2), "x": _Pickled()},
               folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that hold no usable recipe, by kind."""
    from PIL import Image

    root = tmp_path_factory.mktemp("bad-files")
    made: dict[str, Path] = {}
    Image.new("RGB", (8, 8)).save(root / "plain.png")
    made["plain.png"] = root / "plain.png"
    (root / "garbage.png").write_bytes(b"\x89PNG not really" * 10)
    made["garbage.png"] = root / "garbage.png"
    (root / "empty.wav").write_bytes(b"")
    made["empty.wav"] = root / "empty.wav"
    (root / "cut.gif").write_bytes(b"GIF89a\x01")
    made["cut.gif"] = root / "cut.gif"
    (root / "notes.md").write_text("just some notes\n", encoding="utf-8")
    made["notes.md"] = root / "notes.md"
    (root / "data.xyz").write_text("?", encoding="utf-8")
    made["data.xyz"] = root / "data.xyz"
    (root / "folder").mkdir()
    made["folder"] = root / "folder"
    (root / "not-a-model.txt").write_text("hello", encoding="utf-8")
    made["not-a-model.txt"] = root / "not-a-model.txt"
    return made
