"""The image engine reads prompts as A1111 does, on the tiny SD and SDXL pipelines.

Weights, BREAK, prompt editing and prompts past 77 tokens change the picture; a plain
prompt renders exactly as diffusers' own `prompt=` did before; LoRA tags never reach CLIP
as words; output file names are slugs of the prompt's plain words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core import outputs
from studio.core.requests import ImageRequest
from studio.core.results import Result
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine, _to_uint8
from studio.engines.prompt_encoding import count_tokens

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


def _load(model: Path) -> DiffusersImageEngine:
    return DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(),
                                     Events())


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        loaded = _load(tiny_sd)
    yield loaded
    loaded.unload()


def _request(engine: DiffusersImageEngine, prompt: str, **fields) -> ImageRequest:
    fields = {"seed": 1234, "steps": 4, "width": 64, "height": 64, "scheduler": "Euler",
              **fields}
    return ImageRequest(model=engine.spec.model, prompt=prompt, **fields)


def _render(engine: DiffusersImageEngine, prompt: str, **fields) -> Result:
    return engine.generate(_request(engine, prompt, **fields), Events())


def _pixels(engine: DiffusersImageEngine, prompt: str, **fields) -> np.ndarray:
    return _render(engine, prompt, **fields).images[0]


def _as_diffusers_text(engine: DiffusersImageEngine, request: ImageRequest) -> np.ndarray:
    """The render of the old wiring: the prompt sent to the pipeline as plain text."""
    latents, generators = engine._initial_noise(request, [request.seed], [], 0.0)
    output = engine.denoise({"prompt": request.prompt, "negative_prompt": request.negative or None,
                             "num_images_per_prompt": 1}, latents, generators,
                            steps=request.steps, guidance=request.guidance,
                            width=request.width, height=request.height,
                            scheduler=request.scheduler, tap=False)
    return _to_uint8(output)[0]


def test_a_plain_prompt_gives_exactly_the_old_pixels(engine: DiffusersImageEngine) -> None:
    for prompt, negative in (("a red fox", ""), ("a red fox, sky", "cat")):
        request = _request(engine, prompt, negative=negative)
        new = engine.generate(request, Events())
        assert np.array_equal(new.images[0], _as_diffusers_text(engine, request))
        assert "prompt_warnings" not in new.info


def test_a_weight_changes_the_picture(engine: DiffusersImageEngine) -> None:
    assert not np.array_equal(_pixels(engine, "(red:1.5) fox"), _pixels(engine, "red fox"))
    assert np.array_equal(_pixels(engine, "(red:1.0) fox"), _pixels(engine, "red fox"))


def test_a_long_prompt_is_not_cut_at_77_tokens(engine: DiffusersImageEngine) -> None:
    long = ", ".join(["a red fox in the sky"] * 16)
    assert count_tokens(engine.pipe.tokenizer, long)[0] > 100
    request = _request(engine, long)
    truncated = _as_diffusers_text(engine, request)  # what CLIP saw: the first 75 tokens
    assert not np.array_equal(engine.generate(request, Events()).images[0], truncated)


def test_break_starts_a_new_chunk(engine: DiffusersImageEngine) -> None:
    assert not np.array_equal(_pixels(engine, "a red fox BREAK sky"),
                              _pixels(engine, "a red fox sky"))


def test_prompt_editing_differs_from_both_texts(engine: DiffusersImageEngine) -> None:
    edited = _pixels(engine, "a [cat:dog:0.5]")
    assert not np.array_equal(edited, _pixels(engine, "a cat"))
    assert not np.array_equal(edited, _pixels(engine, "a dog"))


def test_lora_tags_are_stripped_and_reported(engine: DiffusersImageEngine) -> None:
    tagged = _render(engine, "a red fox <lora:foxy:0.8>")
    assert np.array_equal(tagged.images[0], _pixels(engine, "a red fox"))
    assert tagged.info["prompt_warnings"] == [
        "LoRA foxy was not found in the LoRA folders; it was left out."]
    assert tagged.info["notes"] == tagged.info["prompt_warnings"]


def test_syntax_warnings_reach_the_info(engine: DiffusersImageEngine) -> None:
    info = _render(engine, "a (red fox").info
    assert info["prompt_warnings"] and info["notes"] == info["prompt_warnings"]


def test_img2img_with_a_weighted_prompt(engine: DiffusersImageEngine, tmp_path: Path) -> None:
    y, x = np.mgrid[0:64, 0:64]
    init = np.stack([x * 4, y * 4, np.full_like(x, 128)], -1).astype(np.uint8)
    Image.fromarray(init).save(tmp_path / "init.png")
    fields = {"init_image": str(tmp_path / "init.png"), "strength": 0.75}
    weighted = _render(engine, "(red:1.6) fox <lora:foxy>", **fields)
    assert weighted.info["mode"] == "img2img"
    assert "LoRA foxy was not found in the LoRA folders; it was left out." in weighted.info["notes"]
    plain = _pixels(engine, "red fox", **fields)
    assert weighted.images[0].shape == plain.shape
    assert not np.array_equal(weighted.images[0], plain)
    assert np.array_equal(_pixels(engine, "(red:1.0) fox", **fields), plain)


def test_hires_fix_with_prompt_editing(engine: DiffusersImageEngine) -> None:
    fields = {"hires_scale": 1.5, "hires_strength": 0.6}
    edited = _pixels(engine, "a [cat:dog:2]", **fields)
    assert edited.shape == (96, 96, 3)
    assert not np.array_equal(edited, _pixels(engine, "a cat", **fields))


def test_sdxl_weighted_and_long_prompts(tiny_sd: Path, tmp_path: Path) -> None:
    from tests.engines.test_image_single_file import build_tiny_sdxl

    xl = _load(build_tiny_sdxl(tmp_path, tiny_sd))
    try:
        request = _request(xl, "a red fox")
        plain = xl.generate(request, Events()).images[0]
        assert np.array_equal(plain, _as_diffusers_text(xl, request))
        weighted = _pixels(xl, "a (red:1.5) fox")
        assert not np.array_equal(weighted, plain)
        long = _pixels(xl, ", ".join(["a red fox in the sky"] * 16) + " BREAK [cat|dog]")
        assert long.shape == plain.shape and long.std() > 0
    finally:
        xl.unload()


def test_file_names_slug_the_plain_words(tmp_path: Path) -> None:
    path = outputs.write_new_output(tmp_path, 7, "a (red:1.5) fox <lora:x:1>", ".png",
                                     lambda f: f.write(b"x"))
    assert path.name.endswith("-7-a-red-fox.png")


def test_the_explorer_reads_prompts_like_the_art_panel(tiny_sd: Path) -> None:
    from studio.core.explore import ExploreRequest
    from studio.engines.runner import Runner

    runner = Runner(Settings(device="cpu"))
    common = {"steps": 3, "width": 64, "height": 64, "scheduler": "Euler"}
    model = str(tiny_sd)
    weighted = runner.generate(ImageRequest(model=model, prompt="(red:1.5) fox", seed=5,
                                            **common), Events()).images[0]
    plain = runner.generate(ImageRequest(model=model, prompt="red fox", seed=5, **common),
                            Events()).images[0]
    frame = runner.generate(ExploreRequest(model=model, anchors=(5,),
                                           prompts=("(red:1.5) fox",), **common),
                            Events()).images[0]
    assert np.array_equal(frame, weighted)
    assert not np.array_equal(frame, plain)
