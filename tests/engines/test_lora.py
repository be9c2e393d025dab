"""LoRAs and embeddings on the tiny SD pipeline, loaded through the app's own engine.

LoRA files are made here in both formats: a peft LoRA on the tiny UNet and text encoder
saved with diffusers' `save_lora_weights`, and the same weights under kohya's names
(`studio.engines.lora.to_kohya`). Weight 0 and no LoRA give the base pixels exactly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from studio.core import metadata
from studio.core.errors import ModelError, RequestError
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine
from studio.engines.lora import save_kohya, to_kohya

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def make_lora(model: Path, seed: int, *, unet: bool = True, te: bool = True,
              scale: float = 0.3) -> dict[str, torch.Tensor]:
    """A random peft LoRA for the tiny pipeline, as diffusers' save_lora_weights keys it."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(str(model), safety_checker=None,
                                                   requires_safety_checker=False)
    torch.manual_seed(seed)
    layers: dict[str, Any] = {}
    if unet:
        inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=UNET_TARGETS,
                                           init_lora_weights=False), pipe.unet)
        layers["unet_lora_layers"] = get_peft_model_state_dict(pipe.unet)
    if te:
        inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=TE_TARGETS,
                                           init_lora_weights=False), pipe.text_encoder)
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(pipe.text_encoder)
    for part in layers.values():
        for key in part:
            if "lora_B" in key:
                part[key] = part[key] * scale
    return layers


def save_peft(folder: Path, name: str, layers: dict[str, Any]) -> Path:
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline.save_lora_weights(str(folder), weight_name=f"{name}.safetensors",
                                              **layers)
    return folder / f"{name}.safetensors"


@pytest.fixture(scope="module")
def models(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with LoRAs (models/Lora) and embeddings (models/embeddings)."""
    root = tmp_path_factory.mktemp("lora-models")
    loras = root / "Lora"
    loras.mkdir()
    peft_file = save_peft(loras, "inkwash", make_lora(tiny_sd, 1))
    save_kohya(loras / "inkwash-kohya.safetensors", load_file(str(peft_file)), base="sd_v1")
    save_peft(loras, "neon", make_lora(tiny_sd, 2))
    save_peft(loras, "words", make_lora(tiny_sd, 3, unet=False))  # text encoder only
    style = loras / "styles"
    style.mkdir()
    save_kohya(style / "xlonly.safetensors", load_file(str(peft_file)), base="sdxl_base_v1-0")
    (loras / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    save_file({"weight": torch.zeros(2, 2)}, str(loras / "notalora.safetensors"))
    embeddings = root / "embeddings"
    embeddings.mkdir()
    torch.manual_seed(9)
    save_file({"emb_params": torch.randn(2, 32)}, str(embeddings / "glowfox.safetensors"))
    save_file({"clip_l": torch.randn(1, 768), "clip_g": torch.randn(1, 1280)},
              str(embeddings / "xlthing.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(1, 32)}, "name": "old"},
               embeddings / "oldstyle.pt")
    shutil.copyfile(loras / "neon.safetensors", embeddings / "detail.safetensors")  # misfiled
    return root


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, models: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        settings = Settings(model_dirs=[str(models)])
        loaded = DiffusersImageEngine.load(LoadSpec(str(tiny_sd), "cpu", "float32"),
                                           settings, Events())
        yield loaded
    loaded.unload()


def render(engine: DiffusersImageEngine, prompt: str, **fields: Any) -> Any:
    request = ImageRequest(model=engine.spec.model, prompt=prompt, seed=77, steps=2, width=64,
                           height=64, scheduler="Euler", **fields)
    return engine.generate(request, Events())


def pixels(engine: DiffusersImageEngine, prompt: str, **fields: Any) -> np.ndarray:
    return render(engine, prompt, **fields).images[0]


def test_a_lora_changes_the_picture_and_weight_zero_is_the_base_exactly(
        engine: DiffusersImageEngine) -> None:
    base = pixels(engine, "a red fox")
    with_lora = render(engine, "a red fox <lora:inkwash:1>")
    assert not np.array_equal(with_lora.images[0], base)
    assert with_lora.info["loras"][0]["name"] == "inkwash"
    assert np.array_equal(pixels(engine, "a red fox <lora:inkwash:0>"), base)
    assert np.array_equal(pixels(engine, "a red fox"), base)  # unloaded: base again
    assert np.array_equal(pixels(engine, "a red fox", loras=("inkwash:0",)), base)


def test_kohya_and_peft_files_of_the_same_weights_render_the_same(
        engine: DiffusersImageEngine) -> None:
    peft_pixels = pixels(engine, "a red fox <lora:inkwash:0.8>")
    kohya_pixels = pixels(engine, "a red fox <lora:inkwash-kohya:0.8>")
    assert np.array_equal(peft_pixels, kohya_pixels)


def test_changing_loras_keeps_the_base_model_loaded(engine: DiffusersImageEngine) -> None:
    unet = engine.pipe.unet
    first = engine.pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
    base_weight = first.base_layer.weight.detach().clone() if hasattr(first, "base_layer") \
        else first.weight.detach().clone()
    pixels(engine, "fox <lora:inkwash:1>")
    pixels(engine, "fox <lora:neon:1>")
    assert engine.pipe.unet is unet
    layer = engine.pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
    assert torch.equal(layer.base_layer.weight, base_weight)  # never merged into the base
    assert len(engine.loras.loaded) >= 2


def test_the_weight_scales_and_two_loras_mix(engine: DiffusersImageEngine) -> None:
    base = pixels(engine, "a red fox").astype(int)
    half = pixels(engine, "a red fox <lora:inkwash:0.3>").astype(int)
    full = pixels(engine, "a red fox <lora:inkwash:1.2>").astype(int)
    assert 0 < np.abs(half - base).sum() < np.abs(full - base).sum()
    one = pixels(engine, "a red fox <lora:inkwash:1>")
    other = pixels(engine, "a red fox <lora:neon:1>")
    both = pixels(engine, "a red fox <lora:inkwash:1> <lora:neon:1>")
    assert not np.array_equal(both, one) and not np.array_equal(both, other)
    # the picker and the prompt tag are the same recipe
    assert np.array_equal(pixels(engine, "a red fox", loras=("inkwash:1", "neon:1")), both)


def test_a_text_encoder_lora_changes_the_conditioning(engine: DiffusersImageEngine) -> None:
    engine.use_networks("fox", "", ("words:1",))
    changed = engine.prompt_condition("fox", "", steps=2, batch=1, params=None)[0]
    engine.use_networks("fox", "", ())
    plain = engine.prompt_condition("fox", "", steps=2, batch=1, params=None)[0]
    assert not torch.equal(changed["prompt_embeds"], plain["prompt_embeds"])
    assert not np.array_equal(pixels(engine, "fox <lora:words:1>"), pixels(engine, "fox"))


def test_bad_loras_are_one_sentence(engine: DiffusersImageEngine) -> None:
    base = pixels(engine, "a red fox")
    missing = render(engine, "a red fox <lora:nosuch:1>")  # A1111: left out, with a warning
    assert np.array_equal(missing.images[0], base)
    assert missing.info["prompt_warnings"] == [
        "LoRA nosuch was not found in the LoRA folders; it was left out."]
    cases = {
        ("nosuch:1",): "LoRA 'nosuch' was not found",
        ("xlonly:1",): "LoRA xlonly is for SDXL, but tiny-sd is SD 1.x",
        ("broken:1",): "broken.safetensors is damaged",
        ("notalora:1",): "notalora.safetensors is not a LoRA",
    }
    for picked, sentence in cases.items():
        with pytest.raises(RequestError, match=sentence) as caught:
            render(engine, "a red fox", loras=picked)
        assert "\n" not in str(caught.value)
    with pytest.raises(RequestError, match="is for SDXL"):
        render(engine, "a red fox <lora:styles/xlonly:1>")
    assert np.array_equal(pixels(engine, "a red fox"), base)  # nothing was left active


def test_a_lora_whose_layers_match_nothing_is_a_model_error(
        engine: DiffusersImageEngine, models: Path) -> None:
    state = {"unet.nowhere.to_q.lora_A.weight": torch.zeros(4, 32),
             "unet.nowhere.to_q.lora_B.weight": torch.zeros(32, 4)}
    save_file(state, str(models / "Lora" / "elsewhere.safetensors"))
    with pytest.raises(ModelError, match="LoRA elsewhere does not fit this model"):
        render(engine, "a red fox", loras=("elsewhere:1",))
    assert np.array_equal(pixels(engine, "fox"), pixels(engine, "fox <lora:inkwash:0>"))


def test_the_infotext_carries_lora_hashes_and_reads_back(engine: DiffusersImageEngine,
                                                        models: Path) -> None:
    from studio.core import catalog

    result = render(engine, "a red fox <lora:inkwash:0.7>", loras=("neon:0.5",))
    request = result.request
    text = metadata.format_infotext(request, extras=metadata.infotext_extras(result.info))
    inkwash = catalog.short_hash(models / "Lora" / "inkwash.safetensors")
    neon = catalog.short_hash(models / "Lora" / "neon.safetensors")
    assert len(inkwash) == 12
    assert f'Lora hashes: "neon: {neon}, inkwash: {inkwash}"' in text
    assert text.splitlines()[0] == "a red fox <lora:inkwash:0.7> <lora:neon:0.5>"
    params = metadata.parse_infotext(text)
    back = metadata.infotext_to_request_dict(params, settings=Settings(model_dirs=[str(models)]))
    assert "notes" not in back  # both LoRAs are installed here
    replay = ImageRequest.from_dict({**back, "model": engine.spec.model, "steps": 2,
                                     "width": 64, "height": 64, "scheduler": "Euler"})
    assert np.array_equal(engine.generate(replay, Events()).images[0], result.images[0])
    # elsewhere, without these LoRAs: the notes say which are missing
    elsewhere = metadata.infotext_to_request_dict(params, settings=Settings())
    assert f"LoRA inkwash (hash {inkwash}) is not installed here" in " ".join(
        elsewhere["notes"])


def test_a_recipe_finds_a_renamed_lora_by_its_hash(models: Path) -> None:
    from studio.core import catalog

    neon = catalog.short_hash(models / "Lora" / "neon.safetensors")
    text = f'fox <lora:neon-v2:0.6>\nSteps: 2, Seed: 1, Lora hashes: "neon-v2: {neon}"'
    back = metadata.infotext_to_request_dict(metadata.parse_infotext(text),
                                             settings=Settings(model_dirs=[str(models)]))
    assert back["prompt"] == "fox <lora:neon:0.6>"
    assert back["notes"] == ["LoRA neon-v2 is installed here as neon (same file); the prompt "
                             "names it so."]


def test_an_embedding_named_in_the_prompt_is_used_and_otherwise_nothing_changes(
        engine: DiffusersImageEngine) -> None:
    base = pixels(engine, "a red fox")
    named = render(engine, "a red fox glowfox")
    assert named.info["embeddings"][0]["name"] == "glowfox"
    words = pixels(engine, "a red fox glow fox")
    assert not np.array_equal(named.images[0], words)
    assert np.array_equal(pixels(engine, "a red fox"), base)
    negative = pixels(engine, "a red fox", negative="glowfox")
    assert not np.array_equal(negative, base)
    # an SDXL embedding does not fit the 32-wide tiny encoder: a note, and plain words
    xl = render(engine, "a red fox xlthing")
    assert any("xlthing is for another model" in w for w in xl.info["prompt_warnings"])
    # A1111's pickled .pt needs pickles allowed
    with pytest.raises(RequestError, match=r"oldstyle\.pt is a pickled file"):
        render(engine, "a red fox oldstyle")
    # a LoRA saved among the embeddings is no embedding: its name is a word again
    detail = render(engine, "a red fox, fine detail")
    assert not detail.info.get("embeddings")


def test_kohya_names_are_the_ones_a1111_reads() -> None:
    state = {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight":
             torch.zeros(4, 32),
             "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight":
             torch.zeros(64, 4),
             "text_encoder.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2, 32)}
    names = set(to_kohya(state))
    assert names == {
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.alpha",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha"}
    assert float(to_kohya(state)[
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha"]) == 2.0  # the rank
    assert "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.alpha" in to_kohya(state,
                                                                                    xl=True)
    with pytest.raises(ValueError, match="not a LoRA weight"):
        to_kohya({"unet.x.weight": torch.zeros(1)})


def test_img2img_and_hires_passes_use_the_lora_too(engine: DiffusersImageEngine,
                                                  tmp_path: Path) -> None:
    from PIL import Image

    y, x = np.mgrid[0:64, 0:64]
    Image.fromarray(np.stack([x * 4, y * 4, np.full_like(x, 90)], -1).astype(np.uint8)).save(
        tmp_path / "init.png")
    for fields in ({"init_image": str(tmp_path / "init.png"), "strength": 0.6},
                   {"hires_scale": 1.5, "hires_strength": 0.5}):
        base = pixels(engine, "a red fox", **fields)
        assert not np.array_equal(pixels(engine, "a red fox <lora:inkwash:1>", **fields), base)
        assert np.array_equal(pixels(engine, "a red fox <lora:inkwash:0>", **fields), base)


def test_openvino_gives_way_to_pytorch_while_a_lora_is_active(
        engine: DiffusersImageEngine) -> None:
    import importlib.util

    chosen = Settings(image_runtime="openvino")
    engine.use_networks("fox <lora:inkwash:1>", "", ())
    options = engine.run_options(chosen)
    assert options.runtime == "pytorch"
    if importlib.util.find_spec("openvino") is not None:
        assert options.runtime_note == "LoRAs and embeddings run in PyTorch"
    engine.use_networks("fox", "", ())
    assert engine.run_options(chosen).runtime_note != "LoRAs and embeddings run in PyTorch"
