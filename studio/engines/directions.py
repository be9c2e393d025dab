"""Directions in a latent space that the explorer turns into sliders.

- Principal directions of a GAN (GANSpace, Härkönen et al. 2020): sample many latents,
  run them to an intermediate layer, take the principal components of those features,
  and regress each component back onto z to get a direction in latent space. Computed
  once per model (a second or two on a CPU) and cached in the core store (the engine
  writes no file itself).
- Anchor directions (any model): "noise" turns the latent along the great circle
  from anchor 1's noise toward anchor 2's (norm kept); "prompt" moves the conditioning
  along the difference of anchor 2's and anchor 1's (text embeddings, class labels).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from studio.core.errors import RequestError
from studio.core.outputs import slugify
from studio.core.store import Store
from studio.engines.base import Events
from studio.engines.devices import cpu_generator
from studio.engines.latents import angle_between, rotate_toward

log = logging.getLogger(__name__)

VERSION = 1  # bump when the method changes: old cache files are then ignored
N_SAMPLES = 2000
N_DIRECTIONS = 20
SIGMA_RANGE = 3.0  # sliders span ±3σ
ANCHOR_KEYS = ("noise", "prompt")
#: where computed directions are kept (one .npz per model, weights and method)
STORE = Store("directions")


class GanShape(Protocol):
    """What GANSpace needs to know about a generator's input (GanSpec has it)."""

    @property
    def model(self) -> str: ...

    @property
    def nz(self) -> int: ...

    @property
    def n_labels(self) -> int: ...


class Generator(Protocol):
    """A loaded GAN as GANSpace sees it (GanEngine is one); a protocol, so this module
    needs no import of the engine that uses it."""

    @property
    def gan(self) -> GanShape: ...

    @property
    def net(self) -> Any: ...  # a module with .features(z, labels) and .main[0].weight


@dataclass
class PrincipalDirections:
    """Unit directions in z space (rows), strongest first, with their share of variance."""

    model: str
    vectors: np.ndarray  # (k, nz) float64, unit rows
    variance: np.ndarray  # (k,) fraction of the layer's feature variance explained
    sigma: np.ndarray  # (k,) std of z along each direction under the prior (1 for N(0, I))

    @property
    def keys(self) -> list[str]:
        return [f"pc{i + 1}" for i in range(len(self.vectors))]

    def offset(self, offsets: Mapping[str, float]) -> torch.Tensor | None:
        """Σ offset_k·σ_k·u_k for the "pcK" keys in offsets (None when there are none)."""
        total = None
        for key, value in offsets.items():
            if not key.startswith("pc") or value == 0:
                continue
            try:
                index = int(key[2:]) - 1
            except ValueError:
                continue
            if not 0 <= index < len(self.vectors):
                continue
            step = torch.from_numpy(self.vectors[index] * self.sigma[index] * float(value))
            total = step if total is None else total + step
        return total

    def describe(self) -> list[dict[str, Any]]:
        """Plain data for the panel's sliders."""
        return [
            {"key": key, "label": key.upper(), "range": SIGMA_RANGE,
             "variance": round(float(v), 4), "unit": "σ"}
            for key, v in zip(self.keys, self.variance, strict=True)
        ]


def check_keys(model: str, offsets: Mapping[str, float], principal: PrincipalDirections | None,
               n_anchors: int, conditional: bool) -> None:
    """Unknown direction names are a clear RequestError, not silently ignored."""
    known = list(principal.keys) if principal is not None else []
    if n_anchors >= 2:
        known.append("noise")
        if conditional:
            known.append("prompt")
    for key in offsets:
        if key not in known:
            if key in ANCHOR_KEYS and n_anchors < 2:
                raise RequestError(f"The {key!r} direction needs at least two anchors.")
            listing = ", ".join(known[:3] + (["…"] if len(known) > 4 else []) + known[-1:]) \
                if len(known) > 4 else ", ".join(known)
            raise RequestError(
                f"{model} has no direction {key!r}; it has {listing or 'none'}."
            )


def apply_latent_directions(
    z: torch.Tensor, offsets: Mapping[str, float], principal: PrincipalDirections | None,
    anchor_noise: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Move a latent along the principal directions, then along the anchors' noise."""
    if principal is not None:
        step = principal.offset(offsets)
        if step is not None:
            z = z + step.reshape(z.shape).to(z.dtype)
    amount = float(offsets.get("noise", 0.0))
    if amount and len(anchor_noise) >= 2:
        a, b = anchor_noise[0], anchor_noise[1]
        z = rotate_toward(z, b - a, amount * angle_between(a, b))
    return z


def apply_condition_directions(
    cond: torch.Tensor | None, offsets: Mapping[str, float],
    anchor_conds: Sequence[torch.Tensor] | None,
) -> torch.Tensor | None:
    """Move a conditioning (embedding or label) along anchor 2 − anchor 1."""
    amount = float(offsets.get("prompt", 0.0))
    if cond is None or not amount or not anchor_conds or len(anchor_conds) < 2:
        return cond
    return cond + amount * (anchor_conds[1] - anchor_conds[0])


def anchor_describe(n_anchors: int, conditional: bool, prompt_label: str = "Prompt"):
    """Slider descriptions of the anchor directions a request can use."""
    if n_anchors < 2:
        return []
    out = [{"key": "noise", "label": "Noise 1→2", "range": 1.0, "unit": "", "variance": 0.0}]
    if conditional:
        out.append({"key": "prompt", "label": f"{prompt_label} 1→2", "range": 1.5,
                    "unit": "", "variance": 0.0})
    return out


# -- GANSpace ---------------------------------------------------------------------------


def _fingerprint(engine: Generator, n_samples: int, k: int) -> str:
    """Changes when the weights, the method or its settings change."""
    h = hashlib.sha1(f"v{VERSION}:{engine.gan.model}:{n_samples}:{k}".encode())
    first = engine.net.main[0].weight.detach().cpu().contiguous().numpy()
    h.update(first.tobytes())
    return h.hexdigest()[:16]


def cache_key(engine: Generator, n_samples: int | None = None, k: int | None = None) -> str:
    """The store key of this model's directions (it changes with weights and method)."""
    n_samples = n_samples or N_SAMPLES
    k = k or N_DIRECTIONS
    return f"{slugify(engine.gan.model)}-{_fingerprint(engine, n_samples, k)}.npz"


def cache_path(engine: Generator, n_samples: int | None = None, k: int | None = None) -> Path:
    """Where the store keeps this model's directions."""
    return STORE.path(cache_key(engine, n_samples, k))


def _top_components(x: torch.Tensor, k: int, gen: torch.Generator,
                    oversample: int = 10, iters: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k left singular vectors and values of x (N×D) by randomized SVD.

    Halko et al.'s range finder with power iterations: a few N×D×(k+10) products instead
    of a full decomposition, and deterministic because the probe comes from `gen`.
    """
    q = min(k + oversample, min(x.shape))
    probe = torch.randn(x.shape[1], q, generator=gen, dtype=x.dtype)
    y = x @ probe
    for _ in range(iters):
        y, _ = torch.linalg.qr(y)
        y = x @ (x.T @ y)
    basis, _ = torch.linalg.qr(y)
    small = (basis.T @ x).double()
    ub, s, _vh = torch.linalg.svd(small, full_matrices=False)
    u = basis.double() @ ub
    return u[:, :k], s[:k]


def compute_gan_directions(
    engine: Generator, n_samples: int | None = None, k: int | None = None,
    events: Events | None = None, seed: int = 0,
) -> PrincipalDirections:
    """GANSpace on the first block's features, regressed back onto z (deterministic)."""
    n_samples = n_samples or N_SAMPLES
    k = k or N_DIRECTIONS
    net = engine.net
    nz, n_labels = engine.gan.nz, engine.gan.n_labels
    gen = cpu_generator(seed)
    z = torch.randn(n_samples, nz, generator=gen)
    labels = None
    if n_labels:
        idx = torch.randint(0, n_labels, (n_samples,), generator=gen)
        labels = torch.nn.functional.one_hot(idx, n_labels).float()
    chunks = []
    chunk = 250
    with torch.inference_mode():
        for start in range(0, n_samples, chunk):
            if events is not None:
                events.check_cancelled()
            lab = labels[start:start + chunk] if labels is not None else None
            chunks.append(net.features(z[start:start + chunk], lab))
        feats = torch.cat(chunks)
        del chunks
        feats -= feats.mean(0, keepdim=True)
        k = min(k, n_samples - 1)
        u, s = _top_components(feats, k, gen)
        total_var = float(feats.norm()) ** 2
    del feats
    projections = u * s  # each sample's coordinate on each principal component
    coef = torch.linalg.lstsq(projections, z.double()).solution  # (k, nz): PC → z
    vectors = coef / coef.norm(dim=1, keepdim=True).clamp_min(1e-12)
    # an eigenvector's sign is arbitrary: fix it so the result never flips between runs
    biggest = vectors.abs().argmax(dim=1)
    signs = torch.sign(vectors[torch.arange(k), biggest])
    vectors = vectors * signs[:, None]
    variance = s**2 / max(total_var, 1e-12)
    return PrincipalDirections(
        engine.gan.model,
        vectors.numpy(),
        variance.numpy(),
        np.ones(k),  # z ~ N(0, I): the std along any unit direction is 1
    )


def directions_bytes(d: PrincipalDirections) -> bytes:
    """A set of directions as .npz bytes (what the store keeps)."""
    buf = io.BytesIO()
    np.savez(buf, vectors=d.vectors, variance=d.variance, sigma=d.sigma,
             model=np.array(d.model))
    return buf.getvalue()


def save_directions(d: PrincipalDirections, key: str) -> bool:
    """Keep a set in the store under `key`; False when it could not be written."""
    return STORE.write_bytes(key, directions_bytes(d))


def load_directions(source: Path | bytes | None) -> PrincipalDirections | None:
    """A cached set (a file or its bytes), or None when missing or unreadable (it is then
    recomputed)."""
    if source is None:
        return None
    try:
        with np.load(io.BytesIO(source) if isinstance(source, bytes) else source,
                     allow_pickle=False) as data:
            vectors = np.asarray(data["vectors"], dtype=np.float64)
            variance = np.asarray(data["variance"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            model = str(data["model"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # a corrupt cache file is just recomputed
        where = "entry" if isinstance(source, bytes) else str(source)
        log.warning("directions cache %s unreadable (%s); recomputing", where, exc)
        return None
    if vectors.ndim != 2 or len(variance) != len(vectors) or len(sigma) != len(vectors):
        return None
    return PrincipalDirections(model, vectors, variance, sigma)


def gan_directions(engine: Generator, events: Events | None = None) -> PrincipalDirections:
    """The model's principal directions: from the store, or computed once and stored."""
    key = cache_key(engine)
    found = load_directions(STORE.read_bytes(key))
    if found is not None and found.vectors.shape[1] == engine.gan.nz:
        return found
    if events is not None:
        events.status("Finding the model's principal directions (once)…")
    d = compute_gan_directions(engine, events=events)
    save_directions(d, key)  # the cache is a convenience: work on without it
    return d
