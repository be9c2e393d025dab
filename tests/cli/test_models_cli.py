"""`studio models`: the table, JSON, the catalog, a download with a text progress bar,
and the offline error (one line, exit status 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from studio.cli import EXIT_BAD_INPUT, main
from studio.core import downloads
from tests.core.hub_server import HubServer

UNET = "model.diffusion_model."


@pytest.fixture
def bundled(tmp_path, monkeypatch) -> Path:
    """A models/ folder with one SD 1.x checkpoint, a broken file, a pickle and a catalog."""
    folder = tmp_path / "models"
    folder.mkdir()
    save_file({UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
               np.zeros((4, 768), np.float16),
               "cond_stage_model.transformer.x": np.zeros(4, np.float16)},
              str(folder / "my-sd15.safetensors"))
    (folder / "broken.safetensors").write_bytes(b"\xff" * 64)
    (folder / "legacy.ckpt").write_bytes(b"PK" + b"\0" * 1_100_000)
    (folder / "catalog.json").write_text(json.dumps({"models": [{
        "id": "tiny", "name": "Tiny LM", "repo": "tester/tiny", "modality": "text",
        "family": "causal LM", "size_bytes": 400000, "licence": "MIT",
        "description": "for tests"}]}))
    monkeypatch.setenv("STUDIO_MODELS", str(folder))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    return folder


def test_models_prints_a_table_by_modality(bundled, capsys):
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "IMAGE (" in out and "TEXT (" in out and "MUSIC (" in out
    assert "builtin:faces" in out and "builtin:smollm2" in out
    line = next(x for x in out.splitlines() if "my-sd15" in x)
    assert "SD 1.x" in line and "safetensors" in line and "models/" in line
    legacy = next(x for x in out.splitlines() if "legacy.ckpt" in x)
    assert "pickled" in legacy and "needs allow_pickle" in legacy
    assert "broken.safetensors" in err  # what was skipped, and why, on stderr


def test_models_json_and_filters(bundled, capsys):
    assert main(["models", "--json", "--modality", "image"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {m["id"]: m for m in data["models"]}
    assert {m["modality"] for m in data["models"]} == {"image"}
    sd = by_id[str(bundled / "my-sd15.safetensors")]
    assert (sd["family"], sd["format"], sd["source"]) == ("SD 1.x", "safetensors", "models")
    assert sd["size_bytes"] == (bundled / "my-sd15.safetensors").stat().st_size
    assert by_id[str(bundled / "legacy.ckpt")]["pickled"] is True
    assert any("broken.safetensors" in s for s in data["skipped"])
    assert main(["models", "list", "--json", "--modality", "text"]) == 0
    assert {m["id"] for m in json.loads(capsys.readouterr().out)["models"]} == {"builtin:smollm2"}


def test_models_catalog(bundled, capsys):
    assert main(["models", "catalog"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "Tiny LM" in out and "licence: MIT" in out
    assert str(bundled) in out


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv(downloads.DEFAULT_OFFLINE_MARKER, "1")  # Studio set HF_HUB_OFFLINE
    monkeypatch.setattr(downloads.install, "CHUNK", 8 * 1024)


def test_download_shows_progress_and_prints_the_folder(bundled, tmp_path, capsys, online):
    rng = np.random.default_rng(0)
    model = tmp_path / "model.safetensors"
    save_file({"w": rng.standard_normal((300, 300)).astype(np.float32)}, str(model))
    repo = {"config.json": b'{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}',
            "model.safetensors": model.read_bytes()}
    with HubServer({"tester/tiny": repo}) as hub:
        hub.delay = 0.05
        code = main(["models", "download", "tiny", "--endpoint", hub.url])
    out, err = capsys.readouterr()
    assert code == 0
    folder = Path(out.strip())
    assert folder == bundled / "tiny"
    assert (folder / "model.safetensors").read_bytes() == repo["model.safetensors"]
    assert "Connecting to the hub for tester/tiny" in err
    assert "[########################] 100.0% Done" in err
    assert main(["models", "catalog"]) == 0
    assert f"installed: {folder}" in capsys.readouterr().out
    assert main(["models", "--json", "--modality", "text"]) == 0
    assert str(folder) in capsys.readouterr().out


def test_offline_download_is_one_line_and_exit_2(bundled, capsys, monkeypatch):
    monkeypatch.delenv(downloads.DEFAULT_OFFLINE_MARKER, raising=False)  # the user's choice
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "download", "tiny"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err == "studio: Cannot download Tiny LM: offline mode is on (HF_HUB_OFFLINE=1)."
    assert main(["models", "download", "no-such-thing"]) == EXIT_BAD_INPUT
    assert "Unknown model 'no-such-thing'" in capsys.readouterr().err


def test_a_fresh_process_tries_only_when_asked_and_fails_fast_offline(bundled, tmp_path):
    """HF_HUB_OFFLINE unset: Studio turns it on for libraries, yet a download may try the
    network, and an unreachable hub is one line with exit status 2."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", downloads.DEFAULT_OFFLINE_MARKER)}
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "models", "download", "tiny", "--endpoint",
         f"http://127.0.0.1:{port}", "--quiet"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.strip().splitlines() == [
        "studio: Cannot download Tiny LM: 127.0.0.1 cannot be reached "
        "(this computer seems to be offline)."]
    assert not (bundled / "tiny").exists()
