"""Installing a model: a resumable, verified download into a folder that appears whole.

Bytes are fetched with urllib into `<file>.part` files in a hidden staging folder
beside the target, resumed with an HTTP Range request, checked against the sizes
and hashes the hub gave, and the staging folder is renamed into place only when
every file is complete, so a half download never looks like a model.

The network is reached only from `download()` (the user asked for it). When
Studio is told to stay offline (`STUDIO_OFFLINE=1`, or `HF_HUB_OFFLINE=1` set by
the user rather than by Studio's own start-up), or the host cannot be reached
within a few seconds, it fails at once with one sentence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from studio.core import paths
from studio.core.catalog import format_size
from studio.core.downloads.catalog import (
    RECORD_FILE,
    STAGING_DIR,
    CatalogItem,
    resolve_item,
)
from studio.core.downloads.hub import (
    Manifest,
    RemoteFile,
    check_reachable,
    endpoint_url,
    fetch_manifest,
    http_error,
    offline_error,
    offline_reason,
    open_url,
    variant_dest,
)
from studio.core.errors import Cancelled, StudioError

CHUNK = 1024 * 1024  # bytes read (and hashed) at a time; tests make it small
PROGRESS_INTERVAL = 0.1  # s between progress callbacks

_active: set[str] = set()  # staging folders being written in this process
_active_lock = threading.Lock()


@dataclass
class DownloadProgress:
    """One snapshot of a download, for progress bars (plain data, crosses threads)."""

    repo: str
    state: str  # "connecting" | "downloading" | "verifying" | "done"
    file: str = ""
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    speed: float = 0.0  # bytes per second over the last few seconds
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 0.0

    def text(self) -> str:
        """'1.2 GB of 2.6 GB · 12.3 MB/s · 2 min left'."""
        if self.state == "connecting":
            return "Connecting…"
        if self.state == "done":
            return f"Done: {format_size(self.bytes_total)}"
        parts = [f"{format_size(self.bytes_done)} of {format_size(self.bytes_total)}"]
        if self.state == "verifying":
            parts.append(f"checking {self.file}")
        elif self.speed > 0:
            parts.append(f"{format_size(self.speed)}/s")
            if self.eta_s is not None:
                parts.append(f"{format_eta(self.eta_s)} left")
        return " · ".join(parts)


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


class _Meter:
    """Bytes done, speed over a sliding window, ETA; calls back at most every 0.1 s."""

    def __init__(self, progress: DownloadProgress, callback: Callable[[DownloadProgress], None]
                 | None) -> None:
        self.p = progress
        self.callback = callback
        self.window: deque[tuple[float, int]] = deque()
        self.last_emit = 0.0

    def add(self, n: int) -> None:
        self.p.bytes_done += n
        now = time.monotonic()
        self.window.append((now, self.p.bytes_done))
        while len(self.window) > 2 and now - self.window[0][0] > 3.0:
            self.window.popleft()
        t0, b0 = self.window[0]
        if now - t0 > 0.05:
            self.p.speed = max(0.0, (self.p.bytes_done - b0) / (now - t0))
            left = max(0, self.p.bytes_total - self.p.bytes_done)
            self.p.eta_s = left / self.p.speed if self.p.speed > 0 else None
        if now - self.last_emit >= PROGRESS_INTERVAL:
            self.emit()

    def emit(self, state: str | None = None) -> None:
        if state is not None:
            self.p.state = state
        if self.callback is not None:
            self.last_emit = time.monotonic()
            self.callback(dataclasses.replace(self.p))


def _hash_file(path: Path, algo: str, size: int | None, cancel: threading.Event | None) -> str:
    h = hashlib.new(algo)
    if algo == "sha1":  # a git blob id: sha1 over "blob <size>\0" + content
        h.update(b"blob %d\0" % (size if size is not None else path.stat().st_size))
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            h.update(chunk)
    return h.hexdigest()


def verify_file(
    path: Path, remote: RemoteFile, cancel: threading.Event | None = None
) -> str | None:
    """None when path matches what the hub said (size, sha256 or git blob id), else why not."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"it has {size:,} bytes, not {remote.size:,}"
    if remote.sha256 and _hash_file(path, "sha256", size, cancel) != remote.sha256.lower():
        return "its sha256 does not match"
    if remote.blob_id and _hash_file(path, "sha1", size, cancel) != remote.blob_id.lower():
        return "its checksum does not match"
    return None


def _fetch(remote: RemoteFile, part: Path, endpoint: str, meter: _Meter,
           cancel: threading.Event | None, name: str) -> None:
    """Fetch remote into part, appending to what is already there (HTTP Range)."""
    offset = part.stat().st_size if part.exists() else 0
    if remote.size is not None and offset > remote.size:
        part.unlink()
        meter.add(-offset)
        offset = 0
    if remote.size is not None and offset == remote.size:
        return
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = open_url(remote.url, endpoint, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the server cannot resume from there: start over
            part.unlink()
            meter.add(-offset)
            return _fetch(remote, part, endpoint, meter, cancel, name)
        raise http_error(name, exc) from None
    with resp:
        mode = "ab"
        if offset and resp.status != 206:  # the server sent the whole file
            meter.add(-offset)
            mode = "wb"
        elif offset:
            content_range = resp.headers.get("Content-Range", "")
            m = re.match(r"bytes (\d+)-", content_range)
            if not m or int(m.group(1)) != offset:
                raise StudioError(f"Cannot resume {remote.path}: the server sent the wrong range.")
        with open(part, mode) as f:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Download cancelled; it will resume where it stopped.")
                try:
                    chunk = resp.read(CHUNK)
                except TimeoutError:
                    raise StudioError(f"The download of {name} stalled; try again to resume it.") \
                        from None
                if not chunk:
                    break
                f.write(chunk)
                meter.add(len(chunk))
    if remote.size is not None and part.stat().st_size < remote.size:  # closed early: keep it
        host = urllib.parse.urlsplit(remote.url).hostname or "the server"
        raise StudioError(
            f"The connection to {host} dropped while downloading {name}; try again to resume it."
        )
    return None


class _FolderLock:
    """One writer per staging folder: in this process (a set) and across processes (flock)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.handle: IO[str] | None = None

    def __enter__(self) -> _FolderLock:
        key = str(self.folder)
        with _active_lock:
            if key in _active:
                raise StudioError(f"{self.name} is already being downloaded.")
            _active.add(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = self.handle = open(self.folder / ".lock", "w")  # held until __exit__
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # pragma: no cover - Windows: the in-process guard remains
                pass
            except OSError:
                raise StudioError(f"{self.name} is already being downloaded.") from None
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        with _active_lock:
            _active.discard(str(self.folder))

    def __exit__(self, *_exc) -> None:
        with contextlib.suppress(OSError):
            (self.folder / ".lock").unlink()
        self._release()


def _finish_folder(staging: Path, manifest: Manifest, item: CatalogItem) -> None:
    """Make the folder self-consistent: variant indexes point at the renamed shards and
    a model_index.json does not name components that were left out."""
    for remote in manifest.files:
        if remote.dest != remote.path and remote.dest.endswith(".index.json"):
            index_path = staging / remote.dest
            data = json.loads(index_path.read_text(encoding="utf-8"))
            folder = remote.dest.rpartition("/")[0]
            weight_map = data.get("weight_map", {})
            for key, shard in weight_map.items():
                renamed = variant_dest(f"{folder}/{shard}" if folder else shard, item.variant)
                if renamed:
                    weight_map[key] = renamed.rpartition("/")[2]
            index_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    index = staging / "model_index.json"
    if index.is_file() and manifest.skipped_components:
        data = json.loads(index.read_text(encoding="utf-8"))
        for comp in manifest.skipped_components:
            if isinstance(data.get(comp), list):
                data[comp] = [None, None]
        if "requires_safety_checker" in data and "safety_checker" in manifest.skipped_components:
            data["requires_safety_checker"] = False
        index.write_text(json.dumps(data, indent=2), encoding="utf-8")


def download(
    item: CatalogItem | str,
    dest_root: Path,
    *,
    endpoint: str | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    probe: bool = True,
) -> Path:
    """Download a catalog item (or hub repo id) into `dest_root/<folder>` and return it.

    Resumable: files are fetched into `dest_root/.downloads/<folder>/` as `.part`
    files, verified, and the folder is renamed into place when all are complete.
    Raises StudioError (one sentence) when offline, on HTTP errors and on a corrupt
    file (which is deleted), Cancelled when `cancel` is set (what was fetched stays
    for the next try).
    """
    if isinstance(item, str):
        item = resolve_item(item)
    endpoint = endpoint_url(endpoint)
    host = urllib.parse.urlsplit(endpoint).hostname or endpoint
    reason = offline_reason()
    if reason:
        raise StudioError(f"Cannot download {item.name}: {reason}.")
    dest_root = Path(dest_root).expanduser()
    final = dest_root / item.folder_name
    progress = DownloadProgress(item.repo, "connecting")
    meter = _Meter(progress, on_progress)
    if (final / RECORD_FILE).is_file():
        meter.emit("done")
        return final
    if final.exists():
        raise StudioError(
            f"Cannot download {item.name}: {final} already exists; move it away to download again."
        )
    meter.emit("connecting")
    if probe:
        try:
            check_reachable(endpoint)
        except OSError:
            raise offline_error(item.name, host) from None
    try:
        manifest = fetch_manifest(item, endpoint)
        staging = _download_files(item, manifest, dest_root, endpoint, meter, cancel)
        with contextlib.suppress(OSError):
            (staging / ".lock").unlink()
        os.replace(staging, final)
    except StudioError:
        raise
    except urllib.error.HTTPError as exc:
        raise http_error(item.name, exc) from None
    except urllib.error.URLError as exc:
        raise offline_error(item.name, host) from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        raise StudioError(
            f"The connection to {host} dropped while downloading {item.name}; "
            "try again to resume it."
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StudioError(
                f"Not enough disk space in {dest_root} to download {item.name}."
            ) from None
        raise StudioError(f"Cannot download {item.name}: {exc.strerror or exc}.") from exc
    with contextlib.suppress(OSError):
        (dest_root / STAGING_DIR).rmdir()  # only when no other download is pending
    progress.bytes_done = progress.bytes_total
    progress.eta_s = 0.0
    meter.emit("done")
    return final


def _download_files(item: CatalogItem, manifest: Manifest, dest_root: Path, endpoint: str,
                    meter: _Meter, cancel: threading.Event | None) -> Path:
    """Fetch and verify every file of manifest into the staging folder; return it."""
    progress = meter.p
    final = dest_root / item.folder_name
    staging = dest_root / STAGING_DIR / item.folder_name
    with _FolderLock(staging, item.name):
        record = staging / RECORD_FILE
        old = {}
        with contextlib.suppress(OSError, ValueError):
            old = json.loads(record.read_text(encoding="utf-8"))
        if old and old.get("revision") != manifest.revision:  # the repo changed: start over
            for child in staging.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        record_data = {
            "repo": item.repo, "revision": manifest.revision, "catalog_id": item.id,
            "licence": item.licence, "licence_url": item.licence_url, "variant": item.variant,
            "complete": False,
            "files": [dataclasses.asdict(f) | {"url": None} for f in manifest.files],
        }
        record.write_text(json.dumps(record_data, indent=2), encoding="utf-8")
        progress.files_total = len(manifest.files)
        progress.bytes_total = manifest.total_bytes
        for remote in manifest.files:  # count what earlier tries already fetched
            target = staging / remote.dest
            part = target.with_name(target.name + ".part")
            for p in (target, part):
                if p.is_file():
                    progress.bytes_done += min(p.stat().st_size, remote.size or p.stat().st_size)
        meter.window.clear()
        meter.emit("downloading")
        for remote in manifest.files:
            progress.file = remote.dest
            target = staging / remote.dest
            part = target.with_name(target.name + ".part")
            if target.is_file() and (remote.size is None or target.stat().st_size == remote.size):
                progress.files_done += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _fetch(remote, part, endpoint, meter, cancel, item.name)
            meter.emit("verifying")
            problem = verify_file(part, remote, cancel)
            if problem:
                size = part.stat().st_size
                part.unlink()
                meter.add(-size)
                raise StudioError(
                    f"{remote.path} from {item.repo} is corrupt ({problem}); it was deleted, "
                    "so try the download again."
                )
            os.replace(part, target)
            progress.files_done += 1
            meter.emit("downloading")
        _finish_folder(staging, manifest, item)
        record_data["complete"] = True
        record.write_text(json.dumps(record_data, indent=2), encoding="utf-8")
        if paths.REPO_ROOT in final.resolve().parents:  # never commit gigabytes by accident
            (staging / ".gitignore").write_text("*\n", encoding="utf-8")
    return staging
