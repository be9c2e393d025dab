"""Import the ML stack ahead of the first job, so that job runs as smoothly as the others.

Importing torch, diffusers and transformers holds Python's GIL in long C calls (up to
~350 ms at a time on 2 cores): done during the first job, the window stutters while the
user watches it. The worker runs `warm_up()` once, right after the window is shown, so
whatever hiccup remains happens at launch, before anything is asked of it.
"""

from __future__ import annotations

import importlib
import logging
import os
import time

log = logging.getLogger(__name__)

#: what the first job of each kind imports, in order (module, attributes to touch):
#: diffusers and transformers import their classes lazily, on first attribute access
MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ()),
    ("studio.engines.runner", ()),
    ("safetensors.torch", ()),
    ("transformers", ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer",
                      "AutoModelForCausalLM", "AutoTokenizer")),
    ("diffusers", ("StableDiffusionPipeline", "StableDiffusionXLPipeline",
                   "LatentConsistencyModelPipeline", "UNet2DConditionModel", "AutoencoderKL",
                   "AutoencoderTiny")),
    ("studio.engines.image_diffusers", ()),
)


def warm_up() -> dict[str, float]:
    """Import what the first job needs and run one tiny op (torch's kernels initialise on
    first use). Returns the seconds each step took; never raises (a missing optional
    library only means that job imports it itself)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is first imported
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    took: dict[str, float] = {}
    for name, attributes in MODULES:
        t = time.perf_counter()
        try:
            module = importlib.import_module(name)
            for attribute in attributes:
                getattr(module, attribute)
        except Exception:  # an optional library missing or broken: the job will say so
            log.warning("warm-up: could not import %s", name, exc_info=True)
        took[name] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    try:
        import torch

        with torch.inference_mode():  # conv, matmul and attention kernels: first-call set-up
            x = torch.zeros(1, 4, 8, 8)
            torch.nn.functional.conv2d(x, torch.zeros(4, 4, 3, 3), padding=1)
            q = torch.zeros(1, 1, 4, 8)
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
    except Exception:
        log.warning("warm-up: torch could not run", exc_info=True)
    took["kernels"] = round(time.perf_counter() - t, 3)
    log.info("warm-up took %.1f s (%s)", sum(took.values()), took)
    return took
