"""Latent maths: slerp keeps norms and is exact at its ends, blends are exact at corners."""

from __future__ import annotations

import math

import pytest
import torch

from studio.engines.latents import (
    angle_between,
    bilinear_weights,
    blend,
    lerp,
    rotate_toward,
    seed_noise,
    slerp,
    variation_noise,
)

TS = [0.0, 1e-6, 0.1, 0.25, 0.5, 0.73, 0.999999, 1.0]


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def random_units(seed: int, dim: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return unit(torch.randn(dim, generator=g, dtype=torch.float64)), unit(
        torch.randn(dim, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("seed", range(5))
def test_slerp_preserves_unit_norm(seed):
    a, b = random_units(seed)
    for t in TS:
        assert slerp(a, b, t).norm().item() == pytest.approx(1.0, abs=1e-12)


def test_slerp_endpoints_are_exact():
    a, b = seed_noise(1, (4, 8, 8)), seed_noise(2, (4, 8, 8))
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)
    assert slerp(a, b, 0.0) is not a  # a copy, safe to modify


@pytest.mark.parametrize("t", TS)
def test_slerp_is_symmetric(t):
    a, b = random_units(7)
    assert torch.allclose(slerp(a, b, t), slerp(b, a, 1 - t), atol=1e-12)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9, 1e-12, 0.0])
def test_slerp_is_stable_for_nearly_parallel_inputs(eps):
    a, _ = random_units(3)
    g = torch.Generator().manual_seed(4)
    b = unit(a + eps * torch.randn(a.shape, generator=g, dtype=torch.float64))
    for t in TS:
        out = slerp(a, b, t)
        assert torch.isfinite(out).all()
        assert out.norm().item() == pytest.approx(1.0, abs=1e-9)
        assert torch.allclose(out, lerp(a, b, t), atol=1e-6)  # ≈ the straight line there


def test_slerp_of_opposite_vectors_is_finite():
    a, _ = random_units(5)
    out = slerp(a, -a, 0.3)
    assert torch.isfinite(out).all()


def test_slerp_keeps_a_gaussians_norm_where_lerp_shrinks_it():
    a, b = seed_noise(10, (16384,)), seed_noise(11, (16384,))
    expected = math.sqrt(16384)
    mid = slerp(a, b, 0.5)
    assert mid.norm().item() == pytest.approx(expected, rel=0.02)
    assert lerp(a, b, 0.5).norm().item() == pytest.approx(expected / math.sqrt(2), rel=0.02)
    assert mid.dtype == a.dtype


def test_slerp_follows_the_great_circle():
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0], dtype=torch.float64)
    out = slerp(a, b, 1 / 3)
    assert torch.allclose(out, torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)],
                                            dtype=torch.float64))
    assert angle_between(a, out) == pytest.approx(math.pi / 6)


def test_angle_between_is_accurate_for_tiny_angles():
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([math.cos(1e-7), math.sin(1e-7)], dtype=torch.float64)
    assert angle_between(a, b) == pytest.approx(1e-7, rel=1e-6)


def test_blend_is_exact_at_corners_and_a_plain_slerp_on_edges():
    noise = [seed_noise(s, (100,)) for s in (1, 2, 3, 4)]
    for i in range(4):
        w = [0.0] * 4
        w[i] = 1.0
        assert torch.equal(blend(noise, w), noise[i])
    x = 0.3
    top = blend(noise, bilinear_weights(x, 0.0))
    assert torch.allclose(top, slerp(noise[0], noise[1], x), atol=1e-6)
    bottom = blend(noise, bilinear_weights(x, 1.0))
    assert torch.allclose(bottom, slerp(noise[2], noise[3], x), atol=1e-6)
    right = blend(noise, bilinear_weights(1.0, 0.6))
    assert torch.allclose(right, slerp(noise[1], noise[3], 0.6), atol=1e-6)


def test_blend_with_lerp_is_the_weighted_mean_and_weights_are_normalised():
    xs = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([3.0, 3.0])]
    out = blend(xs, [2, 1, 1], spherical=False)
    assert torch.allclose(out, (2 * xs[0] + xs[1] + xs[2]) / 4)


def test_blend_rejects_bad_weights():
    with pytest.raises(ValueError):
        blend([torch.zeros(2)], [1.0, 2.0])
    with pytest.raises(ValueError):
        blend([torch.ones(2), torch.ones(2)], [0.0, 0.0])


def test_bilinear_weights_sum_to_one_and_clamp():
    for x, y in ((0, 0), (1, 1), (0.2, 0.7), (-1, 3)):
        w = bilinear_weights(x, y)
        assert sum(w) == pytest.approx(1.0)
        assert all(v >= 0 for v in w)
    assert bilinear_weights(0, 0) == [1, 0, 0, 0]


def test_rotate_toward_keeps_the_norm_and_turns_by_the_angle():
    z, d = seed_noise(1, (4, 8, 8)), seed_noise(2, (4, 8, 8))
    out = rotate_toward(z, d, 0.4)
    assert out.shape == z.shape
    assert out.norm().item() == pytest.approx(z.norm().item(), rel=1e-5)
    assert angle_between(z, out) == pytest.approx(0.4, abs=1e-5)
    assert torch.equal(rotate_toward(z, d, 0.0), z)


def test_seed_noise_is_reproducible_and_variation_zero_is_the_seed():
    assert torch.equal(seed_noise(5, (3, 4)), seed_noise(5, (3, 4)))
    assert not torch.equal(seed_noise(5, (3, 4)), seed_noise(6, (3, 4)))
    assert torch.equal(variation_noise(5, 9, 0.0, (3, 4)), seed_noise(5, (3, 4)))
    assert torch.equal(variation_noise(5, 9, 1.0, (3, 4)), seed_noise(9, (3, 4)))
