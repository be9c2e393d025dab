"""Live image previews: the sampler's x0 estimate, decoded cheaply, at a bounded cost.

- `X0Tap` catches the x0 estimate the scheduler computes anyway (no extra model work).
- `LinearPreview` maps 4 latent channels to RGB with a fixed 4×3 matrix (≈0.2 ms);
  `TaesdPreview` decodes with a tiny autoencoder (TAESD) when one is installed.
- `PreviewThrottle` keeps previews from costing more than a small share of the job.
- `fast_decode` decodes the final image with that tiny autoencoder too, when asked
  (~1.6 s instead of ~21 s for a 512² image on 2 cores; softer detail).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

# ComfyUI's published latent → RGB factors (comfy/latent_formats.py), rows = latent channels.
SD_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_RGB_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_RGB_BIAS = (0.1084, -0.0175, -0.0011)

# family → TAESD folder names to look for in the model folders (diffusers format)
TAESD_NAMES = {"sd1": ("taesd",), "sd2": ("taesd",), "sdxl": ("taesdxl",)}


def to_uint8_images(images: torch.Tensor) -> list[np.ndarray]:
    """(B, H, W, 3) floats in [-1, 1] → list of contiguous uint8 (H, W, 3) arrays."""
    scaled = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    array = scaled.cpu().numpy()
    return [np.ascontiguousarray(a) for a in array]


class LinearPreview:
    """x0 latents (B, 4, h, w) → latent-sized RGB previews with a fixed linear map."""

    name = "linear"

    def __init__(self, family: str, device: str | torch.device, dtype: torch.dtype) -> None:
        xl = family == "sdxl"
        self.weight = torch.tensor(SDXL_RGB_FACTORS if xl else SD_RGB_FACTORS,
                                   device=device, dtype=dtype)
        self.bias = torch.tensor(SDXL_RGB_BIAS, device=device, dtype=dtype) if xl else None

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> list[np.ndarray] | None:
        if x0.ndim != 4 or x0.shape[1] != self.weight.shape[0]:
            return None  # not a 4-channel SD latent: no linear map for it
        weight = self.weight.to(device=x0.device, dtype=x0.dtype)
        rgb = torch.einsum("bchw,cr->bhwr", x0, weight)
        if self.bias is not None:
            rgb = rgb + self.bias.to(device=x0.device, dtype=x0.dtype)
        return to_uint8_images(rgb)


class TaesdPreview:
    """x0 latents → full-size previews with a tiny autoencoder (scaling factor 1: no rescale)."""

    name = "taesd"

    def __init__(self, vae: torch.nn.Module) -> None:
        self.vae = vae

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> list[np.ndarray] | None:
        param = next(self.vae.parameters())
        decoded = self.vae.decode(x0.to(device=param.device, dtype=param.dtype),
                                  return_dict=False)[0]
        return to_uint8_images(decoded.permute(0, 2, 3, 1))


@contextlib.contextmanager
def fast_decode(vae: Any, taesd: torch.nn.Module) -> Iterator[None]:
    """While active, `vae.decode` (what the pipeline calls for the final image) decodes
    with the tiny autoencoder instead. The pipeline has divided the latents by the VAE's
    scaling factor; TAESD reads them unscaled (its factor is 1), so that is undone. Its
    output has the VAE's range ([-1, 1]), so the pipeline's post-processing is unchanged."""
    from diffusers.models.autoencoders.vae import DecoderOutput

    scale = float(vae.config.scaling_factor)
    param = next(taesd.parameters())

    def decode(z: torch.Tensor, return_dict: bool = True, generator: Any = None,
               **_kwargs: Any) -> Any:
        image = taesd.decode((z * scale).to(device=param.device, dtype=param.dtype),
                             return_dict=False)[0].to(device=z.device, dtype=z.dtype)
        return DecoderOutput(sample=image) if return_dict else (image,)

    before = vae.__dict__.get("decode")  # another stand-in (OpenVINO's) comes back after
    vae.decode = decode
    try:
        yield
    finally:
        if before is not None:
            vae.decode = before
        else:
            vae.__dict__.pop("decode", None)


def find_taesd(family: str, folders: Iterable[Path]) -> Path | None:
    """The first diffusers AutoencoderTiny folder for this family in the model folders."""
    for folder in folders:
        for name in TAESD_NAMES.get(family, ()):
            candidate = Path(folder) / name
            config = candidate / "config.json"
            try:
                data = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if data.get("_class_name") == "AutoencoderTiny":
                return candidate
    return None


class X0Tap:
    """Wraps one scheduler's `step` to keep what it returns; x0 is derived only on demand.

    Euler, Euler a, DDIM and LCM return their x0 estimate from `step`; DPM++ and UniPC
    keep it as `model_outputs[-1]`. For anything else x0 is derived from the model output
    (epsilon, v or sample prediction) and the step's sigma or alpha.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self._last: tuple[Any, torch.Tensor, Any, torch.Tensor] | None = None
        original = scheduler.step

        # wraps() keeps step's signature visible: pipelines pass `generator` (the seeded
        # noise of ancestral samplers) only when inspect.signature(step) names it.
        @functools.wraps(original)
        def step(model_output, timestep, sample, *args, **kwargs):
            out = original(model_output, timestep, sample, *args, **kwargs)
            self._last = (out, model_output, timestep, sample)
            return out

        scheduler.step = step  # instance attribute: this scheduler only, for this job

    def estimate(self) -> torch.Tensor | None:
        """The latest x0 estimate, or None before the first step."""
        if self._last is None:
            return None
        out, model_output, timestep, sample = self._last
        if isinstance(out, tuple):
            if len(out) > 1 and isinstance(out[1], torch.Tensor):
                return out[1]
        else:
            for name in ("pred_original_sample", "denoised"):
                value = getattr(out, name, None)
                if isinstance(value, torch.Tensor):
                    return value
        stored = self._stored_x0()
        if stored is not None:
            return stored
        return derive_x0(self.scheduler, model_output, timestep, sample)

    def _stored_x0(self) -> torch.Tensor | None:
        outputs = getattr(self.scheduler, "model_outputs", None)
        if not outputs or not isinstance(outputs[-1], torch.Tensor):
            return None
        config = self.scheduler.config
        if getattr(config, "algorithm_type", "") in ("dpmsolver++", "sde-dpmsolver++"):
            return outputs[-1]
        if getattr(config, "predict_x0", False):
            return outputs[-1]
        return None


def derive_x0(scheduler: Any, model_output: torch.Tensor, timestep: Any,
              sample: torch.Tensor) -> torch.Tensor | None:
    """x0 from a step's input `sample` and the model's output, for sigma- or alpha-schedulers.

    Sigma schedulers (Euler family) hold x = x0 + σ·ε, so x0 = x − σ·ε for epsilon models.
    Alpha schedulers hold x = √ᾱ·x0 + √(1−ᾱ)·ε.
    """
    prediction = getattr(scheduler.config, "prediction_type", "epsilon")
    if prediction == "sample":
        return model_output
    sigmas = getattr(scheduler, "sigmas", None)
    index = getattr(scheduler, "step_index", None)
    if sigmas is not None and index is not None and index >= 1:
        sigma = float(sigmas[index - 1])  # step() has already moved the index on
        if prediction == "epsilon":
            return sample - sigma * model_output
        if prediction == "v_prediction":
            return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        return None
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        return None
    t = int(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
    a = float(alphas[t])
    if prediction == "epsilon":
        return (sample - (1 - a) ** 0.5 * model_output) / a**0.5
    if prediction == "v_prediction":
        return a**0.5 * sample - (1 - a) ** 0.5 * model_output
    return None


class PreviewThrottle:
    """When to spend time on a preview: at most every `interval` seconds, and never more
    than `budget` (a fraction) of the job's time so far; the first step always qualifies."""

    def __init__(self, interval: float = 0.2, budget: float = 0.03) -> None:
        self.interval = interval
        self.budget = budget
        self.start = time.perf_counter()
        self.spent = 0.0
        self.last: float | None = None

    def due(self) -> bool:
        now = time.perf_counter()
        if self.last is None:
            return True
        if now - self.last < self.interval:
            return False
        return self.spent <= self.budget * (now - self.start)

    def record(self, started: float) -> None:
        now = time.perf_counter()
        self.spent += now - started
        self.last = now


def preview_payload(images: Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """One array for a single image, a list for a batch (the Preview contract)."""
    return images[0] if len(images) == 1 else list(images)
