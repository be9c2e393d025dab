"""Train the built-in sketch model with the Lab's trainer and copy it into models/sketch/.

    python models/sketch/train.py [--steps N] [--name NAME] [--data DIR] [--text trained]
        [--width wide] [--no-install]

The same recipe the Lab runs (`studio train sketch`): the run folder is under the Studio
home's lab/, the exported pipeline under its models/trained/; with --install (the default)
the weights, configs, the run's metrics and its card are then copied here, where the app's
built-in `builtin:sketch` reads them. `make train-sketch` runs the full recipe.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from studio.core.training import (  # noqa: E402
    SKETCH_WIDTHS,
    TEXT_CONDITIONS,
    RunPaths,
    StepRecord,
    config_for,
)
from studio.engines.training.base import TrainEvents  # noqa: E402
from studio.engines.training.sketch_data import CLIPART  # noqa: E402
from studio.engines.training.trainer import Trainer  # noqa: E402

PARTS = ("model_index.json", "unet", "vae", "scheduler", "tokenizer", "text_encoder", "card.md")


class Printer(TrainEvents):
    """One line per reported step, flushed (the log of a background run)."""

    def __init__(self, every: int, stop_file: Path | None = None) -> None:
        super().__init__()
        self.every = every
        self.stop_file = stop_file
        self.t0 = time.time()

    def on_step(self, record: StepRecord, total: int) -> None:
        if self.stop_file is not None and self.stop_file.exists():
            print(f"{self.stop_file} exists: stopping (the model is still exported)",
                  flush=True)
            self.cancel_flag.set()
        if record.step % self.every == 0 or record.val_loss is not None:
            val = f" val {record.val_loss:.4f}" if record.val_loss is not None else ""
            print(f"step {record.step}/{total} loss {record.loss:.4f}{val} "
                  f"{record.it_s:.2f} it/s {time.time() - self.t0:.0f}s", flush=True)

    def on_status(self, text: str) -> None:
        print(text, flush=True)


def install(model: Path, run: RunPaths, target: Path) -> None:
    for name in PARTS:
        dest = target / name
        if dest.is_dir():
            shutil.rmtree(dest)
        src = model / name
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
    shutil.copyfile(run.metrics, target / "metrics.jsonl")
    if run.config.is_file():
        shutil.copyfile(run.config, target / "train_config.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--name", default="sketch")
    parser.add_argument("--data", default=str(CLIPART))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--text", choices=TEXT_CONDITIONS[1:], default=None,
                        help="the text condition: the frozen MiniLM (default) or a small BERT "
                             "trained with the UNet")
    parser.add_argument("--width", choices=SKETCH_WIDTHS[1:], default=None,
                        help="the UNet: standard (6 M parameters, default) or wide (9.5 M)")
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--stop-file", type=Path, default=None,
                        help="stop (and export) when this file appears")
    args = parser.parse_args(argv)
    config = config_for("sketch", data=args.data, name=args.name, steps=args.steps,
                        batch=args.batch, text=args.text, width=args.width)
    trainer = Trainer(config, Printer(every=20, stop_file=args.stop_file), threads=args.threads)
    model = trainer.run(resume=args.resume)
    print(f"exported {model}", flush=True)
    if not args.no_install:
        install(model, trainer.paths, HERE)
        print(f"installed into {HERE}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
