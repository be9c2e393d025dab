"""Sampler names the artist picks (A1111's) → diffusers schedulers built from a model's config.

Each request builds a fresh scheduler from the pipeline's own scheduler config, so the
model's training schedule (betas, prediction type, timestep spacing of Turbo models) is
kept and only the sampling method changes. Fresh per request also means no state
(multistep history, step index) leaks from one job into the next.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from studio.core.errors import RequestError

_NO_SIGMA_TRICKS = {"use_karras_sigmas": False, "use_exponential_sigmas": False,
                    "use_beta_sigmas": False}

# name → (diffusers class name, config overrides). Overrides that a class does not
# accept are dropped, so the same base config serves every class.
SCHEDULER_MAP: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", dict(_NO_SIGMA_TRICKS)),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, **_NO_SIGMA_TRICKS},
    ),
    "DPM++ 2M Karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, **_NO_SIGMA_TRICKS,
         "use_karras_sigmas": True},
    ),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {"predict_x0": True, **_NO_SIGMA_TRICKS}),
    "LCM": ("LCMScheduler", {}),
}

def scheduler_class(name: str) -> type:
    """The diffusers class behind a sampler name (RequestError for an unknown name)."""
    import diffusers

    try:
        class_name, _overrides = SCHEDULER_MAP[name]
    except KeyError:
        raise RequestError(
            f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULER_MAP)}."
        ) from None
    return getattr(diffusers, class_name)


def build_scheduler(name: str, base_config: Mapping[str, Any], **extra: Any):
    """A new scheduler for `name` from a pipeline's scheduler config (plus `extra` overrides)."""
    cls = scheduler_class(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    overrides = {**SCHEDULER_MAP[name][1], **extra}
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    config.update({k: v for k, v in overrides.items() if k in accepted})
    return cls.from_config(config)
