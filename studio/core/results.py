"""Results and the plain-data events that cross from engines to the worker.

Payloads are numpy arrays, bytes and str only, so they can cross threads and
be saved without Qt or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from studio.core.requests import Request

if TYPE_CHECKING:  # only annotations: the window starts without importing numpy
    import numpy as np

Modality = Literal["image", "text", "music"]


@dataclass
class Result:
    """What an engine hands back: the resolved request plus the media it made.

    - images: uint8 arrays of shape (H, W, 3), one per batch item
    - text: the generated text (without the prompt)
    - audio: float32 array of shape (channels, samples) in [-1, 1], with sample_rate
    - extras: extra files to save beside the main output, by suffix (e.g. {".mid": bytes})
    - info: facts worth showing or recording (per-image seeds, tokens/s, timings...)
    """

    request: Request
    modality: Modality
    images: list[np.ndarray] = field(default_factory=list)
    text: str = ""
    audio: np.ndarray | None = None
    sample_rate: int = 0
    extras: dict[str, bytes] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """One step done: step counts from 1 to total."""

    step: int
    total: int
    it_per_s: float = 0.0
    eta_s: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class Preview:
    """A live glimpse of a job in flight.

    kind "image": data is a uint8 (H, W, 3) array (or a list of them for batches)
    kind "text": data is the new chunk of text (str)
    kind "audio": data is a float32 (channels, n) chunk that follows the previous one
    """

    kind: Literal["image", "text", "audio"]
    data: Any
    step: int = 0
    total: int = 0
    sample_rate: int = 0
    info: dict[str, Any] = field(default_factory=dict)
