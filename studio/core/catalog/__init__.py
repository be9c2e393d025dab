"""The model catalog: every model the app can use, found on disk or built in.

Plain Python: walks folders with `os.scandir` and reads small JSON files and the
JSON header of safetensors files (never the weights, never torch), so a scan over
thousands of files stays cheap and can run on any thread.

- `headers`: safetensors / GGUF header readers;
- `classify`: THE classifier, folders and single files → ModelEntry with its family;
- `scan`: walking models/, the settings folders and the Hugging Face cache;
- `builtins`: entries for the built-in models of `studio.core.families`;
- `weights`: the files a loader reads and the memory they take;
- `loras`: LoRA and embedding folders (ours, A1111's, ComfyUI's, Fooocus's, InvokeAI's),
  finding one by name;
- `comfy_paths`: the folders a ComfyUI `extra_model_paths.yaml` names;
- `fooocus_paths`: the folders a Fooocus `config.txt` names;
- `entry`: ModelEntry itself.
"""

from __future__ import annotations

from studio.core import families as _families
from studio.core.catalog.builtins import BUILTINS, builtin_entries, builtin_entry, builtin_path
from studio.core.catalog.classify import (
    CONV_IN,
    EMBEDDING_SUFFIXES,
    MIN_SINGLE_FILE,
    SINGLE_FILE_SUFFIXES,
    UNET_PREFIX,
    WEIGHT_SUFFIXES,
    base_family,
    checkpoint_layout,
    classify,
    classify_embedding,
    classify_file,
    classify_folder,
    config_family,
    dir_size,
    embedding_layout,
    family_from_header,
    family_from_name,
    few_step,
    has_unet,
    has_weights,
    header_family,
    is_few_step,
    lora_base,
    pipeline_family,
    text_encoder_family,
    with_family,
)
from studio.core.catalog.entry import (
    PICKLE_NOTE,
    PICKLED_FORMATS,
    ROLES,
    ModelEntry,
    entry_for,
    format_size,
)
from studio.core.catalog.headers import read_gguf_metadata, read_safetensors_header
from studio.core.catalog.loras import (
    LoraFile,
    find_embeddings,
    find_lora,
    find_loras,
    lora_file,
    lora_hash,
    short_hash,
)
from studio.core.catalog.scan import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ENTRIES,
    checkpoint_dirs,
    embedding_dirs,
    find,
    for_modality,
    hf_cache_dirs,
    iter_scan,
    last_issues,
    lora_dirs,
    model_dirs,
    repo_id_from_cache_name,
    scan,
    scan_embeddings,
    scan_folder,
    scan_hf_cache,
)
from studio.core.catalog.weights import (
    LLAMA_BATCH,
    LLAMA_CONTEXT_CAP,
    estimate_memory,
    gguf_memory,
    weight_files,
)

# Family names (what `ModelEntry.family` holds), from the descriptors. Image families
# keep "SDXL" as a prefix for everything SDXL-based, so `family.startswith("SDXL")` works.
SD1 = _families.SD1.name
SD2 = _families.SD2.name
SDXL = _families.SDXL.name
SD_TURBO = _families.SD_TURBO.name
SDXL_TURBO = _families.SDXL_TURBO.name
LCM = _families.LCM.name
SDXL_LCM = _families.SDXL_LCM.name
SDXL_REFINER = _families.SDXL_REFINER.name
VAE = _families.VAE.name
TAESD = _families.TAESD.name
LORA = _families.LORA.name
EMBEDDING = _families.EMBEDDING.name
UNET = _families.UNET.name
MUSICGEN = _families.MUSICGEN.name
MUSICGEN_MELODY = _families.MUSICGEN_MELODY.name
CAUSAL_LM = _families.CAUSAL_LM.name
GAN = _families.GAN_FACES.name
COMPOSER = _families.COMPOSER.name

__all__ = [
    "BUILTINS",
    "CAUSAL_LM",
    "COMPOSER",
    "CONV_IN",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ENTRIES",
    "EMBEDDING",
    "EMBEDDING_SUFFIXES",
    "GAN",
    "LCM",
    "LLAMA_BATCH",
    "LLAMA_CONTEXT_CAP",
    "LORA",
    "MIN_SINGLE_FILE",
    "MUSICGEN",
    "MUSICGEN_MELODY",
    "PICKLED_FORMATS",
    "PICKLE_NOTE",
    "ROLES",
    "SD1",
    "SD2",
    "SDXL",
    "SDXL_LCM",
    "SDXL_REFINER",
    "SDXL_TURBO",
    "SD_TURBO",
    "SINGLE_FILE_SUFFIXES",
    "TAESD",
    "UNET",
    "UNET_PREFIX",
    "VAE",
    "WEIGHT_SUFFIXES",
    "LoraFile",
    "ModelEntry",
    "base_family",
    "builtin_entries",
    "builtin_entry",
    "builtin_path",
    "checkpoint_dirs",
    "checkpoint_layout",
    "classify",
    "classify_embedding",
    "classify_file",
    "classify_folder",
    "config_family",
    "dir_size",
    "embedding_dirs",
    "embedding_layout",
    "entry_for",
    "estimate_memory",
    "family_from_header",
    "family_from_name",
    "few_step",
    "find",
    "find_embeddings",
    "find_lora",
    "find_loras",
    "for_modality",
    "format_size",
    "gguf_memory",
    "has_unet",
    "has_weights",
    "header_family",
    "hf_cache_dirs",
    "is_few_step",
    "iter_scan",
    "last_issues",
    "lora_base",
    "lora_dirs",
    "lora_file",
    "lora_hash",
    "model_dirs",
    "pipeline_family",
    "read_gguf_metadata",
    "read_safetensors_header",
    "repo_id_from_cache_name",
    "scan",
    "scan_embeddings",
    "scan_folder",
    "scan_hf_cache",
    "short_hash",
    "text_encoder_family",
    "weight_files",
    "with_family",
]
