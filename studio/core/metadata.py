"""Metadata written beside every output and read back from other apps' files.

- AUTOMATIC1111 "infotext" (the `parameters` text every SD tool and site understands),
  written exactly as A1111 writes it and parsed with A1111's own rules;
- our own JSON record (the whole request, so an output can be replayed exactly);
- an XMP packet marking the file as made by a trained algorithm (IPTC DigitalSourceType),
  which is how provenance-aware tools recognise AI-generated media.

Plain Python: no torch, no Qt, no Pillow.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core import families
from studio.core.errors import StudioError
from studio.core.requests import (
    MAX_CLIP_SKIP,
    MAX_SIDE,
    NO_SIGMA_SCHEDULES,
    SAMPLERS,
    SCHEDULES,
    is_own_vae,
    sampling,
)
from studio.core.seeds import MAX_SEED
from studio.core.settings import Settings

APP_NAME = "Studio"
RECORD_FORMAT = 1  # version of our JSON record layout
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# A1111's parameter pattern (modules/infotext_utils.py) and its WxH value pattern.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")

# The keys we write, in A1111's order; extras go between "Clip skip" and "Version".
KEY_ORDER: tuple[str, ...] = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "VAE hash",
    "VAE",
    "Variation seed",
    "Variation seed strength",
    "Denoising strength",
    "Clip skip",
)

# Our sampler names → (A1111 sampler, A1111 schedule type or None) with the schedule
# "Automatic" (the model's own timesteps). Since A1111 1.9 its "Automatic" means Karras
# for DPM++ 2M and DPM++ SDE and Exponential for the 2M/3M SDE samplers, so those write
# "Uniform" (the plain schedule) for ours; the others' A1111 Automatic is plain too.
TO_A1111: dict[str, tuple[str, str | None]] = {
    **{name: (name, None) for name in SAMPLERS},
    "DPM++ 2M": ("DPM++ 2M", "Uniform"),
    "DPM++ SDE": ("DPM++ SDE", "Uniform"),
    "DPM++ 2M SDE": ("DPM++ 2M SDE", "Uniform"),
    "DPM++ 3M SDE": ("DPM++ 3M SDE", "Uniform"),
    "DPM++ 2M Karras": ("DPM++ 2M", "Karras"),  # the old combined name
}
#: what A1111 1.9's "Automatic" schedule is for the samplers where it is not plain
A1111_AUTOMATIC = {"DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2M SDE": "Exponential",
                   "DPM++ 3M SDE": "Exponential"}
DEFAULT_SCHEDULER = "Euler a"

# A1111 schedule types that mean "the sampler's own, plain schedule" (our Automatic).
_PLAIN_SCHEDULES = {"", "uniform", "normal", "simple", "ddim"}
# Old combined sampler names ("DPM++ 2M SDE Karras") end in their schedule.
_SCHEDULE_SUFFIXES = ((" karras", "Karras"), (" exponential", "Exponential"))

# A1111 keys that change the picture but that we cannot honour: a note says so on import.
_UNSUPPORTED_KEYS: dict[str, str] = {
    "Hires upscale": "hires fix",
    "Hires resize-1": "hires fix",
    "Denoising strength": "img2img",
    "Hypernet": "a hypernetwork",
    "Refiner": "the SDXL refiner",
    "ControlNet 0": "ControlNet",
}


def app_version() -> str:
    """What we write as the software name in every file (e.g. "Studio 0.1.0")."""
    return f"{APP_NAME} {__version__}"


# ─── A1111 infotext: writing ──────────────────────────────────────────────────────────


def quote(value: object) -> str:
    """A1111's quoting: JSON-quote a value that holds a comma, a colon or a newline."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    """The inverse of `quote` (A1111 leaves a value as is when it is not valid JSON)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def format_number(value: float | int) -> str:
    """Numbers as A1111 shows them: 7.0 → "7", 7.5 → "7.5", 0.1 → "0.1"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def _value_text(value: object) -> str | None:
    """A value as infotext shows it, or None when it should be dropped."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = format_number(value)
    else:
        text = str(value)
    return text if text.strip() else None


def scheduler_to_a1111(name: str, schedule: str = "Automatic") -> tuple[str, str | None]:
    """Our sampler and schedule type → (A1111 Sampler, Schedule type or None)."""
    sampler, schedule = sampling(name, schedule)
    a1111, automatic = TO_A1111.get(sampler, (sampler, None))
    return a1111, automatic if schedule == "Automatic" else schedule


def model_display_name(model: str) -> str:
    """The model name other apps show: a file or folder name, a built-in's A1111 name
    (its family's `a1111_model`), or the built-in id."""
    if not model:
        return ""
    family = families.of_builtin(model)
    if family is not None and family.a1111_model:
        return family.a1111_model
    if model.startswith("builtin:"):
        return model
    return Path(model).name or model


def format_infotext(
    request: Any,
    *,
    seed: int | None = None,
    model_name: str | None = None,
    model_hash: str | None = None,
    extras: Mapping[str, Any] | None = None,
) -> str:
    """AUTOMATIC1111 infotext for one image, byte for byte as A1111 writes it.

    `request` is an ImageRequest (fields another image request lacks are skipped).
    `seed` overrides the request's seed (per-image seeds of a batch). `extras` holds
    further "Key: value" pairs; a standard key there (e.g. "VAE", "Clip skip") lands in
    its A1111 position, others go after "Clip skip" and before "Version".
    """
    extras = dict(extras or {})
    params: dict[str, Any] = {}

    params["Steps"] = getattr(request, "steps", None)
    scheduler = getattr(request, "scheduler", None)
    if scheduler:
        params["Sampler"], params["Schedule type"] = scheduler_to_a1111(
            scheduler, getattr(request, "schedule", "Automatic") or "Automatic")
    params["CFG scale"] = getattr(request, "guidance", None)
    params["Seed"] = getattr(request, "seed", None) if seed is None else seed
    width, height = getattr(request, "width", None), getattr(request, "height", None)
    if width and height:
        params["Size"] = f"{width}x{height}"
    params["Model hash"] = model_hash
    model = getattr(request, "model", "") or ""
    params["Model"] = model_name if model_name is not None else model_display_name(model)
    vae = getattr(request, "vae", "") or ""
    params["VAE"] = None if is_own_vae(vae) else Path(vae.strip()).name
    strength = getattr(request, "variation_strength", 0) or 0
    if strength > 0:
        params["Variation seed"] = getattr(request, "variation_seed", None)
        params["Variation seed strength"] = strength
    params["Denoising strength"] = getattr(request, "denoising_strength", None)
    extras = {**mode_infotext(request, params), **extras}
    clip_skip = getattr(request, "clip_skip", None)
    params["Clip skip"] = clip_skip if isinstance(clip_skip, int) and clip_skip > 1 else None

    for key in KEY_ORDER:  # standard keys given as extras fill their own slot
        if key in extras:
            value = extras.pop(key)
            if key == "Clip skip" and not (isinstance(value, int) and value > 1):
                value = None
            params[key] = value
    version = extras.pop("Version", app_version())

    ordered = [(key, params.get(key)) for key in KEY_ORDER]
    ordered += list(extras.items())
    ordered.append(("Version", version))

    parts = []
    for key, value in ordered:
        text = _value_text(value)
        if text is not None:
            parts.append(key if key == text else f"{key}: {quote(text)}")
    prompt = prompt_with_loras(getattr(request, "prompt", "") or "",
                               getattr(request, "loras", ()) or ())
    negative = getattr(request, "negative", "") or ""
    negative_text = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_text}\n{', '.join(parts)}".strip()


def prompt_with_loras(prompt: str, picked: Sequence[str]) -> str:
    """The prompt as A1111 must read it: the picked LoRAs ("name:w") added as
    `<lora:name:w>` tags, unless the prompt already names them."""
    from studio.core.prompts import extract_networks
    from studio.core.requests import parse_lora

    try:
        named = {ref.name for ref in extract_networks(prompt).loras}
    except StudioError:
        named = set()
    tags = []
    for entry in picked:
        try:
            name, weight = parse_lora(entry)
        except StudioError:
            continue
        if name not in named:
            tags.append(f"<lora:{name}:{weight:g}>")
    return " ".join([prompt, *tags]) if tags and prompt else (" ".join(tags) or prompt)


def infotext_extras(info: Mapping[str, Any] | None) -> dict[str, str]:
    """A result's LoRAs and embeddings as A1111's `Lora hashes` / `TI hashes` values
    ("name: hash, name2: hash", A1111's 12-digit short hashes)."""
    out: dict[str, str] = {}
    for key, field in (("Lora hashes", "loras"), ("TI hashes", "embeddings")):
        items = (info or {}).get(field) or []
        pairs = [f"{item['name']}: {item['hash']}" for item in items
                 if isinstance(item, Mapping) and item.get("name") and item.get("hash")]
        if pairs:
            out[key] = ", ".join(pairs)
    return out


def parse_hashes(text: object) -> dict[str, str]:
    """`Lora hashes` / `TI hashes` text → {name: short hash}."""
    out: dict[str, str] = {}
    for part in str(text or "").split(","):
        name, colon, value = part.rpartition(":")
        if colon and name.strip():
            out[name.strip()] = value.strip().lower()
    return out


def _upscaler_name(name: str) -> str:
    """Our hires upscaler → A1111's name for it ("Latent", "Lanczos", or the model's)."""
    if name in ("latent", "lanczos"):
        return name.capitalize()
    return Path(name).stem if ("/" in name or "\\" in name) else name


def mode_infotext(request: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The img2img / inpainting / hires keys of an image request, as A1111 writes them:
    "Denoising strength" goes in its slot of `params`; the others are returned (A1111
    puts them after "Clip skip"). Text-to-image without hires adds nothing."""
    extras: dict[str, Any] = {}
    if getattr(request, "init_image", ""):
        params["Denoising strength"] = request.strength
        if request.mask or any(request.outpaint):
            extras["Mask blur"] = request.mask_blur
        if request.inpaint_area == "masked" and request.mask:
            extras["Inpaint area"] = "Only masked"
            extras["Masked area padding"] = request.inpaint_padding
        if any(request.outpaint):
            extras["Outpaint"] = ",".join(str(m) for m in request.outpaint)
    elif getattr(request, "hires_scale", 1) > 1:
        params["Denoising strength"] = request.hires_strength
        extras["Hires upscale"] = request.hires_scale
        if request.hires_steps:
            extras["Hires steps"] = request.hires_steps
        extras["Hires upscaler"] = _upscaler_name(request.hires_upscaler)
    return extras


def infotext_modes(params: Mapping[str, Any], out: dict[str, Any]) -> None:
    """A1111's img2img / inpainting / hires keys → our ImageRequest fields, into `out`.
    With "Hires upscale" the denoising strength is the hires pass's; otherwise img2img's
    (the init image itself is not in the infotext: the picture is the user's to give)."""
    scale = as_float(params.get("Hires upscale"))
    strength = as_float(params.get("Denoising strength"))
    if scale is not None and scale > 1:
        out["hires_scale"] = min(scale, 4.0)
        steps = as_int(params.get("Hires steps"))
        if steps is not None:
            out["hires_steps"] = steps
        upscaler = str(params.get("Hires upscaler") or "Latent").strip()
        out["hires_upscaler"] = "latent" if upscaler.lower().startswith("latent") else \
            "lanczos" if upscaler.lower() == "lanczos" else upscaler
        if strength is not None:
            out["hires_strength"] = min(max(strength, 0.0), 1.0)
    elif strength is not None:
        out["strength"] = min(max(strength, 0.0), 1.0)
    blur = as_int(params.get("Mask blur"))
    if blur is not None:
        out["mask_blur"] = blur
    if str(params.get("Inpaint area", "")).lower() == "only masked":
        out["inpaint_area"] = "masked"
    padding = as_int(params.get("Masked area padding"))
    if padding is not None:
        out["inpaint_padding"] = padding
    margins = str(params.get("Outpaint", "")).split(",")
    if len(margins) == 4 and all(m.strip().isdigit() for m in margins):
        out["outpaint"] = [int(m) for m in margins]


# ─── A1111 infotext: reading ──────────────────────────────────────────────────────────


def parse_infotext(text: str) -> dict[str, str]:
    """Parse infotext with A1111's own rules (parse_generation_parameters).

    The last line holds the parameters only when RE_PARAM matches it at least 3 times;
    otherwise it is part of the prompt. Lines are stripped; lines from "Negative prompt:"
    on form the negative prompt. Quoted values are unquoted; "WxH" values become
    "<Key>-1" and "<Key>-2". Values stay text, as in A1111. Unlike A1111 no defaults
    are filled in for missing keys (a missing key stays missing).
    """
    result: dict[str, str] = {}
    prompt = ""
    negative = ""
    done_with_prompt = False

    *lines, lastline = (text or "").strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""

    for raw_line in lines:
        line = raw_line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line

    result["Prompt"] = prompt
    result["Negative prompt"] = negative

    for key, value in RE_PARAM.findall(lastline):
        if not value:  # A1111 fails on v[0] and skips the key
            continue
        if value[0] == '"' and value[-1] == '"':
            value = unquote(value)
        m = RE_IMAGESIZE.match(value)
        if m is not None:
            result[f"{key}-1"] = m.group(1)
            result[f"{key}-2"] = m.group(2)
        else:
            result[key] = value
    return result


def a1111_sampling(sampler: str | None, schedule_type: str | None
                   ) -> tuple[str, str, str | None]:
    """A1111 Sampler + Schedule type → (our sampler, our schedule type, a note when it is
    not exact).

    Like A1111 it understands old combined names ("DPM++ 2M Karras", "DPM++ 2M SDE
    Exponential" as the sampler). A missing schedule type is read as infotext from
    before A1111 1.9, where a plain name meant the plain schedule; "Automatic" is read as
    1.9+ does (Karras for DPM++ 2M and DPM++ SDE, Exponential for the 2M/3M SDE ones).
    """
    name = (sampler or "").strip()
    schedule = (schedule_type or "").strip()
    if not name:
        return DEFAULT_SCHEDULER, "Automatic", None
    for suffix, combined in _SCHEDULE_SUFFIXES:
        if name.lower().endswith(suffix) and schedule.lower() in ("", "automatic"):
            name, schedule = name[: -len(suffix)].rstrip(), combined
    base = {k.lower(): k for k in SAMPLERS}.get(name.lower())
    if base is None:
        note = f"Sampler {name!r} is not available here; using {DEFAULT_SCHEDULER}."
        return DEFAULT_SCHEDULER, "Automatic", note
    key = schedule.lower()
    known = {k.lower(): k for k in SCHEDULES if k != "Automatic"}
    if key == "automatic":
        ours = A1111_AUTOMATIC.get(base, "Automatic")
    elif key in _PLAIN_SCHEDULES:
        ours = "Automatic"
    elif key in known:
        ours = known[key]
    else:
        return base, "Automatic", (f"Schedule type {schedule!r} is not available here; "
                                   f"using {base} with the model's own schedule.")
    if base in NO_SIGMA_SCHEDULES and ours in ("Karras", "Exponential"):
        return base, "Automatic", (f"Schedule type {ours!r} is not available for {base} "
                                   f"here; using {base} with the model's own schedule.")
    return base, ours, None


def as_int(value: Any) -> int | None:
    """A whole number from text or a number (None when it is not one)."""
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)  # exactly: a 64-bit seed must not pass through float()
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def as_float(value: Any) -> float | None:
    """A finite number from text or a number (None when it is not one)."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fit_seed(seed: int, label: str, notes: list[str]) -> int:
    """Seeds are 64-bit here, as in ComfyUI and Fooocus: kept exactly. Only a seed beyond
    64 bits (or a negative one other than -1) is folded into the range, with a note."""
    if seed == -1 or 0 <= seed <= MAX_SEED:
        return seed
    folded = seed % (MAX_SEED + 1)
    notes.append(f"{label} {seed} is beyond 64 bits; using {folded} (the picture will differ).")
    return folded


def fit_side(value: int, label: str, notes: list[str]) -> int:
    """Sizes must be multiples of 8 between 64 and 4096 here."""
    fitted = min(max(64, value - value % 8), MAX_SIDE)
    if fitted != value:
        notes.append(f"{label} {value} is not usable here; using {fitted}.")
    return fitted


def _local_loras(prompt: str, lora_hashes: object, ti_hashes: object,
                 settings: Settings | None) -> tuple[str, list[str], bool]:
    """The recipe's LoRAs found here: a tag whose LoRA is installed under another name
    (found by its A1111 hash) is renamed in the prompt; each one not installed gets a
    note. Returns the prompt, the notes, and whether any LoRA is missing."""
    from studio.core.catalog import loras as found_loras
    from studio.core.prompts import extract_networks

    try:
        tags = [ref.name for ref in extract_networks(prompt).loras]
    except StudioError:
        return prompt, [], True
    hashes = parse_hashes(lora_hashes)
    names = [*tags, *(n for n in hashes if n not in tags)]
    notes: list[str] = []
    missing = False
    if names:
        settings = settings or Settings.load()
        resolved = found_loras.resolve(names, hashes, settings)
        for name in names:
            local = resolved.get(name)
            if local is None:
                missing = True
                known = f" (hash {hashes[name]})" if hashes.get(name) else ""
                notes.append(f"LoRA {name}{known} is not installed here; put it in "
                             "models/Lora to reproduce the picture.")
            elif local != name and name in tags:
                prompt = re.sub(rf"<(lora|lyco):{re.escape(name)}(?=[:>])",
                                rf"<\1:{local.replace(chr(92), chr(92) * 2)}", prompt)
                notes.append(f"LoRA {name} is installed here as {local} (same file); the "
                             "prompt names it so.")
    embeddings = list(parse_hashes(ti_hashes))
    if embeddings:
        here = found_loras.find_embeddings(settings or Settings.load())
        for name in embeddings:
            if name not in here:
                notes.append(f"Embedding {name} is not installed here; put it in "
                             "models/embeddings to reproduce the picture.")
    return prompt, notes, missing


def infotext_to_request_dict(params: Mapping[str, Any], *, modes: bool = False,
                             settings: Settings | None = None) -> dict[str, Any]:
    """Parsed infotext (see `parse_infotext`) → our ImageRequest fields.

    Only what is present is set; the rest keeps the request's defaults. Anything that
    cannot be honoured exactly (an unknown sampler, hires fix, a LoRA...) is listed in
    the "notes" entry (a list of sentences; Request.from_dict ignores it). modes=True
    also fills the img2img / inpainting / hires fields (`infotext_modes`), which are
    then not noted as missing. LoRAs (`<lora:...>` tags, `Lora hashes`) are looked up
    in the LoRA folders of `settings` (default: the saved settings): found ones stay
    in the prompt (by their local name when only the hash matched), missing ones are
    named in the notes.
    """
    notes: list[str] = []
    out: dict[str, Any] = {
        "kind": "image",
        "prompt": str(params.get("Prompt", "") or ""),
        "negative": str(params.get("Negative prompt", "") or ""),
    }

    steps = as_int(params.get("Steps"))
    if steps is not None:
        out["steps"] = steps
    cfg = as_float(params.get("CFG scale"))
    if cfg is not None:
        out["guidance"] = cfg
    seed = as_int(params.get("Seed"))
    if seed is not None:
        out["seed"] = fit_seed(seed, "Seed", notes)
    for key, field in (("Size-1", "width"), ("Size-2", "height")):
        side = as_int(params.get(key))
        if side is not None:
            out[field] = fit_side(side, field.capitalize(), notes)
    if "Sampler" in params:
        out["scheduler"], out["schedule"], note = a1111_sampling(params.get("Sampler"),
                                                                 params.get("Schedule type"))
        if note:
            notes.append(note)
    vae = str(params.get("VAE") or "").strip()
    if vae and not is_own_vae(vae) and not vae.lower().startswith("default"):
        out["vae"] = vae
    model = str(params.get("Model") or params.get("Model hash") or "").strip()
    if model:
        out["model"] = model
    strength = as_float(params.get("Variation seed strength"))
    variation = as_int(params.get("Variation seed"))
    if strength and strength > 0 and variation is not None:
        out["variation_seed"] = fit_seed(variation, "Variation seed", notes)
        out["variation_strength"] = min(max(strength, 0.0), 1.0)

    clip_skip = as_int(params.get("Clip skip"))
    if clip_skip is not None and clip_skip > 1:
        out["clip_skip"] = min(clip_skip, MAX_CLIP_SKIP)
        if clip_skip > MAX_CLIP_SKIP:
            notes.append(f"Clip skip {clip_skip} is more than CLIP's layers; using "
                         f"{MAX_CLIP_SKIP}.")
    missing: list[str] = []
    if modes:
        infotext_modes(params, out)
    for key, what in _UNSUPPORTED_KEYS.items():
        if modes and what in ("hires fix", "img2img"):
            continue
        if key == "Denoising strength" and "hires fix" in missing:
            continue  # with hires fix, the denoising strength belongs to it
        value = str(params.get(key) or "").strip().lower()
        if value in ("", "0", "none", "automatic") or value.startswith("default"):
            continue
        if what not in missing:
            missing.append(what)
    out["prompt"], lora_notes, lora_missing = _local_loras(
        out["prompt"], params.get("Lora hashes"), params.get("TI hashes"), settings)
    if lora_missing and "LoRAs" not in missing:
        missing.append("LoRAs")
    if missing:
        listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        notes.append(f"The original used {listed}, which this recipe does not reproduce.")
    notes += lora_notes
    if notes:
        out["notes"] = notes
    return out


# ─── XMP provenance ───────────────────────────────────────────────────────────────────

# Characters XML 1.0 forbids even when escaped.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    # xml.sax.saxutils imported here: it imports urllib.request, http.client and ssl (~20 ms)
    from xml.sax.saxutils import escape

    return escape(_XML_INVALID.sub("", text))


def _xml_attr(text: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(_XML_INVALID.sub("", text), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def build_xmp(
    prompt: str,
    *,
    software: str | None = None,
    model_name: str | None = None,
    created: _dt.datetime | None = None,
) -> str:
    """An XMP packet saying "made by a trained algorithm" (IPTC DigitalSourceType).

    dc:description holds the prompt; xmp:CreatorTool the software; the IPTC 2025 AI
    properties name the model and the prompt. Everything is XML-escaped.
    """
    software = software or app_version()
    created = created or _dt.datetime.now().astimezone()
    attrs = [
        ("Iptc4xmpExt:DigitalSourceType", DIGITAL_SOURCE_TYPE),
        ("xmp:CreatorTool", software),
        ("xmp:CreateDate", created.isoformat(timespec="seconds")),
    ]
    if model_name:
        attrs.append(("Iptc4xmpExt:AISystemUsed", model_name))
    attr_text = "".join(f"\n    {name}={_xml_attr(value)}" for name, value in attrs)
    description = ""
    if prompt:
        description = (
            "\n   <dc:description>\n    <rdf:Alt>\n"
            f'     <rdf:li xml:lang="x-default">{_xml_text(prompt)}</rdf:li>\n'
            "    </rdf:Alt>\n   </dc:description>"
            f"\n   <Iptc4xmpExt:AIPromptInformation>{_xml_text(prompt)}"
            "</Iptc4xmpExt:AIPromptInformation>"
        )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f"{attr_text}>"
        f"{description}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )


# ─── Our own record ───────────────────────────────────────────────────────────────────


def json_safe(info: Mapping[str, Any], max_chars: int = 20000) -> dict[str, Any]:
    """The entries of `info` that survive JSON (numpy arrays and the like are dropped)."""
    safe: dict[str, Any] = {}
    for key, value in info.items():
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            continue
        if len(text) <= max_chars:
            safe[str(key)] = value
    return safe


def studio_record(request: Any, modality: str, **extra: Any) -> dict[str, Any]:
    """Our JSON record for one output: the whole request (ready for Request.from_dict),
    the modality and the app version, plus any extra facts (batch position, info)."""
    record: dict[str, Any] = {
        "app": APP_NAME,
        "app_version": __version__,
        "format": RECORD_FORMAT,
        "modality": modality,
        "request": request.to_dict() if hasattr(request, "to_dict") else dict(request),
    }
    record.update(extra)
    return record


def record_request(record: Any) -> dict[str, Any] | None:
    """The request dict inside a record written by `studio_record` (or a bare request)."""
    if not isinstance(record, dict):
        return None
    request = record.get("request")
    if isinstance(request, dict) and "kind" in request:
        return request
    if "kind" in record and "model" in record:  # a bare request dict
        return record
    return None
