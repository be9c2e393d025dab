"""Helpers the test modules share (fixtures are in tests/fixtures.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


def load_model_script(model: str, script: str) -> ModuleType:
    """A script of `models/<model>/` (no package: the tests load it by its path)."""
    path = REPO_MODELS / model / script
    spec = importlib.util.spec_from_file_location(f"{model}_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
