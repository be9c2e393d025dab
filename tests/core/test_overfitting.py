"""The overfitting verdict on noisy curves: a plateau whose best value was a lucky dip is
not overfitting; a rise larger than the curve's jitter is (the real runs behind these
numbers are in tests/engines/test_train_overfit.py)."""

from __future__ import annotations

import math

import pytest

from studio.core.training import StepRecord, jitter, overfitting

# a deterministic jitter of about ±8 %, the size a VAE's validation loss shows on a plateau
WIGGLE = [0.004, -0.003, 0.002, -0.004, 0.003, -0.002, 0.004, -0.003, 0.001, -0.004]


def records(vals: list[float], train_from: float = 0.1) -> list[StepRecord]:
    """Validation every 10 steps; training falls steadily throughout."""
    return [StepRecord(step=10 * (i + 1), loss=train_from * 0.97 ** i, val_loss=v)
            for i, v in enumerate(vals)]


def test_jitter_is_the_noise_not_the_slope() -> None:
    assert jitter([]) == 0.0 and jitter([1.0, 2.0]) == 0.0
    assert jitter([1.0, 0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.0, abs=1e-12)  # a line
    # alternating ±d around a line: second differences of 4d, so sigma = 4d / (0.6745 √6)
    zigzag = [1.0 - 0.1 * i + (0.01 if i % 2 else -0.01) for i in range(9)]
    assert jitter(zigzag) == pytest.approx(0.04 / (0.6745 * math.sqrt(6)))


def test_a_noisy_plateau_after_a_lucky_dip_is_not_overfitting() -> None:
    plateau = [0.05 + w for w in WIGGLE]
    plateau[5] = 0.043  # the lucky dip: then 3-16 % above it, no trend
    flat = records(plateau)
    verdict = overfitting(flat)
    assert verdict.best_step == 60 and verdict.best_val == 0.043
    assert not verdict.flagged
    # the margin alone (no jitter term) would call it overfitting
    assert overfitting(flat, noise=0.0).flagged


def test_a_noisy_rise_is_overfitting() -> None:
    rise = [0.05 + w for w in WIGGLE[:5]] + [0.05 + 0.006 * i + w
                                             for i, w in enumerate(WIGGLE[5:], 1)]
    verdict = overfitting(records(rise))
    assert verdict.flagged and verdict.best_step == 40
    # training not falling over the stretch: not overfitting, whatever validation does
    stuck = [StepRecord(r.step, 0.05, r.val_loss) for r in records(rise)]
    assert not overfitting(stuck).flagged
