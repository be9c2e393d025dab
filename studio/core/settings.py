"""User settings, stored as JSON in the Studio home; unknown or bad values fall back to defaults."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.atomic import atomic_write_bytes
from studio.core.errors import StudioError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
#: how image models run on the CPU: "auto" = OpenVINO when installed, else PyTorch
IMAGE_RUNTIMES = ("auto", "pytorch", "openvino")


@dataclass
class Settings:
    output_dir: str = ""
    model_dirs: list[str] = field(default_factory=list)
    device: str = "auto"
    allow_pickle: bool = False
    memory_budget_mb: int = 0  # 0 = derive from the machine's RAM/VRAM
    live_previews: bool = True
    # CPU speed-ups for image models (the recipe of each image records which ran).
    # PyTorch by default: OpenVINO converts each model once (minutes for a full-size UNet,
    # and a second copy of its weights in memory) before it runs ~2× faster.
    image_runtime: str = "pytorch"
    fast_decode: bool = False  # the final image from the tiny autoencoder (TAESD) if installed
    cpu_bf16: bool = False  # bfloat16 maths on CPUs that have it natively (AVX512-BF16/AMX)

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser() if self.output_dir else paths.default_output_dir()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        defaults = cls()
        if not isinstance(data, dict):  # e.g. a settings file holding a list or a string
            log.warning("settings: expected a JSON object, got %s; using defaults",
                        type(data).__name__)
            return defaults
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(defaults, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, str)
            if f.name == "device" and value not in DEVICES:
                ok = False
            if f.name == "image_runtime" and value not in IMAGE_RUNTIMES:
                ok = False
            if ok:
                kwargs[f.name] = value
            else:
                log.warning("settings: ignoring bad value for %s: %r", f.name, value)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or paths.settings_path()
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings: could not read %s (%s); using defaults", path, exc)
            return cls()

    def save(self, path: Path | None = None) -> None:
        path = path or paths.settings_path()
        data = json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise StudioError(
                f"Could not save the settings to {path}: {exc.strerror or exc}."
            ) from exc
