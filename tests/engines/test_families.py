"""Model families end to end: a family registered from this test (one engine class and one
descriptor entry) is listed by the catalog, routed by the registry, run and saved by the
Runner, and refused for a kind it does not serve; real families route by what the
catalog's classifier says, not by id prefixes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.core import catalog, families
from studio.core.errors import ModelError, RequestError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest, MusicRequest, Request, TextRequest
from studio.core.results import Result
from studio.core.settings import Settings
from studio.engines import registry
from studio.engines.base import Engine, Events, LoadSpec
from studio.engines.runner import Runner

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 230)}
LOADED: list[str] = []


class SolidEngine(Engine):
    """A whole family's engine in a dozen lines: one flat colour per image, named in the
    prompt (or picked by the seed). Its weights file holds the brightness it paints at."""

    kinds = ("image",)

    def __init__(self, spec: LoadSpec, brightness: float) -> None:
        super().__init__(spec)
        self.brightness = brightness

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> SolidEngine:
        b = families.builtin(spec.model)
        path = b.path() if b is not None else None
        if path is None or not path.is_file():
            raise ModelError(f"{spec.model} has no weights at {path}.")
        LOADED.append(spec.model)
        return cls(spec, float(path.read_text()))

    def generate(self, request: Request, events: Events) -> Result:
        assert isinstance(request, ImageRequest)  # the runner only sends what it serves
        words = re.findall(r"[a-z]+", request.prompt.lower())
        name = next((w for w in words if w in COLOURS), sorted(COLOURS)[request.seed % 3])
        rgb = np.array(COLOURS[name], np.float64) * self.brightness
        image = np.empty((request.height, request.width, 3), np.uint8)
        image[:] = rgb.round().astype(np.uint8)
        events.progress(1, 1)
        return Result(request, "image", images=[image], info={"seeds": [request.seed],
                                                               "colour": name})


SOLID = families.Family(
    "test-solid", "Solid colour", "image", ("image",), f"{__name__}:SolidEngine",
    native_size=(64, 64), fields=frozenset({"prompt", "seed", "width", "height"}),
    prompt_label="Colour",
)
SOLID_BUILTIN = families.Builtin("builtin:solid", "Solid colours (test)", SOLID.id, None,
                                 "solid.txt", location="models/solid.txt")


@pytest.fixture
def solid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test family registered (its weights in a private models/ folder), then removed."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "solid.txt").write_text("0.5")
    monkeypatch.setenv("STUDIO_MODELS", str(models))
    families.register(SOLID)
    families.register_builtin(SOLID_BUILTIN)
    LOADED.clear()
    try:
        yield models
    finally:
        families.unregister_builtin(SOLID_BUILTIN.id)
        families.unregister(SOLID.id)


def test_a_registered_family_is_listed_routed_run_and_saved(solid, tmp_path):
    from studio.core.recipes import read_recipe

    entry = catalog.find(catalog.scan(Settings()), "builtin:solid")
    assert entry is not None and entry.descriptor is SOLID
    assert (entry.family, entry.modality, entry.role, entry.size_bytes) == (
        "Solid colour", "image", "generate", 3)
    assert entry in catalog.for_modality(catalog.scan(Settings()), "image")
    assert registry.family_for("image", "builtin:solid") is SOLID
    assert registry.engine_class("image", "builtin:solid") is SolidEngine

    runner = Runner(Settings(output_dir=str(tmp_path / "out"), device="cpu"))
    request = ImageRequest(model="builtin:solid", prompt="a blue wall", seed=4, width=64,
                           height=64)
    result = runner.generate(request, Events())
    assert result.info["colour"] == "blue" and LOADED == ["builtin:solid"]
    assert result.images[0][0, 0].tolist() == [20, 30, 115]  # the weights' brightness, 0.5
    again = runner.generate(request.replace(prompt="red"), Events())
    assert again.info["colour"] == "red" and runner.cache.loads == 1
    (path,) = runner.save(result, None)
    assert path.suffix == ".png" and (tmp_path / "out") in path.parents
    assert read_recipe(path).to_request() == result.request


def test_the_runner_refuses_a_kind_the_family_does_not_serve(solid):
    runner = Runner(Settings(device="cpu"))
    with pytest.raises(RequestError) as text:
        runner.generate(TextRequest(model="builtin:solid", prompt="hello"), Events())
    assert str(text.value) == "builtin:solid makes images, not text."
    with pytest.raises(RequestError) as explore:
        runner.generate(ExploreRequest(model="builtin:solid", anchors=(1,)), Events())
    assert str(explore.value) == (
        "builtin:solid (Solid colour) cannot be explored; choose a diffusion model or a GAN.")
    assert LOADED == []  # refused before anything was loaded
    claims = replace(SOLID, kinds=("image", "explore"))  # no Explore style: still refused
    assert claims.serves("image") and not claims.serves("explore")
    assert replace(claims, explore=families.Explore.GAN_LATENT).serves("explore")


def test_after_unregistering_the_family_is_gone(solid):
    families.unregister_builtin(SOLID_BUILTIN.id)
    families.unregister(SOLID.id)
    assert catalog.find(catalog.scan(Settings()), "builtin:solid") is None
    assert registry.classified_family("builtin:solid") is None


# -- real families route by the classifier -------------------------------------------------


def test_builtins_route_to_their_families_engines():
    from studio.engines.composer.engine import ComposerEngine
    from studio.engines.gan import GanEngine
    from studio.engines.text_llama import LlamaTextEngine
    from studio.engines.text_lm import TextEngine

    for kind in ("image", "explore"):
        assert registry.engine_class(kind, "builtin:faces") is GanEngine
        assert registry.engine_class(kind, "builtin:eyes") is GanEngine
    # the built-in text model is a GGUF: the causal-LM family runs GGUFs on llama.cpp
    assert registry.engine_class("text", "builtin:smollm2") is LlamaTextEngine
    assert registry.import_engine(families.CAUSAL_LM.engine_for("transformers")) is TextEngine
    assert registry.engine_class("music", "builtin:composer") is ComposerEngine


def test_paths_route_by_what_the_catalog_classifies(tmp_path, tiny_sd):
    from tests.engines.tiny_text import build_tiny_gpt2

    gpt2 = build_tiny_gpt2(tmp_path)
    assert registry.family_for("text", str(gpt2)) is families.CAUSAL_LM
    assert registry.family_for("music", str(gpt2)) is families.CAUSAL_LM  # then refused
    assert registry.family_for("image", str(tiny_sd)) is families.SD1
    # nothing there (or nothing Studio runs): the kind's first family, whose engine
    # then says what is wrong with the path
    missing = str(tmp_path / "no-such-model")
    assert registry.family_for("image", missing) is families.SD1
    assert registry.family_for("text", missing) is families.CAUSAL_LM
    assert registry.family_for("music", missing) is families.MUSICGEN
    lora = tmp_path / "ink.safetensors"
    from safetensors.numpy import save_file

    save_file({"lora_unet_x.lora_down.weight": np.zeros((4, 8), np.float16)}, str(lora))
    assert registry.classified_family(str(lora)) is families.LORA
    assert registry.family_for("image", str(lora)) is families.SD1

    runner = Runner(Settings(device="cpu"))
    with pytest.raises(RequestError) as err:
        runner.generate(MusicRequest(model=str(gpt2), prompt="a waltz"), Events())
    assert str(err.value) == "tiny-gpt2 makes text, not music."
    with pytest.raises(RequestError, match=r"tiny-gpt2 \(causal LM\) cannot be explored"):
        runner.generate(ExploreRequest(model=str(gpt2), anchors=(1,)), Events())
    with pytest.raises(RequestError, match="tiny-sd makes images, not text"):
        runner.generate(TextRequest(model=str(tiny_sd), prompt="hi"), Events())
    assert runner.cache.loads == 0


def test_engines_say_the_same_sentence_when_called_directly(tmp_path):
    from studio.engines.gan import GanEngine

    faces = GanEngine.load(LoadSpec("builtin:faces", "cpu", "float32"), Settings(), Events())
    with pytest.raises(RequestError, match=r"^builtin:faces makes images, not music\.$"):
        faces.generate(MusicRequest(model="builtin:faces", prompt="x"), Events())
