"""Fixtures shared across test modules, registered by tests/conftest.py (pytest_plugins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy machine OpenMP's spinning
    threads make each small op 10-30x slower; restore the setting afterwards.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD pipeline saved once per session (imports diffusers in the test process)."""
    from tests.tiny import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny MusicGen folder, built once per session."""
    from tests.tiny_musicgen import cached_tiny_musicgen

    return cached_tiny_musicgen(tmp_path_factory)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 folder built once per test run (the Text panel and Chat tests)."""
    from tests.engines.tiny_text import tiny_gpt2_once

    root = tmp_path_factory.getbasetemp() / "tiny-text-models"
    root.mkdir(exist_ok=True)
    return tiny_gpt2_once(root)
