"""runtime.downloads: catalog downloads as background tasks, against a local hub."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save

from studio.core import downloads
from studio.core.downloads import CatalogItem, DownloadProgress
from studio.core.settings import Settings
from studio.runtime.downloads import Downloads
from tests.core.hub_server import HubServer

REPO = "tester/tiny"


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(downloads.DEFAULT_OFFLINE_MARKER, "1")  # Studio set it, not the user
    monkeypatch.delenv("STUDIO_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    monkeypatch.setattr(downloads.install, "CHUNK", 16 * 1024)


@pytest.fixture
def hub(online):
    weights = save({"w": np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)})
    repo = {"config.json": b'{"model_type": "gpt2"}', "model.safetensors": weights}
    with HubServer({REPO: repo}) as server:
        yield server


@pytest.fixture
def runner(qtbot):
    d = Downloads()
    yield d
    assert d.shutdown(10000)


def item() -> CatalogItem:
    return CatalogItem.from_dict({"id": "tiny", "name": "Tiny LM", "repo": REPO,
                                  "modality": "text", "size_bytes": 1, "licence": "MIT",
                                  "family": "causal LM"})


def test_download_reports_progress_then_the_folder(qtbot, tmp_path, hub, runner):
    hub.delay = 0.01
    seen: list[DownloadProgress] = []
    runner.progress.connect(lambda item_id, p: seen.append(p) if item_id == "tiny" else None)
    with qtbot.waitSignal(runner.finished, timeout=30000) as blocker:
        assert runner.start(item(), tmp_path, endpoint=hub.url)
        assert runner.is_running("tiny") and runner.is_running()
        assert not runner.start(item(), tmp_path, endpoint=hub.url)  # one at a time per item
    assert blocker.args == ["tiny", str(tmp_path / "tiny")]
    assert not runner.is_running()
    assert seen[0].state == "connecting" and seen[-1].state == "done"
    assert any(p.state == "downloading" and 0 < p.bytes_done < p.bytes_total for p in seen)
    assert (tmp_path / "tiny" / "model.safetensors").is_file()


def test_cancel_keeps_what_was_fetched_and_a_second_start_resumes(qtbot, tmp_path, hub, runner):
    hub.delay = 0.05
    seen: list[DownloadProgress] = []
    runner.progress.connect(lambda _i, p: seen.append(p))
    assert not runner.cancel("tiny")  # nothing running
    runner.start(item(), tmp_path, endpoint=hub.url)
    qtbot.waitUntil(lambda: any(p.bytes_done > 30_000 for p in seen), timeout=20000)
    with qtbot.waitSignal(runner.cancelled, timeout=20000) as blocker:
        assert runner.cancel("tiny")
        assert runner.is_cancelling("tiny")
    assert blocker.args[0] == "tiny" and "resume" in blocker.args[1]
    assert not runner.is_running("tiny") and not runner.is_cancelling("tiny")
    assert downloads.partial_bytes(item(), Settings(model_dirs=[str(tmp_path)])) > 0
    hub.delay = 0
    with qtbot.waitSignal(runner.finished, timeout=30000):
        runner.start(item(), tmp_path, endpoint=hub.url)
    assert any(r.startswith("bytes=") for r in hub.ranges_for("model.safetensors"))


def test_offline_fails_with_one_sentence(qtbot, tmp_path, online, runner, monkeypatch):
    monkeypatch.delenv(downloads.DEFAULT_OFFLINE_MARKER)  # the user asked to stay offline
    with qtbot.waitSignal(runner.failed, timeout=10000) as blocker:
        runner.start(item(), tmp_path)
    sentence = "Cannot download Tiny LM: offline mode is on (HF_HUB_OFFLINE=1)."
    assert blocker.args == ["tiny", sentence]
    assert not runner.is_running()
