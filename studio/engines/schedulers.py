"""Sampler names the artist picks (A1111 1.9's) → diffusers schedulers built from a model's config.

Each request builds a fresh scheduler from the pipeline's own scheduler config, so the
model's training schedule (betas, prediction type, timestep spacing of Turbo models) is
kept and only the sampling method changes. Fresh per request also means no state
(multistep history, step index, the SDE sampler's Brownian tree) leaks from one job into
the next.

The schedule type is separate from the sampler, as in A1111 1.9: Automatic keeps the
model's own timesteps, Karras and Exponential re-space the noise levels
(`use_karras_sigmas` / `use_exponential_sigmas`), SGM Uniform spaces the timesteps from
the last one (`timestep_spacing="trailing"`).

Noise that samplers add while they run comes from the job's CPU generators (ancestral
and SDE samplers receive them from the pipeline); DPM++ SDE draws from a Brownian tree
(torchsde), seeded here with the generators' seeds, one per batch item, so every sampler
gives the same picture for the same seed.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from studio.core.errors import RequestError
from studio.core.requests import SCHEDULERS, SCHEDULES, check_scheduler, sampling

_PLAIN_SIGMAS = {"use_karras_sigmas": False, "use_exponential_sigmas": False,
                 "use_beta_sigmas": False}

# sampler name → (diffusers class name, config overrides). Overrides that a class does not
# accept are dropped, so the same base config serves every class.
SCHEDULER_MAP: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler",  # the old combined name
                        {"algorithm_type": "dpmsolver++", "solver_order": 2,
                         "use_karras_sigmas": True}),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler",
                     {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler",
                     {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {"predict_x0": True}),
    "LCM": ("LCMScheduler", {}),
}
assert set(SCHEDULER_MAP) == set(SCHEDULERS)

#: what each schedule type sets on top of the sampler's overrides
SCHEDULE_OVERRIDES: dict[str, dict[str, Any]] = {
    "Automatic": {},
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "SGM Uniform": {"timestep_spacing": "trailing"},
}
assert set(SCHEDULE_OVERRIDES) == set(SCHEDULES)

#: samplers whose diffusers class needs a package diffusers does not itself require
NEEDS = {"DPM++ SDE": ("torchsde", "torchsde"), "LMS": ("scipy", "scipy")}


def scheduler_class(name: str) -> type:
    """The diffusers class behind a sampler name (RequestError for an unknown name, or
    one sentence when its extra package is missing)."""
    try:
        class_name, _overrides = SCHEDULER_MAP[name]
    except KeyError:
        raise RequestError(
            f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULER_MAP)}."
        ) from None
    if name in NEEDS:
        import importlib.util

        module, package = NEEDS[name]
        if importlib.util.find_spec(module) is None:
            raise RequestError(f"The {name} sampler needs the {package} package "
                               f"(pip install {package}); choose another sampler.")
    import diffusers

    return getattr(diffusers, class_name)


def build_scheduler(name: str, base_config: Mapping[str, Any], *,
                    schedule: str = "Automatic", seeds: Sequence[int] = (), **extra: Any):
    """A new scheduler for sampler `name` with `schedule` from a pipeline's scheduler config
    (plus `extra` overrides). `seeds` (one per batch item) seed the Brownian noise of the
    SDE sampler; the others take their noise from the pipeline's generators."""
    check_scheduler(name, schedule)
    sampler, schedule = sampling(name, schedule)
    cls = scheduler_class(sampler)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    overrides: dict[str, Any] = {**_PLAIN_SIGMAS, **SCHEDULER_MAP[sampler][1],
                                 **SCHEDULE_OVERRIDES[schedule], **extra}
    if seeds and "noise_sampler_seed" in accepted:
        overrides["noise_sampler_seed"] = [int(s) for s in seeds]
        # torchsde complains of float rounding in diffusers' sigma → time mapping (1e-6)
        warnings.filterwarnings("ignore", message="Should have ta>=t0", category=UserWarning)
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    config.update({k: v for k, v in overrides.items() if k in accepted})
    return cls.from_config(config)
