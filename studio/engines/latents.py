"""Latent maths shared by the image engine and the explorer: slerp, blends, noise from seeds."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from studio.engines.devices import cpu_generator

DOT_THRESHOLD = 0.9995


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (keeps a Gaussian's norm).

    theta = arccos(<a/|a|, b/|b|>); (sin((1-t)θ)·a + sin(tθ)·b) / sin θ. Falls back to
    lerp (1-t)·a + t·b when a and b are nearly parallel. t=0 gives a, t=1 gives b
    (A1111's fallback swaps the weights; this one does not).
    """
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    a64, b64 = a.double(), b.double()
    an = a64 / a64.norm()
    bn = b64 / b64.norm()
    dot = torch.clamp((an * bn).sum(), -1.0, 1.0)
    if dot.abs() > DOT_THRESHOLD:
        out = (1 - t) * a64 + t * b64
    else:
        theta = torch.arccos(dot)
        sin_theta = torch.sin(theta)
        out = (torch.sin((1 - t) * theta) * a64 + torch.sin(t * theta) * b64) / sin_theta
    return out.to(a.dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a + t * b


def blend(tensors: Sequence[torch.Tensor], weights: Sequence[float], spherical: bool = True):
    """Blend N tensors by weights (summing to 1) with a chain of slerps (or lerps).

    Sequential pairwise slerp: blend the first k with their share, then slerp toward
    the next by its relative weight. Exact at the corners (a weight of 1 gives that tensor).
    """
    if len(tensors) != len(weights) or not tensors:
        raise ValueError("blend needs as many weights as tensors")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("blend weights must not all be zero")
    weights = [w / total for w in weights]
    mix = lerp if not spherical else slerp
    out, acc = tensors[0], weights[0]
    for tensor, w in zip(tensors[1:], weights[1:], strict=True):
        if w == 0:
            continue
        acc += w
        out = mix(out, tensor, w / acc) if acc > 0 else tensor
    return out


def bilinear_weights(x: float, y: float) -> list[float]:
    """Weights of the four pad corners (top-left, top-right, bottom-left, bottom-right)."""
    x = min(max(x, 0.0), 1.0)
    y = min(max(y, 0.0), 1.0)
    return [(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y]


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
