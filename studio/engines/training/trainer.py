"""The Lab's trainer: everything around a recipe's steps, once for all recipes.

`Trainer(config, events).run()` checks the data, makes (or, resuming, reopens) the run
folder (`core.training.RunPaths`), sets the recipe up, and steps it: waiting while paused,
stopping on the cancel flag, stopping at once on a NaN loss with a sentence that names the
learning rate, validating every `eval_every`, writing samples every `sample_every` and an
atomic checkpoint every `save_every` (the last two and the best-validation one are kept).
At the end, or on a stop, it saves a last checkpoint, exports the model where the pickers
find it (`paths.trained_dir`) and writes the model card.

A checkpoint holds the recipe's `state_dict()` (weights, optimizer, RNG, data position) and
the step, so resuming continues exactly: the same seed gives the same weights whether the
run was paused, stopped and resumed, or never interrupted. Resuming truncates the metrics
to the checkpoint's step, so the curves stay true.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import math
import shlex
import time
import wave
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import paths as _paths
from studio.core.atomic import atomic_write_bytes
from studio.core.errors import Cancelled
from studio.core.fields import specs
from studio.core.text import first_line
from studio.core.training import (
    RECIPES,
    DataReport,
    RunPaths,
    StepRecord,
    TrainConfig,
    TrainingError,
    overfitting,
    train_args,
)
from studio.engines.training import recipe_class
from studio.engines.training.base import Recipe, Sample, TrainEvents

#: checkpoints kept besides the best-validation one
KEEP_LAST = 2
#: the settings of a LoRA alone
LORA_FIELDS = ("rank", "alpha")


class CheckpointError(TrainingError):
    """A checkpoint could not be written (a full disk): the previous one is still usable."""


def check_base(config: TrainConfig) -> None:
    """One sentence when a fine-tune's base model is missing or of the wrong family."""
    info = RECIPES[config.recipe]
    if not info.needs_base:
        return
    from studio.core import families
    from studio.engines.registry import classified_family

    base = config.base
    found = classified_family(base)
    if found is None:
        if base.startswith("builtin:") or not Path(base).expanduser().exists():
            raise TrainingError(f"The base model {base!r} was not found: pick one from the "
                                f"Models tab or give the path of a model on disk.")
        raise TrainingError(f"{base} is not a model Studio recognises, so the "
                            f"{info.name} cannot fine-tune it.")
    if info.base_families and found.id not in info.base_families \
            and found.latent not in info.base_families:
        wanted = [f.name for f in (families.get(i) for i in info.base_families) if f]
        raise TrainingError(f"{base} is a {found.name} model; the {info.name} fine-tunes "
                            f"{' or '.join(wanted)} models.")


def command_line(config: TrainConfig) -> str:
    """The `studio train` command that runs the same training again."""
    return shlex.join(["studio", *train_args(config)])


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def write_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono float audio in [-1, 1] as 16-bit PCM WAV bytes."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate) or 44100)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def sample_bytes(sample: Sample) -> tuple[str, bytes]:
    """(suffix, file bytes) for a sample: PNG, UTF-8 text, MIDI or WAV."""
    if sample.kind == "image":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.asarray(sample.data, dtype=np.uint8)).save(buf, "PNG")
        return ".png", buf.getvalue()
    if sample.kind == "text":
        return ".txt", str(sample.data).encode("utf-8")
    if sample.kind == "midi":
        return ".mid", bytes(sample.data)
    if sample.kind == "audio":
        return ".wav", write_wav(sample.data, sample.rate)
    raise ValueError(f"unknown sample kind {sample.kind!r}")


def write_sample(path: Path, data: bytes) -> Path:
    """Write a sample through a temporary name, without the fsync that checkpoints get:
    a sample is for looking at, and eight fsyncs per sample step cost more than the
    steps between them on a busy disk (benchmarks/train_overhead.py)."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class Trainer:
    """Runs one training (see the module docstring). `root` is the Lab folder (default
    `paths.lab_dir()`), `models_dir` where the model is exported (default
    `paths.trained_dir(recipe)`); `recipe` overrides the recipe class (tests); `threads`
    sets torch's CPU threads for the run (one is fastest for tiny models on busy cores)."""

    def __init__(self, config: TrainConfig, events: TrainEvents | None = None,
                 device: str = "auto", root: Path | None = None,
                 models_dir: Path | None = None, recipe: type[Recipe] | None = None,
                 threads: int | None = None) -> None:
        self.config = config
        self.threads = threads
        self.events = events or TrainEvents()
        self.device = device
        self.root = root
        self.models_dir = models_dir
        self.recipe_cls = recipe
        self.paths = RunPaths(config.name, root)
        self.recipe: Recipe | None = None

    # ------------------------------------------------------------------ the data check
    @staticmethod
    def check(config: TrainConfig, recipe: type[Recipe] | None = None) -> DataReport:
        """The data check alone (the Lab's "Check data", `studio train --check`)."""
        if config.recipe not in RECIPES:
            config.validate()  # the sentence for an unknown recipe
        if not config.data:
            raise TrainingError("Choose a data folder to train on.")
        cls = recipe or recipe_class(config.recipe)
        return cls(config, "cpu").check_data()

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False, export_best: bool = False) -> Path:
        """Train to `config.steps` (or until stopped); the exported model's path."""
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._run(resume, export_best)
        finally:
            torch.set_num_threads(before)

    def _run(self, resume: bool, export_best: bool) -> Path:
        config, events, run = self.config, self.events, self.paths
        config.validate()
        check_base(config)
        if resume and not run.config.is_file():
            raise TrainingError(f"There is no run named {config.name!r} to resume "
                                f"(looked in {run.root}).")
        if not resume and run.root.exists() and any(run.root.iterdir()):
            raise TrainingError(f"A run named {config.name!r} exists: resume it or pick "
                                f"another name.")
        from studio.engines.devices import pick_device

        device = pick_device(self.device)
        recipe = (self.recipe_cls or recipe_class(config.recipe))(config, device)
        self.recipe = recipe
        config = self.config = recipe.config  # a recipe may settle a setting its base fixes
        events.status("Checking the data…")
        report = recipe.check_data()
        events.on_data(report)
        if not report.usable:
            raise TrainingError(f"Nothing in {report.folder} can be used for training.")
        run.root.mkdir(parents=True, exist_ok=True)
        run.write_config(config)
        started = run.read_state().get("started") if resume else None
        self._extra: dict[str, Any] = {"started": started or _dt.datetime.now().isoformat(
            timespec="seconds"), "device": device}
        events.status("Preparing the model…")
        recipe.setup()
        step, seconds = 0, 0.0
        self._best: tuple[float, int] | None = None  # (validation loss, checkpoint step)
        if resume:
            step, seconds = self._restore(recipe)
            if step >= config.steps:
                raise TrainingError(f"The run {config.name!r} has already trained all its "
                                    f"{config.steps} steps: give it more steps to go on.")
        else:
            run.metrics.unlink(missing_ok=True)
        return self._loop(recipe, report, step, seconds, export_best)

    def _state(self, state: str, **extra: Any) -> None:
        with contextlib.suppress(OSError):  # a full disk must not hide the real sentence
            self.paths.write_state(state, **self._extra, **extra)

    def _restore(self, recipe: Recipe) -> tuple[int, float]:
        """Load the latest checkpoint; truncate the metrics to its step."""
        import torch

        run = self.paths
        latest = run.latest_checkpoint()
        state = run.read_state()
        if state.get("best_step") is not None and state.get("best_val") is not None:
            self._best = (float(state["best_val"]), int(state["best_step"]))
        if latest is None:
            run.metrics.unlink(missing_ok=True)
            return 0, 0.0
        self.events.status(f"Resuming from {latest.name}…")
        try:
            blob = torch.load(latest, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise TrainingError(f"The checkpoint {latest} cannot be read ({exc}).") from None
        recipe.load_state_dict(blob["recipe"])
        step = int(blob["step"])
        kept = [r for r in run.read_metrics() if r.step <= step]
        atomic_write_bytes(run.metrics, "".join(r.to_json() + "\n" for r in kept).encode())
        return step, float(blob.get("seconds", 0.0))

    def _loop(self, recipe: Recipe, report: DataReport, step: int, seconds: float,
              export_best: bool) -> Path:
        config, events = self.config, self.events
        total = config.steps
        durations: deque[float] = deque(maxlen=20)
        last_val: float | None = next((r.val_loss for r in reversed(self.paths.read_metrics())
                                       if r.val_loss is not None), None)
        saved_at = step if step else -1
        stopped = False
        self._state("running", step=step, total=total)
        events.status("Training…")
        try:
            while step < total:
                if events.paused:
                    self._wait_paused(step, total)
                if events.cancelled:
                    stopped = True
                    break
                t0 = time.perf_counter()
                loss = float(recipe.train_step())
                step += 1
                self._check_finite(loss, step)
                val = None
                if step % config.eval_every == 0 or step == total:
                    val = recipe.validation_loss()
                    if val is not None:
                        self._check_finite(float(val), step)
                        last_val = float(val)
                dt = time.perf_counter() - t0
                seconds += dt
                durations.append(dt)
                rate = len(durations) / sum(durations) if sum(durations) > 0 else 0.0
                record = StepRecord(step, loss, val, config.lr, round(seconds, 4),
                                    round(rate, 3))
                self._append(record)
                events.on_step(record, total)
                if step % config.sample_every == 0:
                    self._samples(recipe, step)
                if step % config.save_every == 0 and step < total:
                    self._checkpoint(recipe, step, seconds, last_val)
                    saved_at = step
        except Cancelled:
            stopped = True
        except TrainingError as exc:
            self._state("failed", step=step, total=total, message=str(exc))
            raise
        except Exception as exc:  # a bug or out of memory: the checkpoints stay resumable
            self._state("failed", step=step, total=total, message=first_line(exc))
            raise
        if step == 0:
            self._state("stopped", step=0, total=total)
            raise TrainingError("Stopped before the first step: nothing was trained yet.")
        if saved_at != step:
            try:
                self._checkpoint(recipe, step, seconds, last_val)
            except CheckpointError as exc:
                self._state("failed", step=step, total=total, message=str(exc))
                raise
        if step % config.sample_every:
            self._samples(recipe, step)
        events.status("Exporting the model…")
        exported_step = step
        export_best = export_best or bool(getattr(events, "export_best", False))  # stop-best
        if export_best and self._best is not None and self._best[1] != step:
            exported_step = self._load_checkpoint(recipe, self._best[1])
        out_dir = self.models_dir or _paths.trained_dir(config.recipe)
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            model = recipe.export(out_dir)
        except OSError as exc:
            message = (f"Could not export the model to {out_dir} ({exc.strerror or exc}); "
                       f"the checkpoint of step {step} is kept: resume the run to try again.")
            self._state("failed", step=step, total=total, message=message)
            raise TrainingError(message) from None
        state = "stopped" if stopped else "finished"
        card = self.card(report, state, step, seconds, exported_step, recipe)
        with contextlib.suppress(OSError):
            atomic_write_bytes(self.paths.card, card.encode("utf-8"))
            beside = model / "card.md" if model.is_dir() else model.with_suffix(".md")
            atomic_write_bytes(beside, card.encode("utf-8"))
        self._state(state, step=step, total=total, model=str(model),
                    exported_step=exported_step)
        events.status(f"Saved the model to {model}.")
        return model

    def _append(self, record: StepRecord) -> None:
        try:
            self.paths.append_metric(record)
        except OSError as exc:
            raise TrainingError(f"Could not write the metrics of step {record.step} "
                                f"({exc.strerror or exc}): training stopped; "
                                f"{self._kept_sentence()}.") from None

    def _kept_sentence(self) -> str:
        kept = self.paths.latest_checkpoint()
        if kept is None:
            return "no checkpoint was saved yet"
        return f"the checkpoint of step {int(kept.stem.split('-')[1])} is still usable"

    def _check_finite(self, loss: float, step: int) -> None:
        if math.isfinite(loss):
            return
        what = "NaN" if math.isnan(loss) else "infinite"
        kept = self.paths.latest_checkpoint()
        tail = (f"; the checkpoint of step {int(kept.stem.split('-')[1])} is kept"
                if kept else "")
        raise TrainingError(f"The loss became {what} at step {step}: lower the learning rate "
                            f"(now {self.config.lr:g}){tail}.")

    def _wait_paused(self, step: int, total: int) -> None:
        events = self.events
        self._state("paused", step=step, total=total)
        events.on_paused(True)
        events.status("Paused.")
        while events.paused and not events.cancelled:
            events.resume_flag.wait(0.1)
        events.on_paused(False)
        self._state("running", step=step, total=total)
        if not events.cancelled:
            events.status("Training…")

    # ------------------------------------------------------------------ files
    def _samples(self, recipe: Recipe, step: int) -> None:
        files: list[Path] = []
        try:
            made = recipe.samples()
            self.paths.samples.mkdir(parents=True, exist_ok=True)
            for i, sample in enumerate(made):
                suffix, data = sample_bytes(sample)
                path = self.paths.samples / f"step-{step:06d}-{i}{suffix}"
                files.append(write_sample(path, data))
        except OSError as exc:  # samples are for looking: a write error is a notice only
            self.events.status(f"Could not write the samples of step {step} "
                               f"({exc.strerror or exc}).")
        if files:
            self.events.on_samples(step, files)

    def _checkpoint(self, recipe: Recipe, step: int, seconds: float,
                    val: float | None) -> None:
        """Write step-NNNNNN.pt atomically; prune to the last two plus the best."""
        import torch

        buf = io.BytesIO()
        torch.save({"step": step, "seconds": seconds, "val_loss": val,
                    "recipe": recipe.state_dict()}, buf)
        path = self.paths.checkpoint(step)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:
            raise CheckpointError(f"Could not save the checkpoint of step {step} "
                                  f"({exc.strerror or exc}): training stopped; "
                                  f"{self._kept_sentence()}.") from None
        if val is not None and (self._best is None or val < self._best[0]):
            self._best = (val, step)
        if self._best is not None:
            self._extra.update(best_step=self._best[1], best_val=self._best[0])
        self._prune()
        self.events.on_checkpoint(step, path)

    def _prune(self) -> None:
        found = sorted(self.paths.checkpoints.glob("step-*.pt"))
        keep = set(found[-KEEP_LAST:])
        if self._best is not None:
            keep.add(self.paths.checkpoint(self._best[1]))
        for old in found:
            if old not in keep:
                with contextlib.suppress(OSError):
                    old.unlink()

    def _load_checkpoint(self, recipe: Recipe, step: int) -> int:
        import torch

        blob = torch.load(self.paths.checkpoint(step), map_location="cpu", weights_only=True)
        recipe.load_state_dict(blob["recipe"])
        return int(blob["step"])

    # ------------------------------------------------------------------ the card
    def card(self, report: DataReport, state: str, step: int, seconds: float,
             exported_step: int, recipe: Recipe) -> str:
        """The model card (markdown): data, hyperparameters, losses, time, base, verdict."""
        config = self.config
        info = RECIPES[config.recipe]
        records = self.paths.read_metrics()
        lines = [f"# {config.name}", "",
                 f"A {info.name} trained in Studio's Lab ({state} after {step} of "
                 f"{config.steps} steps).", "", "## Data", ""]
        lines += [f"- {line}" for line in report.lines()]
        lines += ["", "## Hyperparameters", "", "| setting | value |", "| --- | --- |"]
        for name, spec in specs(TrainConfig).items():
            if name in LORA_FIELDS and "rank" not in info.defaults:
                continue  # rank and alpha mean nothing to a model trained from scratch
            lines.append(f"| {spec.label} | {getattr(config, name)} |")
        if config.trigger:
            lines.append(f"| Trigger word | {config.trigger} |")
        lines += ["", "## Losses", ""]
        if records:
            first, last = records[0], records[-1]
            best = min(records, key=lambda r: r.loss)
            lines += [f"- Training: first {first.loss:.4f} (step {first.step}), best "
                      f"{best.loss:.4f} (step {best.step}), last {last.loss:.4f} "
                      f"(step {last.step})."]
        verdict = overfitting(records)
        if verdict.best_step is not None and verdict.best_val is not None:
            lines.append(f"- Validation: best {verdict.best_val:.4f} at step "
                         f"{verdict.best_step}.")
            lines.append("- Overfitting: " + (
                "yes: the validation loss rose while the training loss fell."
                if verdict.flagged else "not seen."))
        else:
            lines.append("- Validation: none (no held-out data).")
        if exported_step != step:
            lines.append(f"- Exported the best-validation checkpoint (step {exported_step}).")
        rate = step / seconds if seconds > 0 else 0.0
        lines += ["", "## Time", "",
                  f"- {_hms(seconds)} of training ({rate:.2f} steps/s) on "
                  f"{self._extra.get('device', '?')}, started {self._extra.get('started')}."]
        lines += ["", "## Model", ""]
        lines.append(f"- Base model: {config.base or 'none (trained from scratch)'}.")
        for key, value in recipe.card_facts().items():
            lines.append(f"- {key}: {value}")
        lines += ["", "## Train it again", "", "```", command_line(config), "```", ""]
        return "\n".join(lines)

