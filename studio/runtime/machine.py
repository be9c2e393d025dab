"""What the "auto" device will be, guessed without importing torch.

The status bar shows a device from the start, but the GUI thread may not import
torch (seconds, hundreds of MB). So this reads how the installed torch was built
from its version.py and looks for a GPU the cheap way (device nodes, the driver's
DLL); the first model load then replaces the guess with the device actually used
(engines/devices.py pick_device is the authority).
"""

from __future__ import annotations

import ast
import os
import sys
from functools import lru_cache
from pathlib import Path


def torch_build(root: Path | None = None) -> dict[str, str | None] | None:
    """torch's version.py fields (__version__, cuda, hip) as text, or None without torch."""
    if root is None:  # the first torch/ on sys.path (not find_spec: no import machinery at all)
        root = next((Path(p) / "torch" for p in sys.path
                     if p and (Path(p) / "torch" / "version.py").is_file()), None)
        if root is None:
            return None
    try:
        tree = ast.parse((root / "version.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    fields: dict[str, str | None] = {}
    for node in tree.body:
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            fields[target.id] = None if value.value is None else str(value.value)
    return fields


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver with a GPU is installed (its device nodes or its CUDA DLL)."""
    if sys.platform == "win32":
        system = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32"
        return (system / "nvcuda.dll").exists()
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        if gpus.is_dir() and any(gpus.iterdir()):
            return True
    except OSError:
        pass
    return any(Path("/dev").glob("nvidia[0-9]*"))


def has_rocm_gpu() -> bool:
    return Path("/dev/kfd").exists()


@lru_cache(maxsize=8)
def expected_device(preference: str = "auto") -> str | None:
    """The device a load will use for this Settings.device; None when it cannot be told."""
    if preference != "auto":
        return preference
    build = torch_build()
    if build is None:
        return None
    if build.get("cuda") and has_nvidia_gpu():
        return "cuda"
    if build.get("hip") and has_rocm_gpu():
        return "cuda"  # ROCm builds of torch call the GPU "cuda"
    if sys.platform == "darwin":
        import platform  # only here: its import is a cost the window's start does not need

        if platform.machine() == "arm64":
            return "mps"
    return "cpu"
