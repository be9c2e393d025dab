"""Downloads against a local hub on 127.0.0.1 serving tiny real model repos.

Progress events, cancel and resume (HTTP Range on .part files), a dropped
connection, a corrupted file caught by its sha256, variant files stored under
plain names, and the offline paths that must fail at once without a socket.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from studio.core import catalog, downloads
from studio.core.downloads import CatalogItem, DownloadProgress
from studio.core.errors import Cancelled, StudioError
from studio.core.settings import Settings
from tests.core.hub_server import HubServer

REPO = "tester/tiny-gpt2"
SD_REPO = "tester/tiny-sd"


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Repo contents: a tiny GPT-2 (plus files a download must skip) and a tiny SD with
    fp16 variants and a safety checker the catalog item leaves out."""
    from tests.engines.tiny_text import build_tiny_gpt2
    from tests.tiny import build_tiny_sd

    root = tmp_path_factory.mktemp("repos")
    gpt2 = folder_files(build_tiny_gpt2(root))
    gpt2["pytorch_model.bin"] = b"pickled weights that must not be fetched"
    gpt2[".gitattributes"] = b"*.safetensors filter=lfs\n"
    gpt2["README.md"] = b"# tiny gpt2\n"

    sd_folder = build_tiny_sd(root)
    sd = folder_files(sd_folder)
    for name in [n for n in sd if n.endswith(".safetensors")]:
        tensors = load_file(str(sd_folder / name))
        half = root / "half.safetensors"
        save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(half))
        sd[name.replace(".safetensors", ".fp16.safetensors")] = half.read_bytes()
    index = json.loads(sd["model_index.json"])
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    sd["model_index.json"] = json.dumps(index).encode()
    sd["safety_checker/config.json"] = b"{}"
    sd["safety_checker/model.safetensors"] = sd["vae/diffusion_pytorch_model.safetensors"]
    return {REPO: gpt2, SD_REPO: sd}


@pytest.fixture
def hub(tiny_files):
    with HubServer(tiny_files) as server:
        yield server


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """As if Studio set HF_HUB_OFFLINE itself (the user did not): downloads may go out."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(downloads.DEFAULT_OFFLINE_MARKER, "1")
    monkeypatch.delenv("STUDIO_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # no token file
    monkeypatch.setattr(downloads.install, "CHUNK", 8 * 1024)


def gpt2_item(**changes) -> CatalogItem:
    data = {"id": "tiny-gpt2", "name": "Tiny GPT-2", "repo": REPO, "modality": "text",
            "family": "causal LM", "size_bytes": 1, "licence": "MIT"} | changes
    return CatalogItem.from_dict(data)


def expected_files(tiny_files) -> dict[str, bytes]:
    return {k: v for k, v in tiny_files[REPO].items()
            if k not in ("pytorch_model.bin", ".gitattributes")}


# ------------------------------------------------------------------- happy path


def test_download_verifies_and_renames_a_complete_folder_into_place(tmp_path, hub, tiny_files):
    events: list[DownloadProgress] = []
    hub.delay = 0.01
    folder = downloads.download(gpt2_item(), tmp_path, endpoint=hub.url, on_progress=events.append)

    assert folder == tmp_path / "tiny-gpt2"
    got = folder_files(folder)
    record = json.loads(got.pop(downloads.RECORD_FILE))
    assert got == expected_files(tiny_files)  # the .bin and .gitattributes were left out
    assert record["complete"] and record["repo"] == REPO and record["licence"] == "MIT"
    assert record["revision"] == hub.sha[REPO]
    assert not (tmp_path / downloads.STAGING_DIR).exists()
    assert not list(folder.rglob("*.part"))

    assert events[0].state == "connecting" and events[-1].state == "done"
    total = sum(len(v) for v in expected_files(tiny_files).values())
    assert events[-1].bytes_done == events[-1].bytes_total == total
    moving = [e for e in events if e.state == "downloading"]
    assert [e.bytes_done for e in moving] == sorted(e.bytes_done for e in moving)
    assert any(e.speed > 0 and e.eta_s is not None for e in moving)
    assert events[-1].files_done == events[-1].files_total == len(expected_files(tiny_files))
    # the LFS file came through the CDN redirect, without the hub's credentials
    assert any(p.startswith("/cdn/") for p, _r in hub.requests)

    entry = catalog.classify_folder(folder)
    assert (entry.modality, entry.family) == ("text", catalog.CAUSAL_LM)
    from studio.engines.base import Events, LoadSpec
    from studio.engines.text_lm import TextEngine

    engine = TextEngine.load(LoadSpec(str(folder), "cpu", "float32"), Settings(), Events())
    assert engine.memory_bytes() > 0

    again: list[DownloadProgress] = []  # a second request finds it done, with no request
    before = len(hub.requests)
    assert downloads.download(gpt2_item(), tmp_path, endpoint=hub.url,
                              on_progress=again.append) == folder
    assert len(hub.requests) == before and again[-1].state == "done"


def test_variants_are_stored_under_plain_names_and_the_pipeline_loads(tmp_path, hub, tiny_files):
    item = CatalogItem.from_dict({
        "id": "tiny-sd", "name": "Tiny SD", "repo": SD_REPO, "modality": "image",
        "family": "SD 1.x", "size_bytes": 1, "licence": "MIT", "variant": "fp16",
        "include": ["model_index.json", "scheduler/*", "text_encoder/*", "tokenizer/*",
                    "unet/*", "vae/*"],
    })
    folder = downloads.download(item, tmp_path, endpoint=hub.url)
    unet = folder / "unet" / "diffusion_pytorch_model.safetensors"
    assert unet.read_bytes() == tiny_files[SD_REPO]["unet/diffusion_pytorch_model.fp16.safetensors"]
    assert not list(folder.rglob("*.fp16.*")) and not (folder / "safety_checker").exists()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None]
    assert not any(p.startswith(f"/cdn/{SD_REPO}/resolve/{hub.sha[SD_REPO]}/safety")
                   for p, _r in hub.requests)

    entry = catalog.classify_folder(folder)
    assert (entry.family, entry.format) == (catalog.SD1, "diffusers")
    from studio.engines.base import Events, LoadSpec
    from studio.engines.image_diffusers import DiffusersImageEngine

    engine = DiffusersImageEngine.load(LoadSpec(str(folder), "cpu", "float32"), Settings(),
                                       Events())
    assert engine.memory_bytes() > 0


def test_file_selection_rules():
    names = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.safetensors",
             "text_encoder/pytorch_model.bin", "vae/diffusion_pytorch_model.non_ema.safetensors",
             "big/x.fp16-00001-of-00002.safetensors", "big/x.fp16-00002-of-00002.safetensors",
             "big/x.safetensors.index.fp16.json", "sd_xl_turbo_1.0_fp16.safetensors",
             "onnx/model.onnx", "logo.png", "README.md"]
    chosen = downloads.select_files(names, variant="fp16")
    assert chosen["unet/diffusion_pytorch_model.fp16.safetensors"] == \
        "unet/diffusion_pytorch_model.safetensors"
    assert "unet/diffusion_pytorch_model.safetensors" not in chosen
    assert chosen["text_encoder/model.safetensors"] == "text_encoder/model.safetensors"
    assert chosen["big/x.fp16-00002-of-00002.safetensors"] == "big/x-00002-of-00002.safetensors"
    assert chosen["big/x.safetensors.index.fp16.json"] == "big/x.safetensors.index.json"
    assert chosen["sd_xl_turbo_1.0_fp16.safetensors"] == "sd_xl_turbo_1.0_fp16.safetensors"
    assert chosen["vae/diffusion_pytorch_model.non_ema.safetensors"]  # the only weights there
    for skipped in ("text_encoder/pytorch_model.bin", "onnx/model.onnx", "logo.png"):
        assert skipped not in chosen
    plain = downloads.select_files(names, include=["unet/*"])
    assert plain == {"unet/config.json": "unet/config.json",
                     "unet/diffusion_pytorch_model.safetensors":
                         "unet/diffusion_pytorch_model.safetensors"}


# ------------------------------------------------------------------- cancel, resume, damage


def test_cancel_keeps_the_part_and_the_next_download_resumes(tmp_path, hub, tiny_files):
    hub.delay = 0.02
    cancel = threading.Event()

    def on_progress(p: DownloadProgress) -> None:
        if p.state == "downloading" and p.file == "model.safetensors" and p.bytes_done > 40_000:
            cancel.set()

    with pytest.raises(Cancelled, match="resume"):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url, on_progress=on_progress,
                           cancel=cancel)
    staging = tmp_path / downloads.STAGING_DIR / "tiny-gpt2"
    part = staging / "model.safetensors.part"
    kept = part.stat().st_size
    assert 0 < kept < len(tiny_files[REPO]["model.safetensors"])
    assert not (tmp_path / "tiny-gpt2").exists()
    assert downloads.partial_bytes(gpt2_item(), Settings(model_dirs=[str(tmp_path)])) >= kept

    hub.delay = 0
    events: list[DownloadProgress] = []
    folder = downloads.download(gpt2_item(), tmp_path, endpoint=hub.url, on_progress=events.append)
    assert hub.ranges_for("model.safetensors")[-1] == f"bytes={kept}-"
    assert (folder / "model.safetensors").read_bytes() == tiny_files[REPO]["model.safetensors"]
    first_moving = next(e for e in events if e.state == "downloading")
    assert first_moving.bytes_done >= kept  # progress starts from what was already there


def test_a_dropped_connection_is_resumed_not_thrown_away(tmp_path, hub, tiny_files):
    hub.drop_after["model.safetensors"] = 50_000
    with pytest.raises(StudioError, match="dropped") as err:
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    assert "\n" not in str(err.value)
    part = tmp_path / downloads.STAGING_DIR / "tiny-gpt2" / "model.safetensors.part"
    assert part.stat().st_size == 50_000
    folder = downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    assert hub.ranges_for("model.safetensors")[-1] == "bytes=50000-"
    assert (folder / "model.safetensors").read_bytes() == tiny_files[REPO]["model.safetensors"]


def test_a_server_that_ignores_range_still_gives_a_good_file(tmp_path, hub, tiny_files):
    hub.drop_after["model.safetensors"] = 30_000
    with pytest.raises(StudioError):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    hub.ignore_range = True
    folder = downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    assert (folder / "model.safetensors").read_bytes() == tiny_files[REPO]["model.safetensors"]


def test_a_corrupted_file_is_detected_deleted_and_named(tmp_path, hub, tiny_files):
    hub.corrupt.add("model.safetensors")
    with pytest.raises(StudioError) as err:
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    message = str(err.value)
    assert "model.safetensors" in message and "corrupt" in message and "sha256" in message
    staging = tmp_path / downloads.STAGING_DIR / "tiny-gpt2"
    assert not (staging / "model.safetensors.part").exists()
    assert not (staging / "model.safetensors").exists()
    assert not (tmp_path / "tiny-gpt2").exists()
    hub.corrupt.clear()
    folder = downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    data = (folder / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == \
        hashlib.sha256(tiny_files[REPO]["model.safetensors"]).hexdigest()


def test_small_files_are_checked_by_their_git_blob_id(tmp_path, hub):
    hub.corrupt.add("config.json")
    with pytest.raises(StudioError, match=r"config\.json.*checksum"):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)


def test_one_download_per_folder_at_a_time(tmp_path, hub):
    hub.delay = 0.05
    cancel = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            downloads.download(gpt2_item(), tmp_path, endpoint=hub.url, cancel=cancel)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=first)
    worker.start()
    lock = tmp_path / downloads.STAGING_DIR / "tiny-gpt2" / ".lock"
    deadline = time.monotonic() + 10
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(StudioError, match="already being downloaded"):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    cancel.set()
    worker.join(10)
    assert isinstance(errors[0], Cancelled)


# ------------------------------------------------------------------- errors and offline


def test_http_errors_are_one_sentence(tmp_path, hub):
    with pytest.raises(StudioError, match="no such model"):
        downloads.download(gpt2_item(repo="tester/missing"), tmp_path, endpoint=hub.url)
    hub.gated.add(REPO)
    with pytest.raises(StudioError, match=r"login.*HF_TOKEN"):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    (tmp_path / "tiny-gpt2").mkdir()
    hub.gated.clear()
    with pytest.raises(StudioError, match="already exists"):
        downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)


def test_token_goes_to_the_hub_but_not_through_the_redirect(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    downloads.download(gpt2_item(), tmp_path, endpoint=hub.url)
    sent = dict(zip([p for p, _r in hub.requests], hub.auth, strict=True))
    assert sent[f"/api/models/{REPO}/revision/main"] == "Bearer hf_secret"
    cdn = [p for p in sent if p.startswith("/cdn/")]
    assert cdn and all(sent[p] is None for p in cdn)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve or connect fails the test."""
    def refuse(*_a, **_k):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"STUDIO_OFFLINE": "1"}])
def test_offline_mode_fails_at_once_without_touching_the_network(tmp_path, monkeypatch,
                                                                  no_network, env):
    monkeypatch.delenv(downloads.DEFAULT_OFFLINE_MARKER)  # the user set it, not Studio
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    started = time.perf_counter()
    dest = tmp_path / "models"
    with pytest.raises(StudioError) as err:
        downloads.download("sd-turbo", dest)
    assert time.perf_counter() - started < 1
    message = str(err.value)
    assert message.startswith("Cannot download SD-Turbo: ") and "offline" in message
    assert message.endswith(".") and "\n" not in message
    assert not dest.exists()


def test_an_unreachable_hub_fails_fast(tmp_path):
    tmp_path = tmp_path / "models"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    offline = r"cannot be reached \(this computer seems to be offline\)"
    with pytest.raises(StudioError, match=offline):
        downloads.download(gpt2_item(), tmp_path, endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(StudioError, match="cannot be reached"):
        downloads.download(gpt2_item(), tmp_path, endpoint="https://hub.invalid")
    assert time.perf_counter() - started < downloads.PROBE_TIMEOUT * 2 + 1
    assert not tmp_path.exists()


def test_listing_the_catalog_never_touches_the_network(no_network):
    items = downloads.load_catalog()
    settings = Settings()
    for item in items:
        downloads.installed_path(item, settings)
        downloads.partial_bytes(item, settings)


# ------------------------------------------------------------------- the catalog file


def test_the_curated_catalog_is_complete_and_valid():
    items = downloads.load_catalog()
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    for wanted in ("sd-turbo", "sdxl-turbo", "sd15", "taesd", "taesdxl", "musicgen-small"):
        assert wanted in ids
    assert any(i.modality == "text" for i in items)
    for item in items:
        downloads.check_repo_id(item.repo)
        assert item.licence and item.size_bytes > 0 and item.description
        assert item.modality in ("image", "music", "text")
        assert item.role in catalog.ROLES
    previews = {i.id: i.folder_name for i in items if i.role == "preview"}
    assert previews == {"taesd": "taesd", "taesdxl": "taesdxl"}  # where find_taesd looks


def test_resolve_item_and_bad_ids():
    assert downloads.resolve_item("sd-turbo").repo == "stabilityai/sd-turbo"
    assert downloads.resolve_item("stabilityai/sd-turbo").id == "sd-turbo"
    assert downloads.resolve_item("org/other-model").folder_name == "other-model"
    with pytest.raises(StudioError, match="Unknown model"):
        downloads.resolve_item("nothing-like-this")
    with pytest.raises(StudioError, match="not a Hugging Face model id"):
        downloads.resolve_item("../../etc/passwd")


def test_progress_text():
    p = DownloadProgress("a/b", "downloading", bytes_done=1536 * 1024 ** 2,
                         bytes_total=2 * 1024 ** 3, speed=12.5 * 1024 ** 2, eta_s=125)
    assert p.text() == "1.5 GB of 2.0 GB · 12.5 MB/s · 2 min 05 s left"
    assert DownloadProgress("a/b", "connecting").text() == "Connecting…"
    assert downloads.format_eta(3 * 3600 + 120) == "3 h 02 min"
