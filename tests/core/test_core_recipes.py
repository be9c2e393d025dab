"""recipes.read_recipe: clear errors for missing/unknown files, dispatch by suffix, to_request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core import recipes
from studio.core.catalog import ModelEntry
from studio.core.errors import RecipeError
from studio.core.formats.png import save_images
from studio.core.recipes import Recipe, match_model, read_recipe
from studio.core.requests import ImageRequest, MusicRequest
from studio.core.results import Result


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        read_recipe(tmp_path / "gone.png")
    assert str(info.value) == f"No such file: {tmp_path / 'gone.png'}."


def test_folder_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="is a folder, not a file"):
        read_recipe(tmp_path)
    odd = tmp_path / "model.safetensors"
    odd.write_bytes(b"\0")
    with pytest.raises(RecipeError, match=r"^model\.safetensors is not a kind of file that holds"):
        read_recipe(odd)


def test_dispatches_png_by_suffix_case_insensitively(tmp_path: Path) -> None:
    request = ImageRequest(model="builtin:eyes", prompt="green eyes", seed=9, width=128,
                           height=128)
    [path] = save_images(Result(request=request, modality="image",
                                images=[np.zeros((128, 128, 3), np.uint8)]), tmp_path)
    upper = path.with_name("SHOUTY.PNG")
    path.rename(upper)
    recipe = read_recipe(str(upper))  # str paths work too (the CLI passes them)
    assert recipe.to_request() == request
    data = recipe.to_dict()
    assert data["source"] == "studio" and data["request"] == request.to_dict()
    json.dumps(data)  # `studio info` prints it


def test_a_reader_that_is_not_there_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(recipes.READERS, ".md", "studio.core.formats.no_such_module")
    note = tmp_path / "story.md"
    note.write_text("# hi")
    with pytest.raises(RecipeError, match=r"Reading recipes from \.md files is not available"):
        read_recipe(note)


def test_os_errors_become_recipe_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.png"
    info = PngInfo()
    info.add_text("parameters", "a\nSteps: 1, Seed: 2, Size: 64x64")
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)

    def unreadable(_path: Path) -> Recipe:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("studio.core.formats.png.read_recipe", unreadable)
    with pytest.raises(RecipeError, match=r"^Could not read x\.png: Permission denied\.$"):
        read_recipe(path)


def test_unexpected_reader_errors_become_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "odd.png"
    Image.new("RGB", (4, 4)).save(path)

    def malformed(_path: Path) -> Recipe:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("studio.core.formats.png.read_recipe", malformed)
    with pytest.raises(RecipeError) as info:
        read_recipe(path)
    assert str(info.value) == "odd.png could not be read; it may be corrupt (RecursionError)."


def test_to_request() -> None:
    recipe = Recipe("a1111", "image", {"kind": "image", "prompt": "p", "steps": "30",
                                       "notes": ["x"]})
    request = recipe.to_request()
    assert isinstance(request, ImageRequest) and request.steps == 30 and request.model == ""
    with pytest.raises(RecipeError, match="Choose a model first"):
        recipe.to_request(validate=True)
    music = Recipe("studio", "music", {"model": "builtin:composer", "duration": 4})
    assert music.to_request(validate=True) == MusicRequest(model="builtin:composer", duration=4.0)
    with pytest.raises(RecipeError, match="holds no settings to reuse"):
        Recipe("comfyui", "image").to_request()
    with pytest.raises(RecipeError, match="Unknown request kind 'video'"):
        Recipe("studio", "image", {"kind": "video"}).to_request()
    with pytest.raises(RecipeError, match="cannot be used: Steps must be a number"):
        Recipe("a1111", "image", {"kind": "image", "steps": "lots"}).to_request()


def test_match_model() -> None:
    entries = [
        ModelEntry("builtin:faces", "Faces (built-in GAN, 64²)", "image", "GAN", "builtin", ""),
        ModelEntry("/models/v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly", "image",
                   "SD", "safetensors", "/models"),
        ModelEntry("/models/sdxl-turbo", "sdxl-turbo", "image", "SDXL", "diffusers", "/models"),
    ]
    assert match_model("builtin:faces", entries) == "builtin:faces"
    assert match_model("v1-5-pruned-emaonly", entries) == entries[1].id  # A1111 style
    assert match_model("V1-5-PRUNED-EMAONLY.safetensors", entries) == entries[1].id  # ComfyUI
    assert match_model("/elsewhere/sdxl-turbo", entries) == entries[2].id
    assert match_model("unknown", entries) is None
    assert match_model("", entries) is None


def test_text_and_music_outputs_replay_and_index(tmp_path: Path) -> None:
    """The other writers' files go through the same dispatch and into the history."""
    from studio.core.history import History
    from studio.core.outputs import save_result
    from studio.core.requests import TextRequest

    text_request = TextRequest(model="builtin:smollm2", prompt="Write a haiku: 雪", seed=4)
    music_request = MusicRequest(model="builtin:composer", prompt="calm waltz", seed=8,
                                 duration=1.0)
    results = [
        Result(request=text_request, modality="text", text="snow falls"),
        Result(request=music_request, modality="music",
               audio=np.zeros((1, 8000), np.float32), sample_rate=8000,
               extras={".mid": b"MThd"}),
    ]
    with History(tmp_path / "h.sqlite") as store:
        for result in results:
            paths = save_result(result, tmp_path / "out")
            recipe = read_recipe(paths[0])
            assert recipe.source == "studio" and recipe.to_request() == result.request
            ids = {store.add_output(p, result) for p in paths}
            assert len(ids) == 1  # the .mid beside the .wav joins its entry
        items = {i.modality: i for i in store.recent()}
        assert set(items) == {"text", "music"}
        assert items["music"].duration == 1.0 and items["music"].seed == 8
        assert store.search("雪")[0].modality == "text"


@pytest.mark.parametrize("texts, source", [
    ({"Software": "NovelAI", "Description": "a fox", "Source": "NovelAI Diffusion V3",
      "Comment": json.dumps({"seed": 5, "steps": 20, "scale": 5, "sampler": "k_euler",
                             "uc": "cat"})}, "novelai"),
    ({"sd-metadata": json.dumps({"model_weights": "sd-1.5", "image": {
        "prompt": "a fox [cat]", "seed": 5, "steps": 20, "cfg_scale": 5,
        "sampler": "k_euler", "width": 512, "height": 512}})}, "invokeai"),
    ({"Dream": '"a fox [cat]" -s 20 -S 5 -C 5 -A k_euler'}, "invokeai"),
])
def test_other_apps_replay_through_read_recipe(tmp_path: Path, texts: dict[str, str],
                                               source: str) -> None:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    path = tmp_path / "other.png"
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)
    recipe = read_recipe(path)
    assert recipe.source == source
    request = recipe.to_request()
    assert (request.prompt, request.negative, request.seed, request.steps) == (
        "a fox", "cat", 5, 20)
    assert request.guidance == 5.0 and request.scheduler == "Euler"
    json.dumps(recipe.to_dict())
