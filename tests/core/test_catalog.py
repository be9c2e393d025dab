"""Model discovery: folders, single files, an HF cache, broken files and symlink loops.

Single-file checkpoints are real safetensors files whose tensor names follow the
SD 1.x / 2.x / SDXL layouts (tiny shapes); diffusers and transformers folders are
real tiny models built from configs (tests/tiny.py, tests/engines/tiny_text.py).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from studio.core import catalog
from studio.core.catalog import ModelEntry
from studio.core.settings import Settings

UNET = "model.diffusion_model."
ATTN = UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


def _z(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float16)


def sd1_tensors() -> dict[str, np.ndarray]:
    return {ATTN: _z(8, 768), UNET + "input_blocks.0.0.weight": _z(8, 4, 3, 3),
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": _z(4, 8),
            "first_stage_model.decoder.conv_in.weight": _z(8, 4, 3, 3)}


def sd2_tensors() -> dict[str, np.ndarray]:
    return {ATTN: _z(8, 1024), UNET + "input_blocks.0.0.weight": _z(8, 4, 3, 3),
            "cond_stage_model.model.token_embedding.weight": _z(4, 8)}


def sdxl_tensors() -> dict[str, np.ndarray]:
    return {UNET + "label_emb.0.0.weight": _z(8, 8), UNET + "input_blocks.0.0.weight": _z(8, 4),
            "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": _z(8),
            "conditioner.embedders.1.model.ln_final.weight": _z(8)}


def write_checkpoint(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def write_gguf(path: Path, arch: str = "llama", name: str = "Tiny Chat") -> Path:
    """A minimal GGUF v3 header: two string key-values, then a token array."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 3)
    body += s("general.architecture") + struct.pack("<I", 8) + s(arch)
    body += s("general.name") + struct.pack("<I", 8) + s(name)
    body += s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1) + s("a")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body + b"\0" * 2_000_000)  # past the size below which files are ignored
    return path


def by_name(entries: list[ModelEntry]) -> dict[str, ModelEntry]:
    return {e.name: e for e in entries}


# ------------------------------------------------------------------- headers and families


def test_safetensors_header_is_read_without_loading_weights(tmp_path):
    path = write_checkpoint(tmp_path / "a.safetensors", sd1_tensors(), {"modelspec.title": "x"})
    header = catalog.read_safetensors_header(path)
    assert header[ATTN]["shape"] == [8, 768]
    assert header["__metadata__"] == {"modelspec.title": "x"}


@pytest.mark.parametrize(("name", "tensors", "meta", "family"), [
    ("v1-5-pruned", sd1_tensors(), None, catalog.SD1),
    ("v2-1_768", sd2_tensors(), None, catalog.SD2),
    ("sd_xl_base_1.0", sdxl_tensors(), None, catalog.SDXL),
    ("sd_turbo", sd2_tensors(), None, catalog.SD_TURBO),
    ("sd_xl_turbo_1.0_fp16", sdxl_tensors(), None, catalog.SDXL_TURBO),
    ("my-merge", sdxl_tensors(), {"modelspec.architecture": "stable-diffusion-xl-v1-base/lcm"},
     catalog.SDXL_LCM),
    ("lcm-dreamshaper", sd1_tensors(), None, catalog.LCM),
    ("unnamed", {ATTN: _z(8, 1024)}, None, catalog.SD2),  # from the cross-attention width
])
def test_single_file_families_come_from_tensor_names(tmp_path, name, tensors, meta, family):
    entry = catalog.classify_file(write_checkpoint(tmp_path / f"{name}.safetensors", tensors, meta))
    assert entry is not None
    assert (entry.modality, entry.family, entry.format, entry.role) == (
        "image", family, "safetensors", "generate")
    assert catalog.base_family(family) in (catalog.SD1, catalog.SD2, catalog.SDXL)


def test_helpers_are_recognised_but_not_offered(tmp_path):
    lora = catalog.classify_file(write_checkpoint(
        tmp_path / "style.safetensors",
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": _z(4, 8)}))
    vae = catalog.classify_file(write_checkpoint(
        tmp_path / "vae.safetensors", {"encoder.down.0.block.0.conv1.weight": _z(4, 4)}))
    taesd = catalog.classify_file(write_checkpoint(
        tmp_path / "taesd_decoder.safetensors", {"decoder.layers.0.weight": _z(4, 4)}))
    assert (lora.family, lora.role) == (catalog.LORA, "component")
    assert (taesd.family, taesd.role) == (catalog.TAESD, "preview")
    assert vae is None  # a tiny VAE piece under 1 MB is not worth listing
    assert catalog.for_modality([lora, taesd], "image") == []


def test_gguf_metadata_names_the_model(tmp_path):
    entry = catalog.classify_file(write_gguf(tmp_path / "chat.Q4.gguf"))
    assert (entry.modality, entry.family, entry.format, entry.name) == (
        "text", catalog.CAUSAL_LM, "gguf", "Tiny Chat")
    assert catalog.classify_file(write_gguf(tmp_path / "mmproj.gguf", arch="clip")) is None


def test_broken_files_are_reported_not_raised(tmp_path):
    good = write_checkpoint(tmp_path / "good.safetensors", sd1_tensors())
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a model at all" * 10)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    bad_json = tmp_path / "bad_json.safetensors"
    bad_json.write_bytes(struct.pack("<Q", 10) + b"{not json}")
    bad_gguf = tmp_path / "bad.gguf"
    bad_gguf.write_bytes(b"GGML" + b"\0" * 2_000_000)
    issues: list[str] = []
    found = list(catalog.scan_folder(tmp_path, issues=issues))
    assert [e.name for e in found] == ["good"]
    text = "\n".join(issues)
    for path in (truncated, garbage, empty, bad_json, bad_gguf):
        assert str(path) in text
    assert "truncated" in text and "not a GGUF file" in text
    assert all(line.count("\n") == 0 for line in issues)


# ------------------------------------------------------------------- folders


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny SD folder and a tiny GPT-2 folder, built once for this module."""
    from tests.engines.tiny_text import build_tiny_gpt2, export_gguf
    from tests.tiny import build_tiny_sd

    root = tmp_path_factory.mktemp("built")
    gpt2 = build_tiny_gpt2(root)
    return {"sd": build_tiny_sd(root), "gpt2": gpt2,
            "gguf": export_gguf(gpt2, root / "tiny-gpt2.gguf")}


def test_a1111_and_comfyui_folders_work_as_is(tmp_path, tiny_models):
    a1111 = tmp_path / "stable-diffusion-webui" / "models"
    write_checkpoint(a1111 / "Stable-diffusion" / "dreamshaper_8.safetensors", sd1_tensors())
    (a1111 / "Stable-diffusion" / "dreamshaper_8.png").write_bytes(b"\x89PNG preview")
    (a1111 / "Stable-diffusion" / "old.ckpt").write_bytes(b"PK" + b"\0" * 2_000_000)
    write_checkpoint(a1111 / "Lora" / "ink.safetensors",
                     {"lora_te_text_model_encoder_layers_0.lora_up.weight": _z(8, 4)})
    comfy = tmp_path / "ComfyUI" / "models" / "checkpoints"
    write_checkpoint(comfy / "sdxl" / "juggernaut.safetensors", sdxl_tensors())
    shutil.copytree(tiny_models["sd"], comfy / "tiny-sd-diffusers")

    settings = Settings(model_dirs=[str(a1111 / "Stable-diffusion"), str(a1111 / "Lora"),
                                    str(comfy)])
    entries = catalog.scan(settings)
    found = by_name(entries)
    assert found["dreamshaper_8"].family == catalog.SD1
    assert found["dreamshaper_8"].source == "folder"
    assert found["dreamshaper_8"].location == str(a1111 / "Stable-diffusion")
    assert found["juggernaut"].family == catalog.SDXL
    tiny = found["tiny-sd-diffusers"]
    assert (tiny.format, tiny.family, tiny.modality) == ("diffusers", catalog.SD1, "image")
    assert tiny.size_bytes == sum(p.stat().st_size for p in tiny_models["sd"].rglob("*")
                                  if p.is_file())
    old = found["old"]
    assert old.pickled and old.format == "ckpt" and "Allow pickled" in old.note
    assert found["ink"].role == "component"

    picker = [e.name for e in catalog.for_modality(entries, "image", settings)]
    assert "dreamshaper_8" in picker and "tiny-sd-diffusers" in picker
    assert "old" not in picker and "ink" not in picker  # pickles need the setting; LoRAs never
    allowed = Settings(model_dirs=settings.model_dirs, allow_pickle=True)
    assert "old" in [e.name for e in catalog.for_modality(entries, "image", allowed)]
    assert [e.id for e in entries[: len(catalog.BUILTINS)]] == [b.id for b in catalog.BUILTINS]


def test_text_and_music_folders_and_config_only_folders(tmp_path, tiny_models):
    root = tmp_path / "models"
    shutil.copytree(tiny_models["gpt2"], root / "chat" / "tiny-gpt2")
    (root / "ggufs").mkdir(parents=True)
    shutil.copy(tiny_models["gguf"], root / "ggufs" / "tiny.gguf")
    music = root / "musicgen-tiny"
    music.mkdir()
    (music / "config.json").write_text(json.dumps(
        {"model_type": "musicgen", "architectures": ["MusicgenForConditionalGeneration"]}))
    write_checkpoint(music / "model.safetensors", {"w": _z(4)})
    configs = root / "configs" / "sd1"  # what the image engine keeps: configs, no weights
    (configs / "unet").mkdir(parents=True)
    (configs / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (configs / "unet" / "config.json").write_text("{}")

    entries = list(catalog.scan_folder(root))
    found = {Path(e.id).relative_to(root).as_posix(): e for e in entries}
    assert set(found) == {"chat/tiny-gpt2", "ggufs/tiny.gguf", "musicgen-tiny"}  # no configs/
    assert (found["chat/tiny-gpt2"].family, found["chat/tiny-gpt2"].format) == (
        catalog.CAUSAL_LM, "transformers")
    assert (found["ggufs/tiny.gguf"].family, found["ggufs/tiny.gguf"].format) == (
        catalog.CAUSAL_LM, "gguf")
    assert (found["musicgen-tiny"].modality, found["musicgen-tiny"].family) == (
        "music", catalog.MUSICGEN)


def test_symlink_loops_and_dangling_links_are_cut(tmp_path):
    root = tmp_path / "root"
    inner = root / "a" / "b"
    write_checkpoint(inner / "model.safetensors", sd1_tensors())
    os.symlink(root, inner / "back-to-root")  # a loop through an ancestor
    os.symlink(root / "a" / "self", root / "a" / "self")  # a link to itself (ELOOP)
    os.symlink(tmp_path / "gone", root / "dangling.safetensors")
    os.symlink(inner, tmp_path / "alias")
    settings = Settings(model_dirs=[str(root), str(tmp_path / "alias")])
    started = time.perf_counter()
    entries = [e for e in catalog.scan(settings) if e.source == "folder"]
    assert time.perf_counter() - started < 5
    assert [e.name for e in entries] == ["model"]  # once, though reachable three ways


def test_depth_and_size_limits_keep_huge_trees_cheap(tmp_path):
    deep = tmp_path / "deep"
    folder = deep
    for i in range(10):
        folder = folder / f"level{i}"
    write_checkpoint(folder / "too-deep.safetensors", sd1_tensors())
    assert list(catalog.scan_folder(deep)) == []

    wide = tmp_path / "wide"
    for i in range(30):
        sub = wide / f"d{i:02d}"
        sub.mkdir(parents=True)
        for j in range(100):
            (sub / f"f{j}.txt").write_bytes(b"")
    write_checkpoint(wide / "zz" / "last.safetensors", sd1_tensors())
    started = time.perf_counter()
    assert [e.name for e in catalog.scan_folder(wide)] == ["last"]  # 3,000 files, fast
    assert time.perf_counter() - started < 5
    issues: list[str] = []
    assert list(catalog.scan_folder(wide, issues=issues, max_entries=500)) == []
    assert "too many files" in issues[0]


def test_scan_streams_and_can_be_cancelled(tmp_path):
    for i in range(5):
        write_checkpoint(tmp_path / f"d{i}" / f"m{i}.safetensors", sd1_tensors())
    stream = catalog.scan_folder(tmp_path)
    assert next(stream).name == "m0"  # the first model arrives before the walk is over
    cancel = threading.Event()
    seen = []
    for entry in catalog.scan_folder(tmp_path, cancel=cancel):
        seen.append(entry.name)
        cancel.set()
    assert seen == ["m0"]


# ------------------------------------------------------------------- Hugging Face cache


def make_hf_repo(hub: Path, repo_id: str, source: Path, *, ref: bool = True) -> Path:
    """Lay source out like huggingface_hub does: blobs by hash, snapshot symlinks, refs/main."""
    import hashlib

    repo = hub / ("models--" + repo_id.replace("/", "--"))
    rev = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / rev
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(rev)
    return snapshot


def test_hf_cache_models_are_found_and_load(tmp_path, monkeypatch, tiny_models):
    hub = tmp_path / "hf-home" / "hub"
    gpt2 = make_hf_repo(hub, "someone/tiny-gpt2", tiny_models["gpt2"])
    sd = make_hf_repo(hub, "stabilityai/sd-turbo", tiny_models["sd"], ref=False)
    gguf_src = tmp_path / "gguf-src"
    gguf_src.mkdir()
    shutil.copy(tiny_models["gguf"], gguf_src / "tiny.Q8_0.gguf")
    make_hf_repo(hub, "someone/tiny-GGUF", gguf_src)
    config_only = tmp_path / "cfg"
    config_only.mkdir()
    (config_only / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    make_hf_repo(hub, "other/only-config", config_only)
    (hub / "datasets--x--y" / "snapshots").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)

    assert catalog.hf_cache_dirs()[0] == hub
    entries = [e for e in catalog.scan(Settings()) if e.source == "hf-cache"]
    found = {e.repo_id: e for e in entries}
    assert set(found) == {"someone/tiny-gpt2", "stabilityai/sd-turbo", "someone/tiny-GGUF"}
    assert found["someone/tiny-gpt2"].id == str(gpt2)
    assert found["someone/tiny-gpt2"].location == str(hub)
    assert found["stabilityai/sd-turbo"].family == catalog.SD_TURBO  # named by its repo
    assert found["stabilityai/sd-turbo"].id == str(sd)  # newest snapshot without refs/main
    assert found["someone/tiny-GGUF"].format == "gguf"
    blobs = sum(p.stat().st_size for p in (hub / "models--someone--tiny-gpt2" / "blobs").iterdir())
    assert found["someone/tiny-gpt2"].size_bytes == blobs

    from studio.engines.base import Events, LoadSpec
    from studio.engines.text_lm import TextEngine

    engine = TextEngine.load(LoadSpec(found["someone/tiny-gpt2"].id, "cpu", "float32"),
                             Settings(), Events())
    assert engine.memory_bytes() > 0
    estimate = catalog.estimate_memory(found["someone/tiny-gpt2"].id, 4)
    assert abs(estimate - engine.memory_bytes()) / engine.memory_bytes() < 0.1


def test_hf_cache_env_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.hf_cache_dirs()[:3] == [tmp_path / "a", tmp_path / "home" / "hub",
                                           tmp_path / "xdg" / "huggingface" / "hub"]
    assert catalog.repo_id_from_cache_name("models--org--name") == "org/name"
    assert catalog.repo_id_from_cache_name("models--gpt2") == "gpt2"


# ------------------------------------------------------------------- built-ins, estimates


def test_builtins_have_sizes_from_their_packages():
    entries = {e.id: e for e in catalog.scan(Settings())}
    for builtin in catalog.BUILTINS:
        assert builtin.id in entries
    smol = entries["builtin:smollm2"]
    assert smol.size_bytes == catalog.builtin_path("builtin:smollm2").stat().st_size
    assert smol.source == "builtin"


def test_weight_files_skip_variants_and_unused_copies(tmp_path, tiny_models):
    folder = tmp_path / "sd"
    shutil.copytree(tiny_models["sd"], folder)
    unet = folder / "unet" / "diffusion_pytorch_model.safetensors"
    shutil.copy(unet, unet.with_name("diffusion_pytorch_model.fp16.safetensors"))
    (folder / "single_file_copy.safetensors").write_bytes(unet.read_bytes())
    files = catalog.weight_files(str(folder))
    assert unet in files
    assert not any(".fp16." in p.name or p.parent == folder for p in files)
    fp32 = catalog.estimate_memory(str(folder), 4)
    assert catalog.estimate_memory(str(folder), 2) == fp32 // 2
    assert catalog.estimate_memory(str(tmp_path / "missing"), 4) == 0


def write_llama_gguf(path: Path, context: int, kv_heads: int = 4) -> Path:
    """A GGUF header of a llama-shaped model (8 layers, width 256, 8 heads), the
    architecture keys after a tag array (as real files have), then a vocabulary."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    def u32(key: str, value: int) -> bytes:
        return s(key) + struct.pack("<II", 4, value)

    keys = [s("general.architecture") + struct.pack("<I", 8) + s("llama"),
            s("general.tags") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("bc"),
            u32("llama.block_count", 8), u32("llama.embedding_length", 256),
            u32("llama.attention.head_count", 8), u32("llama.attention.head_count_kv", kv_heads),
            u32("llama.context_length", context),
            s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + s("x") + s("y") + s("z"),
            s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + b"\0" * 12,
            u32("tokenizer.ggml.eos_token_id", 2)]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(keys)) + b"".join(keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body + b"\0" * 2_000_000)
    return path


def test_a_gguf_is_estimated_quantised_with_its_kv_cache(tmp_path):
    """llama.cpp keeps a GGUF as stored: its size plus a KV cache for the context it gets
    (capped at LLAMA_CONTEXT_CAP), the same whatever float dtype is asked for."""
    long = write_llama_gguf(tmp_path / "long.gguf", 32768)
    meta = catalog.read_gguf_metadata(long, max_keys=64, arrays=True)
    assert meta["llama.context_length"] == 32768 and meta["tokenizer.ggml.tokens"] == 3
    assert meta["tokenizer.ggml.eos_token_id"] == 2  # read past the arrays
    assert "llama.block_count" not in catalog.read_gguf_metadata(long)  # stops at arrays
    size = long.stat().st_size
    estimate = catalog.estimate_memory(str(long), 4)
    assert estimate == catalog.estimate_memory(str(long), 2) == catalog.gguf_memory(long)
    cap = catalog.LLAMA_CONTEXT_CAP
    kv = 8 * cap * 4 * (32 + 32) * 2  # layers × context × K/V heads × (K + V) × f16
    assert size + kv < estimate < size + kv + 64 * 2**20
    capped = write_llama_gguf(tmp_path / "capped.gguf", cap)
    assert catalog.gguf_memory(capped) == estimate
    short = write_llama_gguf(tmp_path / "short.gguf", cap // 2)
    assert estimate - catalog.gguf_memory(short) >= kv // 2
    full_heads = write_llama_gguf(tmp_path / "mha.gguf", cap, kv_heads=8)  # no GQA: twice the KV
    assert catalog.gguf_memory(full_heads) - estimate == kv
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\xff" * 64)
    assert catalog.estimate_memory(str(broken), 4) == 68  # unreadable header: its size


# ------------------------------------------------------------------- one classifier, every family


def test_every_classified_entry_carries_its_family_descriptor(tmp_path, tiny_models):
    """The one classifier files each kind of model under a registered family: the entry's
    family name, modality, role and explorability are the descriptor's."""
    from studio.core import families

    files = {
        "v1-5": (sd1_tensors(), None, families.SD1),
        "v2-1": (sd2_tensors(), None, families.SD2),
        "sd_xl_base": (sdxl_tensors(), None, families.SDXL),
        "sd_turbo": (sd2_tensors(), None, families.SD_TURBO),
        "sdxl_turbo": (sdxl_tensors(), None, families.SDXL_TURBO),
        "lcm-v1": (sd1_tensors(), None, families.LCM),
        "xl-merge": (sdxl_tensors(), {"modelspec.title": "LCM merge"}, families.SDXL_LCM),
        "refiner": ({UNET + "input_blocks.0.0.weight": _z(8, 4),
                     "conditioner.embedders.0.model.ln_final.weight": _z(600_000)}, None,
                    families.SDXL_REFINER),
        "ink-lora": ({"lora_unet_x.lora_down.weight": _z(4, 8)}, None, families.LORA),
        "taesd_decoder": ({"decoder.layers.0.weight": _z(600_000)}, None, families.TAESD),
        "vae-ft": ({"encoder.down.0.block.0.conv1.weight": _z(600_000)}, None, families.VAE),
        "emb": ({"emb_params": _z(600_000)}, None, families.EMBEDDING),
        "unet-only": ({"down_blocks.0.x": _z(300_000), "mid_block.y": _z(300_000)}, None,
                      families.UNET),
    }
    for name, (tensors, meta, family) in files.items():
        entry = catalog.classify(write_checkpoint(tmp_path / f"{name}.safetensors", tensors, meta))
        assert entry is not None, name
        assert entry.family_id == family.id and entry.descriptor is family, name
        assert (entry.family, entry.modality, entry.role, entry.explorable) == (
            family.name, family.modality, family.role, family.explorable), name
    folders = {
        "sd": families.SD1, "gpt2": families.CAUSAL_LM, "gguf": families.CAUSAL_LM,
    }
    for key, family in folders.items():
        entry = catalog.classify(tiny_models[key])
        assert entry is not None and entry.descriptor is family, key
    for model_type, arch, family in (
            ("musicgen", "MusicgenForConditionalGeneration", families.MUSICGEN),
            ("musicgen_melody", "MusicgenMelodyForConditionalGeneration",
             families.MUSICGEN_MELODY)):
        folder = tmp_path / model_type
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(
            {"model_type": model_type, "architectures": [arch]}))
        write_checkpoint(folder / "model.safetensors", {"w": _z(600_000)})
        entry = catalog.classify(folder)
        assert entry is not None and entry.descriptor is family, model_type
        assert (entry.family, entry.modality) == (family.name, "music"), model_type
    pickled = catalog.classify(write_checkpoint(tmp_path / "ponyXL.ckpt", {"w": _z(600_000)}))
    assert pickled.descriptor is families.SDXL and pickled.pickled
    assert catalog.classify(tmp_path / "nothing-here") is None


def test_base_family_and_few_step_read_the_descriptor():
    from studio.core import families

    for family in families.all_families():
        if family.latent:
            assert catalog.base_family(family.name) == families.get(family.latent).name
        assert catalog.is_few_step(family.name) is family.few_step
    assert catalog.base_family("SD3") == "SD3"
    assert catalog.base_family(catalog.SDXL_REFINER) == catalog.SDXL


def test_key_rules_live_once_and_the_layout_ignores_name_hints():
    keys = set(sd1_tensors())
    assert catalog.has_unet(keys) and catalog.text_encoder_family(keys).id == "sd1"
    assert catalog.checkpoint_layout(keys).id == "sd1"  # "turbo" in a name is a hint, not keys
    assert catalog.text_encoder_family({UNET + "x"}) is None
    assert catalog.checkpoint_layout({UNET + "joint_blocks.0.x"}) is None  # SD3: not ours
    assert catalog.checkpoint_layout({ATTN}, lambda _k: (8, 1024)).id == "sd2"


def test_a_header_that_is_not_utf8_is_reported_not_raised(tmp_path):
    bad = tmp_path / "latin1.safetensors"
    bad.write_bytes(struct.pack("<Q", 4) + b"{\xff\xfe}")
    issues: list[str] = []
    assert list(catalog.scan_folder(tmp_path, issues=issues)) == []
    assert len(issues) == 1 and "not valid JSON" in issues[0] and str(bad) in issues[0]


def test_inpainting_checkpoints_are_their_own_families() -> None:
    """A 9-channel first convolution (latents + mask + masked image) marks a dedicated
    inpainting checkpoint of the base family its text encoder names."""
    from studio.core import families as fam
    from studio.core.catalog.classify import CONV_IN, checkpoint_layout

    def shapes(channels: int):
        return lambda key: (320, channels, 3, 3) if key == CONV_IN else None

    sd1 = [CONV_IN, "cond_stage_model.transformer.text_model.x"]
    sdxl = [CONV_IN, "conditioner.embedders.1.model.ln_final.weight"]
    assert checkpoint_layout(sd1, shapes(9)) is fam.SD1_INPAINT
    assert checkpoint_layout(sdxl, shapes(9)) is fam.SDXL_INPAINT
    assert checkpoint_layout(sd1, shapes(4)) is fam.SD1
    assert fam.SD1_INPAINT.latent == "sd1" and fam.SD1_INPAINT.applies("mask")


def test_a_builtin_whose_weights_live_in_models_is_listed_once() -> None:
    """models/sketch is the sketch built-in's folder: the scan of models/ does not list it a
    second time as a plain diffusers folder."""
    from studio.core import families

    sketch = families.builtin("builtin:sketch")
    assert sketch is not None and sketch.path() is not None and sketch.path().exists()
    entries = catalog.scan(Settings())
    found = [e for e in entries if e.family_id == "sketch"]
    assert [e.id for e in found] == ["builtin:sketch"]
