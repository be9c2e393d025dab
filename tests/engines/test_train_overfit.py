"""Overfitting, end to end: the VAE recipe trained through the real Trainer on a set made
to overfit (two training images unlike the two held out) is flagged from the metrics it
wrote, its card says so, and `run(export_best=True)` exports the best step's weights; the
same recipe on a healthy set (sixteen shapes, four held out of the same kind) is never
flagged, not even for a moment of the live curve.

Measured (seed 1, one thread): made to overfit, validation is best at step 50 (0.291) and
then rises to 0.35-0.39 while training falls from 0.12 to 0.02; the verdict flags it from
step 90 to the end. Healthy, validation falls from 0.28 to 0.07-0.09 (best 0.065 at step
150) and is never flagged (its last three validations stay 22 % or more below the bar);
the margin-only rule of before flagged it at steps 140 and 180.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from studio.core.training import RunPaths, StepRecord, config_for, overfitting
from studio.engines.training.data import split
from studio.engines.training.trainer import Trainer
from tests.training_toys import BACKGROUND, SHAPE, shapes

SIDE = 32
STEPS = 200
SEED = 1
EVERY = 10  # validate and checkpoint together: the best checkpoint is the best validation


def corners(folder: Path, n_train: int = 2, n_val: int = 2, seed: int = SEED) -> Path:
    """A set made to overfit: the training images have their circle in the top-left, the
    held-out ones in the bottom-right. The trainer's own seeded split decides which files
    are held out, so the files are drawn to match it."""
    folder.mkdir(parents=True, exist_ok=True)
    n = n_train + n_val
    train, _val = split(n, n_val / n, seed)
    rng = np.random.default_rng(0)
    r = SIDE * 7 // 16
    for i in range(n):
        lo, hi = (1, SIDE // 2 - r // 2) if i in train else (SIDE // 2 - r // 2, SIDE - r - 1)
        x, y = (int(v) for v in rng.integers(lo, hi, 2))
        im = Image.new("RGB", (SIDE, SIDE), BACKGROUND)
        ImageDraw.Draw(im).ellipse([x, y, x + r, y + r], fill=SHAPE)
        im.save(folder / f"shape_{i:02d}.png")
    return folder


class Run(NamedTuple):
    trainer: Trainer
    model: Path
    records: list[StepRecord]


def train(root: Path, data: Path, val_split: float) -> Run:
    config = config_for("vae", data=str(data), name="overfit", steps=STEPS, lr=3e-3,
                        batch=2, resolution=SIDE, val_split=val_split, seed=SEED,
                        eval_every=EVERY, save_every=EVERY, sample_every=STEPS)
    trainer = Trainer(config, device="cpu", root=root / "lab", models_dir=root / "models",
                      threads=1)
    model = trainer.run(export_best=True)
    return Run(trainer, model, trainer.paths.read_metrics())


@pytest.fixture(scope="module")
def overfit(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("overfit")
    return train(root, corners(root / "data"), val_split=0.5)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("healthy")
    return train(root, shapes(root / "data", n=20, side=SIDE), val_split=0.2)


def vals(records: list[StepRecord]) -> list[StepRecord]:
    return [r for r in records if r.val_loss is not None]


def flagged_at(records: list[StepRecord]) -> list[int]:
    """The validation steps at which the live curve (the verdict on the records so far)
    shows overfitting."""
    return [v.step for v in vals(records)
            if overfitting([r for r in records if r.step <= v.step]).flagged]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_a_set_made_to_overfit_is_flagged_with_a_best_step_before_the_end(overfit: Run):
    records = overfit.records
    assert [r.step for r in records] == list(range(1, STEPS + 1))
    assert [v.step for v in vals(records)] == list(range(EVERY, STEPS + 1, EVERY))
    verdict = overfitting(records)
    assert verdict.flagged
    assert verdict.best_step is not None and verdict.best_val is not None
    assert verdict.best_step <= 100  # measured 50
    # validation rose clearly above its best (measured: the last five 1.27x the best) ...
    tail = [v.val_loss for v in vals(records)[-5:] if v.val_loss is not None]
    assert mean(tail) > 1.1 * verdict.best_val
    # ... while training kept falling (measured 0.12 around the best, 0.02 at the end)
    around_best = [r.loss for r in records if abs(r.step - verdict.best_step) <= 5]
    assert mean([r.loss for r in records[-10:]]) < 0.5 * mean(around_best)
    # the live curve flags it well before the end and keeps flagging it (measured: at
    # every validation from step 90 on, the last three 8-15 % above the verdict's bar)
    steps = flagged_at(records)
    assert steps and steps[0] <= 150
    assert steps[-5:] == list(range(STEPS - 4 * EVERY, STEPS + 1, EVERY))


def test_the_card_and_the_state_say_so(overfit: Run):
    verdict = overfitting(overfit.records)
    run: RunPaths = overfit.trainer.paths
    state = run.read_state()
    assert state["state"] == "finished" and state["step"] == STEPS
    assert state["best_step"] == state["exported_step"] == verdict.best_step
    card = run.card.read_text(encoding="utf-8")
    assert card == (overfit.model / "card.md").read_text(encoding="utf-8")
    for line in (f"- Validation: best {verdict.best_val:.4f} at step {verdict.best_step}.",
                 "- Overfitting: yes: the validation loss rose while the training loss fell.",
                 f"- Exported the best-validation checkpoint (step {verdict.best_step})."):
        assert line in card.splitlines(), line


def test_export_best_writes_the_best_steps_weights(overfit: Run):
    from safetensors.torch import load_file

    run = overfit.trainer.paths
    best = overfitting(overfit.records).best_step
    assert best is not None
    kept = {p.name for p in run.checkpoints.iterdir()}
    assert kept == {f"step-{s:06d}.pt" for s in (best, STEPS - EVERY, STEPS)}
    exported = load_file(str(overfit.model / "model.safetensors"))
    at_best = torch.load(run.checkpoint(best), weights_only=True)["recipe"]["model"]
    at_end = torch.load(run.checkpoint(STEPS), weights_only=True)["recipe"]["model"]
    assert exported.keys() == at_best.keys()
    assert all(torch.equal(exported[k], at_best[k]) for k in exported)
    assert not all(torch.equal(exported[k], at_end[k]) for k in exported)


def test_the_same_recipe_on_a_healthy_set_is_never_flagged(healthy: Run):
    records = healthy.records
    verdict = overfitting(records)
    assert not verdict.flagged and flagged_at(records) == []
    first, last = vals(records)[0].val_loss, vals(records)[-1].val_loss
    assert first is not None and last is not None
    assert last < 0.5 * first  # it learned: measured 0.28 → 0.09
    card = healthy.trainer.paths.card.read_text(encoding="utf-8")
    assert "- Overfitting: not seen." in card.splitlines()
