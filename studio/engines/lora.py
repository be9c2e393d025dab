"""LoRAs on a loaded diffusers pipeline: read, check, load once as peft adapters, switch.

A LoRA is loaded into the pipeline's own UNet and text encoders as a peft adapter
(diffusers' `load_lora_weights`, which reads the kohya/A1111/Civitai key format and the
diffusers/peft one) and kept there, named by its file's hash; a job only chooses which
adapters are active and with what weights (`set_adapters`), so changing LoRAs never
reloads the base model. With no LoRA (or every weight 0) the adapters are disabled and
the layers run their base weights alone: the pixels are the base model's exactly.

`to_kohya` writes a diffusers/peft LoRA state dict with kohya's key names, the format
A1111 and ComfyUI read (tests build such files; a trained LoRA is exported with it).
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.core import catalog, families
from studio.core.catalog import LoraFile
from studio.core.errors import ModelError, RequestError
from studio.core.prompts import LoraRef
from studio.core.requests import parse_lora
from studio.core.settings import Settings

log = logging.getLogger(__name__)

#: adapters kept loaded in one pipeline (the least recently used beyond this are deleted)
ADAPTER_LIMIT = 8
#: LyCORIS network types diffusers' LoRA loader does not read
_LYCORIS = re.compile(r"\.(hada_w1_a|lokr_w1|oft_blocks|diff_b|w_norm)\b")


@dataclass(frozen=True)
class LoraUse:
    """One LoRA a job asks for: its name and the text-encoder and UNet multipliers."""

    name: str
    te: float = 1.0
    unet: float = 1.0
    picked: bool = False  # from the picker / --lora (an unknown name is an error there)

    @property
    def active(self) -> bool:
        return self.te != 0 or self.unet != 0


def wanted(field: Sequence[str], tags: Iterable[LoraRef]) -> tuple[list[LoraUse], list[str]]:
    """The LoRAs of a request: the picker's (`ImageRequest.loras`, "name:weight") and the
    prompt's `<lora:...>` tags, in that order; a name in both takes the prompt's weights
    (the prompt is what A1111 would read). Returns them and the notes to show."""
    uses: dict[str, LoraUse] = {}
    notes: list[str] = []
    for entry in field:
        name, weight = parse_lora(entry)
        uses[name] = LoraUse(name, weight, weight, picked=True)
    for ref in tags:
        if ref.name in uses:
            notes.append(f"LoRA {ref.name} is both picked and in the prompt; the prompt's "
                         "weight is used.")
        uses[ref.name] = LoraUse(ref.name, ref.weight, ref.unet_weight)
    return list(uses.values()), notes


def read_state_dict(lora: LoraFile, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors, or one sentence saying why it cannot be used."""
    path = lora.path
    if lora.pickled:
        if not allow_pickle:
            raise RequestError(f"The LoRA {path.name} is a pickled file, which can run code "
                               "when opened; convert it to .safetensors or allow pickled "
                               "checkpoints in Settings.")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise RequestError(f"The LoRA {path.name} holds more than plain weights, so "
                               "Studio will not open it.") from None
        except Exception as exc:
            raise RequestError(f"The LoRA file {path.name} could not be read ({exc}).") from None
        state = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)} \
            if isinstance(data, dict) else {}
    else:
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:
            raise RequestError(f"The LoRA file {path.name} is damaged or not a safetensors "
                               f"file ({str(exc).splitlines()[0] if str(exc) else exc}).") from None
    keys = list(state)
    if not keys or not any("lora" in k for k in keys):
        if any(_LYCORIS.search(k) for k in keys):
            raise RequestError(f"{path.name} is a LyCORIS network (LoHa/LoKr/OFT), which "
                               "Studio cannot load yet; only LoRA/LoCon files work.")
        raise RequestError(f"{path.name} is not a LoRA (it holds no LoRA layers).")
    return state


def check_base(lora: LoraFile, latent: str, model: str) -> None:
    """Refuse a LoRA made for another base family, in one sentence."""
    base = lora.base
    if base is None or not base.latent or base.latent == latent:
        return
    mine = families.get(latent)
    raise RequestError(f"LoRA {lora.name} is for {base.name}, but {model} is "
                       f"{mine.name if mine is not None else latent}; choose a LoRA made "
                       "for this model's family.")


class LoraStack:
    """The LoRA adapters loaded into one pipeline (by file hash) and which are active."""

    def __init__(self) -> None:
        self.loaded: OrderedDict[str, str] = OrderedDict()  # adapter → path it came from
        self.active: tuple[tuple[str, float, float], ...] = ()  # (adapter, te, unet)

    def apply(self, pipe: Any, uses: Sequence[LoraUse], settings: Settings, *,
              latent: str, model: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Activate exactly these LoRAs (loading each new one once). Returns what the
        job's record says about them (name, A1111 short hash, weights) and warnings: a
        prompt tag naming no LoRA on disk is left out with a warning, as A1111 does; a
        picked one that is missing, damaged or for another family is a RequestError."""
        records: list[dict[str, Any]] = []
        warnings: list[str] = []
        chosen: list[tuple[str, LoraUse]] = []
        for use in uses:
            try:
                found = catalog.find_lora(use.name, settings)
            except RequestError:
                if use.picked:
                    raise
                warnings.append(f"LoRA {use.name} was not found in the LoRA folders; it was "
                                "left out.")
                continue
            check_base(found, latent, model)
            sha = catalog.lora_hash(found.path)
            records.append({"name": use.name, "hash": sha[:12], "te": use.te,
                            "unet": use.unet, "file": found.path.name})
            if use.active:
                chosen.append((self._ensure(pipe, found, sha, settings), use))
        self._activate(pipe, chosen)
        return records, warnings

    def disable(self, pipe: Any) -> None:
        """No LoRA: every layer runs its base weights alone (the base model's pixels)."""
        self._activate(pipe, [])

    def _ensure(self, pipe: Any, lora: LoraFile, sha: str, settings: Settings) -> str:
        adapter = f"lora_{sha[:16]}"
        if adapter in self.loaded:
            self.loaded.move_to_end(adapter)
            return adapter
        state = read_state_dict(lora, settings.allow_pickle)  # one sentence if unusable
        try:
            load_adapter(pipe, str(lora.path) if not lora.pickled else state, adapter)
        except Exception as exc:
            self._forget(pipe, adapter)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"LoRA {lora.name} does not fit this model ({first[:160]}).") from exc
        present = {a for names in pipe.get_list_adapters().values() for a in names}
        if adapter not in present:
            raise ModelError(f"LoRA {lora.name} matches no layer of this model; it is "
                             "probably made for another kind of model.")
        self.loaded[adapter] = str(lora.path)
        log.info("LoRA %s loaded as adapter %s", lora.name, adapter)
        return adapter

    def _forget(self, pipe: Any, adapter: str) -> None:
        """Delete an adapter a failed load may have left half in place."""
        try:
            present = {a for names in pipe.get_list_adapters().values() for a in names}
            if adapter in present:
                pipe.delete_adapters(adapter)
        except Exception:  # nothing was loaded: nothing to delete
            log.debug("no adapter %s to delete", adapter, exc_info=True)
        self.loaded.pop(adapter, None)

    def _activate(self, pipe: Any, chosen: Sequence[tuple[str, LoraUse]]) -> None:
        # one order whatever order they were written in (the picker's or the prompt's),
        # so a replayed recipe sums the adapters' outputs identically
        chosen = sorted(chosen, key=lambda item: item[0])
        state = tuple((a, u.te, u.unet) for a, u in chosen)
        if not self.loaded:
            self.active = ()
            return
        if not chosen:
            pipe.disable_lora()
            self.active = ()
            return
        parts = pipe.get_list_adapters()  # {"unet": [...], "text_encoder": [...]}
        weights = []
        for adapter, use in chosen:
            weights.append({part: (use.unet if part == "unet" else use.te)
                            for part, names in parts.items() if adapter in names})
        pipe.enable_lora()
        pipe.set_adapters([a for a, _ in chosen], weights)
        self.active = state
        self._trim(pipe, {a for a, _ in chosen})

    def _trim(self, pipe: Any, keep: set[str]) -> None:
        while len(self.loaded) > ADAPTER_LIMIT:
            oldest = next((a for a in self.loaded if a not in keep), None)
            if oldest is None:
                return
            pipe.delete_adapters(oldest)
            self.loaded.pop(oldest)


# ------------------------------------------------------------------ loading


def load_adapter(pipe: Any, source: str | dict[str, torch.Tensor], adapter: str) -> None:
    """Load one LoRA (a .safetensors path, or a state dict) as adapter `adapter` into the
    pipeline's UNet and text encoders. Diffusers reads the file and converts kohya names
    (SDXL's too, given the UNet's config); the UNet gets it through diffusers; the text
    encoders through peft directly (`_into_text_encoder`)."""
    state, alphas, metadata = pipe.lora_state_dict(
        source, unet_config=pipe.unet.config, return_lora_metadata=True)
    if not all("lora" in key for key in state):
        raise ValueError("some of its tensors are not LoRA layers")
    pipe.load_lora_into_unet(state, network_alphas=alphas, unet=pipe.unet,
                             adapter_name=adapter, _pipeline=pipe, metadata=metadata)
    for prefix in ("text_encoder", "text_encoder_2"):
        encoder = getattr(pipe, prefix, None)
        if encoder is not None:
            _into_text_encoder(encoder, state, alphas, metadata, prefix, adapter)


def _into_text_encoder(encoder: Any, state: Mapping[str, torch.Tensor],
                       alphas: Mapping[str, float] | None, metadata: Mapping[str, Any] | None,
                       prefix: str, adapter: str) -> None:
    """A text encoder's part of a LoRA, injected with peft itself: transformers' own
    `load_adapter` (what diffusers calls) asks for a newer peft than the one installed.
    The config comes from diffusers' helper, so ranks and alphas read as diffusers reads
    them."""
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft
    from diffusers.utils.peft_utils import _create_lora_config
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    part = {k.removeprefix(f"{prefix}."): v for k, v in state.items()
            if k.startswith(f"{prefix}.")}
    if not part:
        return
    part = convert_state_dict_to_peft(convert_state_dict_to_diffusers(part))
    if not hasattr(encoder, "text_model"):  # transformers 5 flattens CLIPTextModel
        part = {k.removeprefix("text_model."): v for k, v in part.items()}
    names = {name for name, _ in encoder.named_modules()}
    rank = {f"{name}.lora_B.weight": part[f"{name}.lora_B.weight"].shape[1]
            for name in names if f"{name}.lora_B.weight" in part}
    own_alphas = {k.removeprefix(f"{prefix}."): v for k, v in (alphas or {}).items()
                  if k.split(".")[0] == prefix} or None
    own_meta = {k.removeprefix(f"{prefix}."): v for k, v in (metadata or {}).items()
                if k.startswith(f"{prefix}.")} or None
    config = _create_lora_config(part, own_alphas, own_meta, rank, is_unet=False)
    with warnings.catch_warnings():  # "already found a peft_config": several adapters, as meant
        warnings.simplefilter("ignore", UserWarning)
        inject_adapter_in_model(config, encoder, adapter_name=adapter)
    result = set_peft_model_state_dict(encoder, part, adapter_name=adapter)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) or [] if "lora_" in k]
    if unexpected:
        raise ValueError(f"{len(unexpected)} of its text-encoder layers match nothing here")
    encoder.to(device=encoder.device, dtype=encoder.dtype)


# ------------------------------------------------------------------ kohya key names

_PREFIXES = (("unet.", "lora_unet_"), ("text_encoder_2.", "lora_te2_"),
             ("text_encoder.", "lora_te_"))


def to_kohya(state: Mapping[str, torch.Tensor], *, xl: bool = False,
             alphas: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """A diffusers/peft LoRA state dict (`unet.….lora_A.weight`) with kohya's names
    (`lora_unet_…_to_q.lora_down.weight` and an `.alpha` per layer), which A1111 and
    ComfyUI read. `alphas` maps a module path to its alpha (default: the rank, scale 1);
    SDXL's first text encoder is `lora_te1_`."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"(.+)\.lora_([AB])(?:\.default)?\.weight", key)
        if match is None:
            raise ValueError(f"{key} is not a LoRA weight of the diffusers/peft format")
        module, which = match.groups()
        for prefix, kohya in _PREFIXES:
            if module.startswith(prefix):
                if kohya == "lora_te_" and xl:
                    kohya = "lora_te1_"
                inner = module[len(prefix):]
                if kohya != "lora_unet_" and not inner.startswith("text_model."):
                    inner = "text_model." + inner  # transformers 5 flattens CLIPTextModel
                name = kohya + inner.replace(".", "_")
                break
        else:
            raise ValueError(f"{key} belongs to no UNet or text encoder")
        out[f"{name}.lora_{'down' if which == 'A' else 'up'}.weight"] = value.contiguous()
        if which == "A":
            rank = float(value.shape[0])
            alpha = (alphas or {}).get(module, rank)
            out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def kohya_metadata(base: str, *, name: str = "") -> dict[str, str]:
    """The safetensors metadata kohya writes that A1111 reads: the base model version
    ("sd_v1", "sd_v2", "sdxl_base_v1-0") and the output name."""
    meta = {"ss_base_model_version": base, "ss_network_module": "networks.lora"}
    if name:
        meta["ss_output_name"] = name
    return meta


def kohya_bytes(state: Mapping[str, torch.Tensor], *, base: str, xl: bool = False,
                name: str = "", alphas: Mapping[str, float] | None = None) -> bytes:
    """A LoRA as the bytes of a kohya-format .safetensors file (see to_kohya)."""
    from safetensors.torch import save

    return save(to_kohya(state, xl=xl, alphas=alphas), metadata=kohya_metadata(base, name=name))


def save_kohya(path: Path, state: Mapping[str, torch.Tensor], *, base: str, xl: bool = False,
               name: str = "") -> Path:
    """Write a LoRA as a kohya-format .safetensors file (see to_kohya)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kohya_bytes(state, base=base, xl=xl, name=name))
    return path
