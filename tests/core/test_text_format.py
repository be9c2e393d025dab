"""Text outputs: .md with the whole request in front matter, read back exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from studio.core.errors import RecipeError
from studio.core.formats.text import read_recipe, save_text, split_front_matter
from studio.core.outputs import save_result
from studio.core.recipes import read_recipe as read_any_recipe
from studio.core.requests import Request, TextRequest
from studio.core.results import Result

TRICKY = TextRequest(
    model="/models/my lm: v2/model.gguf",
    prompt='A song\n---\nwith "quotes", a colon: and 🌊 and a line\u2028separator',
    system="You are a poet.\n# not a comment",
    seed=4294967295,
    max_new_tokens=300,
    temperature=0.85,
    top_p=0.9,
    top_k=0,
    repetition_penalty=1.15,
    stop=("\n\n", "---", "THE END"),
    continuation="Verse one\n",
)


def test_round_trips_the_request_exactly(tmp_path: Path):
    result = Result(TRICKY, "text", text="Verse two\n---\nnot front matter",
                    info={"tokens": 12, "tokens_per_s": 9.5, "stopped_by": "stop",
                          "nan": float("nan"), "array": object()})
    (path,) = save_result(result, tmp_path)  # dispatched to save_text by modality
    assert path.suffix == ".md" and path.parent.parent == tmp_path
    assert re.fullmatch(rf"\d{{5}}-{TRICKY.seed}-a-song-with-quotes[\w-]*\.md", path.name)
    recipe = read_recipe(path)
    assert recipe.source == "studio" and recipe.modality == "text"
    assert recipe.request == TRICKY.to_dict()
    assert Request.from_dict(recipe.request) == TRICKY
    assert recipe.to_request() == TRICKY
    # the body is what the artist saw: the continued text, then the new part
    assert recipe.raw["text"] == "Verse one\nVerse two\n---\nnot front matter"
    info = recipe.raw["front_matter"]["info"]
    assert info == {"tokens": 12, "tokens_per_s": 9.5, "stopped_by": "stop"}  # JSON-safe only


def test_the_file_is_readable_markdown_with_one_line_per_field(tmp_path: Path):
    (path,) = save_text(Result(TRICKY, "text", text="Rain."), tmp_path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    assert "request:" in lines[1:end]
    assert '  model: "/models/my lm: v2/model.gguf"' in lines
    assert '  stop: ["\\n\\n", "---", "THE END"]' in lines
    assert text.endswith("---\nVerse one\nRain.")
    for line in lines[1:end]:  # each value is JSON (also valid YAML)
        _key, _, value = line.strip().partition(": ")
        if value:
            json.loads(value)


def test_names_never_collide_and_studio_info_reads_through_the_recipe_module(tmp_path: Path):
    result = Result(TextRequest(model="m", prompt="same", seed=1), "text", text="x")
    paths = [save_text(result, tmp_path)[0] for _ in range(3)]
    assert len(set(paths)) == 3 and all(p.exists() for p in paths)
    assert read_any_recipe(paths[0]).request["prompt"] == "same"
    assert not list(tmp_path.rglob("*.part"))  # atomic writes leave no temporary files


def test_files_without_our_recipe_say_so(tmp_path: Path):
    plain = tmp_path / "plain.md"
    plain.write_text("# Just notes\n\nNo front matter here.\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="no front-matter"):
        read_recipe(plain)
    open_block = tmp_path / "open.md"
    open_block.write_text("---\nprompt: x\nno closing fence\n", encoding="utf-8")
    with pytest.raises(RecipeError):
        read_recipe(open_block)
    binary = tmp_path / "bad.txt"
    binary.write_bytes(b"---\n\xff\xfe\n---\n")
    with pytest.raises(RecipeError, match="UTF-8"):
        read_recipe(binary)


def test_other_tools_front_matter_keeps_the_prompt(tmp_path: Path):
    other = tmp_path / "note.md"
    other.write_text("---\ntitle: My poem\nprompt: 'a sea shanty'\ntags: [a, b]\n---\nBody\n",
                     encoding="utf-8")
    recipe = read_recipe(other)
    assert recipe.source == "markdown"
    assert recipe.request == {"kind": "text", "prompt": "a sea shanty"}
    assert recipe.raw["front_matter"]["title"] == "My poem"
    assert recipe.notes


def test_split_front_matter_handles_crlf_and_a_bom():
    front, body = split_front_matter('\ufeff---\r\nmodality: "text"\r\n---\r\nHello\r\n')
    assert front == {"modality": "text"}
    assert body == "Hello\r\n"
