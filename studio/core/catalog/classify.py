"""THE classifier: which family (studio.core.families) a folder or a single file is.

Every rule that reads tensor names, pipeline classes or config fields to tell families
apart lives here, once; the catalog lists what it says and the image engine loads by it
(the family's `latent` names the offline config folder of a single-file checkpoint).
Reads small JSON files and headers only: no torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.core import families as fam
from studio.core.catalog.entry import PICKLE_NOTE, ModelEntry, entry_for
from studio.core.catalog.headers import (
    HEADER_ERRORS,
    json_file,
    read_gguf_metadata,
    read_safetensors_header,
)
from studio.core.families import Family

log = logging.getLogger(__name__)

#: files that make a folder one model (scans classify the folder, not the files in it):
#: diffusers pipelines, transformers/diffusers models and Lab exports, peft adapters
FOLDER_MARKERS = ("model_index.json", "config.json", "adapter_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".gguf", ".tar", ".msgpack")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".gguf")
MIN_SINGLE_FILE = 1_000_000  # smaller files are embeddings, configs, previews

# ------------------------------------------------------------------ families by name/hint


def few_step(base: Family, hint: str) -> Family:
    """SD-Turbo/SDXL-Turbo/LCM from a name or metadata hint; else the base family."""
    hint = hint.lower()
    xl = base.latent == "sdxl"
    if "turbo" in hint:
        return fam.SDXL_TURBO if xl else fam.SD_TURBO
    if "lcm" in hint or "latent-consistency" in hint or "latent_consistency" in hint:
        return fam.SDXL_LCM if xl else fam.LCM
    return base


def base_family(family: str) -> str:
    """SD 1.x, SD 2.x or SDXL for an image family (what latent format it uses)."""
    found = fam.by_name(family)
    latent = fam.get(found.latent) if found is not None and found.latent else None
    return latent.name if latent is not None else family


def is_few_step(family: str) -> bool:
    """Turbo/LCM models want 1–8 steps and little or no guidance."""
    found = fam.by_name(family)
    return found is not None and found.few_step


def with_family(entry: ModelEntry, family: Family) -> ModelEntry:
    """The entry re-filed under another family (a hint found after classifying it)."""
    return replace(entry, family=family.name, family_id=family.id, modality=family.modality,
                   role=family.role, explorable=family.explorable)


# ------------------------------------------------------------------ original-layout keys

UNET_PREFIX = "model.diffusion_model."
CONV_IN = UNET_PREFIX + "input_blocks.0.0.weight"
_ATTN = UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"

#: the text encoder's key prefix → the family it marks: SD 1.x uses CLIP ViT-L
#: (`cond_stage_model.transformer`), SD 2.x OpenCLIP ViT-H (`cond_stage_model.model`),
#: SDXL two encoders (`conditioner.embedders.1`), its refiner only the OpenCLIP one
TEXT_ENCODERS: tuple[tuple[str, Family], ...] = (
    ("conditioner.embedders.1.", fam.SDXL),
    ("conditioner.embedders.0.model.", fam.SDXL_REFINER),
    ("cond_stage_model.model.", fam.SD2),
    ("cond_stage_model.transformer.", fam.SD1),
)

Shape = Callable[[str], Sequence[int] | None]


def has_unet(keys: Collection[str]) -> bool:
    """Whether a checkpoint holds a Stable Diffusion UNet (original layout)."""
    return any(k.startswith(UNET_PREFIX) for k in keys)


def text_encoder_family(keys: Collection[str]) -> Family | None:
    """The family a checkpoint's text encoder marks (None: it carries none)."""
    for prefix, family in TEXT_ENCODERS:
        if any(k.startswith(prefix) for k in keys):
            return family
    return None


def checkpoint_layout(keys: Collection[str], shape: Shape = lambda _k: None,
                      arch: str = "") -> Family | None:
    """The family a single-file checkpoint's tensor names say it is, before any Turbo/LCM
    hint (None: not something Studio runs, e.g. SD3/Flux, or nothing recognised).

    A UNet without a text encoder is told apart by its cross-attention width (1024 for
    SD 2.x) or the modelspec architecture; components are LoRA, TAESD, VAE, embedding
    and diffusers-layout UNet files.
    """
    if has_unet(keys):
        other = (UNET_PREFIX + "joint_blocks.", UNET_PREFIX + "double_blocks.")
        if any(k.startswith(other) for k in keys):
            return None  # SD3 / Flux: not something Studio's image engine runs
        found = text_encoder_family(keys)
        if found is None:
            width = shape(_ATTN) if _ATTN in keys else None
            if width and width[-1] == 1024:
                found = fam.SD2
            else:
                found = fam.SDXL if "stable-diffusion-xl" in arch else fam.SD1
        conv_in = shape(CONV_IN) if CONV_IN in keys else None
        if conv_in and len(conv_in) > 1 and conv_in[1] == 9 and found.latent in fam.INPAINT_OF:
            return fam.INPAINT_OF[found.latent]  # a dedicated inpainting checkpoint
        return found
    if any("lora_" in k or ".lora_down." in k or ".lora_A." in k for k in keys):
        return fam.LORA
    if any(k.startswith(("encoder.layers.", "decoder.layers.")) for k in keys):
        return fam.TAESD
    if any(k.startswith(("encoder.down.", "decoder.up.", "first_stage_model.")) for k in keys) or (
        any(k.startswith("encoder.down_blocks.") for k in keys)
        and any(k.startswith("decoder.up_blocks.") for k in keys)
    ):
        return fam.VAE
    if any(k in ("emb_params", "clip_l", "clip_g") for k in keys):
        return fam.EMBEDDING
    if any(k.startswith("down_blocks.") for k in keys) and any(
        k.startswith("mid_block.") for k in keys
    ):
        return fam.UNET
    return None


# ------------------------------------------------------------------ upscalers

#: folders upscaler files live in: ours, AUTOMATIC1111's and ComfyUI's (case-insensitive)
UPSCALER_FOLDERS = ("upscale", "esrgan", "realesrgan", "swinir", "upscale_models")


def upscaler_layout(keys: Collection[str]) -> Family | None:
    """The upscaler family a state dict's tensor names say it is (the key patterns spandrel
    detects architectures by), or None: not an upscaler Studio recognises."""
    keyset = set(keys)
    if any(k.startswith("layers.0.residual_group.") for k in keyset):
        return fam.UPSCALER_SWINIR  # SwinIR (and its HAT/DRCT kin share the layout)
    if "model.0.weight" in keyset and any(".RDB1." in k or ".sub." in k for k in keyset):
        return fam.UPSCALER_ESRGAN  # the original ESRGAN layout (A1111's models/ESRGAN)
    if "conv_first.weight" in keyset and any(
        k.startswith(("body.0.rdb1.", "RRDB_trunk.0.")) for k in keyset
    ):
        return fam.UPSCALER_ESRGAN  # BasicSR's RRDBNet layout (Real-ESRGAN ×4, ×2)
    if "body.0.weight" in keyset and all(k.startswith("body.") for k in keyset):
        return fam.UPSCALER  # Real-ESRGAN Compact (SRVGGNet)
    return None


def in_upscaler_folder(path: Path) -> bool:
    """Whether a file lies under a folder meant for upscalers (models/ESRGAN, ...)."""
    return any(part.lower() in UPSCALER_FOLDERS for part in path.parent.parts)


def header_family(header: dict[str, Any], hint: str = "") -> Family | None:
    """The family of a safetensors checkpoint from its header (names, shapes, metadata);
    Turbo/LCM share their base's layout and are told apart by name or modelspec."""
    meta = header.get("__metadata__") or {}
    arch = str(meta.get("modelspec.architecture", "")).lower() if isinstance(meta, dict) else ""
    title = str(meta.get("modelspec.title", "")) if isinstance(meta, dict) else ""
    keys = [k for k in header if k != "__metadata__"]

    def shape(key: str) -> Sequence[int] | None:
        info = header.get(key)
        return info.get("shape") if isinstance(info, dict) else None

    found = checkpoint_layout(keys, shape, arch)
    if found is None or found.role != "generate" or found in fam.INPAINT_OF.values():
        return found
    return few_step(found, f"{hint} {arch} {title}")


def family_from_header(header: dict[str, Any], hint: str = "") -> tuple[str, str, str] | None:
    """(modality, family name, role) of a single-file checkpoint, or None."""
    found = header_family(header, hint)
    return None if found is None else (found.modality, found.name, found.role)


def family_from_name(name: str) -> Family:
    """Best guess for a pickled checkpoint (its keys cannot be read without unpickling)."""
    low = name.lower()
    if "xl" in low or "pony" in low:
        base = fam.SDXL
    elif "v2" in low or "2.1" in low or "768" in low:
        base = fam.SD2
    else:
        base = fam.SD1
    return few_step(base, low)


# ------------------------------------------------------------------ a LoRA's base family

#: the widths of the text encoders: CLIP ViT-L (SD 1.x, SDXL's first), OpenCLIP ViT-H
#: (SD 2.x); UNet cross-attention context widths (SDXL's is both encoders, 2048; the
#: built-in sketch model's is MiniLM's 384)
_TE_WIDTH = {768: fam.SD1, 1024: fam.SD2}
_CONTEXT_WIDTH = {384: fam.SKETCH, 768: fam.SD1, 1024: fam.SD2, 2048: fam.SDXL}
#: ss_base_model_version of a LoRA the Lab trains on the built-in sketch model (kohya has none)
SKETCH_LORA_VERSION = "studio_sketch_v1"


def _shape(header: dict[str, Any], key: str) -> list[int]:
    info = header.get(key)
    shape = info.get("shape") if isinstance(info, dict) else None
    return [int(s) for s in shape] if isinstance(shape, list) else []


def lora_base(header: dict[str, Any]) -> Family | None:
    """SD 1.x / SD 2.x / SDXL / the sketch model from a LoRA's safetensors header (None:
    it does not say)."""
    meta = header.get("__metadata__") or {}
    meta = meta if isinstance(meta, dict) else {}
    version = str(meta.get("ss_base_model_version", "")).lower()
    arch = str(meta.get("modelspec.architecture", "")).lower()
    if version == SKETCH_LORA_VERSION:
        return fam.SKETCH
    if version.startswith("sdxl") or "stable-diffusion-xl" in arch:
        return fam.SDXL
    if version.startswith("sd_v2") or "stable-diffusion-v2" in arch:
        return fam.SD2
    if version.startswith("sd_v1") or "stable-diffusion-v1" in arch:
        return fam.SD1
    if str(meta.get("ss_v2", "")).lower() == "true":
        return fam.SD2
    keys = [k for k in header if k != "__metadata__"]
    if any(k.startswith(("lora_te2_", "lora_te1_", "text_encoder_2.", "te2.")) for k in keys):
        return fam.SDXL
    for key in keys:  # a text encoder's query projection: its input width
        if ("q_proj" in key and key.startswith(("lora_te_", "text_encoder.", "te."))
                and (".lora_down." in key or ".lora_A." in key)):
            width = _shape(header, key)
            if len(width) == 2 and width[1] in _TE_WIDTH:
                return _TE_WIDTH[width[1]]
    for key in keys:  # the UNet's cross-attention key projection reads the context
        if ("attn2" in key and "to_k" in key
                and (".lora_down." in key or ".lora_A." in key)):
            width = _shape(header, key)
            if len(width) == 2 and width[1] in _CONTEXT_WIDTH:
                return _CONTEXT_WIDTH[width[1]]
    return None


# ------------------------------------------------------------------ an embedding's layout

#: files a textual-inversion embedding comes in (A1111's .pt, diffusers' learned_embeds.bin)
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
#: the text encoder widths an embedding's vectors fit: CLIP ViT-L (SD 1.x), OpenCLIP
#: ViT-H (SD 2.x), OpenCLIP ViT-bigG (SDXL's second encoder, only beside a ViT-L one)
_EMBEDDING_WIDTH = {768: fam.SD1, 1024: fam.SD2}
_SDXL_KEYS = ("clip_l", "clip_g")


def embedding_layout(header: dict[str, Any]) -> tuple[Family | None, str] | None:
    """(base family, layout) of a safetensors textual-inversion embedding, from its header;
    None when the file is not an embedding (a LoRA, a VAE, a model).

    SDXL's holds `clip_l` + `clip_g` vectors, A1111's SD ones `emb_params`, diffusers'
    one tensor named by its token; the vectors' width tells SD 1.x (768) from SD 2.x
    (1024). The base is None when the widths fit no known text encoder.
    """
    keys = [k for k in header if k != "__metadata__"]
    if not keys:
        return None
    shapes = {k: _shape(header, k) for k in keys}
    if any(len(s) not in (1, 2) or not s or s[-1] == 0 for s in shapes.values()):
        return None  # an embedding holds rows of vectors, nothing else
    if checkpoint_layout(keys, lambda k: shapes[k]) not in (None, fam.EMBEDDING):
        return None

    def count(shape: list[int]) -> int:
        return shape[0] if len(shape) == 2 else 1

    if all(k in shapes for k in _SDXL_KEYS):
        vectors = count(shapes["clip_l"])
        return fam.SDXL, f"{vectors} {_plural(vectors)} for clip_l + clip_g"
    key = "emb_params" if "emb_params" in shapes else keys[0]
    width = shapes[key][-1]
    vectors = count(shapes[key])
    return _EMBEDDING_WIDTH.get(width), f"{vectors} {_plural(vectors)} of {width}"


def _plural(n: int) -> str:
    return "vector" if n == 1 else "vectors"


def classify_embedding(path: Path, issues: list[str] | None = None) -> ModelEntry | None:
    """An embeddings-folder file as a catalog entry: name (what prompts write), size and
    the base family its layout says; pickled files (.pt, .bin) cannot say without
    unpickling. None: not an embedding file (a bad one is reported in `issues`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_SUFFIXES or path.name.startswith("."):
        return None
    try:
        size = path.stat().st_size
        if suffix != ".safetensors":
            folder_base = invoke_base(path)
            return replace(entry_for(fam.EMBEDDING, str(path), path.stem, "pickle", size,
                                     pickled=True, note=PICKLE_NOTE),
                           base=folder_base.name if folder_base else "")
        header = read_safetensors_header(path)
    except HEADER_ERRORS as exc:
        if issues is not None:
            issues.append(f"{path}: skipped, {getattr(exc, 'strerror', None) or exc}.")
        return None
    found = embedding_layout(header)
    if found is None:
        return None
    base, layout = found
    base = base or invoke_base(path)  # the file does not say: an InvokeAI folder may
    note = f"Embedding for {base.name}: {layout}" if base else f"Embedding: {layout}"
    return replace(entry_for(fam.EMBEDDING, str(path), path.stem, "safetensors", size,
                             note=note), base=base.name if base else "")


# ------------------------------------------------------------------ folders


def dir_size(folder: Path) -> int:
    """Bytes under folder; symlinked files count their target (HF cache), dirs are not followed."""
    total = 0
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file():  # follows file symlinks (HF snapshots → blobs)
                            total += e.stat().st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def has_weights(folder: Path, depth: int = 2) -> bool:
    """Whether a model folder holds any weight file (an HF snapshot may hold configs only)."""
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_file() and e.name.endswith(WEIGHT_SUFFIXES):
                        return True
                    if depth > 0 and e.is_dir(follow_symlinks=False) and has_weights(
                        Path(e.path), depth - 1
                    ):
                        return True
                except OSError:
                    continue
    except OSError:
        return False
    return False


def _only_pickles(folder: Path) -> bool:
    """True when the weights under folder are .bin/.ckpt/.pt only (no safetensors)."""
    safe = pickled = False
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.endswith(".safetensors"):
                safe = True
            elif name.endswith((".bin", ".ckpt", ".pt", ".pth")):
                pickled = True
        if root.count(os.sep) - str(folder).count(os.sep) >= 2:
            _dirs.clear()
    return pickled and not safe


#: InvokeAI's models folder keeps each kind per base model (`models/sd-1/lora`,
#: `models/sdxl/embedding`): the family each base folder names ("any" names none)
INVOKE_BASE_FAMILIES: dict[str, Family] = {
    "sd-1": fam.SD1, "sd-2": fam.SD2, "sdxl": fam.SDXL, "sdxl-refiner": fam.SDXL_REFINER}
#: the folder names LoRAs and embeddings are kept in (the scan looks for these too)
LORA_FOLDERS = ("lora", "loras", "lycoris")
EMBEDDING_FOLDERS = ("embeddings", "embedding")
_INVOKE_KINDS = (*LORA_FOLDERS, *EMBEDDING_FOLDERS)


def invoke_base(path: Path) -> Family | None:
    """The base family an InvokeAI folder names for a LoRA or embedding under it
    (`models/sdxl/lora/x.safetensors` is for SDXL), for files that do not say it
    themselves; None anywhere else. The innermost such folder wins."""
    parts = [p.lower() for p in Path(path).parent.parts]
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in _INVOKE_KINDS and parts[i - 1] in INVOKE_BASE_FAMILIES:
            return INVOKE_BASE_FAMILIES[parts[i - 1]]
    return None


#: text_encoder/<this> in a sketch model folder: its text encoder is the packaged MiniLM,
#: by reference (the sketch engine writes it, `engines.sketch_text`)
SKETCH_TEXT_MARKER = "minilm.json"


def is_sketch_folder(folder: Path) -> bool:
    """The built-in sketch model's layout: MiniLM by reference (the marker), or a small
    BERT of its own trained with the UNet (the sketch recipe's `--text trained`). One
    definition for the catalog and the engine that loads the folder."""
    if (folder / "text_encoder" / SKETCH_TEXT_MARKER).is_file():
        return True
    return json_file(folder / "text_encoder" / "config.json").get("model_type") == "bert"


#: pipelines Studio lists but does not run, by their class name without "Pipeline"
_OTHER_PIPELINES = {"StableDiffusion3": "SD3", "Flux": "Flux"}


def pipeline_family(folder: Path, cls: str, hint: str = "") -> Family | str:
    """The family of a diffusers pipeline folder, or the display name of a pipeline that
    no engine of Studio runs (SD3, Flux, ...)."""
    scheduler = str(json_file(folder / "scheduler" / "scheduler_config.json").get("_class_name"))
    if scheduler == "LCMScheduler":
        hint += " lcm"
    inpainting = json_file(folder / "unet" / "config.json").get("in_channels") == 9
    if "XL" in cls:
        if "Img2Img" in cls and not (folder / "text_encoder").is_dir():
            return fam.SDXL_REFINER
        return fam.SDXL_INPAINT if inpainting else few_step(fam.SDXL, hint)
    if cls.startswith("LatentConsistencyModel"):
        return fam.LCM
    if cls.startswith(("StableDiffusionPipeline", "StableDiffusionImg2Img", "AutoPipeline",
                       "StableDiffusionInpaint")) or cls == "DiffusionPipeline":
        if is_sketch_folder(folder):
            return fam.SKETCH
        text = json_file(folder / "text_encoder" / "config.json")
        unet = json_file(folder / "unet" / "config.json")
        context = unet.get("cross_attention_dim")
        is_v2 = context == 1024 or text.get("hidden_size") == 1024
        if inpainting:
            return fam.SD2_INPAINT if is_v2 else fam.SD1_INPAINT
        return few_step(fam.SD2 if is_v2 else fam.SD1, hint)
    short = cls.removesuffix("Pipeline")
    return _OTHER_PIPELINES.get(short, short or "diffusers")


def config_family(data: dict[str, Any]) -> Family | None:
    """The family a single model's config.json names (autoencoders, UNet, LMs, MusicGen)."""
    cls = str(data.get("_class_name", ""))
    archs = " ".join(str(a) for a in data.get("architectures") or [])
    mtype = str(data.get("model_type", ""))
    if mtype == "studio-gan":  # a GAN the Lab trained (engines/gan.py "trained GANs")
        side = data.get("resolution")
        return fam.trained_gan(side) if isinstance(side, int) and 8 <= side <= 1024 else None
    if cls == "AutoencoderTiny":
        return fam.TAESD
    if cls == "AutoencoderKL":
        return fam.VAE
    if cls == "UNet2DConditionModel":
        return fam.UNET
    if mtype == "musicgen_melody" or "MusicgenMelody" in archs:
        return fam.MUSICGEN_MELODY
    if "musicgen" in mtype or "Musicgen" in archs:
        return fam.MUSICGEN
    if "CausalLM" in archs or "LMHeadModel" in archs:
        return fam.CAUSAL_LM
    if data.get("studio_model") == "vae":  # a VAE the Lab trained (engines/vae_model.py)
        side = data.get("size")
        return fam.lab_vae(side) if isinstance(side, int) and 8 <= side <= 1024 else None
    if data.get("format") == "composer-v1" and data.get("fine_tuned_from"):
        return fam.COMPOSER  # a Lab fine-tune (the bundled models/composer is a built-in)
    return None


def adapter_entry(folder: Path, name: str) -> ModelEntry | None:
    """A peft adapter folder: a text LoRA of the causal-LM family carrying its base (the
    Lab's studio.json names it by catalog id; peft's adapter_config.json by path)."""
    data = json_file(folder / "adapter_config.json")
    studio = json_file(folder / "studio.json")
    causal = data.get("task_type") == "CAUSAL_LM" or studio.get("kind") == "text-lora"
    if data.get("peft_type") != "LORA" or not causal:
        return None  # an image model's peft adapter, or another kind of adapter
    base = str(studio.get("base") or data.get("base_model_name_or_path") or "")
    title = str(studio.get("name") or name)
    base_name = str(studio.get("base_name") or Path(base).name or "an unknown model")
    entry = entry_for(fam.CAUSAL_LM, str(folder), f"{title} (text LoRA)", "peft",
                      dir_size(folder), note=f"A text LoRA on {base_name}.")
    return replace(entry, base=base)


def classify_folder(
    folder: Path, name_hint: str | None = None, *, names: set[str] | None = None
) -> ModelEntry | None:
    """A diffusers pipeline, tiny autoencoder, transformers LM or MusicGen folder, or None.

    `names` (the folder's file names, when the caller already listed it) saves stats.
    The entry's location is filled in by the caller.
    """
    folder = Path(folder)
    name = name_hint or folder.name
    if names is None:
        names = {n for n in FOLDER_MARKERS if (folder / n).is_file()}
    if not names & set(FOLDER_MARKERS) or not has_weights(folder):
        return None  # configs only: a config folder, or a download that never finished
    try:
        if "adapter_config.json" in names and not names & {"model_index.json", "config.json"}:
            return adapter_entry(folder, name)
        if "model_index.json" in names:
            cls = str(json_file(folder / "model_index.json").get("_class_name", ""))
            if "Audio" in cls or "Music" in cls:
                return None  # AudioLDM & co: not run by Studio
            found = pipeline_family(folder, cls, name)
            pickled = _only_pickles(folder)
            note = PICKLE_NOTE if pickled else ""
            if isinstance(found, str):
                return ModelEntry(str(folder), name, "image", found, "diffusers", "",
                                  dir_size(folder), role="other", pickled=pickled, note=note)
            return entry_for(found, str(folder), name, "diffusers", dir_size(folder),
                             pickled=pickled, note=note)
        data = json_file(folder / "config.json")
        family = config_family(data)
        if family is None:
            return None
        fmt = "diffusers" if data.get("_class_name") else "transformers"
        if family.explore is fam.Explore.GAN_LATENT:
            fmt = "safetensors"  # the Lab's GAN and VAE folders: config.json + model.safetensors
        if family.id.startswith("lab-vae-") or family is fam.COMPOSER:
            name = str(data.get("name") or name)  # trained in the Lab: the run's name
            fmt = "safetensors"
        pickled = _only_pickles(folder)
        return entry_for(family, str(folder), name, fmt, dir_size(folder), pickled=pickled,
                         note=PICKLE_NOTE if pickled else "")
    except OSError as exc:
        log.warning("catalog: skipping %s (%s)", folder, exc)
    return None


# ------------------------------------------------------------------ single files

#: GGUF architectures that are parts of other models (vision towers, encoders), not LMs
_GGUF_PARTS = ("clip", "whisper", "bert", "nomic-bert", "t5encoder")


def classify_file(path: Path, issues: list[str] | None = None) -> ModelEntry | None:
    """A single-file checkpoint (.safetensors, .ckpt, .gguf) or None.

    safetensors files are recognised from their header (no torch); a file that is
    not readable is reported in `issues` (one line each) rather than raised.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    pickled_upscaler = suffix in (".pth", ".pt") and in_upscaler_folder(path)
    if suffix not in SINGLE_FILE_SUFFIXES and not pickled_upscaler:
        return None
    try:
        size = path.stat().st_size
    except OSError as exc:
        if issues is not None:
            issues.append(f"{path}: cannot be read ({exc.strerror or exc}).")
        return None
    if size < MIN_SINGLE_FILE and suffix == ".ckpt":  # others are recognised by content
        return None
    if pickled_upscaler:  # its keys cannot be read without unpickling: the folder says
        return entry_for(fam.UPSCALER, str(path), path.stem, "pickle", size, pickled=True,
                         note=PICKLE_NOTE)
    try:
        if suffix == ".gguf":
            meta = read_gguf_metadata(path)
            if str(meta.get("general.architecture", "")) in _GGUF_PARTS:
                return None
            name = str(meta.get("general.name") or path.stem)
            return entry_for(fam.CAUSAL_LM, str(path), name, "gguf", size)
        if suffix == ".ckpt":
            return entry_for(family_from_name(path.stem), str(path), path.stem, "ckpt", size,
                             pickled=True, note=PICKLE_NOTE)
        header = read_safetensors_header(path)
    except HEADER_ERRORS as exc:
        if issues is not None:
            issues.append(f"{path}: skipped, {exc}.")
        return None
    found = header_family(header, path.stem)
    if found is None:
        upscaler = upscaler_layout([k for k in header if k != "__metadata__"])
        if upscaler is not None:  # small networks are whole upscalers, not crumbs
            return entry_for(upscaler, str(path), path.stem, "safetensors", size)
        return None
    if found.role == "component" and size < MIN_SINGLE_FILE and found is not fam.LORA:
        return None  # textual-inversion embeddings and other crumbs
    entry = entry_for(found, str(path), path.stem, "safetensors", size)
    if found is fam.LORA:  # what base model it is for, where the file says
        base = lora_base(header) or invoke_base(path)
        if base is not None:
            entry = replace(entry, base=base.name, note=f"LoRA for {base.name}")
    elif found is fam.EMBEDDING:  # a big one outside an embeddings folder
        return classify_embedding(path, issues) or entry
    return entry


def classify(path: Path) -> ModelEntry | None:
    """Whatever a path holds: a model folder or a single file (None: nothing Studio knows)."""
    path = Path(path)
    if path.is_dir():
        return classify_folder(path)
    return classify_file(path) if path.is_file() else None
