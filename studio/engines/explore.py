"""The latent explorer's engine: points, walks and variation grids in a model's latent space.

One algorithm serves every explorable model through a small "backend" (seeds → latents,
prompts → conditioning, latents → frames):

- built-in GANs (studio.engines.gan.GanBackend): z (100 numbers), a class label for the
  eye model; principal directions from GANSpace;
- diffusers pipelines (DiffusersBackend below): the initial noise and the prompt
  embeddings, rendered by the pipeline already loaded by DiffusersImageEngine.

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
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from studio.core.errors import ModelError, RequestError
from studio.core.explore import GRID_SIZE, ExploreRequest, grid_child_seed
from studio.core.requests import Request
from studio.core.results import Preview, Result
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

log = logging.getLogger(__name__)

Cond = Any  # a tensor, a dict of tensors (diffusion embeddings), or None


class Backend(Protocol):
    """What the explorer needs from a model family."""

    model: str
    conditional: bool

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
        len(request.anchors), backend.conditional,
        "Colour" if backend.model == "builtin:eyes" else "Prompt",
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


# -- diffusion models -------------------------------------------------------------------------


class DiffusersBackend:
    """The explorer's view of a loaded DiffusersImageEngine (SD 1.x/2.x, SDXL pipelines).

    Latents: the initial noise of each anchor's seed, drawn exactly as the image engine
    draws it (so an anchor's frame is the Art panel's image for that seed, with a
    deterministic sampler). Fast previews average-pool that full-size noise down to the
    preview size and rescale it to unit variance, so the preview starts from the same
    (coarser) noise as the full render. Conditioning: the prompt embeddings (and SDXL's
    pooled ones), encoded once per prompt and kept on the engine.
    """

    conditional = True
    max_cached_prompts: ClassVar[int] = 32

    def __init__(self, engine: Any, request: ExploreRequest) -> None:
        self.engine = engine
        self.pipe = engine.pipe
        self.model = request.model
        self.family = getattr(engine, "family", "sd1")
        self.request = request
        factor = int(getattr(self.pipe, "vae_scale_factor", 8))
        self.factor = factor
        self.channels = int(self.pipe.unet.config.in_channels)
        self.full = (request.height // factor, request.width // factor)
        self.size = render_size(request, factor)
        cache = getattr(engine, "explore_prompt_cache", None)
        if cache is None:
            cache = {}
            engine.explore_prompt_cache = cache
        self._prompt_cache: dict[tuple[str, str, bool], Cond] = cache

    def noise(self, seed: int) -> torch.Tensor:
        from studio.engines.latents import seed_noise

        full = seed_noise(seed, (self.channels, *self.full))
        lh, lw = self.size[0] // self.factor, self.size[1] // self.factor
        if (lh, lw) == self.full:
            return full
        k = self.full[0] // lh
        pooled = torch.nn.functional.avg_pool2d(full[None], k)[0]
        return pooled * k  # the mean of k² standard normals has std 1/k

    def conditions(self, prompts: Sequence[str], seeds: Sequence[int],
                   request: ExploreRequest) -> list[Cond]:
        cfg = request.guidance > 1.0
        return [self._encode(p, request.negative, cfg) for p in prompts]

    def _encode(self, prompt: str, negative: str, cfg: bool) -> Cond:
        key = (prompt, negative, cfg)
        found = self._prompt_cache.get(key)
        if found is not None:
            return found
        pipe = self.pipe
        device = pipe._execution_device
        with torch.inference_mode():
            if self.family == "sdxl":
                pe, ne, pp, npool = pipe.encode_prompt(
                    prompt=prompt, device=device, num_images_per_prompt=1,
                    do_classifier_free_guidance=cfg, negative_prompt=negative or None,
                )
                cond = {"prompt_embeds": pe, "negative_prompt_embeds": ne,
                        "pooled_prompt_embeds": pp, "negative_pooled_prompt_embeds": npool}
            else:
                pe, ne = pipe.encode_prompt(
                    prompt, device, 1, cfg, negative_prompt=negative or None
                )
                cond = {"prompt_embeds": pe, "negative_prompt_embeds": ne}
        cond = {k: v.detach().clone() for k, v in cond.items() if v is not None}
        if len(self._prompt_cache) >= self.max_cached_prompts:
            self._prompt_cache.pop(next(iter(self._prompt_cache)))
        self._prompt_cache[key] = cond
        return cond

    def principal(self, events: Events | None) -> PrincipalDirections | None:
        return None

    def render(self, latents: Sequence[torch.Tensor], conditions: Sequence[Cond] | None,
               request: ExploreRequest, events: Events) -> list[np.ndarray]:
        from studio.engines.latents import seeded_noise
        from studio.engines.previews import LinearPreview, X0Tap
        from studio.engines.schedulers import build_scheduler

        pipe = self.pipe
        device = pipe._execution_device
        dtype = pipe.unet.dtype
        steps = request.preview_steps if request.fast else request.steps
        height, width = self.size
        out_size = (request.width, request.height)  # previews are shown at the frame's size
        linear = LinearPreview(self.family, device, dtype)
        base_config = getattr(self.engine, "scheduler_config", None) or pipe.scheduler.config
        frames: list[np.ndarray] = []
        total = len(latents) * steps
        single = len(latents) == 1
        for i, z in enumerate(latents):
            events.check_cancelled()
            scheduler = build_scheduler(request.scheduler, base_config)
            pipe.scheduler = scheduler
            tap = X0Tap(scheduler)
            cond = conditions[i] if conditions else {}
            # ancestral samplers continue the generator of the request's seed (as the
            # image engine does), so a point at anchor 1 is that seed's own image
            _noise, generator = seeded_noise(request.seed, (1, self.channels, *self.full))
            offset = i * steps

            def on_step(_pipe, step, _t, kwargs, offset=offset, tap=tap):
                events.progress(offset + step + 1, total)  # raises Cancelled
                if single and events.wants_previews():
                    x0 = tap.estimate()
                    shown = linear(x0[:1]) if x0 is not None else None
                    if shown:
                        events.preview(Preview("image", _upscale(shown[0], *out_size),
                                               step + 1, steps, info={"fast": request.fast}))
                return {}

            with torch.inference_mode():
                out = pipe(
                    **{k: v.to(device=device, dtype=dtype) for k, v in cond.items()},
                    latents=z[None].to(device=device, dtype=dtype),
                    num_inference_steps=steps,
                    guidance_scale=float(request.guidance),
                    height=height,
                    width=width,
                    generator=generator,
                    output_type="latent" if request.fast else "np",
                    callback_on_step_end=on_step,
                    return_dict=False,
                )[0]
            if request.fast:  # the x0 preview decode: a 4×3 matrix instead of the VAE
                frames.append(_upscale(linear(out[:1])[0], *out_size))
            else:  # rounded like the image engine, so anchors match the Art panel's images
                array = (np.clip(np.asarray(out, dtype=np.float32), 0, 1) * 255).round()
                frames.extend(np.ascontiguousarray(a) for a in array.astype(np.uint8))
        return frames

    def info(self) -> dict[str, Any]:
        return {"family": self.family, "fast": self.request.fast,
                "render_size": [self.size[1], self.size[0]]}


def render_size(request: ExploreRequest, factor: int = 8) -> tuple[int, int]:
    """(height, width) in pixels: the request's, or the fast preview's smaller size.

    The preview divides both sides by the same whole number, chosen so that the longest
    side is about preview_size and the latent still divides evenly (for the pooling).
    """
    h, w = request.height, request.width
    if not request.fast or max(h, w) <= request.preview_size:
        return h, w
    k = max(1, round(max(h, w) / request.preview_size))
    while k > 1 and ((h // factor) % k or (w // factor) % k):
        k -= 1
    return h // k, w // k


def _upscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A latent-sized preview (1/8 of the render) blown up to the frame's size (bilinear)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


class ExploreEngine(Engine):
    """The "explore" route: loads the engine that can drive the model's latent space.

    Built-in GANs load as GanEngine and diffusion models as DiffusersImageEngine; both
    serve "image" and "explore" jobs, so one loaded model (one cache entry) answers the
    Art panel and the explorer alike. Should a diffusion engine not take explore jobs
    itself, this class wraps it and forwards image jobs.
    """

    kinds: ClassVar[tuple[str, ...]] = ("explore", "image")

    def __init__(self, spec: LoadSpec, inner: Engine) -> None:
        super().__init__(spec)
        self.inner = inner

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> Engine:
        from studio.engines.gan import GanEngine, is_gan

        if is_gan(spec.model):
            return GanEngine.load(spec, settings, events)
        from studio.engines.image_diffusers import DiffusersImageEngine

        inner = DiffusersImageEngine.load(spec, settings, events)
        return inner if "explore" in inner.kinds else cls(spec, inner)

    def generate(self, request: Request, events: Events) -> Result:
        if request.kind != "explore":
            return self.inner.generate(request, events)
        return explore_diffusers(self.inner, request, events)

    def memory_bytes(self) -> int:
        return self.inner.memory_bytes()

    def unload(self) -> None:
        self.inner.unload()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


def explore_diffusers(engine: Engine, request: Request, events: Events) -> Result:
    """Run an explorer request on a loaded DiffusersImageEngine (its `pipe`)."""
    if not isinstance(request, ExploreRequest):
        raise RequestError(f"The explorer cannot run a {request.kind} request.")
    if getattr(engine, "pipe", None) is None:
        raise ModelError(f"{request.model} was unloaded; run the job again to reload it.")
    return run_explore(DiffusersBackend(engine, request), request, events)
