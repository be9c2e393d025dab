"""Where Studio keeps things. STUDIO_HOME moves everything (tests use a temp folder)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def studio_home() -> Path:
    """The user's Studio folder: settings, history index, default outputs."""
    env = os.environ.get("STUDIO_HOME")
    return Path(env).expanduser() if env else Path.home() / "Studio"


def settings_path() -> Path:
    return studio_home() / "settings.json"


def history_path() -> Path:
    return studio_home() / "history.sqlite"


def default_output_dir() -> Path:
    return studio_home() / "outputs"


def cache_dir() -> Path:
    """Derived data we can always recompute (PCA directions, thumbnails...)."""
    return studio_home() / "cache"


def bundled_models_dir() -> Path:
    """The `models/` folder of the project: configs, the catalog, our own trained weights."""
    env = os.environ.get("STUDIO_MODELS")
    return Path(env).expanduser() if env else REPO_ROOT / "models"


def lab_dir() -> Path:
    """The Lab's training runs: one folder per run (config, metrics, checkpoints, samples)."""
    return studio_home() / "lab"


def user_models_dir() -> Path:
    """Models the user made here (the Lab's trainings), searched like `models/`; inside the
    Studio home so that a test's private home keeps them out of the project folder."""
    return studio_home() / "models"


def trained_dir(kind: str) -> Path:
    """Where a finished training puts its model so the pickers find it at once:
    `Lora/` for image LoRAs (A1111's folder name), `trained/` for the rest."""
    return user_models_dir() / ("Lora" if kind == "lora" else "trained")


def assets_dir() -> Path:
    return REPO_ROOT / "assets"
