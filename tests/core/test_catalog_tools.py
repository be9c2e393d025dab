"""What other tools' folders say about their models: InvokeAI's per-base folders name the
base of a LoRA or embedding that does not say it, Fooocus's config.txt names its model
folders, and one test decides whether a folder is the sketch model's layout. Real folder
trees in tmp_path, real safetensors headers (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core import catalog, families
from studio.core.catalog.classify import SKETCH_TEXT_MARKER, is_sketch_folder, pipeline_family
from studio.core.settings import Settings
from tests.core.test_catalog import sd1_tensors, write_checkpoint
from tests.core.test_lora_catalog import UNET_DOWN, write_lora

SILENT = {UNET_DOWN: [4, 8]}  # a LoRA that says nothing of its base
XL = {UNET_DOWN: [4, 2048]}  # one whose cross-attention width says SDXL


# ------------------------------------------------------------------ InvokeAI


def test_invokeai_base_folders_name_the_base_of_a_silent_lora(tmp_path) -> None:
    models = tmp_path / "invokeai" / "models"
    write_lora(models / "sd-1" / "lora" / "ink.safetensors", SILENT)
    write_lora(models / "sd-2" / "lora" / "v2ink.safetensors", SILENT)
    write_lora(models / "sdxl" / "lora" / "neon" / "neon.safetensors", SILENT)  # InvokeAI 4
    write_lora(models / "any" / "lora" / "plain.safetensors", SILENT)
    write_lora(models / "sd-1" / "lora" / "said.safetensors", XL)  # the file wins
    (models / "sdxl" / "lora" / "old.pt").write_bytes(b"PK\0\0")
    settings = Settings(model_dirs=[str(models.parent)])
    loras = {f.name: f for f in catalog.find_loras(settings)}
    assert {n: (f.base.name if f.base else "") for n, f in loras.items()} == {
        "ink": "SD 1.x", "v2ink": "SD 2.x", "neon": "SDXL", "plain": "", "said": "SDXL",
        "old": "SDXL"}
    assert loras["old"].pickled
    assert catalog.find_lora("neon", settings).base is families.SDXL
    listed = {e.name: e for e in catalog.iter_scan(settings, hf_cache=False)}
    assert listed["ink"].family == catalog.LORA
    assert (listed["ink"].base, listed["ink"].note) == ("SD 1.x", "LoRA for SD 1.x")
    assert listed["plain"].base == ""


def test_a_silent_lora_elsewhere_keeps_no_base(tmp_path) -> None:
    """Only an InvokeAI base folder with a LoRA folder in it names a base: a LoRA folder
    that merely sits under a folder called sdxl stays unknown."""
    webui = tmp_path / "sdxl" / "webui"
    path = write_lora(webui / "models" / "Lora" / "ink.safetensors", SILENT)
    assert catalog.lora_file(path).base is None
    assert catalog.classify_file(path).base == ""


def test_invokeai_base_folders_name_the_base_of_an_embedding(tmp_path) -> None:
    models = tmp_path / "invokeai" / "models"
    write_lora(models / "sd-2" / "embedding" / "odd.safetensors", {"emb_params": [2, 77]})
    write_lora(models / "sd-2" / "embedding" / "wide.safetensors", {"emb_params": [2, 768]})
    (models / "sdxl" / "embedding").mkdir(parents=True)
    (models / "sdxl" / "embedding" / "old.pt").write_bytes(b"PK\0\0")
    settings = Settings(model_dirs=[str(models.parent)])
    found = {e.name: e for e in catalog.scan_embeddings(catalog.embedding_dirs(settings))}
    assert found["odd"].base == "SD 2.x"  # 77-wide vectors fit no encoder: the folder says
    assert found["odd"].note == "Embedding for SD 2.x: 2 vectors of 77"
    assert found["wide"].base == "SD 1.x"  # the vectors' width says SD 1.x: that wins
    assert found["old"].base == "SDXL" and found["old"].pickled


# ------------------------------------------------------------------ Fooocus


def fooocus_root(tmp_path: Path, config: dict[str, object]) -> Path:
    root = tmp_path / "Fooocus"
    (root / "models" / "checkpoints").mkdir(parents=True)
    (root / "config.txt").write_text(json.dumps(config, indent=4), encoding="utf-8")
    return root


@pytest.mark.parametrize("as_list", [False, True])
def test_fooocus_config_names_the_model_folders(tmp_path, as_list) -> None:
    store = tmp_path / "store"
    write_lora(store / "loras" / "film.safetensors", XL)
    write_lora(store / "more-loras" / "grain.safetensors", XL)
    write_lora(store / "emb" / "unaesthetic.safetensors", {"clip_l": [1, 768],
                                                           "clip_g": [1, 1280]})
    write_checkpoint(store / "ckpt" / "dream.safetensors", sd1_tensors())
    loras: object = [str(store / "loras"), str(store / "more-loras")] if as_list \
        else str(store / "loras")
    root = fooocus_root(tmp_path, {
        "path_checkpoints": [str(store / "ckpt")] if as_list else str(store / "ckpt"),
        "path_loras": loras,
        "path_embeddings": str(store / "emb"),
        "path_outputs": str(tmp_path / "out"),
        "default_model": "dream.safetensors"})
    # Fooocus's own default folder still counts
    write_lora(root / "models" / "loras" / "own.safetensors", XL)
    for chosen in (root, root / "models" / "checkpoints"):
        settings = Settings(model_dirs=[str(chosen)])
        names = {f.name for f in catalog.find_loras(settings)}
        assert names == {"film", "own"} | ({"grain"} if as_list else set()), chosen
        assert set(catalog.find_embeddings(settings)) == {"unaesthetic"}
        assert catalog.checkpoint_dirs(settings) == [store / "ckpt"]
        listed = {e.name: e for e in catalog.iter_scan(settings, hf_cache=False)}
        assert listed["dream"].family == catalog.SD1
        assert listed["film"].family == catalog.LORA


def test_a_relative_fooocus_path_is_taken_from_the_root(tmp_path) -> None:
    root = fooocus_root(tmp_path, {"path_loras": "../shared/loras"})
    write_lora(tmp_path / "shared" / "loras" / "film.safetensors", XL)
    settings = Settings(model_dirs=[str(root)])
    assert [f.name for f in catalog.find_loras(settings)] == ["film"]


def test_a_bad_fooocus_entry_is_one_sentence_and_another_tools_config_is_left_alone(
        tmp_path) -> None:
    root = fooocus_root(tmp_path, {"path_loras": 7, "path_embeddings": ["ok", 3]})
    write_lora(root / "models" / "loras" / "own.safetensors", XL)
    settings = Settings(model_dirs=[str(root)])
    issues: list[str] = []
    assert [p.name for p in catalog.lora_dirs(settings, issues)] == ["loras"]
    assert issues == [f"{root / 'config.txt'}: path_loras should be a folder or a list of "
                      "folders; Studio leaves it out until it is fixed."]
    catalog.embedding_dirs(settings, issues)
    assert len(issues) == 2 and "path_embeddings" in issues[1]
    other = tmp_path / "other"
    write_lora(other / "models" / "Lora" / "ink.safetensors", SILENT)
    (other / "config.txt").write_text("[section]\nkey = value\n", encoding="utf-8")
    issues = []
    assert [f.name for f in catalog.find_loras(Settings(model_dirs=[str(other)]))] == ["ink"]
    assert catalog.lora_dirs(Settings(model_dirs=[str(other)]), issues) and issues == []


# ------------------------------------------------------------------ the sketch layout


def pipeline(folder: Path, text_config: object, marker: bool) -> Path:
    (folder / "text_encoder").mkdir(parents=True)
    if text_config is not None:
        (folder / "text_encoder" / "config.json").write_text(json.dumps(text_config))
    if marker:
        (folder / "text_encoder" / SKETCH_TEXT_MARKER).write_text("{}")
    (folder / "unet").mkdir()
    (folder / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 768}))
    return folder


@pytest.mark.parametrize(("text_config", "marker", "sketch"), [
    (None, True, True),  # MiniLM by reference
    ({"model_type": "bert", "hidden_size": 128}, False, True),  # a BERT of its own
    ({"model_type": "clip_text_model", "hidden_size": 768}, False, False),  # SD 1.x
    (None, False, False),
    (["not", "an", "object"], False, False),
])
def test_one_test_says_whether_a_folder_is_the_sketch_layout(tmp_path, text_config, marker,
                                                              sketch) -> None:
    folder = pipeline(tmp_path / "model", text_config, marker)
    assert is_sketch_folder(folder) is sketch
    family = pipeline_family(folder, "StableDiffusionPipeline")
    assert (family is families.SKETCH) is sketch
    if not sketch:
        assert family is families.SD1
