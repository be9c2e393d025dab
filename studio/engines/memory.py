"""Memory: the one budget all loaded models share, and telling out-of-memory apart.

The budget is `settings.memory_budget_mb` when set, else derived from the machine
(a share of VRAM when models go to a GPU, of RAM otherwise). torch is imported
only where a GPU must be asked, so the CLI and tests stay light.
"""

from __future__ import annotations

import gc
import logging
import sys
import traceback

from studio.core import catalog
from studio.core.settings import Settings
from studio.engines.base import LoadSpec

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GPU_SHARE = 0.8  # of VRAM: the rest is for activations (a 1024² SDXL step needs a few GB)
RAM_SHARE = 0.5  # of RAM: the rest is for activations, the app and the system
MIN_BUDGET = 1024 * MIB

OOM_MESSAGE = (
    "Out of memory: try a smaller size or batch, or unload other models "
    "(Models tab → Unload all), then try again."
)

_OOM_TEXT = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "failed to allocate",
    "alloc_failed",
    "not enough memory",
    "std::bad_alloc",
    "insufficient memory",
)

_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def total_ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # pragma: no cover - psutil is a dependency; stay usable without it
        return 8 * 1024 * MIB


def total_vram_bytes(device: str = "cuda") -> int:
    """Total memory of the CUDA device that `device` names (0 without CUDA)."""
    if not device.startswith("cuda"):
        return 0
    try:
        import torch

        if not torch.cuda.is_available():
            return 0
        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory)
    except Exception as exc:  # a broken driver must not stop a job here
        log.warning("could not read the GPU's memory size: %s", exc)
        return 0


def default_budget_bytes(device: str) -> int:
    """What models may hold when settings leave it on auto (0)."""
    vram = total_vram_bytes(device)
    if vram:
        return max(MIN_BUDGET, int(vram * GPU_SHARE))
    return max(MIN_BUDGET, int(total_ram_bytes() * RAM_SHARE))


def budget_bytes(settings: Settings, device: str) -> int:
    """settings.memory_budget_mb in bytes, or the machine's default when it is 0."""
    mb = int(getattr(settings, "memory_budget_mb", 0) or 0)
    return mb * MIB if mb > 0 else default_budget_bytes(device)


def dtype_bytes(dtype: str) -> int:
    return _DTYPE_BYTES.get(dtype, 4)


def estimate_load_bytes(spec: LoadSpec) -> int:
    """Bytes loading spec will take, from the files on disk (0 when unknown)."""
    try:
        return catalog.estimate_memory(spec.model, dtype_bytes(spec.dtype))
    except Exception as exc:  # an estimate must never be why a job fails
        log.debug("no memory estimate for %s: %s", spec.model, exc)
        return 0


def _chain(exc: BaseException | None):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 16:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_out_of_memory(exc: BaseException | None) -> bool:
    """True for CUDA/MPS OOM, a failed CPU allocation or MemoryError, also when wrapped
    (a ModelError raised `from` an OOM while loading counts)."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    for e in _chain(exc):
        if isinstance(e, MemoryError):
            return True
        if oom_type is not None and isinstance(e, oom_type):
            return True
        if isinstance(e, (RuntimeError, OSError)):
            text = str(e).lower()
            if any(t in text for t in _OOM_TEXT):
                return True
    return False


def release_exception(exc: BaseException | None) -> None:
    """Drop the locals of an exception's frames, so the tensors a failed job held can go.

    A traceback keeps every frame (and every activation in it) alive until the
    exception itself is gone; clearing them lets free_memory() reclaim it now.
    """
    for e in _chain(exc):
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)


def free_memory() -> None:
    """Collect garbage and hand cached GPU blocks back to the driver."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        mps = getattr(torch, "mps", None)
        if mps is not None and torch.backends.mps.is_available():
            mps.empty_cache()
    except Exception as exc:  # pragma: no cover - driver trouble; nothing more to free
        log.debug("emptying the GPU cache failed: %s", exc)


def describe(loaded: list[dict], budget: int) -> str:
    """'2 models loaded · 1.3 GB of 8.0 GB' for the status bar and the Models view."""
    used = sum(int(m.get("bytes", 0)) for m in loaded)
    if not loaded:
        return "No models loaded"
    noun = "model" if len(loaded) == 1 else "models"
    text = f"{len(loaded)} {noun} loaded · {catalog.format_size(used)}"
    return text + (f" of {catalog.format_size(budget)}" if budget else "")
