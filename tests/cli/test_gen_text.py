"""`studio gen text`: streams to stdout, prints the saved path last; bad input is exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.formats.text import read_recipe
from tests.engines.tiny_text import tiny_gpt2_once


class Terminal:
    """A stdout that records every write (to see the text arrive piece by piece)."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def value(self) -> str:
        return "".join(self.writes)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "tiny-text-models"
    root.mkdir(exist_ok=True)
    return tiny_gpt2_once(root)


def gen(gpt2: Path, out: Path, *extra: str) -> list[str]:
    return ["gen", "text", "--model", str(gpt2), "--prompt", "Once upon a time",
            "--out", str(out), "--quiet", *extra]


def test_streams_text_then_prints_the_path(gpt2, tmp_path, monkeypatch, capsys):
    term = Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    code = main(gen(gpt2, tmp_path, "--seed", "5", "--max-tokens", "30", "--temperature", "1",
                    "--top-k", "0", "--top-p", "1", "--system", "Be brief."))
    assert code == 0, capsys.readouterr().err
    out = term.value()
    *_text, last = out.rstrip("\n").split("\n")
    path = Path(last)
    assert path.is_file() and path.suffix == ".md" and tmp_path in path.parents
    text_writes = [w for w in term.writes if w not in (last, "\n", last + "\n")]
    assert len(text_writes) > 3  # the text arrived in pieces, not at the end
    recipe = read_recipe(path)
    assert recipe.request["seed"] == 5 and recipe.request["max_new_tokens"] == 30
    assert recipe.request["system"] == "Be brief." and recipe.request["top_k"] == 0
    streamed = out[: out.rindex(last)]
    assert streamed.rstrip("\n") == recipe.raw["text"].rstrip("\n")


def test_same_seed_prints_the_same_text_and_info_reads_it_back(gpt2, tmp_path, capsys):
    texts, paths = [], []
    for _ in range(2):
        assert main(gen(gpt2, tmp_path, "--seed", "9", "--max-tokens", "12")) == 0
        out = capsys.readouterr().out.rstrip("\n")
        body, _, last = out.rpartition("\n")
        texts.append(body)
        paths.append(last)
    assert texts[0] == texts[1] and paths[0] != paths[1]
    assert main(["info", paths[0]]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "studio" and info["modality"] == "text"
    assert info["request"]["kind"] == "text" and info["request"]["seed"] == 9


def test_stop_strings_take_escapes(gpt2, tmp_path, capsys):
    assert main(gen(gpt2, tmp_path, "--seed", "3", "--max-tokens", "20",
                    "--stop", r"\n", "zz", "--stop", "q")) == 0
    path = Path(capsys.readouterr().out.rstrip("\n").rpartition("\n")[2])
    recipe = read_recipe(path)
    assert recipe.request["stop"] == ["\n", "zz", "q"]
    assert not any(s in recipe.raw["text"] for s in ("\n", "zz", "q"))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--temperature", "9"], "Temperature"),
        (["--max-tokens", "0"], "Max new tokens"),
        (["--top-p", "1.5"], "Top-p"),
        (["--seed", "abc"], "seed"),
        (["--stop", ""], "Stop strings"),
        (["--max-tokens", "lots"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, needle, tmp_path, capsys):
    code = main(["gen", "text", "--model", "builtin:smollm2", "--prompt", "hi",
                 "--out", str(tmp_path), *extra])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert captured.err.count("\n") == 1 and captured.err.startswith("studio: ")
    assert needle in captured.err
    assert captured.out == "" and not any(tmp_path.rglob("*.md"))


def test_missing_model_and_empty_prompt_are_one_line(tmp_path, capsys):
    assert main(["gen", "text", "--model", str(tmp_path / "nope"), "--prompt", "hi",
                 "--out", str(tmp_path), "--quiet"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "nope") in err
    assert main(["gen", "text", "--model", "builtin:smollm2", "--out", str(tmp_path)]) == 2
    assert "Write a prompt first" in capsys.readouterr().err
