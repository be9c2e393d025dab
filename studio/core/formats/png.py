"""PNG outputs with their recipe inside, and recipes read back from other apps' images.

Every PNG we write carries three text chunks:
- `parameters`: AUTOMATIC1111 infotext (tEXt, or iTXt when the text is not Latin-1),
  which A1111, Forge, Civitai and most SD tools read;
- `studio`: our JSON record with the whole request for that very image (its own seed),
  so it can be replayed exactly;
- `XML:com.adobe.xmp`: an XMP packet marking the image as made by a trained algorithm.

Reading understands ours, A1111/Forge, ComfyUI (API `prompt` graph or UI `workflow`),
InvokeAI (`invokeai_metadata`), Fooocus (JSON or A1111 scheme), SwarmUI, and A1111 text in
the EXIF UserComment of JPEG/WebP files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from studio.core import metadata
from studio.core.errors import RecipeError, StudioError
from studio.core.outputs import write_new_output
from studio.core.recipes import Recipe
from studio.core.results import Result
from studio.core.seeds import MAX_SEED

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEY = "XML:com.adobe.xmp"
STUDIO_KEY = "studio"
PARAMETERS_KEY = "parameters"

MAX_CHUNK = 64 * 2**20  # larger "text" chunks are not metadata we want to read
MAX_TEXT_TOTAL = 128 * 2**20

# ─── writing ──────────────────────────────────────────────────────────────────────────


def _per_image(values: Any, base: int, i: int) -> int:
    """Seed of image i: the engine's list when it gave one, else base + i (A1111)."""
    if isinstance(values, (list, tuple)) and i < len(values):
        try:
            return int(values[i])
        except (TypeError, ValueError):
            pass
    if base is None or base < 0:
        return -1
    return (base + i) % (MAX_SEED + 1)  # as the image engine draws batch noise


def _to_pil(array: Any, index: int) -> Image.Image:
    data = np.asarray(array)
    if data.dtype != np.uint8:
        raise StudioError(f"Picture {index + 1} is not 8-bit ({data.dtype}); cannot save it.")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4)):
        return Image.fromarray(np.ascontiguousarray(data))
    raise StudioError(f"Picture {index + 1} has an unexpected shape {data.shape}; cannot save it.")


def image_request(request: Any, seed: int, variation_seed: int | None) -> Any:
    """The request that makes exactly one image of a batch: its own seed, batch of one."""
    names = {f.name for f in dataclasses.fields(request)} if dataclasses.is_dataclass(
        request) else set()
    changes: dict[str, Any] = {}
    if "seed" in names:
        changes["seed"] = seed
    if "batch_size" in names:
        changes["batch_size"] = 1
    if variation_seed is not None and "variation_seed" in names:
        changes["variation_seed"] = variation_seed
    return dataclasses.replace(request, **changes) if changes else request


def png_info(
    request: Any, modality: str, *, model_hash: str | None = None, extra: Mapping[str, Any]
) -> PngInfo:
    """The three metadata chunks for one image."""
    model_name = metadata.model_display_name(getattr(request, "model", "") or "")
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, metadata.format_infotext(request, model_hash=model_hash))
    record = metadata.studio_record(request, modality, **extra)
    info.add_text(STUDIO_KEY, json.dumps(record, ensure_ascii=False))
    xmp = metadata.build_xmp(getattr(request, "prompt", "") or "", model_name=model_name)
    info.add_itxt(XMP_KEY, xmp, zip=False)
    return info


def save_images(result: Result, out_dir: Path) -> list[Path]:
    """Write one PNG per image of the result (atomically, never overwriting).

    Image i gets seed info["seeds"][i] when the engine reported it, else seed + i, as in
    A1111; its metadata describes that single image, so it can be replayed alone.
    """
    request = result.request
    images = list(result.images)
    n = len(images)
    base_seed = getattr(request, "seed", -1)
    strength = getattr(request, "variation_strength", 0) or 0
    base_variation = getattr(request, "variation_seed", -1)
    info = metadata.json_safe(result.info)
    model_hash = result.info.get("model_hash")
    model_hash = str(model_hash) if model_hash else None

    pictures = [_to_pil(array, i) for i, array in enumerate(images)]  # fail before writing
    paths: list[Path] = []
    for i, picture in enumerate(pictures):
        seed = _per_image(result.info.get("seeds"), base_seed, i)
        variation = None
        if strength > 0:
            variation = _per_image(result.info.get("variation_seeds"), base_variation, i)
        one = image_request(request, seed, variation)
        chunks = png_info(
            one,
            result.modality,
            model_hash=model_hash,
            extra={"batch": {"index": i, "size": n, "seed": base_seed}, "info": info},
        )

        def write(f: Any, picture: Image.Image = picture, chunks: PngInfo = chunks) -> None:
            picture.save(f, format="PNG", pnginfo=chunks)

        paths.append(write_new_output(out_dir, seed, getattr(one, "prompt", ""), ".png", write))
    return paths


# ─── reading PNG chunks ───────────────────────────────────────────────────────────────


def _inflate(data: bytes, name: str) -> bytes:
    decomp = zlib.decompressobj()
    out = decomp.decompress(data, MAX_CHUNK)
    if decomp.unconsumed_tail:
        raise ValueError(f"a compressed text chunk in {name} is too large")
    return out


def _decode_text_chunk(ctype: bytes, data: bytes, name: str) -> tuple[str, str]:
    key_bytes, sep, rest = data.partition(b"\0")
    if not sep:
        raise ValueError("no keyword separator")
    key = key_bytes.decode("latin-1")
    if ctype == b"tEXt":
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        return key, _inflate(rest[1:], name).decode("latin-1")
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        raise ValueError("short iTXt chunk")
    compressed = rest[0] == 1
    _lang, _, rest = rest[2:].partition(b"\0")
    _tkey, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, name)
    return key, text.decode("utf-8", errors="replace")


def read_png_chunks(path: Path) -> tuple[dict[str, str], tuple[int, int] | None, bool]:
    """Text chunks (last one wins, as in Pillow), the IHDR size, and whether IEND was found.

    Reads only the small chunks and skips the pixel data, so it is fast on big images.
    Raises RecipeError when the file is not a PNG; a damaged text chunk is skipped.
    """
    name = path.name
    texts: dict[str, str] = {}
    size: tuple[int, int] | None = None
    total = 0
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            raise RecipeError(f"{name} is not a PNG image.")
        file_size = path.stat().st_size
        while True:
            header = f.read(8)
            if len(header) < 8:
                return texts, size, False
            length, ctype = struct.unpack(">I4s", header)
            if ctype == b"IEND":
                return texts, size, True
            if f.tell() + length + 4 > file_size:
                return texts, size, False
            if ctype not in (b"IHDR", b"tEXt", b"zTXt", b"iTXt") or length > MAX_CHUNK:
                f.seek(length + 4, 1)
                continue
            data = f.read(length)
            crc = f.read(4)
            if len(data) < length or len(crc) < 4:
                return texts, size, False
            if zlib.crc32(ctype + data) != struct.unpack(">I", crc)[0]:
                log.warning("%s: skipping a %s chunk with a bad checksum", name, ctype.decode())
                continue
            if ctype == b"IHDR":
                if length >= 8:
                    size = struct.unpack(">II", data[:8])
                continue
            total += length
            if total > MAX_TEXT_TOTAL:
                log.warning("%s: too much text metadata; reading stops here", name)
                return texts, size, True
            try:
                key, value = _decode_text_chunk(ctype, data, name)
            except (ValueError, zlib.error) as exc:
                log.warning("%s: skipping an unreadable %s chunk (%s)", name, ctype.decode(), exc)
                continue
            texts[key] = value


# ─── reading EXIF (JPEG, WebP) ────────────────────────────────────────────────────────

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
IMAGE_DESCRIPTION = 0x010E


def decode_user_comment(value: Any) -> str:
    """EXIF UserComment: 8-byte charset prefix, then text (A1111 writes UTF-16)."""
    if isinstance(value, str):
        return value.rstrip("\0")
    if not isinstance(value, (bytes, bytearray)):
        return ""
    data = bytes(value)
    prefix, body = data[:8], data[8:]
    if prefix.startswith(b"UNICODE"):
        if len(body) % 2:
            body = body[:-1]
        # Byte order is not recorded: pick the one that puts zero bytes where ASCII-ish
        # text (most infotext) would have them.
        even = body[0::2].count(0)
        odd = body[1::2].count(0)
        text = body.decode("utf-16-be" if even >= odd else "utf-16-le", errors="replace")
    elif prefix.startswith(b"ASCII") or prefix == b"\0" * 8:
        text = body.decode("utf-8", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    return text.rstrip("\0")


def _read_exif_texts(path: Path) -> tuple[dict[str, str], tuple[int, int], str]:
    kind = path.suffix.lower().lstrip(".").upper().replace("JPG", "JPEG")
    try:
        with Image.open(path) as image:
            size = image.size
            fmt = image.format or kind
            info = dict(image.info)
            exif = image.getexif()
            sub = exif.get_ifd(EXIF_IFD)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RecipeError(f"{path.name} is not a readable {kind} image ({exc}).") from None
    texts = {k: v for k, v in info.items() if isinstance(v, str) and k != "comment"}
    comment = decode_user_comment(sub.get(USER_COMMENT) or exif.get(USER_COMMENT))
    if comment.strip():
        texts[PARAMETERS_KEY] = comment
    maker = sub.get(MAKER_NOTE) or exif.get(MAKER_NOTE)
    if isinstance(maker, bytes):
        maker = maker.decode("utf-8", errors="replace").rstrip("\0")
    if isinstance(maker, str) and maker in ("fooocus", "a1111"):
        texts["fooocus_scheme"] = maker
    jpeg_comment = info.get("comment")
    if jpeg_comment and PARAMETERS_KEY not in texts:
        if isinstance(jpeg_comment, bytes):
            jpeg_comment = jpeg_comment.decode("utf-8", errors="replace")
        texts[PARAMETERS_KEY] = str(jpeg_comment)
    return texts, size, fmt


# ─── sampler names of other apps ──────────────────────────────────────────────────────

# ComfyUI / Fooocus / SwarmUI sampler_name → ours
COMFY_SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC",
    "lcm": "LCM",
}
_COMFY_PLAIN = {"", "normal", "simple", "ddim_uniform", "sgm_uniform"}

INVOKE_SCHEDULERS = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_k": "DPM++ 2M Karras",
    "ddim": "DDIM",
    "unipc": "UniPC",
    "lcm": "LCM",
}


def comfy_scheduler(sampler: Any, scheduler: Any, notes: list[str]) -> str:
    """ComfyUI-style sampler_name + scheduler → our scheduler name (notes when inexact)."""
    sampler_name = str(sampler or "").strip()
    schedule = str(scheduler or "").strip().lower()
    base = COMFY_SAMPLERS.get(sampler_name.lower())
    if base is None:
        notes.append(f"Sampler {sampler_name!r} is not available here; "
                     f"using {metadata.DEFAULT_SCHEDULER}.")
        return metadata.DEFAULT_SCHEDULER
    if base == "DPM++ 2M" and schedule == "karras":
        return "DPM++ 2M Karras"
    if schedule not in _COMFY_PLAIN:
        notes.append(f"The {schedule!r} schedule is not available for {base} here; "
                     f"using {base}.")
    return base


def invoke_scheduler(name: Any, notes: list[str]) -> str:
    key = str(name or "").strip().lower()
    if key in INVOKE_SCHEDULERS:
        return INVOKE_SCHEDULERS[key]
    if key.endswith("_k") and key[:-2] in INVOKE_SCHEDULERS:
        base = INVOKE_SCHEDULERS[key[:-2]]
        notes.append(f"The Karras schedule is not available for {base} here; using {base}.")
        return base
    notes.append(f"Scheduler {key!r} is not available here; using {metadata.DEFAULT_SCHEDULER}.")
    return metadata.DEFAULT_SCHEDULER


def _set_number(out: dict[str, Any], field: str, value: Any, kind: type) -> None:
    number = metadata.as_int(value) if kind is int else metadata.as_float(value)
    if number is not None:
        out[field] = number


def _set_common(out: dict[str, Any], notes: list[str], *, seed: Any = None, steps: Any = None,
                cfg: Any = None, width: Any = None, height: Any = None) -> None:
    """Fill seed/steps/guidance/size from another app's values, fitting them to our range."""
    seed_value = metadata.as_int(seed)
    if seed_value is not None:
        out["seed"] = metadata.fit_seed(seed_value, "Seed", notes)
    _set_number(out, "steps", steps, int)
    _set_number(out, "guidance", cfg, float)
    for field, value in (("width", width), ("height", height)):
        side = metadata.as_int(value)
        if side is not None:
            out[field] = metadata.fit_side(side, field.capitalize(), notes)


# ─── InvokeAI, Fooocus, SwarmUI ───────────────────────────────────────────────────────


def from_invokeai(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """InvokeAI 3/4 `invokeai_metadata` → our request dict."""
    notes: list[str] = []
    out: dict[str, Any] = {"kind": "image",
                           "prompt": str(meta.get("positive_prompt") or ""),
                           "negative": str(meta.get("negative_prompt") or "")}
    _set_common(out, notes, seed=meta.get("seed"), steps=meta.get("steps"),
                cfg=meta.get("cfg_scale"), width=meta.get("width"), height=meta.get("height"))
    if meta.get("scheduler"):
        out["scheduler"] = invoke_scheduler(meta.get("scheduler"), notes)
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    if model:
        out["model"] = str(model)
    mode = str(meta.get("generation_mode") or "")
    if mode and "txt2img" not in mode:
        notes.append(f"The original was made with InvokeAI {mode}, which this recipe "
                     "does not reproduce.")
    if meta.get("loras"):
        notes.append("The original used LoRAs, which this recipe does not reproduce.")
    return out, notes


def _pair(text: Any) -> tuple[Any, Any] | None:
    m = re.search(r"(\d+)\D+(\d+)", str(text or ""))
    return (m.group(1), m.group(2)) if m else None


def from_fooocus(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Fooocus JSON scheme → our request dict (the prompt as typed, before styles)."""
    notes: list[str] = []
    out: dict[str, Any] = {"kind": "image",
                           "prompt": str(meta.get("prompt") or ""),
                           "negative": str(meta.get("negative_prompt") or "")}
    size = _pair(meta.get("resolution"))
    _set_common(out, notes, seed=meta.get("seed"), steps=meta.get("steps"),
                cfg=meta.get("guidance_scale"),
                width=size[0] if size else None, height=size[1] if size else None)
    if meta.get("sampler"):
        out["scheduler"] = comfy_scheduler(meta.get("sampler"), meta.get("scheduler"), notes)
    if meta.get("base_model"):
        out["model"] = str(meta["base_model"])
    styles = str(meta.get("styles") or "")
    if styles.strip() not in ("", "[]"):
        notes.append(f"Fooocus styles {styles} expanded the original prompt; "
                     "this recipe uses the prompt as typed.")
    if meta.get("loras"):
        notes.append("The original used LoRAs, which this recipe does not reproduce.")
    if str(meta.get("refiner_model") or "None") not in ("None", ""):
        notes.append("The original used the SDXL refiner, which this recipe does not reproduce.")
    return out, notes


def from_swarmui(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """SwarmUI `sui_image_params` → our request dict."""
    notes: list[str] = []
    out: dict[str, Any] = {"kind": "image",
                           "prompt": str(meta.get("prompt") or ""),
                           "negative": str(meta.get("negativeprompt") or "")}
    _set_common(out, notes, seed=meta.get("seed"), steps=meta.get("steps"),
                cfg=meta.get("cfgscale"), width=meta.get("width"), height=meta.get("height"))
    if meta.get("sampler"):
        out["scheduler"] = comfy_scheduler(meta.get("sampler"), meta.get("scheduler"), notes)
    if meta.get("model"):
        out["model"] = str(meta["model"])
    return out, notes


# ─── ComfyUI ──────────────────────────────────────────────────────────────────────────

_MODEL_KEYS = ("ckpt_name", "unet_name", "model_name", "ckpt")
# UI-workflow widget order of the nodes we read (when a node is not in the API graph).
_WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", "control_after_generate", "steps", "cfg", "sampler_name",
                 "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", "control_after_generate", "steps", "cfg",
                         "sampler_name", "scheduler", "start_at_step", "end_at_step",
                         "return_with_leftover_noise"),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width",
                           "target_height", "text_g", "text_l"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "PrimitiveNode": ("value", "control_after_generate"),
    "PrimitiveInt": ("value",),
    "PrimitiveString": ("value",),
    "PrimitiveStringMultiline": ("value",),
}


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int))


class _Graph:
    """A ComfyUI API graph {id: {class_type, inputs}} with link following."""

    def __init__(self, nodes: Mapping[str, Any]) -> None:
        self.nodes = {str(k): v for k, v in nodes.items()
                      if isinstance(v, dict) and isinstance(v.get("inputs", {}), dict)
                      and "class_type" in v}

    def node(self, ref: Any) -> dict[str, Any] | None:
        return self.nodes.get(str(ref[0])) if _is_link(ref) else None

    def value(self, value: Any, depth: int = 0) -> Any:
        """A literal input, following links to primitive/constant nodes."""
        if not _is_link(value):
            return value
        node = self.node(value)
        if node is None or depth > 20:
            return None
        inputs = node.get("inputs", {})
        for key in ("value", "seed", "noise_seed", "text", "string", "int", "float", "number"):
            if key in inputs:
                return self.value(inputs[key], depth + 1)
        return None

    def find(self, ref: Any, want: Any, prefer: tuple[str, ...] = (),
             seen: set[str] | None = None) -> dict[str, Any] | None:
        """Walk upstream from a link to the first node for which want(node) is true."""
        seen = set() if seen is None else seen
        node = self.node(ref)
        if node is None or str(ref[0]) in seen or len(seen) > 200:
            return None
        seen.add(str(ref[0]))
        if want(node):
            return node
        inputs = node.get("inputs", {})
        names = [n for n in prefer if n in inputs] + [n for n in inputs if n not in prefer]
        # a node that carries both branches (ControlNet apply...) must keep to ours
        if prefer and any(p in inputs for p in prefer[:1]):
            names = [n for n in names if n not in ("positive", "negative") or n in prefer[:1]]
        for name in names:
            if _is_link(inputs[name]):
                found = self.find(inputs[name], want, prefer, seen)
                if found is not None:
                    return found
        return None

    def text(self, ref: Any, branch: str) -> str | None:
        def is_encoder(node: dict[str, Any]) -> bool:
            inputs = node.get("inputs", {})
            return "CLIPTextEncode" in str(node.get("class_type")) or (
                "text" in inputs and "clip" in inputs)

        node = self.find(ref, is_encoder, (branch, "conditioning", "conditioning_1",
                                           "conditioning_to"))
        if node is None:
            return None
        inputs = node.get("inputs", {})
        if "text" in inputs:
            text = self.value(inputs["text"])
        else:
            parts = [self.value(inputs.get(k)) for k in ("text_g", "text_l")]
            unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
            text = ", ".join(str(p) for p in unique)
        return None if text is None else str(text)


def _is_sampler(node: Mapping[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return "KSampler" in str(node.get("class_type")) or (
        "steps" in inputs and "cfg" in inputs and ("seed" in inputs or "noise_seed" in inputs))


def _has_size(node: Mapping[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int)


def from_comfy_prompt(graph_data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """ComfyUI API graph → our request dict, from its (first, base-pass) KSampler."""
    graph = _Graph(graph_data)
    samplers = [(k, n) for k, n in graph.nodes.items() if _is_sampler(n)]
    if not samplers:
        raise ValueError("no sampler node")

    def order(item: tuple[str, Any]) -> tuple[int, int, str]:
        key, node = item
        latent = node.get("inputs", {}).get("latent_image")
        source = graph.node(latent) if _is_link(latent) else None
        base = 0 if source is not None and "Empty" in str(source.get("class_type")) else 1
        return (base, int(key) if key.isdigit() else 1 << 30, key)

    samplers.sort(key=order)
    inputs = samplers[0][1].get("inputs", {})
    notes: list[str] = []
    out: dict[str, Any] = {"kind": "image"}
    for field, branch in (("prompt", "positive"), ("negative", "negative")):
        text = graph.text(inputs.get(branch), branch) if branch in inputs else None
        out[field] = text or ""
    latent = graph.find(inputs.get("latent_image"), _has_size, ("samples", "latent_image"))
    size = latent.get("inputs", {}) if latent else {}
    seed = graph.value(inputs.get("seed", inputs.get("noise_seed")))
    _set_common(out, notes, seed=seed, steps=graph.value(inputs.get("steps")),
                cfg=graph.value(inputs.get("cfg")), width=size.get("width"),
                height=size.get("height"))
    out["scheduler"] = comfy_scheduler(graph.value(inputs.get("sampler_name")),
                                       graph.value(inputs.get("scheduler")), notes)
    loader = graph.find(inputs.get("model"),
                        lambda n: any(k in n.get("inputs", {}) for k in _MODEL_KEYS), ("model",))
    if loader is not None:
        found = next(loader["inputs"][k] for k in _MODEL_KEYS if k in loader["inputs"])
        model = graph.value(found)
        if model:
            out["model"] = str(model)
    denoise = metadata.as_float(graph.value(inputs.get("denoise")))
    if denoise is not None and denoise < 1.0:
        notes.append("The original denoised an existing image (img2img), which this recipe "
                     "does not reproduce.")
    if len(samplers) > 1:
        notes.append("The original workflow has several samplers; this recipe follows the "
                     "first pass.")
    return out, notes


def workflow_to_prompt(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """A ComfyUI UI workflow (nodes + links) → an API-style graph we can read."""
    links: dict[int, tuple[Any, int]] = {}
    for link in workflow.get("links") or []:
        if isinstance(link, list) and len(link) >= 5:
            links[link[0]] = (link[1], link[2])
        elif isinstance(link, dict) and "id" in link:
            links[link["id"]] = (link.get("origin_id"), link.get("origin_slot", 0))
    graph: dict[str, Any] = {}
    for node in workflow.get("nodes") or []:
        if not isinstance(node, dict) or "id" not in node:
            continue
        ntype = str(node.get("type", ""))
        inputs: dict[str, Any] = {}
        widgets = node.get("widgets_values")
        if isinstance(widgets, dict):
            inputs.update(widgets)
        elif isinstance(widgets, list):
            names = _WIDGETS.get(ntype)
            if names is None and ntype.startswith("KSampler"):
                names = _WIDGETS["KSampler"]
            for name, value in zip(names or (), widgets, strict=False):
                inputs[name] = value
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and slot.get("link") in links:
                origin, origin_slot = links[slot["link"]]
                inputs[str(slot.get("name"))] = [str(origin), int(origin_slot or 0)]
        graph[str(node["id"])] = {"class_type": ntype, "inputs": inputs}
    return graph


# ─── putting it together ──────────────────────────────────────────────────────────────


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _a1111(text: str, source: str) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    params = metadata.parse_infotext(text)
    request = metadata.infotext_to_request_dict(params)
    notes = request.pop("notes", [])
    if source == "fooocus":
        raw_prompt = params.get("Raw prompt")
        if raw_prompt:
            request["prompt"] = raw_prompt
        if params.get("Raw negative prompt"):
            request["negative"] = params["Raw negative prompt"]
    return request, notes, params


def recipe_from_texts(texts: Mapping[str, str], name: str, raw: dict[str, Any]) -> Recipe:
    """Pick the richest recipe among an image's text metadata."""
    raw = dict(raw)
    raw["chunks"] = dict(texts)
    parameters = texts.get(PARAMETERS_KEY, "")
    notes: list[str] = []

    record = _json(texts.get(STUDIO_KEY))
    request = metadata.record_request(record)
    if request is not None:
        return Recipe("studio", str(record.get("modality") or request.get("kind") or "image"),
                      dict(request), parameters, raw)
    if STUDIO_KEY in texts:
        notes.append("Our own record in this file is damaged; read the other metadata instead.")

    invoke = _json(texts.get("invokeai_metadata"))
    if isinstance(invoke, dict):
        request, more = from_invokeai(invoke)
        return Recipe("invokeai", "image", request, parameters, raw, notes + more)

    scheme = texts.get("fooocus_scheme", "")
    as_json = _json(parameters) if parameters.lstrip().startswith("{") else None
    if isinstance(as_json, dict):
        if isinstance(as_json.get("sui_image_params"), dict):
            request, more = from_swarmui(as_json["sui_image_params"])
            return Recipe("swarmui", "image", request, "", raw, notes + more)
        request, more = from_fooocus(as_json)
        return Recipe("fooocus", "image", request, "", raw, notes + more)

    if parameters.strip():
        source = "a1111"
        if scheme == "a1111" or "Version: Fooocus" in parameters:
            source = "fooocus"
        request, more, params = _a1111(parameters, source)
        raw["a1111"] = params
        return Recipe(source, "image", request, parameters, raw, notes + more)

    for key, convert in (("prompt", lambda d: d), ("workflow", workflow_to_prompt)):
        data = _json(texts.get(key))
        if isinstance(data, dict):
            try:
                request, more = from_comfy_prompt(convert(data))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.info("%s: ComfyUI %s not understood (%s)", name, key, exc)
                continue
            return Recipe("comfyui", "image", request, "", raw, notes + more)

    raise RecipeError(f"{name} holds no recipe (no generation settings were found in it).")


def read_recipe(path: Path) -> Recipe:
    """The recipe inside a PNG (any app we know), or A1111 text in a JPEG/WebP's EXIF."""
    path = Path(path)
    with open(path, "rb") as f:
        is_png = f.read(8) == PNG_SIGNATURE
    if is_png:
        texts, size, complete = read_png_chunks(path)
        if size is None:
            raise RecipeError(f"{path.name} is corrupt (its PNG header is damaged).")
        raw: dict[str, Any] = {"format": "PNG", "size": list(size)}
        if not complete:
            if not texts:
                raise RecipeError(f"{path.name} is corrupt (the PNG data ends early).")
            raw["truncated"] = True
            log.warning("%s is truncated; reading the recipe that survived", path.name)
        texts.pop(XMP_KEY, None)
        return recipe_from_texts(texts, path.name, raw)
    try:
        texts, size, fmt = _read_exif_texts(path)
    except RecipeError:
        if path.suffix.lower() == ".png":
            raise RecipeError(f"{path.name} is not a PNG image.") from None
        raise
    return recipe_from_texts(texts, path.name, {"format": fmt, "size": list(size)})
