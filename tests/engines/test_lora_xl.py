"""SDXL LoRAs (UNet and both text encoders) on a tiny SDXL pipeline loaded by the engine,
in the diffusers/peft format and under kohya's names (`lora_te1_` / `lora_te2_`); the
explorer renders with its own prompt's LoRAs, never the Art panel's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from studio.core.errors import RequestError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine
from studio.engines.lora import save_kohya
from tests.engines.test_lora import TE_TARGETS, UNET_TARGETS
from tests.engines.test_prompt_encoding import tiny_xl

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


def build_tiny_xl(folder: Path) -> Path:
    out = folder / "tiny-xl"
    tiny_xl(sample_size=8, vae=4).save_pretrained(out, safe_serialization=True)
    return out


def make_xl_lora(model: Path, folder: Path, name: str, seed: int) -> Path:
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionXLPipeline.from_pretrained(str(model))
    torch.manual_seed(seed)
    layers: dict[str, Any] = {}
    for part, targets, key in ((pipe.unet, UNET_TARGETS, "unet_lora_layers"),
                               (pipe.text_encoder, TE_TARGETS, "text_encoder_lora_layers"),
                               (pipe.text_encoder_2, TE_TARGETS, "text_encoder_2_lora_layers")):
        inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=targets,
                                           init_lora_weights=False), part)
        layers[key] = {k: v * 0.3 if "lora_B" in k else v
                       for k, v in get_peft_model_state_dict(part).items()}
    StableDiffusionXLPipeline.save_lora_weights(str(folder), weight_name=f"{name}.safetensors",
                                                **layers)
    return folder / f"{name}.safetensors"


@pytest.fixture(scope="module")
def xl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiffusersImageEngine]:
    root = tmp_path_factory.mktemp("tiny-xl")
    model = build_tiny_xl(root)
    loras = root / "models" / "Lora"
    loras.mkdir(parents=True)
    peft_file = make_xl_lora(model, loras, "xlpeft", 4)
    save_kohya(loras / "xlkohya.safetensors", load_file(str(peft_file)),
               base="sdxl_base_v1-0", xl=True)
    save_kohya(loras / "sd1only.safetensors", load_file(str(peft_file)), base="sd_v1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(root / "no-models"))
        engine = DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"),
                                           Settings(model_dirs=[str(root / "models")]),
                                           Events())
        yield engine
    engine.unload()


def pixels(engine: DiffusersImageEngine, prompt: str, **fields: Any) -> np.ndarray:
    request = ImageRequest(model=engine.spec.model, prompt=prompt, seed=3, steps=2, width=64,
                           height=64, scheduler="Euler", **fields)
    return engine.generate(request, Events()).images[0]


def test_an_sdxl_lora_in_both_formats(xl: DiffusersImageEngine) -> None:
    assert xl.family == "sdxl"
    base = pixels(xl, "red fox")
    peft_pixels = pixels(xl, "red fox <lora:xlpeft:1>")
    assert not np.array_equal(peft_pixels, base)
    assert np.array_equal(pixels(xl, "red fox <lora:xlkohya:1>"), peft_pixels)
    assert set(xl.pipe.get_list_adapters()) == {"unet", "text_encoder", "text_encoder_2"}
    assert np.array_equal(pixels(xl, "red fox <lora:xlpeft:0>"), base)
    assert np.array_equal(pixels(xl, "red fox"), base)


def test_an_sd1_lora_is_refused_on_sdxl(xl: DiffusersImageEngine) -> None:
    with pytest.raises(RequestError, match=r"LoRA sd1only is for SD 1\.x, but tiny-xl is SDXL"):
        pixels(xl, "red fox", loras=("sd1only:1",))


def test_the_explorer_uses_its_own_prompts_loras(xl: DiffusersImageEngine) -> None:
    pixels(xl, "red fox <lora:xlpeft:1>")
    assert xl.loras.active
    xl.explore_backend(ExploreRequest(model=xl.spec.model, prompt="red fox", width=64,
                                      height=64, steps=2))
    assert xl.loras.active == ()  # the Art panel's LoRA does not leak into its frames
    xl.explore_backend(ExploreRequest(model=xl.spec.model, prompt="red fox <lora:xlpeft:0.5>",
                                      width=64, height=64, steps=2))
    assert [w for _a, w, _u in xl.loras.active] == [0.5]
