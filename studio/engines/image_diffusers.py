"""Text-to-image with diffusers: SD 1.x/2.x, SDXL, Turbo and LCM, as folders or single files.

A model is either a diffusers pipeline folder (with model_index.json) or one checkpoint
file in the original Stable Diffusion layout. Single files are loaded offline with the
config folders shipped in models/configs/<latent>/ (JSON configs and CLIP tokenizer
files, no weights), where <latent> is the family's `latent` as the catalog's classifier
reads it from the checkpoint's key names.

Noise is drawn on the CPU from the seed (seed+i for batch item i, like A1111), so a seed
gives the same picture on any device; the sampler is rebuilt for each job from the
model's own scheduler config.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import pickle
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from studio.core import catalog, families, paths, prompts
from studio.core.catalog import model_dirs
from studio.core.errors import ModelError, RequestError, StudioError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest, Request
from studio.core.results import Preview, Result
from studio.core.seeds import MAX_SEED
from studio.core.settings import Settings
from studio.core.store import Store
from studio.engines import sketch_text
from studio.engines.base import Events, LoadSpec, wrong_kind
from studio.engines.devices import cpu_generator, module_bytes, torch_dtype
from studio.engines.directions import PrincipalDirections
from studio.engines.embeddings import EmbeddingShelf
from studio.engines.explore import Cond, ExplorableEngine
from studio.engines.latents import seed_noise, seeded_noise, slerp
from studio.engines.lora import LoraStack, wanted
from studio.engines.previews import (
    LinearPreview,
    PreviewThrottle,
    TaesdPreview,
    X0Tap,
    fast_decode,
    find_taesd,
    preview_payload,
)
from studio.engines.prompt_encoding import Conditioning, encode_for_pipeline, encoders_of
from studio.engines.schedulers import build_scheduler
from studio.engines.vae import VaeSwap

# Offline by default. huggingface_hub reads these when first imported, and nothing above
# imports it: diffusers is imported lazily, after this line.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SINGLE_FILE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
# SD 2.x: 768-v models have a much wider spread in this bias than 512 epsilon models
# (the heuristic ComfyUI uses; the key layout alone cannot tell them apart).
SD2_V_PROBE = catalog.UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
FEW_STEP_NAMES = re.compile(r"turbo|lightning|hyper", re.IGNORECASE)
HOW_TO_GET = (
    "put a diffusers folder (with model_index.json) or a .safetensors checkpoint in the "
    "models folder, or choose a models folder in Settings"
)


@dataclass(frozen=True)
class Checkpoint:
    """What a single-file checkpoint's keys say about it."""

    family: str  # its latent format, Family.latent: "sd1" | "sd2" | "sdxl"
    prediction_type: str | None = None  # override of the config's, when the file tells
    inpaint: bool = False  # a dedicated inpainting UNet (9 input channels)


# ---------------------------------------------------------------------------------------
# finding and classifying models


def resolve_model_path(model: str, settings: Settings) -> Path:
    """The file or folder a model id names: an absolute path, or a name in a models folder."""
    if model.startswith("builtin:"):  # a built-in pipeline folder (the sketch model)
        found = catalog.builtin_path(model)
        if found is None or not found.is_dir():
            raise ModelError(f"The built-in {model} has no weights here ({found}); run "
                             "`make train-sketch` or restore models/.")
        return found
    raw = Path(model).expanduser()
    if raw.is_absolute():
        candidates = [raw]
    else:
        candidates = [Path.cwd() / raw] + [folder / raw for folder in model_dirs(settings)]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    places = ", ".join(str(c) for c in candidates)
    raise ModelError(f"Image model {model!r} was not found (looked in {places}); {HOW_TO_GET}.")


def configs_dir() -> Path:
    """Where the offline diffusers config folders for single-file checkpoints live."""
    return paths.bundled_models_dir() / "configs"


def detect_checkpoint(
    name: str, keys: set[str], shape: Callable[[str], tuple[int, ...]],
    tensor: Callable[[str], torch.Tensor], *, inpaint: bool = False,
) -> Checkpoint:
    """Tell SD 1.x / 2.x / SDXL apart by the catalog's key rules, refusing in one sentence
    what text-to-image cannot load; the SD 2.x prediction type is read from one tensor.

    `inpaint`: the caller runs dedicated inpainting checkpoints too (a 9-channel UNet, the
    engine does: `Checkpoint.inpaint`); other channel counts (image editing) are refused.
    """
    if not catalog.has_unet(keys):
        raise ModelError(
            f"{name} holds no diffusion model (it may be a LoRA, a VAE or an embedding); "
            "choose a full checkpoint."
        )
    conv_in = catalog.CONV_IN
    channels = shape(conv_in)[1] if conv_in in keys else 4
    if channels != 4 and not (inpaint and channels == 9):
        raise ModelError(
            f"{name} is an image-editing model ({channels} input channels); Studio runs "
            "regular and 9-channel inpainting checkpoints." if inpaint else
            f"{name} is an inpainting or image-editing model ({channels} input "
            "channels); text-to-image needs a regular checkpoint."
        )
    found = catalog.text_encoder_family(keys)
    if found is families.SDXL_REFINER:
        raise ModelError(
            f"{name} is an SDXL refiner, which improves finished images; choose an SDXL base model."
        )
    if found is None:
        raise ModelError(
            f"{name} has no text encoder inside, so it cannot be loaded as one file; "
            "use the model's diffusers folder instead."
        )
    family = found.latent
    prediction = None
    if "v_pred" in keys:
        prediction = "v_prediction"
    elif family == "sd2" and SD2_V_PROBE in keys:
        spread = float(tensor(SD2_V_PROBE).float().std(unbiased=False))
        prediction = "v_prediction" if spread > 0.09 else "epsilon"
    return Checkpoint(family, prediction, inpaint=channels == 9)


def read_checkpoint(path: Path, allow_pickle: bool) -> Checkpoint:
    """Classify a single-file checkpoint, reading only its keys (safetensors) when possible."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                keys = set(f.keys())
                return detect_checkpoint(
                    path.name, keys,
                    lambda k: tuple(f.get_slice(k).get_shape()),
                    f.get_tensor, inpaint=True,
                )
        except StudioError:
            raise
        except Exception as exc:
            raise ModelError(f"{path.name} is not a readable safetensors file ({exc}).") from exc
    if suffix not in PICKLE_SUFFIXES:
        raise ModelError(
            f"{path.name}: Studio reads .safetensors checkpoints and diffusers folders, "
            f"not {suffix or 'files without an extension'}."
        )
    if not allow_pickle:
        raise ModelError(
            f"{path.name} is a pickled checkpoint, which can run code when opened; convert it "
            "to .safetensors, or allow pickled checkpoints in Settings (they are then read "
            "as plain weights only)."
        )
    state = load_pickled_weights(path)
    return detect_checkpoint(
        path.name, set(state), lambda k: tuple(state[k].shape), lambda k: state[k],
        inpaint=True,
    )


def load_pickled_weights(path: Path) -> dict[str, torch.Tensor]:
    """A pickled checkpoint's state dict, read with weights_only (no code runs)."""
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path.name} contains more than plain weights (loading it would run code), "
            "so Studio will not open it."
        ) from exc
    except Exception as exc:
        raise ModelError(f"{path.name} could not be read as a checkpoint ({exc}).") from exc
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} does not hold a state dict of weights.")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def folder_family(folder: Path) -> str:
    """sd1 / sd2 / sdxl for a pipeline folder, by the catalog's classifier (it decides the
    preview colours and the preview decoder)."""
    entry = catalog.classify_folder(folder)
    family = entry.descriptor if entry is not None else None
    if family is None or not family.latent:
        what = entry.family if entry is not None else "not a model folder Studio knows"
        raise ModelError(f"{folder.name} is {what}; Studio's image engine runs Stable "
                         "Diffusion 1.x/2.x, SDXL, Turbo and LCM pipelines.")
    return family.latent


def family_name(latent: str) -> str:
    """"SD 1.x" for "sd1": the display name of a latent format's base family."""
    found = families.get(latent)
    return found.name if found is not None else latent


def _folder_is_pickled(folder: Path, index: dict[str, Any]) -> bool:
    """True when some weighted component of a pipeline folder has only pickled weights."""
    for name, value in index.items():
        sub = folder / name
        if name.startswith("_") or not isinstance(value, list) or not sub.is_dir():
            continue
        has_safe = any(sub.glob("*.safetensors"))
        has_pickle = any(p.suffix in PICKLE_SUFFIXES for p in sub.iterdir())
        if has_pickle and not has_safe:
            return True
    return False


def _folder_variant(folder: Path) -> str | None:
    """'fp16' when the UNet only comes as an fp16 variant (common in downloaded folders)."""
    unet = folder / "unet"
    if not unet.is_dir():
        return None
    names = [p.name for p in unet.iterdir()]
    plain = any(re.fullmatch(r"diffusion_pytorch_model\.(safetensors|bin)", n) for n in names)
    fp16 = any(".fp16." in n for n in names)
    return "fp16" if fp16 and not plain else None


#: A1111 model hashes by resolved path, with the size and mtime they were computed for
HASHES = Store()
HASHES_KEY = "model-hashes.json"


def model_hash(path: Path) -> str:
    """A1111's short model hash (first 10 hex digits of the file's SHA-256), cached by
    path, size and modification time so each checkpoint is read for it only once."""
    return file_sha256(path)[:10]


def file_sha256(path: Path) -> str:
    """A file's SHA-256, cached by path, size and modification time (read once)."""
    stat = path.stat()
    key = str(path.resolve())
    stamp = [stat.st_size, stat.st_mtime_ns]
    cache = HASHES.read_json(HASHES_KEY)
    cache = cache if isinstance(cache, dict) else {}
    entry = cache.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return str(entry["sha256"])
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    cache[key] = {"stamp": stamp, "sha256": digest}
    HASHES.write_json(HASHES_KEY, cache)
    return digest


def weights_key(path: Path, component: str) -> str:
    """What names one component's weights (the OpenVINO cache key): the SHA-256 of its
    weight files in a diffusers folder, of the whole file for a single-file checkpoint."""
    if path.is_file():
        return f"{file_sha256(path)}:{component}"
    folder = path / component
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", *PICKLE_SUFFIXES)) \
        if folder.is_dir() else []
    if not files:  # nothing to hash (should not happen for a loaded pipeline): never reuse
        return f"unhashed:{path.resolve()}:{component}:{time.time_ns()}"
    return ",".join(f"{p.name}={file_sha256(p)}" for p in files)


def _preview(events: Events, previewer: LinearPreview | TaesdPreview | None,
             tap: X0Tap | None, throttle: PreviewThrottle, step: int, total: int,
             info: dict[str, Any], final_from_previewer: bool) -> None:
    """A live preview of this step when the throttle allows one. None of the last step
    when the final image comes from the previewer's own decoder (fast decode): it would be
    the same picture one decode early, which is half a second of a one-step 512² job on a
    CPU; with the full VAE, the last preview shows the picture well before its decode."""
    if previewer is None or tap is None or (final_from_previewer and step >= total):
        return
    if not throttle.due():
        return
    started = time.perf_counter()
    x0 = tap.estimate()
    images = previewer(x0) if x0 is not None else None
    if images:
        events.preview(Preview("image", preview_payload(images), step, total, info=info))
    throttle.record(started)


@dataclass
class RunOptions:
    """How one job runs on this machine (from the settings in force): not part of the
    request, but recorded beside it, since fast decode changes the pixels."""

    runtime: str = "pytorch"  # "pytorch" | "openvino"
    runtime_note: str = ""  # why that runtime
    bf16: bool = False  # bfloat16 maths on a CPU that has it natively
    fast_decode: bool = False  # the final image from TAESD
    ran: dict[str, str] | None = None  # filled by denoise: which runtime ran each part

    def record(self) -> dict[str, Any]:
        """What the job's record says about how it ran."""
        ran = self.ran or {}
        runtime = "openvino" if any("openvino" in v for v in ran.values()) else "pytorch"
        out: dict[str, Any] = {"runtime": runtime,
                               "final_decoder": "taesd" if self.fast_decode else "vae"}
        if self.runtime == "openvino":
            out["runtime_parts"] = dict(ran)
        if self.runtime == "openvino" or self.runtime_note not in ("", "chosen in settings"):
            out["runtime_note"] = self.runtime_note  # also why OpenVINO, when asked, did not run
        if self.bf16:
            out["bf16"] = True
        return out


# ---------------------------------------------------------------------------------------
# the engine


class DiffusersImageEngine(ExplorableEngine):
    """One loaded diffusers text-to-image pipeline; the explorer drives it too."""

    kinds = ("image", "explore")
    #: previews at most this often (s) and at most this share of the job's time
    preview_interval = 0.2
    preview_budget = 0.03

    def __init__(self, spec: LoadSpec, pipe: Any, family: str, name: str, *,
                 scheduler_config: dict[str, Any], taesd: torch.nn.Module | None = None,
                 source: str = "", hash_: str | None = None, path: Path | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__(spec)
        self.path = path  # the folder or file it was loaded from (OpenVINO's cache key)
        self.settings = settings or Settings()  # as loaded; a job may bring newer ones
        self._openvino: Any = None  # OpenVinoRuntime, made on the first OpenVINO job
        self._mode_pipe: Any = None  # the inpainting pipeline over the same modules
        self._variation: tuple[list[int], float] | None = None  # during a mode pass
        self.pipe = pipe
        self.family = family  # its latent format (Family.latent): "sd1" | "sd2" | "sdxl"
        self.name = name
        self.scheduler_config = scheduler_config
        self.taesd = taesd
        self.source = source  # "diffusers folder" | "single file"
        self.model_hash = hash_  # A1111's short hash, for single files
        self._call_params = set(inspect.signature(type(pipe).__call__).parameters)
        #: the explorer's encoded prompts, kept with the pipeline that encoded them
        self.explore_prompt_cache: dict[tuple[str, str, bool], Cond] = {}
        self.loras = LoraStack()  # LoRA adapters loaded into the pipeline, and the active ones
        self.embeddings = EmbeddingShelf()  # textual inversions, read when a prompt names them
        self._job_embeddings: dict[str, dict[int, torch.Tensor]] = {}  # this job's
        #: the VAE a job decodes with: the pipeline's own, or a separate one (engines/vae.py)
        self.vae_swap = VaeSwap(pipe.vae, file_sha256) \
            if getattr(pipe, "vae", None) is not None else None

    # loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> DiffusersImageEngine:
        path = resolve_model_path(spec.model, settings)
        dtype = torch_dtype(spec.dtype)
        import diffusers

        diffusers.utils.logging.disable_progress_bar()
        scheduler_extra: dict[str, Any] = {}
        hash_ = None
        if path.is_dir():
            pipe = _load_folder(path, dtype, settings.allow_pickle)
            family, source, name = folder_family(path), "diffusers folder", path.name
        else:
            checkpoint = read_checkpoint(path, settings.allow_pickle)
            events.check_cancelled()
            pipe = _load_single_file(path, checkpoint, dtype)
            family, source, name = checkpoint.family, "single file", path.stem
            if checkpoint.prediction_type:
                scheduler_extra["prediction_type"] = checkpoint.prediction_type
            if FEW_STEP_NAMES.search(path.name):
                scheduler_extra["timestep_spacing"] = "trailing"
            hash_ = model_hash(path)  # the file was just read: this pass hits the page cache
        pipe.set_progress_bar_config(disable=True)
        if getattr(pipe, "safety_checker", None) is not None:
            pipe.safety_checker = None
        pipe.to(spec.device)
        scheduler_config = {**dict(pipe.scheduler.config), **scheduler_extra}
        taesd = _load_taesd(family, settings, spec.device, dtype)
        if sketch_text.is_sketch_pipe(pipe):  # its own small VAE is its preview decoder
            taesd = sketch_text.PreviewDecoder(pipe.vae)
        log.info("loaded %s (%s, %s) on %s/%s%s", name, family_name(family), source,
                 spec.device, spec.dtype, " with TAESD previews" if taesd else "")
        return cls(spec, pipe, family, name, scheduler_config=scheduler_config, taesd=taesd,
                   source=source, hash_=hash_, path=path, settings=settings)

    # generating ------------------------------------------------------------------------
    def explore_backend(self, request: ExploreRequest) -> DiffusersBackend:
        if self.pipe is None:
            raise ModelError(f"{request.model} was unloaded; run the job again to reload it.")
        self.use_explorer_networks(request)
        self.use_vae("")  # the explorer's frames decode with the model's own VAE
        return DiffusersBackend(self, request)

    # LoRAs and embeddings ---------------------------------------------------------------
    def use_networks(self, prompt: str, negative: str, picked: Sequence[str],
                     settings: Settings | None = None) -> dict[str, Any]:
        """Make the job's LoRAs (the picked ones and the prompt's `<lora:...>` tags) the
        active adapters and find the embeddings its prompts name; what the job's record
        says about them. No LoRA: the adapters are off (the base model's pixels)."""
        settings = settings or self.settings
        uses, notes = wanted(picked, prompts.extract_networks(prompt).loras)
        records, missing = self.loras.apply(self.pipe, uses, settings, latent=self.family,
                                            model=self.name)
        found = self.embeddings.for_prompts([prompt, negative], settings)
        self._job_embeddings = {name: e.vectors for name, e in found.items()}
        info: dict[str, Any] = {}
        if records:
            info["loras"] = records
        if found:
            info["embeddings"] = [{"name": name, "hash": e.short_hash}
                                  for name, e in found.items()]
        if notes or missing:
            info["notes"] = [*notes, *missing]
        if missing:  # shown like the prompt's own warnings
            info["prompt_warnings"] = missing
        return info

    def use_explorer_networks(self, request: ExploreRequest) -> None:
        """The explorer renders with the LoRAs its prompts name (any anchor's), so the Art
        panel's never leak into its frames; its prompt cache is dropped when they change."""
        before = self.loras.active
        tags = [ref for text in {request.prompt, *request.anchor_prompts()}
                for ref in prompts.extract_networks(text).loras]
        uses, _notes = wanted((), tags)
        self.loras.apply(self.pipe, uses, self.settings, latent=self.family, model=self.name)
        if self.loras.active != before:  # (a tag naming no LoRA is left out, as in A1111)
            self.explore_prompt_cache.clear()

    def explorer_embeddings(self, prompt: str, negative: str) -> dict[str, dict[int, Any]]:
        """The embeddings an explorer prompt names, for its encoding."""
        found = self.embeddings.for_prompts([prompt, negative], self.settings)
        return {name: e.vectors for name, e in found.items()}

    def generate_plain(self, request: Request, events: Events) -> Result:
        """A job with its LoRAs and embeddings in use (`use_networks`), rendered by
        `_generate_plain`; the record lists them (infotext `Lora hashes`)."""
        networks: dict[str, Any] = {}
        if isinstance(request, ImageRequest) and self.pipe is not None:
            networks = self.use_networks(request.prompt, request.negative, request.loras,
                                         getattr(events, "settings", None) or self.settings)
        try:
            result = self._generate_plain(request, events)
        finally:
            self._job_embeddings = {}
        for key in ("notes", "prompt_warnings"):  # ours first, then the render's
            said = [*networks.pop(key, []), *result.info.get(key, [])]
            if said:
                result.info[key] = said
        result.info.update(networks)
        return result

    def _generate_plain(self, request: Request, events: Events) -> Result:
        if not isinstance(request, ImageRequest):
            raise RequestError(wrong_kind(self.name, request.kind, "image"))
        if self.pipe is None:
            raise ModelError(f"{self.name} was unloaded; run the job again to reload it.")
        if "LatentConsistency" in type(self.pipe).__name__ and request.scheduler != "LCM":
            raise RequestError(f"{self.name} is an LCM pipeline, which samples only with the "
                               "LCM scheduler; choose LCM.")
        events.check_cancelled()
        self.use_vae(request.vae, getattr(events, "settings", None))
        if request.mode != "txt2img" or request.hires or self.inpainting_unet:
            try:
                return self._generate_mode(request, events)
            except RuntimeError as exc:
                if "memory" not in str(exc).lower() and "allocate" not in str(exc):
                    raise
                raise RequestError(
                    f"A {request.mode} render at this size does not fit in memory; downscale "
                    "the init image, lower the size or hires scale, or use inpaint area "
                    "'masked'.") from exc
        t_start = time.perf_counter()
        want_previews = events.wants_previews()
        previewer = self._previewer() if want_previews else None
        throttle = PreviewThrottle(self.preview_interval, self.preview_budget)

        batch = request.batch_size
        seeds = [(request.seed + i) % (MAX_SEED + 1) for i in range(batch)]
        strength = float(request.variation_strength)
        variation_seeds = (
            [(request.variation_seed + i) % (MAX_SEED + 1) for i in range(batch)]
            if strength > 0 else []
        )
        latents, generators = self._initial_noise(request, seeds, variation_seeds, strength)

        steps = request.steps
        marks: dict[str, float] = {}
        options = self.run_options(getattr(events, "settings", None) or self.settings)
        preview_info = {"decoder": getattr(previewer, "name", None), "width": request.width,
                        "height": request.height, "batch": batch}

        def on_step(step: int, total: int, tap: X0Tap | None) -> None:
            now = time.perf_counter()
            marks.setdefault("first", now)
            marks["last"] = now
            try:
                events.progress(step, total)  # raises Cancelled: diffusers stops, no decode
                _preview(events, previewer, tap, throttle, step, total, preview_info,
                         options.fast_decode)
            finally:
                marks["callbacks"] = marks.get("callbacks", 0.0) + time.perf_counter() - now

        prompt_warnings: list[str] = []
        encode = self._encoder(request, steps, batch, self._call_params, prompt_warnings)
        ignored = [k for k in ("negative_prompt",)
                   if request.negative and k not in self._call_params]
        output = self.denoise({}, latents, generators, steps=steps,
                              guidance=request.guidance, width=request.width,
                              height=request.height, scheduler=request.scheduler,
                              schedule=request.schedule, on_step=on_step,
                              tap=want_previews, options=options,
                              status=events.status, encode=encode)
        events.check_cancelled()
        t_end = time.perf_counter()

        images = _to_uint8(output)
        info: dict[str, Any] = {
            "seeds": seeds,
            "model_name": self.name,
            "family": family_name(self.family),
            "scheduler": request.scheduler,
            "device": self.spec.device,
            "dtype": self.spec.dtype,
            "preview_decoder": preview_info["decoder"],
            "timings": _timings(t_start, marks, t_end, steps),
            **options.record(),
        }
        if self._openvino is not None and options.runtime == "openvino":
            info["timings"]["openvino_convert_s"] = round(self._openvino.convert_s, 3)
        if self.model_hash:
            info["model_hash"] = self.model_hash
        if variation_seeds:
            info["variation_seeds"] = variation_seeds
        if ignored:
            info["ignored"] = [k.replace("_", " ") for k in ignored]
        if prompt_warnings:
            info["prompt_warnings"] = prompt_warnings
            info["notes"] = list(prompt_warnings)  # the saved recipe's notes
        info.update(self.sampling_record(request))
        return Result(request=request, modality="image", images=images, info=info)

    def _encoder(self, request: ImageRequest, steps: int, batch: int, params: Any,
                 warned: list[str]) -> Callable[[], tuple[dict[str, Any], Conditioning | None]]:
        """The request's prompt encoding, for denoise to run inside the job's runtime (so
        OpenVINO runs the text encoder too); its warnings are added to `warned`."""
        def encode() -> tuple[dict[str, Any], Conditioning | None]:
            condition, cond, said = self.prompt_condition(
                request.prompt, request.negative, steps=steps, batch=batch, params=params,
                clip_skip=request.clip_skip)
            warned.extend(w for w in said if w not in warned)
            return condition, cond
        return encode

    def prompt_condition(self, prompt: str, negative: str, *, steps: int, batch: int,
                         params: Any, clip_skip: int = 1,
                         ) -> tuple[dict[str, Any], Conditioning | None, list[str]]:
        """The pipeline's conditioning for a prompt read as A1111 reads it (weights, BREAK,
        prompt editing, no 77-token cut), with what the user must be told.

        The mode pipelines (`from_pipe`) share these text encoders, so the same embeddings
        serve every pass. A pipeline without CLIP encoders gets the plain text.
        `<lora:...>` tags are taken out of the text (`use_networks` made them active);
        the job's textual-inversion embeddings are used where the texts name them.
        """
        try:
            encoders_of(self.pipe)
        except RequestError:
            plain = {"prompt": prompt, "negative_prompt": negative or None,
                     "num_images_per_prompt": batch}
            return plain, None, []
        cond = encode_for_pipeline(self.pipe, prompt, negative, steps=max(1, steps),
                                   clip_skip=clip_skip, embeddings=self._job_embeddings)
        condition = {**cond.pipeline_kwargs(params), "num_images_per_prompt": batch}
        return condition, cond, list(cond.warnings)

    # sampler, clip skip and VAE -------------------------------------------------------
    def use_vae(self, name: str, settings: Settings | None = None) -> None:
        """Decode with the VAE `name` names ("" / Automatic: the model's own, restored
        exactly); the base model is never reloaded, the mode pipeline follows."""
        if self.vae_swap is not None:
            self.vae_swap.choose(name, settings or self.settings, [self.pipe, self._mode_pipe])

    def sampling_record(self, request: ImageRequest) -> dict[str, Any]:
        """What a job's info records of its schedule type, clip skip and VAE (the
        infotext's "Schedule type", "Clip skip", "VAE" and "VAE hash")."""
        from studio.core.requests import sampling

        sampler, schedule = sampling(request.scheduler, request.schedule)
        out: dict[str, Any] = {"sampler": sampler, "schedule": schedule}
        if request.clip_skip > 1:
            out["clip_skip"] = request.clip_skip
        if self.vae_swap is not None:
            out.update(self.vae_swap.record())
        return out

    # img2img, inpainting, outpainting, hires fix ----------------------------------------
    @property
    def inpainting_unet(self) -> bool:
        """A dedicated inpainting checkpoint: its UNet also reads the mask and the masked
        image (9 input channels), so every job goes through the inpainting pipeline."""
        return self.pipe is not None and int(self.pipe.unet.config.in_channels) == 9

    def mode_pipe(self) -> Any:
        """The inpainting pipeline over this pipeline's own modules (made once, no copy of
        any weight). With a mask of all white it is img2img; with a regular 4-channel UNet
        it blends the known region back each step (the latent-mask method), with a
        9-channel UNet it feeds the mask and masked image to the UNet."""
        if self._mode_pipe is None:
            import diffusers

            name = "StableDiffusionXLInpaintPipeline" if self.family == "sdxl" \
                else "StableDiffusionInpaintPipeline"
            with warnings.catch_warnings():  # its config nags (steps_offset) say nothing new
                warnings.simplefilter("ignore", FutureWarning)
                mode = getattr(diffusers, name).from_pipe(self.pipe)
            mode.set_progress_bar_config(disable=True)
            mode.prepare_latents = self._varied_latents(mode.prepare_latents)
            self._mode_pipe = mode
        return self._mode_pipe

    def _varied_latents(self, prepare: Callable[..., Any]) -> Callable[..., Any]:
        """The mode pipeline's prepare_latents, with the variation seed's noise slerped into
        the seed's (A1111's variations) while `self._variation` is set; as is otherwise."""

        def varied(*args: Any, **kwargs: Any) -> Any:
            if self._variation is None or kwargs.get("latents") is not None:
                return prepare(*args, **kwargs)
            seeds, strength = self._variation
            want_noise = kwargs.pop("return_noise", False)
            want_image = kwargs.pop("return_image_latents", False)
            strength_max = kwargs.get("is_strength_max", True)
            latents, noise, image_latents = prepare(*args, return_noise=True,
                                                    return_image_latents=True, **kwargs)
            other = torch.cat([seed_noise(s, noise.shape[1:])[None] for s in seeds])
            noise = slerp(noise, other.to(noise.device, noise.dtype), strength)
            sampler = self._mode_pipe.scheduler
            latents = noise * sampler.init_noise_sigma if strength_max else \
                sampler.add_noise(image_latents, noise, kwargs["timestep"])
            out: tuple[Any, ...] = (latents,)
            out += (noise,) if want_noise else ()
            out += (image_latents,) if want_image else ()
            return out

        return varied

    def _generate_mode(self, request: ImageRequest, events: Events) -> Result:
        """img2img / inpaint / outpaint / hires fix: one job, one output per batch item,
        with the same progress, previews, cancel and seeds as text-to-image."""
        from PIL import Image

        from studio.engines import canvas as cv

        t_start = time.perf_counter()
        want_previews = events.wants_previews()
        previewer = self._previewer() if want_previews else None
        throttle = PreviewThrottle(self.preview_interval, self.preview_budget)
        options = self.run_options(getattr(events, "settings", None) or self.settings)
        batch = request.batch_size
        seeds = [(request.seed + i) % (MAX_SEED + 1) for i in range(batch)]
        marks: dict[str, float] = {}
        info: dict[str, Any] = {"mode": request.mode}
        notes: list[str] = []
        prompt_warnings: list[str] = []
        passes = self._passes(request)
        total = sum(passes)
        done = [0]
        preview_info = {"decoder": getattr(previewer, "name", None), "mode": request.mode}

        def on_step(step: int, _total: int, tap: X0Tap | None) -> None:
            now = time.perf_counter()
            marks.setdefault("first", now)
            marks["last"] = now
            try:
                events.progress(done[0] + step, total)
                _preview(events, previewer, tap, throttle, done[0] + step, total, preview_info,
                         options.fast_decode)
            finally:
                marks["callbacks"] = marks.get("callbacks", 0.0) + time.perf_counter() - now

        def run(image: Any, mask: Any, strength: float, width: int, height: int, steps: int,
                output_type: str = "np") -> Any:
            out = self._render_pass(request, image, mask, strength, width, height, steps,
                                    seeds, on_step, options, events, output_type,
                                    prompt_warnings)
            done[0] += int(steps * strength)
            return out

        if request.mode == "txt2img" and not self.inpainting_unet:  # the hires fix's base
            latent = request.hires_upscaler == "latent"
            latents, generators = self._initial_noise(
                request, seeds, [(request.variation_seed + i) % (MAX_SEED + 1)
                                 for i in range(batch)] if request.variation_strength > 0
                else [], float(request.variation_strength))
            base = self.denoise(
                {}, latents, generators, steps=request.steps,
                guidance=request.guidance, width=request.width, height=request.height,
                scheduler=request.scheduler, schedule=request.schedule,
                output_type="latent" if latent else "np",
                on_step=on_step, tap=want_previews, options=options, status=events.status,
                encode=self._encoder(request, request.steps, batch, self._call_params,
                                     prompt_warnings))
            done[0] += request.steps
            outputs = self._hires(request, base, run, events, info)
        elif request.mode == "txt2img":  # an inpainting checkpoint: everything repainted
            width, height = request.width, request.height
            grey = Image.new("RGB", (width, height), (127, 127, 127))
            white = Image.new("L", (width, height), 255)
            outputs = _to_uint8(run(grey, white, 1.0, width, height, request.steps))
            if request.hires:
                outputs = self._hires(request, outputs, run, events, info)
        else:
            canvas = cv.prepare(request)
            notes += canvas.notes
            outputs = self._repaint(request, canvas, run, info)
        if request.variation_strength > 0:
            info["variation_seeds"] = [(request.variation_seed + i) % (MAX_SEED + 1)
                                       for i in range(batch)]
        events.check_cancelled()
        t_end = time.perf_counter()
        info.update({
            "seeds": seeds, "model_name": self.name, "family": family_name(self.family),
            "scheduler": request.scheduler, "device": self.spec.device,
            "dtype": self.spec.dtype, "preview_decoder": getattr(previewer, "name", None),
            "timings": _timings(t_start, marks, t_end, total), **options.record(),
        })
        if self.model_hash:
            info["model_hash"] = self.model_hash
        if prompt_warnings:
            info["prompt_warnings"] = prompt_warnings
            notes += prompt_warnings  # the saved recipe's notes
        if notes:
            info["notes"] = notes
        info.update(self.sampling_record(request))
        return Result(request=request, modality="image", images=outputs, info=info)

    def _passes(self, request: ImageRequest) -> list[int]:
        """The sampler steps each pass takes (for one progress bar over the whole job)."""
        if request.mode == "txt2img":
            first = [request.steps]
        else:
            first = [int(request.steps * request.strength)]
        if request.hires:
            steps = request.hires_steps or request.steps
            first.append(int(steps * request.hires_strength))
        return [max(0, n) for n in first] if sum(first) else [1]

    def _repaint(self, request: ImageRequest, canvas: Any, run: Callable[..., Any],
                 info: dict[str, Any]) -> list[np.ndarray]:
        """img2img (no mask), inpaint and outpaint: the whole canvas, or only a crop
        around the mask rendered at the request's size and pasted back."""
        from PIL import Image

        from studio.engines import canvas as cv

        image, mask = canvas.image, canvas.mask
        soft = cv.blurred(mask, request.mask_blur) if mask is not None else None
        if mask is not None and request.inpaint_area == "masked":
            box = cv.crop_box(mask, request.inpaint_padding, request.width / request.height)
            info["inpaint_crop"] = list(box)
            size = (request.width, request.height)
            part = image.crop(box).resize(size, Image.Resampling.LANCZOS)
            part_mask = soft.crop(box).resize(size, Image.Resampling.BILINEAR)  # type: ignore[union-attr]
            rendered = _to_uint8(run(part, part_mask, request.strength, *size, request.steps))
            return [cv.composite(image, Image.fromarray(r), soft, box) for r in rendered]  # type: ignore[arg-type]
        width, height = image.size
        white = Image.new("L", image.size, 255)
        rendered = _to_uint8(run(image, soft if soft is not None else white, request.strength,
                                 width, height, request.steps))
        if soft is None:
            return rendered
        return [cv.composite(image, Image.fromarray(r), soft) for r in rendered]

    def _hires(self, request: ImageRequest, base: Any, run: Callable[..., Any], events: Events,
               info: dict[str, Any]) -> list[np.ndarray]:
        """Enlarge the base render (latents, Lanczos or an upscaler model) and re-render it
        at the target size with the hires pass's own steps and strength."""
        from PIL import Image

        width, height = request.hires_size()
        steps = request.hires_steps or request.steps
        info["hires"] = {"size": [width, height], "upscaler": request.hires_upscaler,
                         "steps": steps, "strength": request.hires_strength}
        white = Image.new("L", (width, height), 255)
        if request.hires_upscaler == "latent" and isinstance(base, torch.Tensor):
            factor = self.pipe.vae_scale_factor
            image: Any = torch.nn.functional.interpolate(
                base.float(), size=(height // factor, width // factor), mode="bilinear",
                align_corners=False).to(base.dtype)
        else:
            images = base if isinstance(base, list) else _to_uint8(base)
            image = [Image.fromarray(_enlarge(a, request.hires_upscaler, width, height,
                                              self.settings, events)) for a in images]
        return _to_uint8(run(image, white, request.hires_strength, width, height, steps))

    def _render_pass(self, request: ImageRequest, image: Any, mask: Any, strength: float,
                     width: int, height: int, steps: int, seeds: list[int],
                     on_step: Callable[[int, int, X0Tap | None], None], options: RunOptions,
                     events: Events, output_type: str,
                     prompt_warnings: list[str] | None = None) -> Any:
        """One pass of the mode pipeline through the one denoise loop; a strength too small
        for one step is the VAE round trip (the init image back, as the model sees it).
        The prompt is scheduled over the steps the pass runs; its warnings are added to
        `prompt_warnings`."""
        generators = [cpu_generator(seed) for seed in seeds]
        if int(steps * strength) < 1 and not isinstance(image, torch.Tensor):
            return self._round_trip(image, width, height, len(seeds))
        pipe = self.mode_pipe()
        params = set(inspect.signature(type(pipe).__call__).parameters)
        encode = self._encoder(request, int(steps * strength), len(seeds), params,
                               prompt_warnings if prompt_warnings is not None else [])
        inputs = {"image": image, "mask_image": mask, "strength": float(strength)}
        if isinstance(image, torch.Tensor):  # latents (the latent hires fix): nothing kept
            inputs["masked_image_latents"] = torch.zeros_like(image)
        if request.variation_strength > 0:
            self._variation = ([(request.variation_seed + i) % (MAX_SEED + 1)
                                for i in range(len(seeds))], float(request.variation_strength))
        try:
            return self.denoise({}, None, generators, steps=steps,
                                guidance=request.guidance, width=width, height=height,
                                scheduler=request.scheduler, schedule=request.schedule,
                                output_type=output_type,
                                on_step=on_step, tap=events.wants_previews(), options=options,
                                status=events.status, pipe=pipe, inputs=inputs,
                                encode=encode)
        finally:
            self._variation = None

    def _round_trip(self, image: Any, width: int, height: int, batch: int) -> np.ndarray:
        pipe = self.mode_pipe()
        with torch.inference_mode():
            pixels = pipe.image_processor.preprocess(image, height=height, width=width)
            vae = pipe.vae
            pixels = pixels.to(device=vae.device, dtype=vae.dtype)
            latents = vae.encode(pixels).latent_dist.mode()
            decoded = vae.decode(latents, return_dict=False)[0]
            out = pipe.image_processor.postprocess(decoded, output_type="np")
        return np.repeat(np.asarray(out), batch, axis=0)

    def denoise(
        self, condition: dict[str, Any], latents: torch.Tensor,
        generator: torch.Generator | list[torch.Generator], *, steps: int, guidance: float,
        width: int, height: int, scheduler: str, schedule: str = "Automatic",
        output_type: str = "np",
        on_step: Callable[[int, int, X0Tap | None], None] | None = None, tap: bool = True,
        options: RunOptions | None = None, status: Callable[[str], None] | None = None,
        pipe: Any = None, inputs: dict[str, Any] | None = None,
        step_update: Callable[[Any, int, dict], dict] | None = None,
        tensor_inputs: Sequence[str] = (),
        encode: Callable[[], tuple[dict[str, Any], Conditioning | None]] | None = None,
    ) -> Any:
        """The one denoising loop, for Art-panel images and explorer frames alike.

        A fresh sampler is built from the model's own scheduler config; the pipeline runs
        from the given initial latents and conditioning (a prompt, or ready prompt
        embeddings); `on_step(step, total, tap)` runs after every step (progress, cancel,
        previews from the tap's x0 estimate). Returns the pipeline's float images, or its
        latents for output_type "latent". `options` (default: plain PyTorch) choose the
        runtime, bf16 and fast decode; which runtime ran each part is put in options.ran.
        img2img and inpainting pass their mode's pipeline (`mode_pipe`, the same weights)
        and its `inputs` (image, mask_image, strength); latents None lets it noise the
        encoded image at the strength's first timestep from the generators (CPU noise).
        `step_update(pipeline, i, callback_kwargs)` (prompt editing, alternation) returns
        the tensors to swap after step i; `tensor_inputs` are the ones it needs to see.
        `encode()` (the prompt read as A1111 does) runs inside the runtime and adds its
        conditioning and step hooks to `condition`.
        """
        params = self._call_params
        if pipe is None:
            pipe = self.pipe
        else:
            params = set(inspect.signature(type(pipe).__call__).parameters)
        options = options or RunOptions()
        sampler = job_scheduler(scheduler, schedule, self.scheduler_config, generator)
        pipe.scheduler = sampler
        x0 = X0Tap(sampler) if tap else None

        hooks: dict[str, Any] = {"step_update": step_update, "tensor_inputs": tensor_inputs}

        counter = SamplerSteps(sampler)

        def on_step_end(pipeline: Any, i: int, _t: Any, callback_kwargs: dict) -> dict:
            done = counter.after(i, getattr(pipeline, "_num_timesteps", None) or steps)
            if done is None:  # the first half of a second-order step
                return {}
            if on_step is not None:
                on_step(done, counter.total, x0)
            update = hooks["step_update"]
            return update(pipeline, done - 1, callback_kwargs) if update else {}

        kwargs: dict[str, Any] = {
            **condition,
            "num_inference_steps": steps,
            "guidance_scale": float(guidance),
            "height": height,
            "width": width,
            "generator": generator,
            "latents": latents,
            "output_type": output_type,
            "callback_on_step_end": on_step_end,
            **(inputs or {}),
        }
        with contextlib.ExitStack() as stack:
            if options.runtime == "openvino":
                runtime = self.openvino(options)
                if runtime is not None:
                    options.ran = stack.enter_context(
                        runtime.active(status=status))
            if options.bf16:  # PyTorch's (run_options never pairs it with OpenVINO)
                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
            if options.fast_decode and self.taesd is not None and output_type != "latent":
                stack.enter_context(fast_decode(pipe.vae, self.taesd))
            stack.enter_context(torch.inference_mode())
            if encode is not None:
                encoded, cond = encode()
                kwargs.update(encoded)
                hooks.update(_step_hooks(cond))
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents", *hooks["tensor_inputs"]]
            kwargs = {k: v for k, v in kwargs.items() if k in params}
            images = pipe(**kwargs).images
        if options.bf16 and isinstance(images, torch.Tensor):
            images = images.float()
        return images

    # CPU runtimes ----------------------------------------------------------------------
    def run_options(self, settings: Settings) -> RunOptions:
        """The runtime, precision and decoder a job runs with, from the settings in force
        (the worker's latest: the engine may have been loaded with older ones)."""
        from studio.engines import openvino_backend as ovb

        on_cpu = self.spec.device == "cpu"
        runtime, note = ovb.choose(settings.image_runtime, self.spec.device)
        if runtime == "openvino" and self.spec.dtype != "float32":
            runtime, note = "pytorch", f"OpenVINO runs float32 models, not {self.spec.dtype}"
        if runtime == "openvino" and (self.loras.active or self._job_embeddings):
            # its compiled UNet has no adapters, its text encoder no embedding hook
            runtime, note = "pytorch", "LoRAs and embeddings run in PyTorch"
        bf16 = settings.cpu_bf16 and on_cpu and ovb.bf16_supported()
        if runtime == "openvino" and bf16:
            # measured: OpenVINO's bf16 hint gave NaN images at full size and, on the tiny
            # pipelines, pictures as far from f32 as another seed's; PyTorch's is close
            runtime, note = "pytorch", "bf16 runs in PyTorch (OpenVINO's bf16 is not exact enough)"
        return RunOptions(runtime=runtime, runtime_note=note, bf16=bf16,
                          fast_decode=settings.fast_decode and self.taesd is not None)

    def openvino(self, options: RunOptions) -> Any:
        """This pipeline's OpenVINO runtime (made once), or None when it cannot be made;
        the job then runs in PyTorch and its record says why."""
        if self._openvino is None:
            from studio.engines.openvino_backend import OpenVinoRuntime

            path = self.path
            try:
                self._openvino = OpenVinoRuntime(
                    self.pipe, lambda part: weights_key(path, part) if path else
                    f"unhashed:{id(self)}:{part}")
            except Exception as exc:  # no usable openvino: PyTorch it is
                log.warning("OpenVINO is not usable here; running in PyTorch", exc_info=True)
                options.runtime, options.runtime_note = "pytorch", f"OpenVINO failed: {exc}"
                return None
        return self._openvino

    def _initial_noise(
        self, request: ImageRequest, seeds: list[int], variation_seeds: list[int], strength: float
    ) -> tuple[torch.Tensor, list[torch.Generator]]:
        """Per-item CPU noise (slerped toward the variation seed's) and the generators to
        continue with for the sampler's own noise."""
        factor = self.pipe.vae_scale_factor
        shape = (1, self.pipe.unet.config.in_channels,
                 request.height // factor, request.width // factor)
        noises, generators = [], []
        for i, seed in enumerate(seeds):
            noise, generator = seeded_noise(seed, shape)
            if variation_seeds:
                noise = slerp(noise, seed_noise(variation_seeds[i], shape), strength)
            noises.append(noise)
            generators.append(generator)
        latents = torch.cat(noises).to(device=self.spec.device, dtype=self.pipe.unet.dtype)
        return latents, generators  # the pipeline scales them by init_noise_sigma

    def _previewer(self) -> LinearPreview | TaesdPreview:
        if self.taesd is not None:
            return TaesdPreview(self.taesd)
        return LinearPreview(self.family, self.spec.device, self.pipe.unet.dtype)

    # bookkeeping -----------------------------------------------------------------------
    def memory_bytes(self) -> int:
        if self.pipe is None:
            return 0
        modules = [m for m in self.pipe.components.values() if isinstance(m, torch.nn.Module)]
        compiled = self._openvino.memory_bytes() if self._openvino is not None else 0
        extra = self.vae_swap.extra_modules() if self.vae_swap is not None else []
        return module_bytes(*modules, *extra, self.taesd) + compiled

    def unload(self) -> None:
        self.pipe = None
        self.taesd = None
        self._openvino = None
        self._mode_pipe = None
        self.vae_swap = None
        self.explore_prompt_cache.clear()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "family": family_name(self.family), "source": self.source,
                "previews": "taesd" if self.taesd is not None else "linear"}


# ---------------------------------------------------------------------------------------
# the explorer's view of a loaded pipeline


class DiffusersBackend:
    """The explorer's view of a loaded DiffusersImageEngine (SD 1.x/2.x, SDXL pipelines).

    Latents: the initial noise of each anchor's seed, drawn exactly as the image engine
    draws it (so an anchor's frame is the Art panel's image for that seed, with a
    deterministic sampler). Fast previews average-pool that full-size noise down to the
    preview size and rescale it to unit variance, so the preview starts from the same
    (coarser) noise as the full render. Conditioning: the prompt embeddings (and SDXL's
    pooled ones), encoded once per prompt and kept on the engine. Frames are rendered by
    the engine's own denoising loop (`DiffusersImageEngine.denoise`).
    """

    conditional = True
    prompt_label = "Prompt"
    max_cached_prompts: ClassVar[int] = 32

    def __init__(self, engine: DiffusersImageEngine, request: ExploreRequest) -> None:
        self.engine = engine
        self.pipe = engine.pipe
        self.model = request.model
        self.family = engine.family
        self.request = request
        factor = int(getattr(self.pipe, "vae_scale_factor", 8))
        self.factor = factor
        self.channels = int(self.pipe.unet.config.in_channels)
        self.full = (request.height // factor, request.width // factor)
        self.size = render_size(request, factor)
        self._prompt_cache = engine.explore_prompt_cache

    def noise(self, seed: int) -> torch.Tensor:
        full = seed_noise(seed, (self.channels, *self.full))
        lh, lw = self.size[0] // self.factor, self.size[1] // self.factor
        if (lh, lw) == self.full:
            return full
        k = self.full[0] // lh
        pooled = torch.nn.functional.avg_pool2d(full[None], k)[0]
        return pooled * k  # the mean of k² standard normals has std 1/k

    def conditions(self, prompts: Sequence[str], seeds: Sequence[int],
                   request: ExploreRequest) -> list[Cond]:
        cfg = request.guidance > 1.0
        return [self._encode(p, request.negative, cfg) for p in prompts]

    def _encode(self, prompt: str, negative: str, cfg: bool) -> Cond:
        key = (prompt, negative, cfg)
        found = self._prompt_cache.get(key)
        if found is not None:
            return found
        # A1111 syntax as in the Art panel (weights, BREAK, no 77-token cut); a frame is
        # one conditioning, so a scheduled prompt uses its first text
        with torch.inference_mode():
            cond = encode_for_pipeline(
                self.pipe, prompt, negative, steps=1,
                embeddings=self.engine.explorer_embeddings(prompt, negative)).embeds_at(0)
        if not cfg:
            cond = {k: v for k, v in cond.items() if not k.startswith("negative")}
        cond = {k: v.detach().clone() for k, v in cond.items() if v is not None}
        if len(self._prompt_cache) >= self.max_cached_prompts:
            self._prompt_cache.pop(next(iter(self._prompt_cache)))
        self._prompt_cache[key] = cond
        return cond

    def principal(self, events: Events | None) -> PrincipalDirections | None:
        return None

    def render(self, latents: Sequence[torch.Tensor], conditions: Sequence[Cond] | None,
               request: ExploreRequest, events: Events) -> list[np.ndarray]:
        pipe = self.pipe
        device = pipe._execution_device
        dtype = pipe.unet.dtype
        steps = request.preview_steps if request.fast else request.steps
        height, width = self.size
        out_size = (request.width, request.height)  # previews are shown at the frame's size
        linear = LinearPreview(self.family, device, dtype)
        frames: list[np.ndarray] = []
        total = len(latents) * steps
        single = len(latents) == 1
        for i, z in enumerate(latents):
            events.check_cancelled()
            cond = conditions[i] if conditions else {}
            # ancestral samplers continue the generator of the request's seed (as the
            # image engine does), so a point at anchor 1 is that seed's own image
            _noise, generator = seeded_noise(request.seed, (1, self.channels, *self.full))
            offset = i * steps

            def on_step(step: int, _total: int, tap: X0Tap | None, offset: int = offset) -> None:
                events.progress(offset + step, total)  # raises Cancelled
                if single and tap is not None and events.wants_previews():
                    x0 = tap.estimate()
                    shown = linear(x0[:1]) if x0 is not None else None
                    if shown:
                        events.preview(Preview("image", _upscale(shown[0], *out_size),
                                               step, steps, info={"fast": request.fast}))

            out = self.engine.denoise(
                {k: v.to(device=device, dtype=dtype) for k, v in cond.items()},
                z[None].to(device=device, dtype=dtype), generator, steps=steps,
                guidance=request.guidance, width=width, height=height,
                scheduler=request.scheduler, output_type="latent" if request.fast else "np",
                on_step=on_step,
            )
            if request.fast:  # the x0 preview decode: a 4×3 matrix instead of the VAE
                frames.append(_upscale(linear(out[:1])[0], *out_size))
            else:  # rounded like the image engine, so anchors match the Art panel's images
                array = (np.clip(np.asarray(out, dtype=np.float32), 0, 1) * 255).round()
                frames.extend(np.ascontiguousarray(a) for a in array.astype(np.uint8))
        return frames

    def info(self) -> dict[str, Any]:
        return {"family": self.family, "fast": self.request.fast,
                "render_size": [self.size[1], self.size[0]]}


class SamplerSteps:
    """Sampler steps as the artist counts them. Second-order samplers (Heun, DPM2, DPM2 a,
    DPM++ SDE) evaluate the model twice a step, and diffusers calls back after each of
    its 2n-1 evaluations; a step is done when the sampler is back in its first-order
    state (or at the last evaluation, a plain step to zero noise)."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.second_order = hasattr(sampler, "state_in_first_order")
        self.done = 0
        self.total = 0

    def after(self, index: int, evaluations: int) -> int | None:
        """The step just finished (1-based) after evaluation `index`, or None mid-step."""
        if not self.second_order:
            self.total = evaluations
            self.done = index + 1
            return self.done
        self.total = (evaluations + 1) // 2
        last = index >= evaluations - 1
        if not (self.sampler.state_in_first_order or last):
            return None
        self.done = min(self.done + 1, self.total)
        return self.done


def job_scheduler(scheduler: str, schedule: str, config: dict[str, Any],
                  generator: torch.Generator | list[torch.Generator]) -> Any:
    """A job's fresh sampler: the request's sampler and schedule type over the model's
    scheduler config, with the SDE sampler's Brownian noise seeded from the job's own
    generators (their initial seeds: the item seeds, seed+i)."""
    generators = generator if isinstance(generator, list) else [generator]
    seeds = [int(g.initial_seed()) for g in generators if g is not None]
    return build_scheduler(scheduler, config, schedule=schedule, seeds=seeds)


def _step_hooks(cond: Conditioning | None) -> dict[str, Any]:
    """denoise's keyword arguments that swap a scheduled prompt's conditioning mid-run."""
    if cond is None or not cond.scheduled:
        return {}
    return {"step_update": cond.step_update, "tensor_inputs": cond.tensor_inputs}


def render_size(request: ExploreRequest, factor: int = 8) -> tuple[int, int]:
    """(height, width) in pixels: the request's, or the fast preview's smaller size.

    The preview divides both sides by the same whole number, chosen so that the longest
    side is about preview_size and the latent still divides evenly (for the pooling).
    """
    h, w = request.height, request.width
    if not request.fast or max(h, w) <= request.preview_size:
        return h, w
    k = max(1, round(max(h, w) / request.preview_size))
    while k > 1 and ((h // factor) % k or (w // factor) % k):
        k -= 1
    return h // k, w // k


def _upscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A latent-sized preview (1/8 of the render) blown up to the frame's size (bilinear)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


# ---------------------------------------------------------------------------------------
# loaders


#: the text-to-image pipelines Studio runs, loaded by their own class (a folder saved by
#: their img2img or inpainting sibling has the same components)
TEXT2IMAGE_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline",
                        "LatentConsistencyModelPipeline")
_SIBLING = re.compile(r"(Img2Img|Inpaint)(?=Pipeline$)")


def pipeline_class(index: dict[str, Any]) -> Any:
    """The pipeline class to load a folder with, from its model_index.json.

    Importing just that class costs ~0.3 s and ~21 MiB less than AutoPipelineForText2Image,
    which imports the mapping of every pipeline diffusers knows; that one is still used for
    anything else, so such folders load (or are refused) exactly as before.
    """
    name = _SIBLING.sub("", str(index.get("_class_name", "")))
    if name in TEXT2IMAGE_PIPELINES:
        import diffusers

        return getattr(diffusers, name)
    from diffusers import AutoPipelineForText2Image

    return AutoPipelineForText2Image


def _load_folder(folder: Path, dtype: torch.dtype, allow_pickle: bool) -> Any:
    index_path = folder / "model_index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"{folder} is a folder without model_index.json, so it is not a diffusers pipeline; "
            f"{HOW_TO_GET}."
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{index_path} could not be read ({exc}).") from exc
    if sketch_text.is_sketch_folder(folder):  # MiniLM text encoder from its package
        return sketch_text.load_pipeline(folder, dtype)
    if _folder_is_pickled(folder, index) and not allow_pickle:
        raise ModelError(
            f"{folder.name} only has pickled .bin weights, which can run code when opened; "
            "allow pickled checkpoints in Settings to load it as plain weights."
        )
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    variant = _folder_variant(folder)
    if variant:
        kwargs["variant"] = variant
    if "safety_checker" in index:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        pipe = pipeline_class(index).from_pretrained(str(folder), **kwargs)
    except ValueError as exc:
        if "AutoPipeline" in str(exc) or "not supported" in str(exc):
            raise ModelError(
                f"{folder.name} is a {index.get('_class_name', 'unknown')} pipeline, which is "
                "not a text-to-image model Studio can run."
            ) from exc
        raise
    if not hasattr(pipe, "unet") or not hasattr(pipe, "vae"):
        raise ModelError(
            f"{folder.name} is a {type(pipe).__name__}; Studio's image engine runs Stable "
            "Diffusion 1.x/2.x, SDXL, Turbo and LCM pipelines."
        )
    return pipe


def _load_single_file(path: Path, checkpoint: Checkpoint, dtype: torch.dtype) -> Any:
    """A checkpoint in the original SD layout, with the family's offline config.

    A dedicated inpainting checkpoint gets its UNet built first with 9 input channels
    (the shipped config says 4) and handed to the same text-to-image pipeline class a
    folder loads as, so both kinds of inpainting model behave alike (`mode_pipe`).
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    config = configs_dir() / checkpoint.family
    if not (config / "model_index.json").is_file():
        raise ModelError(
            f"The offline configuration for {family_name(checkpoint.family)} checkpoints is "
            f"missing (looked in {config}); reinstall Studio or use a diffusers folder."
        )
    kwargs: dict[str, Any] = {"config": str(config), "local_files_only": True,
                              "dtype": dtype}
    if checkpoint.family == "sdxl":
        cls = StableDiffusionXLPipeline
    else:
        cls = StableDiffusionPipeline
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if checkpoint.inpaint:
        from diffusers import UNet2DConditionModel

        kwargs["unet"] = UNet2DConditionModel.from_single_file(
            str(path), config=str(config), subfolder="unet", in_channels=9,
            local_files_only=True, torch_dtype=dtype)
    return cls.from_single_file(str(path), **kwargs)


def _load_taesd(family: str, settings: Settings, device: str,
                dtype: torch.dtype) -> torch.nn.Module | None:
    """The tiny preview decoder for this family, if one is installed (never fails a load)."""
    folder = find_taesd(family, model_dirs(settings))
    if folder is None:
        return None
    try:
        from diffusers import AutoencoderTiny

        vae = AutoencoderTiny.from_pretrained(str(folder), dtype=dtype,
                                              local_files_only=True)
        return vae.to(device).eval()
    except Exception:  # a broken preview decoder must not stop generation
        log.warning("could not load the preview decoder in %s; using linear previews",
                    folder, exc_info=True)
        return None


def _enlarge(image: np.ndarray, upscaler: str, width: int, height: int, settings: Settings,
             events: Events) -> np.ndarray:
    """The hires fix's pixel upscale: Lanczos, or an upscaler model through helper
    "upscale"'s `studio.engines.upscale.upscale_array`, then fitted to the exact size."""
    from PIL import Image

    if upscaler not in ("lanczos", "latent"):
        import importlib
        import math

        try:
            upscale = importlib.import_module("studio.engines.upscale")
        except ImportError:
            raise RequestError(f"Upscaler {upscaler!r} cannot run here (no upscaler engine is "
                               "installed); use latent or lanczos.") from None
        factor = max(2, math.ceil(max(width / image.shape[1], height / image.shape[0])))
        image = upscale.upscale_array(upscaler, image, factor, settings=settings, events=events)
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def _to_uint8(images: Any) -> list[np.ndarray]:
    """The pipeline's float images in [0, 1] → uint8 arrays, rounding like diffusers' to_pil."""
    array = np.asarray(images, dtype=np.float32)
    if np.isnan(array).any():
        raise ModelError(
            "The model produced an empty (NaN) image, which usually means half precision "
            "overflowed; try the CPU or float32, or another VAE."
        )
    array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return [np.ascontiguousarray(a) for a in array]


def _timings(t_start: float, marks: dict[str, float], t_end: float, steps: int) -> dict:
    first, last = marks.get("first", t_end), marks.get("last", t_end)
    step_time = last - first
    rate = (steps - 1) / step_time if steps > 1 and step_time > 0 else 0.0
    return {
        "total_s": round(t_end - t_start, 4),
        "to_first_step_s": round(first - t_start, 4),
        "steps_s": round(step_time, 4),
        "decode_s": round(t_end - last, 4),
        "it_per_s": round(rate, 3),
        # time spent in Studio's per-step callback (progress, cancel check, previews)
        "callbacks_s": round(marks.get("callbacks", 0.0), 4),
    }
