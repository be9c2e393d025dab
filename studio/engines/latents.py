"""Latent maths shared by the image engine and the explorer: slerp, blends, noise from seeds.

Noise and GAN latents are blended spherically (slerp keeps a Gaussian sample's norm, so a
blend still looks like a draw from the prior); conditioning (text embeddings, class
labels) is blended linearly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from studio.engines.devices import cpu_generator

# Kept for callers that used it: cos θ above which a plain lerp is used. The current
# slerp measures θ with atan2, which stays accurate down to θ ≈ 1e-8, so it only falls
# back to lerp for truly (numerically) parallel inputs.
DOT_THRESHOLD = 0.9995
_TINY_ANGLE = 1e-7


def angle_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle θ between two tensors seen as flat vectors, in radians (float64 maths).

    2·atan2(|â − b̂|, |â + b̂|) is accurate for all angles, unlike arccos near 0 and π.
    """
    a64 = a.detach().reshape(-1).double()
    b64 = b.detach().reshape(-1).double()
    an = a64 / a64.norm()
    bn = b64 / b64.norm()
    return float(2.0 * torch.atan2((an - bn).norm(), (an + bn).norm()))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (keeps a Gaussian's norm).

    (sin((1-t)θ)·a + sin(tθ)·b) / sin θ with θ the angle between a and b. t=0 gives a
    and t=1 gives b exactly; slerp(a, b, t) == slerp(b, a, 1-t); t outside [0, 1]
    extrapolates along the same great circle. Nearly parallel inputs fall back to lerp
    (1-t)·a + t·b (A1111's fallback swaps the weights; this one does not).
    """
    t = float(t)
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    a64, b64 = a.double(), b.double()
    theta = angle_between(a64, b64)
    sin_theta = math.sin(theta)
    if theta < _TINY_ANGLE or sin_theta < _TINY_ANGLE:
        # parallel (or exactly opposite, where no great circle is defined): straight line
        out = (1 - t) * a64 + t * b64
    else:
        out = (math.sin((1 - t) * theta) * a64 + math.sin(t * theta) * b64) / sin_theta
    return out.to(a.dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Straight-line interpolation (for embeddings and labels, which are not Gaussian)."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return (1 - t) * a + t * b


def blend(tensors: Sequence[torch.Tensor], weights: Sequence[float], spherical: bool = True):
    """Blend N tensors by weights (summing to 1) with a chain of slerps (or lerps).

    Sequential pairwise slerp: blend the first k with their share, then slerp toward
    the next by its relative weight. Exact at the corners (a weight of 1 gives that
    tensor) and along the pad's edges (two non-zero weights give a plain slerp of that
    pair). With lerp it is exactly the weighted mean.
    """
    if len(tensors) != len(weights) or not tensors:
        raise ValueError("blend needs as many weights as tensors")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("blend weights must not all be zero")
    weights = [float(w) / total for w in weights]
    mix = lerp if not spherical else slerp
    out, acc = tensors[0], weights[0]
    for tensor, w in zip(tensors[1:], weights[1:], strict=True):
        if w == 0:
            continue
        acc += w
        out = mix(out, tensor, w / acc) if acc > 0 else tensor
    return out.clone() if out is tensors[0] else out


def bilinear_weights(x: float, y: float) -> list[float]:
    """Weights of the four pad corners (top-left, top-right, bottom-left, bottom-right)."""
    x = min(max(x, 0.0), 1.0)
    y = min(max(y, 0.0), 1.0)
    return [(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y]


def rotate_toward(z: torch.Tensor, direction: torch.Tensor, angle: float) -> torch.Tensor:
    """Turn z by `angle` radians toward `direction` on the sphere of radius |z|.

    Only the part of `direction` orthogonal to z counts, so the norm of z is kept: this
    is how the diffusion explorer's "noise" slider moves without leaving the prior.
    """
    if angle == 0:
        return z.clone()
    z64 = z.double().reshape(-1)
    d64 = direction.double().reshape(-1)
    radius = z64.norm()
    if radius == 0:
        return z.clone()
    zn = z64 / radius
    ortho = d64 - (d64 @ zn) * zn
    norm = ortho.norm()
    if norm < 1e-12:
        return z.clone()
    out = radius * (math.cos(angle) * zn + math.sin(angle) * ortho / norm)
    return out.reshape(z.shape).to(z.dtype)


def seed_noise(seed: int, shape: Sequence[int], dtype=torch.float32) -> torch.Tensor:
    """Standard Gaussian noise from a seed, always drawn on the CPU (same on any device)."""
    return torch.randn(tuple(shape), generator=cpu_generator(seed), dtype=dtype)


def variation_noise(
    seed: int, variation_seed: int, strength: float, shape: Sequence[int], dtype=torch.float32
) -> torch.Tensor:
    """A1111-style variation: slerp from the seed's noise toward the variation seed's."""
    base = seed_noise(seed, shape, dtype)
    if strength <= 0:
        return base
    return slerp(base, seed_noise(variation_seed, shape, dtype), strength)


def seeded_noise(
    seed: int, shape: Sequence[int], dtype=torch.float32
) -> tuple[torch.Tensor, torch.Generator]:
    """seed_noise plus the CPU generator that drew it, for the sampler's later noise.

    Ancestral samplers draw fresh noise each step; continuing the generator that made
    the initial noise (as A1111 does) keeps that noise independent of the start noise
    while staying reproducible. The tensor equals seed_noise(seed, shape, dtype).
    """
    generator = cpu_generator(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype), generator
