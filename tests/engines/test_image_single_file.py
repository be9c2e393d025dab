"""Single-file checkpoints: family detection, the shipped offline configs, safetensors and
pickles, loaded through the engine's own `from_single_file` path.

The tiny diffusers pipeline is converted to the original Stable Diffusion key layout (the
inverse of diffusers' `convert_ldm_*` functions, written out below because diffusers only
ships the other direction) and saved as one file, so the same code that reads a
downloaded `.safetensors` checkpoint reads ours.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import ModelError
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import (
    Checkpoint,
    DiffusersImageEngine,
    detect_checkpoint,
    read_checkpoint,
)
from tests.tiny import tiny_sdxl_pipe

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "models" / "configs"

# ─── diffusers → original SD ("LDM") key layout ─────────────────────────────────────────

_RESNET = (
    ("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"),
)


def unet_prefix_map(config: dict) -> dict[str, tuple[str, bool]]:
    """diffusers module prefix → (LDM prefix, is a resnet) for a UNet2DConditionModel."""
    lpb = config["layers_per_block"]
    levels = len(config["block_out_channels"])
    up_types = config["up_block_types"]
    m = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
         "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
         "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
         "mid_block.attentions.0.": "middle_block.1."}
    resnets = {"mid_block.resnets.0.": "middle_block.0.", "mid_block.resnets.1.": "middle_block.2."}
    for i in range(levels):
        for j in range(lpb):
            k = 1 + i * (lpb + 1) + j
            resnets[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{k}.0."
            m[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{k}.1."
        last = i * (lpb + 1) + lpb  # the last input/output block of this level
        if i < levels - 1:
            m[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{last + 1}.0.op."
        for j in range(lpb + 1):
            k = i * (lpb + 1) + j
            resnets[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{k}.0."
            m[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{k}.1."
        if i < levels - 1:
            slot = 2 if up_types[i].startswith("CrossAttn") else 1
            m[f"up_blocks.{i}.upsamplers.0.conv."] = f"output_blocks.{last}.{slot}.conv."
    return {**{k: (v, False) for k, v in m.items()}, **{k: (v, True) for k, v in resnets.items()}}


def _swap_prefix(key: str, prefixes: dict):
    for old in sorted(prefixes, key=len, reverse=True):
        if key.startswith(old):
            return prefixes[old], key[len(old):]
    raise KeyError(key)


def unet_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    prefixes = unet_prefix_map(config)
    out = {}
    for key, value in state.items():
        (new, is_resnet), rest = _swap_prefix(key, prefixes)
        if is_resnet:
            for a, b in _RESNET:
                if rest.startswith(a + "."):
                    rest = b + rest[len(a):]
                    break
        out["model.diffusion_model." + new + rest] = value
    return out


def vae_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    levels = len(config["block_out_channels"])
    prefixes = {"encoder.conv_norm_out.": "encoder.norm_out.",
                "decoder.conv_norm_out.": "decoder.norm_out."}
    for side in ("encoder", "decoder"):
        prefixes[f"{side}.mid_block.resnets.0."] = f"{side}.mid.block_1."
        prefixes[f"{side}.mid_block.resnets.1."] = f"{side}.mid.block_2."
        prefixes[f"{side}.mid_block.attentions.0."] = f"{side}.mid.attn_1."
    for i in range(levels):
        prefixes[f"encoder.down_blocks.{i}.resnets."] = f"encoder.down.{i}.block."
        prefixes[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
        prefixes[f"decoder.up_blocks.{i}.resnets."] = f"decoder.up.{levels - 1 - i}.block."
        prefixes[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{levels - 1 - i}.upsample."
    attn = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.",
            "to_out.0.": "proj_out."}
    out = {}
    for key, value in state.items():
        try:
            new, rest = _swap_prefix(key, prefixes)
        except KeyError:
            new, rest = "", key  # conv_in, conv_out, quant_conv, post_quant_conv keep names
        if new.endswith("mid.attn_1."):
            for a, b in attn.items():
                if rest.startswith(a):
                    rest = b + rest[len(a):]
            if value.ndim == 2:
                value = value[:, :, None, None]  # LDM uses 1×1 convolutions here
        rest = rest.replace("conv_shortcut.", "nin_shortcut.")
        out["first_stage_model." + new + rest] = value
    return out


def clip_to_open_clip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model in OpenCLIP's layout (SD 2.x, SDXL's second encoder)."""
    names = {"embeddings.token_embedding.weight": "token_embedding.weight",
             "embeddings.position_embedding.weight": "positional_embedding"}
    parts = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
             ("mlp.fc2", "mlp.c_proj"), ("self_attn.out_proj", "attn.out_proj"))
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("text_model.")
        if key in names:
            out[prefix + names[key]] = value
        elif key.startswith("final_layer_norm."):
            out[prefix + "ln_final." + key.split(".")[-1]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T
        elif key.startswith("encoder.layers."):
            _e, _l, n, rest = key.split(".", 3)
            block = f"{prefix}transformer.resblocks.{n}."
            if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj",
                                                                         "v_proj"):
                _s, proj, kind = rest.split(".")
                qkv.setdefault(f"{block}attn.in_proj_{kind}", {})[proj] = value
                continue
            for a, b in parts:
                if rest.startswith(a + "."):
                    rest = b + rest[len(a):]
            out[block + rest] = value
    for key, pieces in qkv.items():
        out[key] = torch.cat([pieces["q_proj"], pieces["k_proj"], pieces["v_proj"]])
    return out


def pipeline_to_ldm(folder: Path, family: str = "sd1") -> dict[str, torch.Tensor]:
    """A saved diffusers folder (SD 1.x/2.x or SDXL) as one original-layout state dict."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder").state_dict()
    state = unet_to_ldm(unet.state_dict(), dict(unet.config))
    state.update(vae_to_ldm(vae.state_dict(), dict(vae.config)))
    if family == "sd2":
        state.update(clip_to_open_clip(text, "cond_stage_model.model."))
    else:
        # original files say text_model.*; transformers >= 5.6 flattened CLIPTextModel's keys
        prefix = "conditioner.embedders.0.transformer." if family == "sdxl" else (
            "cond_stage_model.transformer.")
        state.update({prefix + "text_model." + k.removeprefix("text_model."): v
                      for k, v in text.items()})
    if family == "sdxl":
        text_2 = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2")
        state.update(clip_to_open_clip(text_2.state_dict(), "conditioner.embedders.1.model."))
    return {k: v.contiguous() for k, v in state.items()}


def build_tiny_sdxl(root: Path, tiny_sd: Path) -> Path:
    """A tiny StableDiffusionXLPipeline (two text encoders of different widths, like the
    real one: diffusers tells them apart by width) sharing the tiny SD VAE and tokenizer."""
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd / "tokenizer")

    def text_config(width: int) -> CLIPTextConfig:
        return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=width,
                              intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                              vocab_size=len(tokenizer), max_position_embeddings=77,
                              projection_dim=width)

    pipe = tiny_sdxl_pipe(
        (tokenizer, tokenizer),
        lambda: (CLIPTextModel(text_config(32)), CLIPTextModelWithProjection(text_config(64))),
        text_widths=(32, 64), vae=tiny_sd / "vae", sample_size=16, transformer_layers=(1, 2),
        norm_groups=8, steps_offset=1)
    out = root / "tiny-sdxl"
    pipe.save_pretrained(out, safe_serialization=True)
    return out


# ─── fixtures ───────────────────────────────────────────────────────────────────────────


def _as_single_file(folder: Path, root: Path, family: str) -> Path:
    """Save `folder` as root/<name>.safetensors and its weightless config as
    root/configs/<family> (what models/configs/<family> is for the real models)."""
    from safetensors.torch import save_file

    save_file(pipeline_to_ldm(folder, family), str(root / f"{folder.name}.safetensors"))
    shutil.copytree(folder, root / "configs" / family,
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return root / f"{folder.name}.safetensors"


@pytest.fixture(scope="session")
def single_file_models(tmp_path_factory: pytest.TempPathFactory, tiny_sd: Path) -> Path:
    """A models folder with the tiny SD model as tiny-sd.safetensors + configs/sd1."""
    root = tmp_path_factory.mktemp("models")
    _as_single_file(tiny_sd, root, "sd1")
    return root


def _load(model: Path, **settings) -> DiffusersImageEngine:
    spec = LoadSpec(str(model), "cpu", "float32")
    return DiffusersImageEngine.load(spec, Settings(**settings), Events())


def _image(engine: DiffusersImageEngine, **fields) -> np.ndarray:
    fields = {"prompt": "a red fox", "seed": 7, "steps": 3, "width": 64, "height": 64,
              "scheduler": "Euler", **fields}
    request = ImageRequest(model=engine.spec.model, **fields)
    return engine.generate(request, Events()).images[0]


# ─── tests ──────────────────────────────────────────────────────────────────────────────


def test_single_file_loads_offline_and_matches_the_folder(
    tiny_sd: Path, single_file_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(single_file_models))
    single = _load(single_file_models / "tiny-sd.safetensors")
    assert single.family == "sd1" and single.source == "single file"
    assert single.name == "tiny-sd"
    folder = _load(tiny_sd)
    assert np.array_equal(_image(single), _image(folder))
    # every weight made the trip: same parameters, bit for bit
    for part in ("unet", "vae", "text_encoder"):
        a = getattr(single.pipe, part).state_dict()
        b = getattr(folder.pipe, part).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_single_files_carry_the_a1111_model_hash(
    single_file_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from studio.core import paths
    from studio.engines.image_diffusers import model_hash

    monkeypatch.setenv("STUDIO_MODELS", str(single_file_models))
    path = single_file_models / "tiny-sd.safetensors"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    engine = _load(path)
    request = ImageRequest(model=str(path), prompt="x", steps=1, width=64, height=64, seed=1)
    assert engine.generate(request, Events()).info["model_hash"] == expected
    cache_file = paths.cache_dir() / "model-hashes.json"
    cache = json.loads(cache_file.read_text())
    (entry,) = cache.values()
    entry["sha256"] = "0123456789abcdef"  # a cached value is trusted while the file is unchanged
    cache_file.write_text(json.dumps(cache))
    assert model_hash(path) == "0123456789"


def test_sd2_single_file_with_openclip_text_encoder(
    tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SD 2.x path: OpenCLIP keys → family sd2 → configs/sd2 → same pixels."""
    path = _as_single_file(tiny_sd, tmp_path, "sd2")
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path))
    single = _load(path)
    assert single.family == "sd2"
    assert np.array_equal(_image(single), _image(_load(tiny_sd)))


def test_sdxl_folder_and_single_file_agree(
    tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_tiny_sdxl(tmp_path / "src", tiny_sd)
    path = _as_single_file(folder, tmp_path, "sdxl")
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path))
    from_folder = _load(folder)
    single = _load(path)
    assert from_folder.family == single.family == "sdxl"
    assert type(single.pipe).__name__ == "StableDiffusionXLPipeline"
    for fields in ({}, {"negative": "blurry", "scheduler": "DPM++ 2M Karras"}):
        assert np.array_equal(_image(single, **fields), _image(from_folder, **fields))
    events = Events()
    seen = []
    events.on_preview = seen.append  # SDXL previews use the SDXL latent colours
    single.preview_interval = 0.0
    single.generate(ImageRequest(model=str(path), prompt="a fox", steps=2, width=64,
                                 height=64, seed=1), events)
    assert seen and seen[0].data.shape == (8, 8, 3)


def test_few_step_names_get_trailing_timesteps(
    single_file_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(single_file_models))
    turbo = tmp_path / "tiny-turbo.safetensors"
    turbo.symlink_to(single_file_models / "tiny-sd.safetensors")
    engine = _load(turbo)
    assert engine.scheduler_config["timestep_spacing"] == "trailing"
    assert _image(engine, steps=1).shape == (64, 64, 3)


def test_missing_config_folder_is_a_clear_error(
    single_file_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match=r"offline configuration for SD 1\.x"):
        _load(single_file_models / "tiny-sd.safetensors")


def test_pickled_checkpoint_needs_opt_in_then_loads_as_weights_only(
    single_file_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    monkeypatch.setenv("STUDIO_MODELS", str(single_file_models))
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(str(single_file_models / "tiny-sd.safetensors"))}, ckpt)
    with pytest.raises(ModelError, match="pickled checkpoint"):
        _load(ckpt)
    engine = _load(ckpt, allow_pickle=True)
    reference = _load(single_file_models / "tiny-sd.safetensors")
    assert np.array_equal(_image(engine), _image(reference))


class _Payload:
    """A pickle that would run code when loaded without weights_only."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused_even_when_allowed(tmp_path: Path) -> None:
    bad = tmp_path / "evil.ckpt"
    with bad.open("wb") as f:
        pickle.dump({"state_dict": {"model.diffusion_model.x": _Payload()}}, f, protocol=2)
    with pytest.raises(ModelError, match="more than plain weights"):
        read_checkpoint(bad, allow_pickle=True)


def test_unsupported_and_broken_files(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match=r"\.safetensors checkpoints"):
        read_checkpoint(gguf, allow_pickle=False)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        read_checkpoint(broken, allow_pickle=False)


def _detect(keys: dict[str, torch.Tensor]) -> Checkpoint:
    return detect_checkpoint("m", set(keys), lambda k: tuple(keys[k].shape), keys.__getitem__)


def test_family_detection_from_keys() -> None:
    unet = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}
    sd1 = {**unet, "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.ones(1)}
    assert _detect(sd1) == Checkpoint("sd1", None)
    sdxl = {**unet, "conditioner.embedders.0.transformer.text_model.x": torch.ones(1),
            "conditioner.embedders.1.model.ln_final.weight": torch.ones(1)}
    assert _detect(sdxl).family == "sdxl"
    assert _detect({**sdxl, "v_pred": torch.ones(1)}).prediction_type == "v_prediction"

    probe = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
    sd2 = {**unet, "cond_stage_model.model.token_embedding.weight": torch.ones(1)}
    torch.manual_seed(0)
    assert _detect({**sd2, probe: torch.randn(640) * 0.2}) == Checkpoint("sd2", "v_prediction")
    assert _detect({**sd2, probe: torch.randn(640) * 0.02}) == Checkpoint("sd2", "epsilon")

    with pytest.raises(ModelError, match="refiner"):
        _detect({**unet, "conditioner.embedders.0.model.ln_final.weight": torch.ones(1)})
    inpaint = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 9, 3, 3),
               **{k: v for k, v in sd1.items() if k.startswith("cond")}}
    with pytest.raises(ModelError, match="inpainting"):
        _detect(inpaint)
    with pytest.raises(ModelError, match="LoRA"):
        _detect({"lora_unet_down_blocks_0.alpha": torch.ones(1)})
    with pytest.raises(ModelError, match="no text encoder"):
        _detect(unet)


# Published parameter counts of the real models (SD 1.5, SD 2.1, SDXL base 1.0).
PUBLISHED = {
    "sd1": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
             "text_encoder_2": 694_659_840},
}
DIFFUSERS_TYPE = {"sd1": "v1", "sd2": "v2", "sdxl": "xl_base"}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_shipped_configs_describe_the_real_models(family: str) -> None:
    """Each models/configs/<family> builds modules of the published sizes whose original
    key layout diffusers itself classifies as that family."""
    import transformers
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from transformers import CLIPTextConfig, CLIPTokenizer

    root = REPO_CONFIGS / family
    index = json.loads((root / "model_index.json").read_text())
    assert index["_class_name"].startswith("StableDiffusion")
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet"))
        modules = {
            "unet": unet,
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae")),
        }
        for name in ("text_encoder", "text_encoder_2"):
            if (root / name).is_dir():
                config = CLIPTextConfig.from_pretrained(root / name)
                cls = getattr(transformers, config.architectures[0])
                modules[name] = cls(config)
    sizes = {k: sum(p.numel() for p in m.parameters()) for k, m in modules.items()}
    assert sizes == PUBLISHED[family]

    keys = unet_to_ldm(unet.state_dict(), dict(unet.config))
    marker = {"sd1": "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
              "sd2": "cond_stage_model.model.token_embedding.weight",
              "sdxl": "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"}
    keys[marker[family]] = torch.empty(1, device="meta")
    assert infer_diffusers_model_type(keys) == DIFFUSERS_TYPE[family]
    assert _detect_meta(keys).family == family

    for name in ("tokenizer", "tokenizer_2"):
        if (root / name).is_dir():
            tokenizer = CLIPTokenizer.from_pretrained(root / name)
            assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368,
                                                               49407]


def _detect_meta(keys: dict[str, torch.Tensor]) -> Checkpoint:
    return detect_checkpoint("m", set(keys), lambda k: tuple(keys[k].shape),
                             lambda k: torch.zeros(keys[k].shape))


def test_converter_is_the_inverse_of_diffusers_for_real_layouts() -> None:
    """Our test-side diffusers → LDM mapping, fed back through diffusers' own converter,
    gives every key back (SD 1.x and SDXL UNets, SD VAE), so the tiny round trip is honest."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    for family in ("sd1", "sdxl"):
        config = UNet2DConditionModel.load_config(REPO_CONFIGS / family / "unet")
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(config)
        state = unet.state_dict()
        back = convert_ldm_unet_checkpoint(unet_to_ldm(state, dict(unet.config)),
                                           dict(unet.config))
        assert set(back) == set(state)
    config = AutoencoderKL.load_config(REPO_CONFIGS / "sd1" / "vae")
    with init_empty_weights():
        vae = AutoencoderKL.from_config(config)
    state = vae.state_dict()
    back = convert_ldm_vae_checkpoint(vae_to_ldm(state, dict(vae.config)), dict(vae.config))
    assert set(back) == set(state)
    assert all(back[k].shape == state[k].shape for k in state)
