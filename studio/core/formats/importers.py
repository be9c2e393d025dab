"""Recipes other apps wrote into their images, read into our request dicts.

Given the texts of one image (PNG text chunks, or EXIF text of a JPEG/WebP, as
`png` gathers them), `recipe_from_texts` picks the richest recipe: ours (the
`studio` JSON record), InvokeAI 3+ (`invokeai_metadata`) and 2.x (`sd-metadata`,
`Dream`), NovelAI (`Description` + `Comment`), SwarmUI and Fooocus (JSON in
`parameters`), A1111/Forge infotext, or a ComfyUI graph (API `prompt` or UI
`workflow`). Values outside our ranges are fitted, and what a recipe cannot
reproduce (LoRAs, img2img, styles, refiners) becomes a note for the user.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Mapping
from typing import Any

from studio.core import metadata
from studio.core.errors import RecipeError
from studio.core.recipes import Recipe
from studio.core.requests import is_own_vae

log = logging.getLogger(__name__)

# the texts a recipe travels under (PNG text chunks; EXIF UserComment becomes PARAMETERS_KEY)
STUDIO_KEY = "studio"
PARAMETERS_KEY = "parameters"


# ─── sampler names of other apps ──────────────────────────────────────────────────────

# ComfyUI KSampler sampler_name (also Fooocus, SwarmUI, NovelAI and InvokeAI 2 without
# their "k_") → (the A1111 sampler it is, what the nearest one changes; "" when exact).
# The A1111 name then goes through metadata.a1111_sampling, so a sampler Studio
# gains there is picked up here too.
COMFY_SAMPLERS: dict[str, tuple[str, str]] = {
    "euler": ("Euler", ""),
    "euler_ancestral": ("Euler a", ""),
    "euler_a": ("Euler a", ""),
    "euler_cfg_pp": ("Euler", "without CFG++"),
    "euler_ancestral_cfg_pp": ("Euler a", "without CFG++"),
    "heun": ("Heun", ""),
    "heunpp2": ("Heun", "Heun instead of Heun++"),
    "dpm_2": ("DPM2", ""),
    "dpm_2_ancestral": ("DPM2 a", ""),
    "dpm_2_a": ("DPM2 a", ""),
    "lms": ("LMS", ""),
    "dpm_fast": ("DPM fast", ""),
    "dpm_adaptive": ("DPM adaptive", ""),
    "dpmpp_2s_ancestral": ("DPM++ 2S a", ""),
    "dpmpp_2s_ancestral_cfg_pp": ("DPM++ 2S a", "without CFG++"),
    "dpmpp_2_a": ("DPM++ 2S a", ""),
    "dpmpp_sde": ("DPM++ SDE", ""),
    "dpmpp_sde_gpu": ("DPM++ SDE", "its noise is drawn on the CPU"),
    "dpmpp_2m": ("DPM++ 2M", ""),
    "dpmpp_2": ("DPM++ 2M", ""),
    "dpmpp_2m_cfg_pp": ("DPM++ 2M", "without CFG++"),
    "dpmpp_2m_sde": ("DPM++ 2M SDE", ""),
    "dpmpp_2m_sde_gpu": ("DPM++ 2M SDE", "its noise is drawn on the CPU"),
    "dpmpp_2m_sde_heun": ("DPM++ 2M SDE Heun", ""),
    "dpmpp_2m_sde_heun_gpu": ("DPM++ 2M SDE Heun", "its noise is drawn on the CPU"),
    "dpmpp_3m_sde": ("DPM++ 3M SDE", ""),
    "dpmpp_3m_sde_gpu": ("DPM++ 3M SDE", "its noise is drawn on the CPU"),
    "ddpm": ("Euler a", "ancestral Euler instead of DDPM"),
    "lcm": ("LCM", ""),
    "ipndm": ("DPM++ 2M", "a multistep solver instead of iPNDM"),
    "ipndm_v": ("DPM++ 2M", "a multistep solver instead of iPNDM"),
    "deis": ("DPM++ 2M", "a multistep solver instead of DEIS"),
    "res_multistep": ("DPM++ 2M", "a multistep solver instead of RES"),
    "res_multistep_cfg_pp": ("DPM++ 2M", "a multistep solver instead of RES CFG++"),
    "res_multistep_ancestral": ("Euler a", "an ancestral sampler instead of RES"),
    "res_multistep_ancestral_cfg_pp": ("Euler a", "an ancestral sampler instead of RES"),
    "gradient_estimation": ("Euler", "plain Euler instead of gradient estimation"),
    "gradient_estimation_cfg_pp": ("Euler", "plain Euler instead of gradient estimation"),
    "er_sde": ("DPM++ 2M SDE", "another SDE solver instead of ER-SDE"),
    "seeds_2": ("DPM++ SDE", "another SDE solver instead of SEEDS"),
    "seeds_3": ("DPM++ SDE", "another SDE solver instead of SEEDS"),
    "sa_solver": ("DPM++ 2M SDE", "another SDE solver instead of SA-Solver"),
    "sa_solver_pece": ("DPM++ 2M SDE", "another SDE solver instead of SA-Solver"),
    "ddim": ("DDIM", ""),
    "ddim_v3": ("DDIM", ""),
    "plms": ("PLMS", ""),
    "uni_pc": ("UniPC", ""),
    "uni_pc_bh2": ("UniPC", ""),
}
# ComfyUI scheduler (NovelAI noise_schedule) → A1111 "Schedule type"
COMFY_SCHEDULES: dict[str, str] = {
    "": "", "normal": "Normal", "native": "", "simple": "Simple", "karras": "Karras",
    "exponential": "Exponential", "polyexponential": "Polyexponential",
    "sgm_uniform": "SGM Uniform", "ddim_uniform": "DDIM", "beta": "Beta",
    "linear_quadratic": "Linear Quadratic", "kl_optimal": "KL Optimal",
    "align_your_steps": "Align Your Steps",
}

#: InvokeAI scheduler names (a "_k" suffix means the Karras schedule) → our samplers
INVOKE_SCHEDULERS = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "lms": "LMS",
    "heun": "Heun",
    "kdpm_2": "DPM2",
    "kdpm_2_a": "DPM2 a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "ddim": "DDIM",
    "unipc": "UniPC",
    "lcm": "LCM",
}


def comfy_scheduler(sampler: Any, scheduler: Any, notes: list[str]) -> tuple[str, str]:
    """ComfyUI-style sampler_name + scheduler → our (sampler, schedule type), with notes
    when inexact.

    Every KSampler name maps to the A1111 sampler it is (or the nearest, with a note
    saying what changes); metadata.a1111_sampling then picks ours.
    """
    sampler_name = str(sampler or "").strip()
    key = sampler_name.lower()
    key = key[2:] if key.startswith("k_") else key
    entry = COMFY_SAMPLERS.get(key)
    if entry is None:
        notes.append(f"Sampler {sampler_name!r} is not available here; "
                     f"using {metadata.DEFAULT_SCHEDULER}.")
        return metadata.DEFAULT_SCHEDULER, "Automatic"
    a1111, change = entry
    if change:
        notes.append(f"Sampler {sampler_name!r} has no equivalent here; using the nearest, "
                     f"{a1111} ({change}).")
    schedule_key = str(scheduler or "").strip().lower()
    schedule = COMFY_SCHEDULES.get(schedule_key)
    if schedule is None:
        notes.append(f"The {schedule_key!r} schedule is not available here; using the "
                     "sampler's own.")
        schedule = ""
    ours, ours_schedule, note = metadata.a1111_sampling(a1111, schedule)
    if note:
        notes.append(note)
    return ours, ours_schedule


def invoke_scheduler(name: Any, notes: list[str]) -> tuple[str, str]:
    """An InvokeAI scheduler name → our (sampler, schedule type)."""
    key = str(name or "").strip().lower()
    if key in INVOKE_SCHEDULERS:
        return INVOKE_SCHEDULERS[key], "Automatic"
    if key.endswith("_k") and key[:-2] in INVOKE_SCHEDULERS:
        ours, schedule, note = metadata.a1111_sampling(INVOKE_SCHEDULERS[key[:-2]], "Karras")
        if note:
            notes.append(note)
        return ours, schedule
    notes.append(f"Scheduler {key!r} is not available here; using {metadata.DEFAULT_SCHEDULER}.")
    return metadata.DEFAULT_SCHEDULER, "Automatic"


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
        out["scheduler"], out["schedule"] = invoke_scheduler(meta.get("scheduler"), notes)
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
        out["scheduler"], out["schedule"] = comfy_scheduler(meta.get("sampler"),
                                                            meta.get("scheduler"), notes)
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
        out["scheduler"], out["schedule"] = comfy_scheduler(meta.get("sampler"),
                                                            meta.get("scheduler"), notes)
    if meta.get("model"):
        out["model"] = str(meta["model"])
    return out, notes


def _invoke2_prompt(text: str, notes: list[str]) -> tuple[str, str]:
    """InvokeAI 2.x: words in [brackets] are the negative prompt; the rest is the prompt."""
    negative = [m.strip() for m in re.findall(r"\[([^\[\]]*)\]", text)]
    prompt = re.sub(r"\s*\[[^\[\]]*\]", "", text).strip()
    if re.search(r"[+-]{1,}(?=[\s,]|$)|\)\d|\.(?:blend|and|swap)\(|withLora\(", prompt):
        notes.append("InvokeAI's own weighting syntax (word+, (words)1.2, .blend) is read as "
                     "plain words here.")
    return prompt, ", ".join(n for n in negative if n)


def _invoke2_common(out: dict[str, Any], notes: list[str], image: Mapping[str, Any]) -> None:
    _set_common(out, notes, seed=image.get("seed"), steps=image.get("steps"),
                cfg=image.get("cfg_scale"), width=image.get("width"), height=image.get("height"))
    if image.get("sampler"):
        out["scheduler"], out["schedule"] = comfy_scheduler(image.get("sampler"), "", notes)
    kind = str(image.get("type") or "txt2img")
    if kind != "txt2img" or image.get("init_image_path"):
        notes.append(f"The original was made with InvokeAI {kind}, which this recipe "
                     "does not reproduce.")
    unsupported = [label for key, label in (
        ("variations", "seed variations"), ("hires_fix", "hires fix"),
        ("seamless", "seamless tiling"), ("perlin", "Perlin noise"),
        ("threshold", "a threshold"), ("postprocessing", "post-processing"))
        if image.get(key) not in (None, False, 0, 0.0, [], "", "none")]
    if unsupported:
        notes.append(f"The original used {', '.join(unsupported)}, which this recipe does not "
                     "reproduce.")


def from_invokeai2(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """InvokeAI 2.x `sd-metadata` JSON → our request dict."""
    notes: list[str] = []
    found = meta.get("image")
    image: Mapping[str, Any] = found if isinstance(found, dict) else {}
    prompt = image.get("prompt", "")
    if isinstance(prompt, list):
        parts = [p for p in prompt if isinstance(p, dict) and p.get("prompt")]
        if len(parts) > 1:
            notes.append("The original blended several weighted prompts; this recipe uses "
                         "the first.")
        prompt = parts[0]["prompt"] if parts else ""
    text, negative = _invoke2_prompt(str(prompt or ""), notes)
    out: dict[str, Any] = {"kind": "image", "prompt": text, "negative": negative}
    _invoke2_common(out, notes, image)
    model = meta.get("model_weights") or meta.get("model")
    if model and str(model) != "stable diffusion":
        out["model"] = str(model)
    return out, notes


_DREAM_OPTIONS: dict[str, str] = {
    "-s": "steps", "--steps": "steps", "-S": "seed", "--seed": "seed", "-W": "width",
    "--width": "width", "-H": "height", "--height": "height", "-C": "cfg_scale",
    "--cfg_scale": "cfg_scale", "-A": "sampler", "--sampler": "sampler",
    "-I": "init_image_path", "--init_img": "init_image_path", "-f": "strength",
    "--strength": "strength", "-V": "variations", "--with_variations": "variations",
    "--perlin": "perlin", "--threshold": "threshold", "-m": "model", "--model": "model",
}
_DREAM_FLAGS = {"--hires_fix": "hires_fix", "--seamless": "seamless"}


def from_dream(text: str) -> tuple[dict[str, Any], list[str]]:
    """InvokeAI 2.x `Dream` text (`"prompt [negative]" -s 30 -S 42 -W 512 ...`) → request."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if not words:
        raise ValueError("empty Dream text")
    prompt, rest = words[0], words[1:]
    image: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in _DREAM_FLAGS:
            image[_DREAM_FLAGS[word]] = True
        elif word in _DREAM_OPTIONS and i + 1 < len(rest):
            image[_DREAM_OPTIONS[word]] = rest[i + 1]
            i += 1
        i += 1
    if image.get("init_image_path"):
        image["type"] = "img2img"
    notes: list[str] = []
    text_prompt, negative = _invoke2_prompt(prompt, notes)
    out: dict[str, Any] = {"kind": "image", "prompt": text_prompt, "negative": negative}
    _invoke2_common(out, notes, image)
    if image.get("model"):
        out["model"] = str(image["model"])
    return out, notes


def novelai_to_a1111(prompt: str) -> tuple[str, bool]:
    """NovelAI emphasis ({x} ×1.05, [x] ÷1.05) as A1111 weights; True when anything changed.

    Parentheses are plain text in NovelAI, so they are escaped for A1111.
    """
    runs: list[tuple[str, int]] = []
    depth = 0
    changed = False
    for ch in prompt:
        if ch in "{[":
            depth += 1 if ch == "{" else -1
            changed = True
            continue
        if ch in "}]":
            depth -= 1 if ch == "}" else -1
            changed = True
            continue
        if ch in "()":
            ch = "\\" + ch
            changed = True
        if runs and runs[-1][1] == depth:
            runs[-1] = (runs[-1][0] + ch, depth)
        else:
            runs.append((ch, depth))
    parts = []
    for text, level in runs:
        weight = round(1.05 ** level, 4)
        parts.append(text if level == 0 or not text.strip() else f"({text}:{weight:g})")
    return "".join(parts), changed


def from_novelai(texts: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """NovelAI PNG texts (`Description`, `Comment` JSON, `Source`) → our request dict."""
    notes: list[str] = []
    comment = _json(texts.get("Comment"))
    comment = comment if isinstance(comment, dict) else {}
    prompt = str(texts.get("Description") or comment.get("prompt") or "")
    prompt, converted = novelai_to_a1111(prompt)
    negative, negative_converted = novelai_to_a1111(str(comment.get("uc") or ""))
    if converted or negative_converted:
        notes.append("NovelAI's {} and [] emphasis was converted to A1111 weights "
                     "(×1.05 per bracket).")
    if "::" in prompt:
        notes.append("NovelAI's numeric weights (1.5::words::) are read as plain words here.")
    out: dict[str, Any] = {"kind": "image", "prompt": prompt, "negative": negative}
    _set_common(out, notes, seed=comment.get("seed"), steps=comment.get("steps"),
                cfg=comment.get("scale"), width=comment.get("width"),
                height=comment.get("height"))
    if comment.get("sampler"):
        out["scheduler"], out["schedule"] = comfy_scheduler(
            comment.get("sampler"), comment.get("noise_schedule"), notes)
    source = str(texts.get("Source") or "").strip()
    if source:
        out["model"] = source
        notes.append(f"The original was made with {source} on NovelAI's servers; choose a "
                     "local model to render this recipe.")
    v4 = comment.get("v4_prompt")
    captions = v4.get("caption", {}).get("char_captions") if isinstance(v4, dict) else None
    if captions:
        notes.append("The original places several characters with their own prompts, which "
                     "this recipe does not reproduce.")
    extras = [label for key, label, plain in (
        ("sm", "SMEA", False), ("sm_dyn", "SMEA DYN", False),
        ("cfg_rescale", "CFG rescale", 0), ("uncond_scale", "an undesired-content strength",
                                            1.0), ("dynamic_thresholding", "dynamic "
                                                   "thresholding", False))
        if comment.get(key) not in (None, plain)]
    if extras:
        notes.append(f"The original used {', '.join(extras)}, which this recipe does not "
                     "reproduce.")
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
    "VAELoader": ("vae_name",),
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

    def branch(self, ref: Any, name: str) -> tuple[set[str], int]:
        """The node types feeding one conditioning branch, and how many text encoders."""
        kinds: set[str] = set()
        seen: set[str] = set()
        encoders = 0
        stack = [ref]
        while stack and len(seen) < 200:
            link = stack.pop()
            node = self.node(link)
            if node is None or str(link[0]) in seen:
                continue
            seen.add(str(link[0]))
            kind = str(node.get("class_type"))
            kinds.add(kind)
            inputs = node.get("inputs", {})
            if "CLIPTextEncode" in kind or ("text" in inputs and "clip" in inputs):
                encoders += 1
                continue
            for key in (name, *_CONDITIONING_INPUTS):
                if _is_link(inputs.get(key)):
                    stack.append(inputs[key])
        return kinds, encoders

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


# nodes that make one conditioning out of several prompts (areas, masks, mixes)
_MULTI_PROMPT = {
    "ConditioningSetArea", "ConditioningSetAreaPercentage", "ConditioningSetAreaStrength",
    "ConditioningSetMask", "ConditioningCombine", "ConditioningConcat", "ConditioningAverage",
    "ConditioningSetTimestepRange",
}
_CONDITIONING_INPUTS = ("conditioning", "conditioning_1", "conditioning_2", "conditioning_to",
                        "conditioning_from")


def _is_sampler(node: Mapping[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return "KSampler" in str(node.get("class_type")) or (
        "steps" in inputs and "cfg" in inputs and ("seed" in inputs or "noise_seed" in inputs))


def _has_size(node: Mapping[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int)


#: vae_name values that are not a file: ComfyUI's approximations (vae_approx) and the
#: checkpoint's own VAE as loader packs name it
_COMFY_APPROX_VAES = ("taesd", "taesdxl", "taesd3", "taef1", "pixel_space")
_COMFY_OWN_VAES = ("baked vae", "default", "none", "")


def _comfy_vae(graph: _Graph, sampler: Mapping[str, Any], notes: list[str]) -> str:
    """The VAE file the picture was decoded with (its file name, as A1111's `VAE:` writes
    it), from the VAELoader feeding the VAEDecode of our sampler's latents; "" for the
    checkpoint's own."""
    decoders = [n for n in graph.nodes.values() if "VAEDecode" in str(n.get("class_type"))
                and _is_link(n.get("inputs", {}).get("vae"))]
    ours = [n for n in decoders
            if graph.find(n["inputs"].get("samples"), lambda m: m is sampler) is not None]
    loaders = [found for n in ours or decoders
               if (found := graph.find(n["inputs"]["vae"],
                                       lambda m: "vae_name" in m.get("inputs", {}))) is not None]
    if not decoders:  # an image saved without a decode node we know: a lone VAE loader
        loaders = [n for n in graph.nodes.values() if "vae_name" in n.get("inputs", {})]
        loaders = loaders if len(loaders) == 1 else []
    if not loaders:
        return ""
    name = str(graph.value(loaders[0]["inputs"]["vae_name"]) or "").strip()
    if name.lower() in _COMFY_OWN_VAES or is_own_vae(name):
        return ""
    if name.lower() in _COMFY_APPROX_VAES:
        notes.append(f"The original decoded with ComfyUI's {name} approximation; this recipe "
                     "uses the model's own VAE.")
        return ""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


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
    out["scheduler"], out["schedule"] = comfy_scheduler(
        graph.value(inputs.get("sampler_name")), graph.value(inputs.get("scheduler")), notes)
    loader = graph.find(inputs.get("model"),
                        lambda n: any(k in n.get("inputs", {}) for k in _MODEL_KEYS), ("model",))
    if loader is not None:
        found = next(loader["inputs"][k] for k in _MODEL_KEYS if k in loader["inputs"])
        model = graph.value(found)
        if model:
            out["model"] = str(model)
    vae = _comfy_vae(graph, samplers[0][1], notes)
    if vae:
        out["vae"] = vae
    denoise = metadata.as_float(graph.value(inputs.get("denoise")))
    if denoise is not None and denoise < 1.0:
        notes.append("The original denoised an existing image (img2img), which this recipe "
                     "does not reproduce.")
    if len(samplers) > 1:
        notes.append("The original workflow has several samplers; this recipe follows the "
                     "first pass.")
    if "positive" in inputs:
        kinds, encoders = graph.branch(inputs["positive"], "positive")
        combined = sorted(kinds & _MULTI_PROMPT)
        if combined or encoders > 1:
            what = ", ".join(combined) if combined else "several text encoders"
            notes.append(f"The original combines several prompts ({what}), e.g. for different "
                         "areas of the picture; this recipe uses one of them.")
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

    legacy = _json(texts.get("sd-metadata"))
    if isinstance(legacy, dict) and isinstance(legacy.get("image"), dict):
        request, more = from_invokeai2(legacy)
        return Recipe("invokeai", "image", request, parameters, raw, notes + more)
    if texts.get("Dream", "").strip() and not parameters.strip():
        try:
            request, more = from_dream(texts["Dream"])
        except ValueError as exc:
            log.info("%s: InvokeAI Dream text not understood (%s)", name, exc)
        else:
            return Recipe("invokeai", "image", request, parameters, raw, notes + more)
    if texts.get("Software", "").strip() == "NovelAI" or (
            isinstance(_json(texts.get("Comment")), dict) and "Source" in texts
            and not parameters.strip()):
        request, more = from_novelai(texts)
        return Recipe("novelai", "image", request, parameters, raw, notes + more)

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
