"""Device and dtype choice: CUDA → MPS → CPU, fp16 on GPUs and fp32 on CPUs."""

from __future__ import annotations

import torch

from studio.core.errors import StudioError


def pick_device(preference: str = "auto") -> str:
    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise StudioError("CUDA was chosen in settings but no CUDA GPU is available.")
    if preference == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise StudioError("MPS was chosen in settings but this machine has no Apple GPU.")
    return preference


def default_dtype(device: str) -> str:
    return "float32" if device == "cpu" else "float16"


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def module_bytes(*modules: torch.nn.Module | None) -> int:
    """Parameter + buffer bytes of some modules (for the memory budget)."""
    total = 0
    for m in modules:
        if m is None:
            continue
        for t in list(m.parameters()) + list(m.buffers()):
            total += t.numel() * t.element_size()
    return total


def cpu_generator(seed: int) -> torch.Generator:
    """Noise is always drawn on the CPU so a seed gives the same picture on any device."""
    return torch.Generator("cpu").manual_seed(int(seed))
