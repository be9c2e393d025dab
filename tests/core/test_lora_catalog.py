"""Finding LoRAs and embeddings where A1111 and ComfyUI keep them; their base family;
A1111's LoRA hash. Files are written here with a real safetensors header (no torch)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from studio.core import catalog, families
from studio.core.errors import RequestError
from studio.core.settings import Settings


def write_lora(path: Path, shapes: dict[str, list[int]], meta: dict[str, str] | None = None,
               payload: bytes = b"") -> Path:
    """A safetensors file with F32 tensors of these shapes (zeros, or `payload` bytes)."""
    header: dict[str, object] = {}
    offset = 0
    for key, shape in shapes.items():
        size = 4
        for s in shape:
            size *= s
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if meta:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = payload.ljust(offset, b"\0")[:offset]
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


UNET_DOWN = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
TE_DOWN = "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"


@pytest.mark.parametrize(("shapes", "meta", "base"), [
    ({UNET_DOWN: [4, 8]}, {"ss_base_model_version": "sd_v1"}, families.SD1),
    ({UNET_DOWN: [4, 8]}, {"ss_base_model_version": "sdxl_base_v1-0"}, families.SDXL),
    ({UNET_DOWN: [4, 8]}, {"ss_v2": "True"}, families.SD2),
    ({UNET_DOWN: [4, 8]}, {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"},
     families.SDXL),
    ({TE_DOWN: [4, 768]}, None, families.SD1),  # a 768-wide text encoder
    ({TE_DOWN: [4, 1024]}, None, families.SD2),
    ({"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": [4, 768]},
     None, families.SDXL),  # two encoders
    ({UNET_DOWN: [4, 2048]}, None, families.SDXL),  # SDXL's cross-attention context
    ({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight":
      [4, 1024]}, None, families.SD2),  # diffusers/peft names
    ({UNET_DOWN: [4, 8]}, None, None),  # the file does not say
])
def test_the_base_family_is_what_the_file_says(tmp_path, shapes, meta, base) -> None:
    path = write_lora(tmp_path / "style.safetensors", shapes, meta)
    entry = catalog.classify_file(path)
    assert entry is not None and entry.family == catalog.LORA
    assert entry.base == (base.name if base else "")
    assert entry.note == (f"LoRA for {base.name}" if base else "")
    assert catalog.lora_file(path).base is base


def test_a1111_and_comfyui_folders_are_searched(tmp_path) -> None:
    webui = tmp_path / "webui"
    write_lora(webui / "models" / "Lora" / "ink.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(webui / "models" / "Lora" / "styles" / "Neon.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(webui / "embeddings" / "easyneg.safetensors", {"emb_params": [2, 8]})
    comfy = tmp_path / "ComfyUI" / "models"
    write_lora(comfy / "loras" / "paper.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(comfy / "embeddings" / "glow.safetensors", {"emb_params": [1, 8]})
    settings = Settings(model_dirs=[str(webui / "models" / "Stable-diffusion"),
                                    str(comfy / "checkpoints")])
    (webui / "models" / "Stable-diffusion").mkdir()
    (comfy / "checkpoints").mkdir()
    assert {p.name for p in catalog.lora_dirs(settings)} >= {"Lora", "loras"}
    assert sorted(f.name for f in catalog.find_loras(settings)) == ["Neon", "ink", "paper"]
    assert set(catalog.find_embeddings(settings)) == {"easyneg", "glow"}
    # by stem, by sub/stem, and in another case when nothing matches exactly
    assert catalog.find_lora("ink", settings).path.name == "ink.safetensors"
    assert catalog.find_lora("styles/Neon", settings).name == "styles/Neon"
    assert catalog.find_lora("neon", settings).path.name == "Neon.safetensors"
    with pytest.raises(RequestError, match="LoRA 'nope' was not found") as caught:
        catalog.find_lora("nope", settings)
    assert "\n" not in str(caught.value)
    # the scan lists a Lora folder beside a chosen checkpoints folder
    listed = {e.name: e for e in catalog.iter_scan(settings, hf_cache=False)}
    assert {"ink", "Neon", "paper"} <= set(listed)
    assert listed["paper"].family == catalog.LORA and not listed["paper"].usable()


def test_a_damaged_lora_is_one_sentence(tmp_path) -> None:
    bad = tmp_path / "models" / "Lora" / "bad.safetensors"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff" * 12)
    with pytest.raises(RequestError, match=r"bad\.safetensors is damaged"):
        catalog.lora_file(bad)
    settings = Settings(model_dirs=[str(tmp_path / "models")])
    assert catalog.find_loras(settings) == []  # left out of the list, not a crash


def test_the_lora_hash_is_a1111s_addnet_hash(tmp_path) -> None:
    path = write_lora(tmp_path / "x.safetensors", {UNET_DOWN: [4, 8]},
                      {"ss_output_name": "x"}, payload=bytes(range(128)))
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    expected = hashlib.sha256(raw[8 + length:]).hexdigest()  # the tensors, not the header
    assert catalog.lora_hash(path) == expected
    assert catalog.short_hash(path) == expected[:12]
    # other metadata: a new header, the same tensors, the same hash
    again = write_lora(tmp_path / "y.safetensors", {UNET_DOWN: [4, 8]},
                       {"ss_output_name": "renamed"}, payload=bytes(range(128)))
    assert catalog.lora_hash(again) == expected
    given = "ab" * 32
    told = write_lora(tmp_path / "z.safetensors", {UNET_DOWN: [4, 8]},
                      {"sshs_model_hash": given})
    assert catalog.lora_hash(told) == given


def test_embeddings_are_catalogued_with_their_layout(tmp_path) -> None:
    """Embeddings (too small for the model walk) are listed from the embeddings folders,
    with the base their vectors fit; a LoRA misfiled there is not called one, a damaged
    file is one line in the scan's issues, and a pickled one is marked so."""
    webui = tmp_path / "webui"
    (webui / "models" / "Stable-diffusion").mkdir(parents=True)
    folder = webui / "embeddings"
    write_lora(folder / "xl.safetensors", {"clip_g": [2, 1280], "clip_l": [2, 768]})
    write_lora(folder / "neg.safetensors", {"emb_params": [4, 768]})
    write_lora(folder / "v2.safetensors", {"emb_params": [1, 1024]})
    write_lora(folder / "sub" / "cat-toy.safetensors", {"<cat-toy>": [768]})  # diffusers'
    write_lora(folder / "odd.safetensors", {"emb_params": [2, 77]})
    write_lora(folder / "misfiled.safetensors", {UNET_DOWN: [4, 8]})
    (folder / "old.pt").write_bytes(b"PK\0\0")
    (folder / "cut.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")
    settings = Settings(model_dirs=[str(webui / "models" / "Stable-diffusion")])
    issues: list[str] = []
    found = {e.name: e for e in catalog.scan_embeddings(catalog.embedding_dirs(settings),
                                                         issues=issues)}
    assert set(found) == {"xl", "neg", "v2", "cat-toy", "odd", "old"}
    assert {k: e.base for k, e in found.items()} == {
        "xl": "SDXL", "neg": "SD 1.x", "v2": "SD 2.x", "cat-toy": "SD 1.x", "odd": "",
        "old": ""}
    assert found["xl"].note == "Embedding for SDXL: 2 vectors for clip_l + clip_g"
    assert found["neg"].note == "Embedding for SD 1.x: 4 vectors of 768"
    assert found["cat-toy"].note == "Embedding for SD 1.x: 1 vector of 768"
    assert found["odd"].note == "Embedding: 2 vectors of 77"
    assert found["old"].pickled and found["old"].format == "pickle"
    assert all(e.family == catalog.EMBEDDING and e.role == "component" and not e.usable()
               for e in found.values())
    assert found["xl"].size_bytes == (folder / "xl.safetensors").stat().st_size
    assert len(issues) == 1 and "cut.safetensors: skipped" in issues[0]
    assert "\n" not in issues[0]
    # the full scan lists them once; the names are the ones prompts use
    listed = [e for e in catalog.iter_scan(settings, hf_cache=False)
              if e.family == catalog.EMBEDDING]
    assert sorted(e.name for e in listed) == sorted(found)
    # what prompts look up: the same, less nothing but the damaged file (a prompt naming
    # it gets the sentence that says so); the misfiled LoRA's name is a plain word again
    assert set(catalog.find_embeddings(settings)) == set(found) | {"cut"}


def test_the_listed_embedding_is_the_one_prompts_read(tmp_path) -> None:
    """What the Models tab says of an embedding agrees with what the engine reads from it."""
    import torch
    from safetensors.torch import save_file

    from studio.engines.embeddings import read_embedding

    path = tmp_path / "embeddings" / "glow.safetensors"
    path.parent.mkdir()
    save_file({"clip_l": torch.randn(2, 768), "clip_g": torch.randn(2, 1280)}, str(path))
    entry = catalog.classify_embedding(path)
    assert entry is not None and entry.base == catalog.SDXL
    read = read_embedding("glow", path, allow_pickle=False)
    assert sorted(read.vectors) == [768, 1280]
    assert all(v.shape[0] == 2 for v in read.vectors.values())


def test_invokeai_and_fooocus_folders_are_searched(tmp_path) -> None:
    """InvokeAI keeps LoRAs per base model (models/sd-1/lora, models/sdxl/lora) and
    embeddings in models/<base>/embedding; Fooocus in models/loras and models/embeddings."""
    invoke = tmp_path / "invokeai"
    write_lora(invoke / "models" / "sd-1" / "lora" / "ink.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(invoke / "models" / "sdxl" / "lora" / "neon" / "neon.safetensors",
               {UNET_DOWN: [4, 2048]})  # InvokeAI 4 installs each model in its own folder
    write_lora(invoke / "models" / "sd-1" / "embedding" / "easyneg.safetensors",
               {"emb_params": [2, 768]})
    (invoke / "models" / "sd-1" / "main").mkdir()
    fooocus = tmp_path / "Fooocus"
    write_lora(fooocus / "models" / "loras" / "sdxl_film.safetensors", {UNET_DOWN: [4, 2048]})
    write_lora(fooocus / "models" / "embeddings" / "unaestheticXLv31.safetensors",
               {"clip_l": [1, 768], "clip_g": [1, 1280]})
    (fooocus / "models" / "checkpoints").mkdir()
    for roots in ([invoke, fooocus / "models" / "checkpoints"],  # the tool roots
                  [invoke / "models" / "sd-1" / "main", fooocus / "models"]):
        settings = Settings(model_dirs=[str(r) for r in roots])
        loras = {f.name: f for f in catalog.find_loras(settings)}
        assert set(loras) == {"ink", "neon", "sdxl_film"}, roots
        assert loras["neon"].base is families.SDXL
        assert catalog.find_lora("ink", settings).path.parent.name == "lora"
        assert set(catalog.find_embeddings(settings)) == {"easyneg", "unaestheticXLv31"}
    listed = {e.name: e for e in catalog.iter_scan(settings, hf_cache=False)}
    assert listed["unaestheticXLv31"].base == "SDXL"  # the Models tab lists them
    assert listed["sdxl_film"].family == catalog.LORA


def test_comfyuis_extra_model_paths_are_read(tmp_path) -> None:
    """A ComfyUI root's extra_model_paths.yaml points at A1111's folders and a shared store:
    the LoRA and embedding folders it names are searched (relative to base_path, which is
    relative to the file; one path a line)."""
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    write_lora(comfy / "models" / "loras" / "own.safetensors", {UNET_DOWN: [4, 8]})
    webui = tmp_path / "webui"
    write_lora(webui / "models" / "Lora" / "ink.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(webui / "models" / "LyCORIS" / "loha.safetensors", {UNET_DOWN: [4, 8]})
    write_lora(webui / "embeddings" / "easyneg.safetensors", {"emb_params": [2, 768]})
    store = tmp_path / "store"
    write_lora(store / "my-loras" / "paper.safetensors", {UNET_DOWN: [4, 8]})
    (comfy / "extra_model_paths.yaml").write_text(
        "a111:\n"
        "    base_path: ../webui/\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    embeddings: embeddings\n"
        "shared:\n"
        f"    base_path: {store}\n"
        "    is_default: true\n"
        "    loras: my-loras/\n"
        "    vae: missing/\n"
        "empty:\n")
    settings = Settings(model_dirs=[str(comfy / "models" / "checkpoints")])
    assert sorted(f.name for f in catalog.find_loras(settings)) == ["ink", "loha", "own",
                                                                    "paper"]
    assert set(catalog.find_embeddings(settings)) == {"easyneg"}
    listed = {e.name for e in catalog.iter_scan(settings, hf_cache=False)}
    assert {"ink", "loha", "paper", "own", "easyneg"} <= listed


@pytest.mark.parametrize(("text", "reason"), [
    ("a111:\n  loras: models: Lora\n", "it is not valid YAML at line 2"),
    ("- just\n- a list\n", "it should hold groups of paths"),
    ("a111: models/Lora\n", "the group 'a111' should hold paths"),
    ("a111:\n  loras: 5\n", "a111.loras should be a folder, or folders one a line"),
])
def test_a_bad_extra_model_paths_file_is_one_sentence(tmp_path, text, reason) -> None:
    comfy = tmp_path / "ComfyUI"
    write_lora(comfy / "models" / "loras" / "own.safetensors", {UNET_DOWN: [4, 8]})
    paths_file = comfy / "extra_model_paths.yaml"
    paths_file.write_text(text)
    settings = Settings(model_dirs=[str(comfy)])
    issues: list[str] = []
    assert [p.name for p in catalog.lora_dirs(settings, issues)] == ["loras"]  # the rest works
    assert len(issues) == 1 and "\n" not in issues[0]
    assert issues[0].startswith(f"{paths_file}: not read ({reason}")
    assert [f.name for f in catalog.find_loras(settings)] == ["own"]
    scanned: list[str] = []
    list(catalog.iter_scan(settings, issues=scanned, hf_cache=False))
    assert scanned == issues  # said once, though both LoRA and embedding folders read it
