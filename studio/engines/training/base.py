"""The contract between a training recipe and the Lab's trainer (`trainer.py`).

A recipe knows one kind of model: how to read its data, build the model, take one optimizer
step, measure a validation loss, make samples, and export the finished model in the format
the app's own loader reads. The trainer owns everything around it, once for all recipes:
the run folder, checkpoints every N steps (atomic; the previous one stays), pause / resume /
stop, NaN detection, metrics, overfitting, samples on disk, the model card.

Determinism: given the same config (seed) and data, `setup()` then N `train_step()` calls
give the same weights, and `state_dict()` / `load_state_dict()` carry everything needed for
that (model, optimizer, RNG states, the data order position), so that a run paused or
resumed from a checkpoint reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from studio.core.training import DataReport, StepRecord, TrainConfig
from studio.engines.base import Events


@dataclass(frozen=True)
class Sample:
    """Something a recipe made at a step so the artist sees it learn.

    kind "image": `data` is an HxWx3 uint8 array; "text": a str; "midi": MIDI file bytes;
    "audio": a float32 mono array at `rate` Hz. `label` says what it was made from
    ("seed 3", "prompt: a red circle").
    """

    kind: str
    data: Any
    label: str = ""
    rate: int = 0


class TrainEvents(Events):
    """How the trainer reports (the CLI prints, the Lab's runtime emits signals).

    Inherits the cancel flag (stop) from Events; adds a pause flag the trainer waits on
    between steps, and hooks for steps, samples, data reports and the end.
    """

    def __init__(self, cancel: threading.Event | None = None) -> None:
        super().__init__(cancel)
        self.resume_flag = threading.Event()
        self.resume_flag.set()  # set = running; clear = paused

    def pause(self) -> None:
        self.resume_flag.clear()

    def resume(self) -> None:
        self.resume_flag.set()

    @property
    def paused(self) -> bool:
        return not self.resume_flag.is_set()

    # the trainer calls these; subclasses override
    def on_data(self, report: DataReport) -> None:
        pass

    def on_step(self, record: StepRecord, total: int) -> None:
        pass

    def on_samples(self, step: int, files: list[Path]) -> None:
        pass

    def on_checkpoint(self, step: int, path: Path) -> None:
        pass

    def on_paused(self, paused: bool) -> None:
        pass


class Recipe(ABC):
    """One kind of training. The trainer calls, in order: `check_data()`, `setup()`, then
    `load_state_dict()` when resuming, then `train_step()` repeatedly with
    `validation_loss()`, `samples()` and `state_dict()` in between, and `export()` last."""

    id: ClassVar[str]

    def __init__(self, config: TrainConfig, device: str = "cpu") -> None:
        self.config = config
        self.device = device

    @abstractmethod
    def check_data(self) -> DataReport:
        """Read (never write) the data folder and say what will be used and what skipped.
        Raises TrainingError when nothing usable is there."""

    @abstractmethod
    def setup(self) -> None:
        """Load the data, build (or load the base) model and the optimizer, seeded."""

    @abstractmethod
    def train_step(self) -> float:
        """One optimizer step on the next batch; returns the training loss."""

    @abstractmethod
    def validation_loss(self) -> float | None:
        """The loss on the held-out split (None when there is none), without training."""

    @abstractmethod
    def samples(self) -> list[Sample]:
        """A few outputs from fixed seeds / prompts, deterministic for the same weights."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, RNG, data position."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned (after setup())."""

    @abstractmethod
    def export(self, out_dir: Path) -> Path:
        """Write the finished model where the app's loader reads it; return its path (a
        file or a folder inside out_dir). Writes through temp names (core.atomic)."""

    def card_facts(self) -> dict[str, Any]:
        """Extra lines for the model card (architecture, parameter count, base model)."""
        return {}
