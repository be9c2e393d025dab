"""The Models tab: models by modality, loaded state and Unload, downloads with progress,
cancel and resume, the offline sentence, and a window that never waits on any of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from safetensors.numpy import save_file

from studio.core import catalog, downloads
from studio.core.requests import ImageRequest
from studio.ui.models_view import HELPERS_TITLE, ModelsView
from tests.core.hub_server import HubServer
from tests.ui import close_ctx, make_ctx, scan

UNET = "model.diffusion_model."
REPO = "tester/tiny"


@pytest.fixture
def bundled(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    save_file({UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
               np.zeros((4, 768), np.float16),
               "cond_stage_model.transformer.x": np.zeros(4, np.float16)},
              str(folder / "my-sd15.safetensors"))
    (folder / "legacy.ckpt").write_bytes(b"PK" + b"\0" * 1_100_000)
    save_file({"decoder.layers.0.weight": np.zeros((4, 4), np.float16)},
              str(folder / "taesd_decoder.safetensors"))
    (folder / "broken.safetensors").write_bytes(b"\xff" * 64)
    (folder / "catalog.json").write_text(json.dumps({"models": [{
        "id": "tiny", "name": "Tiny LM", "repo": REPO, "modality": "text",
        "family": "causal LM", "size_bytes": 800000, "licence": "MIT",
        "description": "for tests"}]}))
    monkeypatch.setenv("STUDIO_MODELS", str(folder))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv(downloads.DEFAULT_OFFLINE_MARKER, "1")  # Studio set HF_HUB_OFFLINE
    monkeypatch.setattr(downloads.install, "CHUNK", 16 * 1024)
    return folder


@pytest.fixture
def ctx(qtbot, tmp_path, bundled):
    c = make_ctx(tmp_path)
    yield c
    close_ctx(c, qtbot)


@pytest.fixture
def view(qtbot, ctx):
    v = ModelsView(ctx)
    qtbot.addWidget(v)
    v.show()
    yield v
    assert v.shutdown(10000)


@pytest.fixture
def hub():
    rng = np.random.default_rng(0)
    import io

    from safetensors.numpy import save

    weights = save({"w": rng.standard_normal((450, 450)).astype(np.float32)})
    repo = {"config.json": b'{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}',
            "model.safetensors": weights, "README.md": io.BytesIO(b"# tiny").getvalue()}
    with HubServer({REPO: repo}) as server:
        yield server


def group_titles(view: ModelsView) -> list[str]:
    return [view.tree.topLevelItem(i).text(0) for i in range(view.tree.topLevelItemCount())]


def test_models_by_modality_with_family_size_and_where(qtbot, ctx, view, bundled):
    scan(ctx, qtbot)
    titles = group_titles(view)
    assert titles[:3] == ["Images (4)", "Music (1)", "Text (1)"]
    assert titles[3].startswith(HELPERS_TITLE)
    sd = view.entry_item(str(bundled / "my-sd15.safetensors"))
    assert [sd.text(c) for c in range(4)] == ["my-sd15", "SD 1.x", "safetensors",
                                              catalog.format_size(sd_size(bundled))]
    assert sd.text(4) == "models/"
    legacy = view.entry_item(str(bundled / "legacy.ckpt"))
    assert legacy.text(2) == "ckpt (pickled)" and legacy.text(5) == "Needs setting"
    assert "Allow pickled checkpoints" in legacy.toolTip(0)
    taesd = view.entry_item(str(bundled / "taesd_decoder.safetensors"))
    assert taesd.parent().text(0).startswith(HELPERS_TITLE)
    assert "1 file skipped" in view.issues_label.text()
    assert "broken.safetensors" in view.issues_label.toolTip()
    view.filter_edit.setText("sd15")
    assert not sd.isHidden() and legacy.isHidden()


def sd_size(bundled: Path) -> int:
    return (bundled / "my-sd15.safetensors").stat().st_size


def test_rescan_runs_off_the_gui_thread(qtbot, ctx, view, bundled):
    for i in range(20):  # two thousand files to walk
        sub = bundled / "junk" / f"d{i}"
        sub.mkdir(parents=True)
        for j in range(100):
            (sub / f"{j}.txt").write_bytes(b"")
    with qtbot.waitSignal(ctx.catalog_changed, timeout=20000):
        started = time.perf_counter()
        qtbot.mouseClick(view.rescan_button, Qt.MouseButton.LeftButton)
        assert time.perf_counter() - started < 0.2  # the click returns before the walk ends
    assert view.entry_item(str(bundled / "my-sd15.safetensors")) is not None


def test_loaded_state_and_unload(qtbot, ctx, view):
    scan(ctx, qtbot)
    assert not view.unload_all_button.isEnabled()
    with qtbot.waitSignal(ctx.jobs.models_changed, timeout=60000):
        ctx.jobs.submit(ImageRequest(model="builtin:faces", prompt="", steps=1, width=64,
                                     height=64, seed=1), save=False)
    faces = view.entry_item("builtin:faces")
    assert faces.text(5).startswith("Loaded · ") and faces.text(5).endswith("cpu")
    assert "faces" in view.memory_label.text() and "budget" in view.memory_label.text()
    view.select("builtin:faces")
    assert view.unload_button.isEnabled()
    with qtbot.waitSignal(ctx.jobs.models_changed, timeout=20000) as blocker:
        qtbot.mouseClick(view.unload_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [[]]
    assert faces.text(5) == ""
    assert view.memory_label.text().startswith("No models loaded")
    assert not view.unload_button.isEnabled() and not view.unload_all_button.isEnabled()


def test_download_shows_progress_then_installs_and_rescans(qtbot, ctx, view, hub, bundled):
    view.endpoint = hub.url
    hub.delay = 0.03
    row = view.row_for("tiny")
    assert row.button.text() == "Download" and "~781.2 KB" in view.table.item(0, 2).text()
    formats: list[str] = []
    view.downloads.progress.connect(lambda _i, _p: formats.append(row.bar.format()))
    started = time.perf_counter()
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    assert time.perf_counter() - started < 0.2
    assert row.button.text() == "Cancel" and row.bar.isVisible()
    with qtbot.waitSignal(ctx.catalog_changed, timeout=30000):
        qtbot.waitUntil(lambda: not view.is_downloading(), timeout=30000)
    assert any(" of " in f and "/s" in f and "left" in f for f in formats)
    assert row.button.text() == "Installed" and not row.button.isEnabled()
    assert "is ready in" in view.message_label.text()
    entry = view.entry_item(str(bundled / "tiny"))
    assert entry is not None and entry.text(1) == "causal LM"


def test_cancel_then_resume(qtbot, ctx, view, hub, bundled):
    view.endpoint = hub.url
    hub.delay = 0.05
    row = view.row_for("tiny")
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.last is not None and row.last.bytes_done > 50_000, timeout=20000)
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)  # Cancel
    qtbot.waitUntil(lambda: not view.is_downloading(), timeout=20000)
    assert row.button.text() == "Resume" and "fetched so far" in row.status.text()
    assert "resume" in view.message_label.text()
    hub.delay = 0
    with qtbot.waitSignal(ctx.catalog_changed, timeout=30000):
        qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not view.is_downloading(), timeout=30000)
    assert any(r.startswith("bytes=") for r in hub.ranges_for("model.safetensors"))
    assert row.button.text() == "Installed"


def test_offline_download_is_one_sentence_and_the_app_goes_on(qtbot, ctx, view, monkeypatch):
    monkeypatch.delenv(downloads.DEFAULT_OFFLINE_MARKER)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    row = view.row_for("tiny")
    with qtbot.waitSignal(ctx.message, timeout=10000) as blocker:
        qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    text = view.message_label.text()
    assert text == "Cannot download Tiny LM: offline mode is on (HF_HUB_OFFLINE=1)."
    assert blocker.args == [text]
    assert view.message_label.property("level") == "error"
    assert row.button.text() == "Download" and row.button.isEnabled()
    scan(ctx, qtbot)  # the rest of the tab still works


def test_embeddings_are_listed_with_their_family(qtbot, ctx, view, bundled):
    """Textual-inversion embeddings show in the helpers with the base their layout says
    (clip_l + clip_g: SDXL; 768-wide emb_params: SD 1.x), their file and size."""
    folder = bundled / "embeddings"
    (folder / "styles").mkdir(parents=True)
    rng = np.random.default_rng(1)
    xl = folder / "glow-xl.safetensors"
    save_file({"clip_l": rng.standard_normal((2, 768)).astype(np.float32),
               "clip_g": rng.standard_normal((2, 1280)).astype(np.float32)}, str(xl))
    sd = folder / "styles" / "easyneg.safetensors"
    save_file({"emb_params": rng.standard_normal((3, 768)).astype(np.float32)}, str(sd))
    scan(ctx, qtbot)
    row = view.entry_item(str(xl))
    assert row is not None and row.parent().text(0).startswith(HELPERS_TITLE)
    assert [row.text(c) for c in range(4)] == [
        "glow-xl", "Embedding for SDXL", "safetensors", catalog.format_size(xl.stat().st_size)]
    assert "folder: " in row.text(4) and row.text(4).endswith("embeddings")
    assert str(xl) in row.toolTip(0) and "2 vectors for clip_l + clip_g" in row.toolTip(0)
    assert "Write glow-xl in a prompt" in row.toolTip(0)
    small = view.entry_item(str(sd))
    assert small is not None and small.text(1) == "Embedding for SD 1.x"
    assert "3 vectors of 768" in small.toolTip(0)
    view.filter_edit.setText("sdxl")  # the base is something to filter by
    assert not row.isHidden() and small.isHidden()
    assert "glow-xl" not in [e.name for e in ctx.models_for("image")]  # not a generator
