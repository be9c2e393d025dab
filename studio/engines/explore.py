"""The latent explorer's engine: points, walks and variation grids in a model's latent space.

One algorithm serves every explorable model through a small "backend" (seeds → latents,
prompts → conditioning, latents → frames):

- GANs and Lab VAEs (studio.engines.gan.DecoderBackend): z, a class label for the
  eye model; principal directions from GANSpace;
- diffusers pipelines (studio.engines.image_diffusers.DiffusersBackend): the initial
  noise and the prompt embeddings, rendered by the image engine's own denoising loop.

Exploring is a capability an engine exposes: an `ExplorableEngine` hands out a backend
for a request (`explore_backend`), and the family descriptor says how a family explores
(`Family.explore`). This module knows no engine: engines import it, not the other way.

A frame's latent is built in a fixed order, so a recipe replays exactly:
  slerp-blend of the anchors' noise by the weights
  → each variation step (slerp toward that seed's noise by its strength)
  → principal-direction offsets, then the "noise" (anchor 1→2) rotation;
and its conditioning is the lerp-blend of the anchors' conditioning, moved along
anchor 2 − anchor 1 by the "prompt" offset.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from studio.core.errors import ModelError, RequestError
from studio.core.explore import GRID_SIZE, ExploreRequest, grid_child_seed
from studio.core.requests import Request
from studio.core.results import Result
from studio.core.settings import Settings
from studio.engines.base import Engine, Events, LoadSpec
from studio.engines.directions import (
    PrincipalDirections,
    anchor_describe,
    apply_condition_directions,
    apply_latent_directions,
    check_keys,
)
from studio.engines.latents import blend, slerp
from studio.engines.registry import engine_class

log = logging.getLogger(__name__)

Cond = Any  # a tensor, a dict of tensors (diffusion embeddings), or None


class Backend(Protocol):
    """What the explorer needs from a model family."""

    model: str
    conditional: bool
    prompt_label: str  # what its condition is called on the sliders ("Colour" for eyes)

    def noise(self, seed: int) -> torch.Tensor: ...

    def conditions(self, prompts: Sequence[str], seeds: Sequence[int],
                   request: ExploreRequest) -> list[Cond] | None: ...

    def principal(self, events: Events | None) -> PrincipalDirections | None: ...

    def render(self, latents: Sequence[torch.Tensor], conditions: Sequence[Cond] | None,
               request: ExploreRequest, events: Events) -> list[np.ndarray]: ...

    def info(self) -> dict[str, Any]: ...


# -- conditioning maths: tensors or dicts of tensors ---------------------------------------


def blend_conditions(conds: Sequence[Cond], weights: Sequence[float]) -> Cond:
    """Weighted mean (lerp) of conditionings; dicts are blended key by key."""
    first = conds[0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {k: (blend([c[k] for c in conds], weights, spherical=False)
                    if isinstance(first[k], torch.Tensor) else first[k]) for k in first}
    return blend(list(conds), weights, spherical=False)


def shift_condition(cond: Cond, offsets: dict[str, float], anchors: Sequence[Cond] | None) -> Cond:
    if cond is None or not anchors:
        return cond
    if isinstance(cond, dict):
        return {
            k: (apply_condition_directions(v, offsets, [a[k] for a in anchors])
                if isinstance(v, torch.Tensor) else v)
            for k, v in cond.items()
        }
    return apply_condition_directions(cond, offsets, anchors)


# -- the algorithm ---------------------------------------------------------------------------


class Frames:
    """The latents and conditionings of one request's frames (before rendering)."""

    def __init__(self, backend: Backend, request: ExploreRequest,
                 events: Events | None = None) -> None:
        self.backend = backend
        self.request = request
        self.noise = [backend.noise(s) for s in request.anchors]
        self.conds = backend.conditions(request.anchor_prompts(), request.anchors, request)
        # principal directions: for the sliders of points and grids, or when used
        wanted = request.mode in ("point", "grid") or any(
            k.startswith("pc") for k in request.directions)
        self.principal = backend.principal(events) if wanted else None
        check_keys(backend.model, request.directions, self.principal, len(request.anchors),
                   backend.conditional)

    def point(self, request: ExploreRequest, weights: Sequence[float],
              plain: bool = False) -> tuple[torch.Tensor, Cond]:
        """The latent and conditioning at `weights` (plain: no variations or directions)."""
        z = blend(self.noise, weights, spherical=True)
        cond = blend_conditions(self.conds, weights) if self.conds else None
        if plain:
            return z, cond
        for vseed, strength in zip(request.variation_seeds, request.variation_strengths,
                                   strict=True):
            z = slerp(z, self.backend.noise(vseed), strength)
        z = apply_latent_directions(z, request.directions, self.principal, self.noise)
        cond = shift_condition(cond, request.directions, self.conds)
        return z, cond

    def all(self) -> tuple[list[torch.Tensor], list[Cond] | None, list[list[float]]]:
        """Every frame of the request: (latents, conditionings or None, weights)."""
        req = self.request
        latents: list[torch.Tensor] = []
        conds: list[Cond] = []
        weights_out: list[list[float]] = []
        if req.mode == "grid":
            weights = req.blend_weights()
            for i in range(GRID_SIZE):
                z, c = self.point(req.with_child(i), weights)
                latents.append(z)
                conds.append(c)
                weights_out.append(weights)
        else:
            plain = req.mode == "anchors"
            for w in req.frame_weights():
                z, c = self.point(req, w, plain=plain)
                latents.append(z)
                conds.append(c)
                weights_out.append(w)
        return latents, (conds if self.conds else None), weights_out


def run_explore(backend: Backend, request: Request, events: Events) -> Result:
    """Render an ExploreRequest with a backend; a walk's result has modality "explore"."""
    if not isinstance(request, ExploreRequest):
        raise RequestError(f"The explorer cannot run a {request.kind} request.")
    t0 = time.perf_counter()
    frames = Frames(backend, request, events)
    latents, conds, weights = frames.all()
    images = backend.render(latents, conds, request, events)
    info: dict[str, Any] = backend.info()
    principal = frames.principal.describe() if frames.principal is not None else []
    info["directions"] = principal + anchor_describe(
        len(request.anchors), backend.conditional, backend.prompt_label,
    )
    info["render_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    if request.mode == "walk":
        info["fps"] = request.fps
        info["frames"] = len(images)
        return Result(request, "explore", images=images, info=info)
    if request.mode == "grid":
        info["grid_seeds"] = [grid_child_seed(request.seed, i) for i in range(GRID_SIZE)]
    info["weights"] = [round(w, 6) for w in weights[0]]
    if request.mode == "point":
        info["seeds"] = [request.seed]
    return Result(request, "image", images=images, info=info)


# -- the capability --------------------------------------------------------------------------


class ExplorableEngine(Engine):
    """An engine whose latent space the explorer can drive.

    It supplies a Backend for an explore request; every other request goes to
    `generate_plain`. This is the one place where explore requests are told apart, so
    one loaded model (one cache entry) answers the Art panel and the explorer alike.
    """

    @abstractmethod
    def explore_backend(self, request: ExploreRequest) -> Backend:
        """The explorer's view of this loaded model for one request."""

    @abstractmethod
    def generate_plain(self, request: Request, events: Events) -> Result:
        """Run a request that is not an explore request (an image request, ...)."""

    def generate(self, request: Request, events: Events) -> Result:
        if isinstance(request, ExploreRequest):
            return run_explore(self.explore_backend(request), request, events)
        return self.generate_plain(request, events)


class ExploreEngine:
    """Loads the engine that explores a model: the one its family routes to (a GanEngine
    for the built-in GANs, a DiffusersImageEngine for diffusion models)."""

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> ExplorableEngine:
        engine = engine_class("explore", spec.model).load(spec, settings, events)
        if not isinstance(engine, ExplorableEngine):
            raise ModelError(f"{spec.model} cannot be explored.")
        return engine
