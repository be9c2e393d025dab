"""The contract between engines and whoever runs them (worker, CLI, benchmarks)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from studio.core.errors import Cancelled
from studio.core.requests import Request
from studio.core.results import Preview, Progress, Result
from studio.core.settings import Settings


class Events:
    """How an engine reports: progress, previews, status lines, and the cancel flag.

    The base class is usable as is (headless: it only tracks cancellation and
    timing); the worker and the CLI subclass it and override the `on_*` hooks.
    """

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel_flag = cancel or threading.Event()
        self._t0 = time.perf_counter()
        self._first_step_t: float | None = None

    # engines call these -------------------------------------------------
    def progress(self, step: int, total: int, text: str = "") -> None:
        """Report that `step` of `total` is done (1-based); checks for cancel first."""
        self.check_cancelled()
        now = time.perf_counter()
        if self._first_step_t is None or step <= 1:
            self._first_step_t = now
            self._first_step = step
            rate, eta = 0.0, 0.0
        else:
            done = step - self._first_step
            elapsed = now - self._first_step_t
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (total - step) / rate if rate > 0 else 0.0
        self.on_progress(Progress(step, total, rate, eta, text))

    def preview(self, preview: Preview) -> None:
        self.check_cancelled()
        self.on_preview(preview)

    def status(self, text: str) -> None:
        """A state worth showing ("Loading model…") that is not a step."""
        self.on_status(text)

    def wants_previews(self) -> bool:
        """Engines may skip computing previews nobody will look at."""
        return True

    def check_cancelled(self) -> None:
        if self.cancel_flag.is_set():
            raise Cancelled()

    @property
    def cancelled(self) -> bool:
        return self.cancel_flag.is_set()

    # runners override these ---------------------------------------------
    def on_progress(self, progress: Progress) -> None:
        pass

    def on_preview(self, preview: Preview) -> None:
        pass

    def on_status(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides which loaded model an engine holds (the cache key)."""

    model: str
    device: str
    dtype: str  # "float32", "float16", "bfloat16"


#: what a request kind makes, for sentences ("makes images, not music")
KIND_NOUNS = {"image": "images", "explore": "explorer frames", "text": "text", "music": "music",
              "upscale": "upscaled pictures"}


def wrong_kind(model: str, kind: str, makes: str = "") -> str:
    """The one sentence for a model asked for a kind it does not serve:
    "builtin:smollm2 makes text, not music." (`makes`: the modality it does serve)."""
    asked = KIND_NOUNS.get(kind, kind)
    if not makes:
        return f"{model} cannot make {asked}."
    return f"{model} makes {KIND_NOUNS.get(makes, makes)}, not {asked}."


class Engine(ABC):
    """One loaded model of one family. Subclasses implement `load` and `generate`."""

    #: the request kinds this engine can run
    kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec

    @classmethod
    @abstractmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> Engine:
        """Load the model named by spec.model (raise ModelError with where it looked)."""

    @abstractmethod
    def generate(self, request: Request, events: Events) -> Result:
        """Run a validated, resolved request; raise Cancelled when events say so."""

    def memory_bytes(self) -> int:
        """Bytes this engine holds (parameters and buffers); used by the memory budget."""
        return 0

    def unload(self) -> None:  # noqa: B027 - optional hook; most engines need nothing
        """Drop references so memory can be reclaimed."""

    def describe(self) -> dict[str, Any]:
        return {"model": self.spec.model, "device": self.spec.device, "dtype": self.spec.dtype}
