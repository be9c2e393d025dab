"""The Lab's plain data: what a training run is asked to do, and what it leaves on disk.

A run is one folder under `paths.lab_dir()`:

    <lab>/<name>/
        config.json        the TrainConfig (the recipe from which the same training runs again)
        metrics.jsonl      one StepRecord per line, appended as training goes
        checkpoints/       step-000200.pt ... (written atomically; the previous one stays)
        samples/           step-000200-0.png, step-000200.txt, step-000200.mid ...
        card.md            the model card, written when the run ends (and on stop)
        state.json         {"state": "running"|"paused"|"stopped"|"finished"|"failed", ...}

The finished model goes to `paths.trained_dir(recipe)` where the pickers find it.
Plain Python: the training loop itself lives in `engines/training/`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.atomic import atomic_write_bytes
from studio.core.errors import RequestError, StudioError
from studio.core.fields import check, check_seed, coerce, param, specs


class TrainingError(StudioError):
    """A training that cannot go on (NaN loss, unusable data): one sentence for the user."""


@dataclass(frozen=True)
class RecipeInfo:
    """What the Lab shows about one kind of training before anything loads."""

    id: str
    name: str
    modality: str  # "image" | "music" | "text"
    summary: str  # one line for the picker
    needs_base: bool  # a fine-tune of an existing model (its family must match)
    base_families: tuple[str, ...] = ()  # family ids a base may have (empty: any / none)
    data_suffixes: tuple[str, ...] = ()  # the files it reads from the data folder
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides


#: the sketch recipe's text conditions (TrainConfig.text; "" is the first)
TEXT_CONDITIONS = ("", "minilm", "trained")
#: … and its UNet's widths (TrainConfig.width; "" is the first): the standard 64/96/128
#: channels (6 M parameters) or 80/128/160 (9.5 M, about 1.4× the time per step)
SKETCH_WIDTHS = ("", "standard", "wide")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

RECIPES: dict[str, RecipeInfo] = {}


def register_recipe(info: RecipeInfo) -> RecipeInfo:
    RECIPES[info.id] = info
    return info


register_recipe(RecipeInfo(
    "lora", "LoRA for an image model", "image",
    "Teach an SD 1.x/2.x/SDXL model, or the built-in sketch model, your style or subject "
    "from a folder of images.",
    needs_base=True, base_families=("sd1", "sd2", "sdxl", "sketch"),  # sketch: builtin:sketch
    data_suffixes=IMAGE_SUFFIXES,
    defaults={"steps": 1000, "lr": 1e-4, "batch": 1, "rank": 8, "alpha": 8.0,
              "resolution": 512},
))
register_recipe(RecipeInfo(
    "composer", "Composer fine-tune", "music",
    "Make the built-in composer write more like a folder of your MIDI or ABC tunes.",
    needs_base=True, base_families=("composer",), data_suffixes=(".mid", ".midi", ".abc"),
    defaults={"steps": 300, "lr": 3e-4, "batch": 8},
))
register_recipe(RecipeInfo(
    "text", "Text LoRA", "text",
    "Make a language model write like your lyrics or prose (.txt / .md files).",
    needs_base=True, base_families=("causal-lm",), data_suffixes=(".txt", ".md"),
    defaults={"steps": 300, "lr": 2e-4, "batch": 4, "rank": 8, "alpha": 16.0,
              "resolution": 256},
))
register_recipe(RecipeInfo(
    "gan", "GAN from scratch", "image",
    "A generator and a discriminator learn your images; explore its latent space after.",
    needs_base=False, data_suffixes=IMAGE_SUFFIXES,
    defaults={"steps": 2000, "lr": 2e-4, "batch": 32, "resolution": 64},
))
register_recipe(RecipeInfo(
    "vae", "VAE from scratch", "image",
    "An autoencoder learns a smooth latent space of your images to explore.",
    needs_base=False, data_suffixes=IMAGE_SUFFIXES,
    defaults={"steps": 2000, "lr": 1e-3, "batch": 32, "resolution": 64},
))
register_recipe(RecipeInfo(
    "sketch", "Sketch text-to-image from scratch", "image",
    "The built-in sketch model: a small latent diffusion model on clip art and emoji.",
    needs_base=False, data_suffixes=(".png",),
    defaults={"steps": 8000, "lr": 1e-3, "batch": 32, "resolution": 64, "val_split": 0.02,
              "eval_every": 200, "save_every": 200, "sample_every": 500},
))

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run: saved as the run's config.json and enough to
    run the same training again (`studio train --resume` or the Lab's "Train again")."""

    recipe: str = "gan"
    data: str = ""  # the folder read (never written)
    name: str = ""  # the run's and the model's name
    base: str = ""  # the model fine-tuned (catalog id or builtin:...), "" for from-scratch
    steps: int = param(1000, label="Steps", low=1, high=1_000_000, flag="--steps",
                       tip="Optimizer steps in all; more learns more, and may overfit.")
    lr: float = param(1e-4, label="Learning rate", short="LR", low=1e-7, high=1.0,
                      decimals=6, flag="--lr",
                      tip="How far each step moves the weights; too high and the loss "
                          "jumps or becomes NaN.")
    batch: int = param(4, label="Batch size", low=1, high=1024, flag="--batch",
                       tip="Items per step; larger is smoother but needs more memory.")
    rank: int = param(8, label="LoRA rank", low=1, high=256, flag="--rank",
                      tip="Size of the LoRA's update matrices; higher captures more, "
                          "files get larger.")
    alpha: float = param(8.0, label="LoRA alpha", low=0.01, high=1024, flag="--alpha",
                         tip="Scales the LoRA update (alpha / rank); equal to the rank "
                             "is a safe start.")
    resolution: int = param(512, label="Resolution", low=8, high=2048, suffix=" px",
                            flag="--resolution",
                            tip="Images are resized to this side (text: tokens per item).")
    val_split: float = param(0.1, label="Validation split", low=0.0, high=0.5,
                             flag="--val-split",
                             tip="Share of the data held out to measure overfitting.")
    seed: int = param(0, label="Seed", flag="--seed",
                      tip="The same seed and data give the same training.")
    save_every: int = param(100, label="Save every", low=1, high=1_000_000, suffix=" steps",
                            flag="--save-every",
                            tip="Steps between checkpoints (a stop or crash resumes there).")
    sample_every: int = param(100, label="Sample every", low=1, high=1_000_000,
                              suffix=" steps", flag="--sample-every",
                              tip="Steps between samples in the strip (fixed seeds).")
    eval_every: int = param(50, label="Validate every", low=1, high=1_000_000,
                            suffix=" steps", flag="--eval-every",
                            tip="Steps between validation losses.")
    trigger: str = ""  # a LoRA's trigger word, prepended to every caption
    text: str = ""  # the sketch recipe's text condition: "" / "minilm" (frozen) or "trained"
    width: str = ""  # the sketch recipe's UNet: "" / "standard" or "wide"

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            known = ", ".join(sorted(RECIPES))
            raise RequestError(f"Unknown training recipe {self.recipe!r}; pick one of {known}.")
        info = RECIPES[self.recipe]
        if not self.data:
            raise RequestError("Choose a data folder to train on.")
        if not NAME_RE.match(self.name or ""):
            raise RequestError("Give the run a name of letters, digits, spaces, '-', '_' or "
                               "'.' (at most 64).")
        if info.needs_base and not self.base:
            raise RequestError(f"{info.name} fine-tunes a model: choose the base model.")
        if self.text not in TEXT_CONDITIONS:
            raise RequestError(f"Unknown text condition {self.text!r}; pick one of "
                               f"{', '.join(TEXT_CONDITIONS)}.")
        if self.width not in SKETCH_WIDTHS:
            raise RequestError(f"Unknown UNet width {self.width!r}; pick one of "
                               f"{', '.join(SKETCH_WIDTHS[1:])}.")
        for name in specs(TrainConfig):
            if name == "seed":
                check_seed("seed", self.seed)
            else:
                check(self, name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                tp = {"int": int, "float": float, "str": str}.get(str(hints[f.name]), str)
                values[f.name] = coerce(f.name, tp, data[f.name])
        return cls(**values)


def config_for(recipe: str, **values: Any) -> TrainConfig:
    """A config with the recipe's defaults, then `values` on top (None values ignored)."""
    info = RECIPES.get(recipe)
    merged: dict[str, Any] = {"recipe": recipe, **(info.defaults if info else {})}
    merged.update({k: v for k, v in values.items() if v is not None})
    return TrainConfig.from_dict(merged)


def train_args(config: TrainConfig) -> list[str]:
    """The `studio train` arguments (after "studio") that run `config`: every flag, so the
    same training runs again even when a recipe's defaults change. A LoRA's rank and alpha
    are left out of recipes that have none."""
    args = ["train", config.recipe, "--data", config.data]
    if config.base:
        args += ["--base", config.base]
    info = RECIPES.get(config.recipe)
    lora = info is None or "rank" in info.defaults
    for name, s in specs(TrainConfig).items():
        if s.flag and (lora or name not in ("rank", "alpha")):
            value = getattr(config, name)
            args += [s.flag, repr(value) if isinstance(value, float) else str(value)]
    if config.trigger:
        args += ["--trigger", config.trigger]
    if config.text:
        args += ["--text", config.text]
    if config.width:
        args += ["--width", config.width]
    return [*args, "--name", config.name]


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class StepRecord:
    """One line of metrics.jsonl: the training loss at `step`, and the validation loss
    when it was measured at that step."""

    step: int
    loss: float
    val_loss: float | None = None
    lr: float = 0.0
    seconds: float = 0.0  # since the run (first start) began, pauses excluded
    it_s: float = 0.0  # steps per second over the last stretch

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Overfit:
    """Where validation was best, and whether it has since risen while training fell."""

    best_step: int | None
    best_val: float | None
    flagged: bool


def jitter(values: list[float]) -> float:
    """The step-to-step noise of a loss curve, as a standard deviation: the median size of
    its second differences (which a straight or gently bending stretch leaves near zero)
    scaled to white noise's sigma (|N(0, 6σ²)| has median 0.6745·√6·σ). Robust to the
    few large bends where a curve turns."""
    bends = [abs(values[i - 1] - 2 * values[i] + values[i + 1])
             for i in range(1, len(values) - 1)]
    return statistics.median(bends) / (0.6745 * math.sqrt(6)) if bends else 0.0


def overfitting(records: list[StepRecord], patience: int = 3, margin: float = 0.02,
                noise: float = 2.0) -> Overfit:
    """Flag overfitting when the last `patience` validation losses all sit above the best
    one, by more than `margin` (relative) and by more than `noise` times the validation
    curve's own jitter, while the training loss kept falling over that stretch.

    The jitter term keeps a noisy plateau from being flagged: there the best value is a
    lucky dip, and the losses after it sit a few per cent above it without rising (the
    healthy VAE run of tests/engines/test_train_overfit.py is flagged at steps 140 and
    180 by the margin alone, never with it; its overfit run from step 90 either way)."""
    vals = [r for r in records if r.val_loss is not None and math.isfinite(r.val_loss)]
    if not vals:
        return Overfit(None, None, False)
    best = min(vals, key=lambda r: r.val_loss)  # type: ignore[arg-type, return-value]
    assert best.val_loss is not None
    after = [r for r in vals if r.step > best.step]
    flagged = False
    if len(after) >= patience:
        spread = jitter([r.val_loss for r in vals if r.val_loss is not None])
        bar = max(best.val_loss * (1 + margin), best.val_loss + noise * spread)
        tail = after[-patience:]
        risen = all(r.val_loss is not None and r.val_loss > bar for r in tail)
        train_best = [r.loss for r in records if r.step <= best.step]
        train_after = [r.loss for r in records if r.step > best.step]
        falling = bool(train_best and train_after) and (
            sum(train_after[-patience:]) / len(train_after[-patience:])
            < sum(train_best[-patience:]) / len(train_best[-patience:]))
        flagged = risen and falling
    return Overfit(best.step, best.val_loss, flagged)


# --------------------------------------------------------------------------- data check


@dataclass(frozen=True)
class DataReport:
    """What a data check found, before anything trains: shown in the Lab and the CLI."""

    folder: str
    found: int  # files of the kinds the recipe reads
    usable: int
    skipped: tuple[tuple[str, str], ...] = ()  # (file name, why)
    notes: tuple[str, ...] = ()  # "12 RGBA images converted to RGB", "9 captions from names"
    duplicates: int = 0
    captions: int = 0  # items with a caption (sidecar .txt or name)
    sizes: str = ""  # "64×64 to 1024×768" / "3.2 k words"

    def lines(self) -> list[str]:
        out = [f"{self.usable} of {self.found} files usable in {self.folder}."]
        if self.sizes:
            out.append(f"Sizes: {self.sizes}.")
        if self.captions:
            out.append(f"{self.captions} with captions.")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicates (used once).")
        out += list(self.notes)
        out += [f"Skipped {name}: {why}" for name, why in self.skipped]
        return out


# --------------------------------------------------------------------------- run folders

STATES = ("running", "paused", "stopped", "finished", "failed")


class RunPaths:
    """The files of one run (see the module docstring); nothing is created until written."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = name
        self.root = (root or paths.lab_dir()) / name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def card(self) -> Path:
        return self.root / "card.md"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:06d}.pt"

    def latest_checkpoint(self) -> Path | None:
        found = sorted(self.checkpoints.glob("step-*.pt")) if self.checkpoints.is_dir() else []
        return found[-1] if found else None

    def write_config(self, config: TrainConfig) -> None:
        data = json.dumps(config.to_dict(), indent=2).encode()
        atomic_write_bytes(self.config, data)

    def read_config(self) -> TrainConfig:
        try:
            return TrainConfig.from_dict(json.loads(self.config.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise TrainingError(f"The run {self.name!r} has no readable config.json ({exc}).") \
                from None

    def append_metric(self, record: StepRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")

    def read_metrics(self) -> list[StepRecord]:
        """Every record; a torn last line (a crash mid-write) is ignored."""
        out: list[StepRecord] = []
        try:
            text = self.metrics.read_text(encoding="utf-8")
        except OSError:
            return out
        for line in text.splitlines():
            try:
                out.append(StepRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out

    def write_state(self, state: str, **extra: Any) -> None:
        assert state in STATES, state
        atomic_write_bytes(self.state_file, json.dumps({"state": state, **extra}).encode())

    def read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


def list_runs(root: Path | None = None) -> list[RunPaths]:
    """Every run with a config, newest first."""
    base = root or paths.lab_dir()
    if not base.is_dir():
        return []
    runs = [RunPaths(p.name, base) for p in base.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.config.stat().st_mtime, reverse=True)
