"""Test-wide setup: headless Qt, offline hub, a null sound card, a private Studio home."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# sounddevice lists devices once, at import: point ALSA at a null device first.
_ALSA = Path(__file__).parent / "data" / "asound-null.conf"
os.environ["ALSA_CONFIG_PATH"] = str(_ALSA)

import pytest  # noqa: E402

pytest_plugins = ["tests.fixtures"]


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own Studio home (settings, history, outputs)."""
    home = tmp_path / "studio-home"
    home.mkdir()
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Let pool tasks a test left running (a data check, a token count) end before the
    interpreter does: finishing under them prints "can't register atexit after shutdown".
    The app itself leaves with os._exit (ui/app.run_gui) and never meets this."""
    import sys

    if "PySide6.QtCore" in sys.modules:
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(10_000)
