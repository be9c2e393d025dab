"""Training overhead: steps/s of a GAN through the Lab's Trainer vs the same loop written
plainly, same run.

Both sides train the same DCGAN (engines/training/gan.py) on the same coloured shapes with
the same seed, so they reach the same weights (checked):

- plain: the models, data and optimizers built once, then a bare PyTorch loop (batch,
         discriminator step, generator step), nothing written
- lab:   `Trainer(config).run()`: the run folder, metrics.jsonl every step, validation
         every `--eval-every`, samples every `--sample-every`, atomic checkpoints every
         `--save-every` (with pruning), the export and the model card at the end

Steps/s are measured from the end of step 1 to the end of the last step (what the Lab's
it/s shows); the Lab's whole run (data check, setup, export, card) is printed beside it.

    .venv/bin/python benchmarks/train_overhead.py
    .venv/bin/python benchmarks/train_overhead.py --steps 300 --resolution 32 --runs 5
    .venv/bin/python benchmarks/train_overhead.py --threads 1     # steadier on a busy machine

Not a pass/fail test; aim: lab/plain ≥ 0.95. Runs alternate between the sides and
medians of the paired ratios are reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_line, median, paired, ratios


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--resolution", type=int, default=32, choices=(16, 32, 64, 128))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=64, help="coloured shapes in the data")
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--sample-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--runs", type=int, default=3, help="measured runs per side")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


def make_shapes(folder: Path, n: int, side: int) -> None:
    """Red and yellow circles and squares on blue (the tests' toy set, bigger)."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        im = Image.new("RGB", (side, side), (20, 40, 200))
        r = int(rng.integers(side // 4, side // 2))
        x, y = (int(v) for v in rng.integers(0, side - r, 2))
        colour = (230, 50, 30) if i % 2 else (240, 220, 40)
        draw = ImageDraw.Draw(im)
        (draw.ellipse if i % 3 else draw.rectangle)([x, y, x + r, y + r], fill=colour)
        im.save(folder / f"shape_{i:03d}.png")


def plain_run(config) -> tuple[float, dict]:
    """The same GAN loop, written out: (steps/s after step 1, final generator weights)."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    from studio.engines.training.gan import NZ, GanRecipe

    recipe = GanRecipe(config, "cpu")
    recipe.setup()  # the models, the data tensor, the optimizers and generators (untimed)
    g, d, opt_g, opt_d = recipe.g, recipe.d, recipe.opt_g, recipe.opt_d
    data, data_gen, z_gen = recipe.train_data, recipe.data_gen, recipe.z_gen
    order, pos = recipe.order, 0
    t1 = 0.0
    for step in range(1, config.steps + 1):
        picked, need = [], config.batch
        while need > 0:
            if pos >= len(order):
                order, pos = torch.randperm(len(data), generator=data_gen), 0
            take = order[pos:pos + need]
            pos += len(take)
            need -= len(take)
            picked.append(take)
        idx = torch.cat(picked)
        real = data[idx].float() / 127.5 - 1.0
        coins = torch.rand(len(idx), generator=data_gen) < 0.5
        real = torch.where(coins[:, None, None, None], real.flip(3), real)
        z = torch.randn(len(real), NZ, generator=z_gen)
        fake = g(z)
        d_real, d_fake = d(real), d(fake.detach())
        loss_d = 0.5 * (bce(d_real, torch.ones_like(d_real))
                        + bce(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        out = d(fake)
        loss_g = bce(out, torch.ones_like(out))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        float(loss_d.detach())  # the Lab reads the loss every step too (NaN check, metrics)
        if step == 1:
            t1 = time.perf_counter()
    rate = (config.steps - 1) / (time.perf_counter() - t1)
    return rate, {k: v.clone() for k, v in g.state_dict().items()}


def lab_run(config, threads: int) -> tuple[float, float, dict]:
    """Through the Trainer: (steps/s after step 1, whole-run seconds, generator weights)."""
    from studio.engines.training.base import TrainEvents
    from studio.engines.training.trainer import Trainer

    class Clock(TrainEvents):
        first = last = 0.0

        def on_step(self, record, total: int) -> None:
            now = time.perf_counter()
            if record.step == 1:
                self.first = now
            self.last = now

    with tempfile.TemporaryDirectory() as tmp:
        events = Clock()
        trainer = Trainer(config, events, device="cpu", root=Path(tmp) / "lab",
                          models_dir=Path(tmp) / "models", threads=threads or None)
        t0 = time.perf_counter()
        trainer.run()
        total = time.perf_counter() - t0
        recipe = trainer.recipe
        weights = {k: v.clone() for k, v in recipe.g.state_dict().items()}  # type: ignore[union-attr]
    return (config.steps - 1) / (events.last - events.first), total, weights


def main() -> int:
    args = parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from studio.core.training import config_for

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes"
        make_shapes(data, args.images, args.resolution)
        config = config_for("gan", data=str(data), name="bench", steps=args.steps,
                            resolution=args.resolution, batch=args.batch, lr=2e-4,
                            seed=args.seed, save_every=args.save_every,
                            sample_every=args.sample_every, eval_every=args.eval_every,
                            val_split=0.1)
        print(f"GAN {args.resolution}² px, batch {args.batch}, {args.steps} steps, "
              f"{args.images} images; the Lab validates every {args.eval_every}, samples "
              f"every {args.sample_every}, checkpoints every {args.save_every}")
        print(machine_line())
        plain_run(config)  # warm-up: imports, first-touch allocations
        out = paired(args.runs, {"plain": lambda: plain_run(config),
                                 "lab": lambda: lab_run(config, args.threads)})
        plain_rates = [r for r, _ in out["plain"]]
        lab_rates = [r for r, _, _ in out["lab"]]
        same = all(torch.equal(out["plain"][0][1][k], out["lab"][0][2][k])
                   for k in out["plain"][0][1])
        print(f"plain loop : {median(plain_rates):7.2f} steps/s  "
              f"(runs: {', '.join(f'{r:.2f}' for r in plain_rates)})")
        print(f"Lab trainer: {median(lab_rates):7.2f} steps/s  "
              f"(runs: {', '.join(f'{r:.2f}' for r in lab_rates)}); whole run "
              f"{median([t for _, t, _ in out['lab']]):.2f} s with data check, setup, export")
        print(f"lab/plain  : {median(ratios(lab_rates, plain_rates)):.3f} (median of paired "
              f"ratios; same weights: {'yes' if same else 'NO'})")
        print(machine_line())
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
