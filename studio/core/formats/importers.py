"""Recipes other apps wrote into their images, read into our request dicts.

Given the texts of one image (PNG text chunks, or EXIF text of a JPEG/WebP, as
`png` gathers them), `recipe_from_texts` picks the richest recipe: ours (the
`studio` JSON record), InvokeAI (`invokeai_metadata`), SwarmUI and Fooocus (JSON
in `parameters`), A1111/Forge infotext, or a ComfyUI graph (API `prompt` or UI
`workflow`). Values outside our ranges are fitted, and what a recipe cannot
reproduce (LoRAs, img2img, styles, refiners) becomes a note for the user.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from studio.core import metadata
from studio.core.errors import RecipeError
from studio.core.recipes import Recipe

log = logging.getLogger(__name__)

# the texts a recipe travels under (PNG text chunks; EXIF UserComment becomes PARAMETERS_KEY)
STUDIO_KEY = "studio"
PARAMETERS_KEY = "parameters"


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
    request = metadata.infotext_to_request_dict(params, modes=True)  # hires, img2img keys
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
