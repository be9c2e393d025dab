"""Settings: round trip, defaults for missing or bad files, bad fields ignored one by one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.settings import Settings


def test_round_trip(tmp_path: Path) -> None:
    settings = Settings(output_dir=str(tmp_path / "out"), model_dirs=["/models", "/más/modelos"],
                        device="cpu", allow_pickle=True, memory_budget_mb=4096,
                        live_previews=False)
    target = tmp_path / "settings.json"
    settings.save(target)
    assert Settings.load(target) == settings
    assert json.loads(target.read_text(encoding="utf-8"))["model_dirs"][1] == "/más/modelos"


def test_default_location_follows_studio_home(studio_home: Path) -> None:
    Settings(device="cpu").save()
    assert paths.settings_path() == studio_home / "settings.json"
    assert Settings.load().device == "cpu"
    assert Settings().output_path == studio_home / "outputs"
    assert Settings(output_dir="~/pics").output_path == Path("~/pics").expanduser()


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert Settings.load(tmp_path / "nope.json") == Settings()


@pytest.mark.parametrize("content", ["{not json", "", '"output_dir"', "[1, 2]", "null", "\xff"])
def test_bad_json_gives_defaults_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "settings.json"
    target.write_bytes(content.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="studio.core.settings"):
        assert Settings.load(target) == Settings()
    assert caplog.records, "a bad settings file should be logged"


def test_bad_fields_are_ignored_one_by_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="studio.core.settings"):
        settings = Settings.from_dict({
            "device": "tpu", "memory_budget_mb": -5, "model_dirs": ["/ok", 3],
            "allow_pickle": "yes", "live_previews": False, "output_dir": "/out", "extra": 1,
        })
    assert settings == Settings(output_dir="/out", live_previews=False)
    warned = " ".join(r.getMessage() for r in caplog.records)
    for name in ("device", "memory_budget_mb", "model_dirs", "allow_pickle"):
        assert name in warned


def test_save_failure_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StudioError, match=r"^Could not save the settings to .*\.$"):
        Settings().save(blocker / "settings.json")
