"""Getting models: the curated catalog and a resumable, verified download from the hub.

Plain Python (stdlib HTTP), so the GUI, the CLI and the tests share it:
- the hub's metadata (file list, sizes, sha256 of LFS files, git blob ids of the
  others) comes from `{endpoint}/api/models/{repo}/revision/{rev}?blobs=true`,
  parsed with huggingface_hub's own `ModelInfo`; file URLs come from `hf_hub_url`;
- bytes are fetched with urllib into `<file>.part` files in a hidden staging
  folder beside the target, resumed with an HTTP Range request, checked against
  the sizes and hashes the hub gave, and the staging folder is renamed into place
  only when every file is complete, so a half download never looks like a model;
- `endpoint` can point at any server that speaks the hub's two routes (a mirror,
  a test server on 127.0.0.1).

The network is reached only from `download()` (the user asked for it). When
Studio is told to stay offline (`STUDIO_OFFLINE=1`, or `HF_HUB_OFFLINE=1` set by
the user rather than by Studio's own start-up), or the host cannot be reached
within a few seconds, it fails at once with one sentence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fnmatch
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.catalog import format_size
from studio.core.errors import Cancelled, StudioError
from studio.core.settings import Settings

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DEFAULT_ENDPOINT = "https://huggingface.co"
CATALOG_FILE = "catalog.json"
STAGING_DIR = ".downloads"
RECORD_FILE = ".studio-download.json"
CHUNK = 1024 * 1024
PROBE_TIMEOUT = 4.0  # s to resolve and connect before calling the machine offline
READ_TIMEOUT = 30.0  # s without a byte before a transfer counts as stalled
PROGRESS_INTERVAL = 0.1  # s between progress callbacks
#: marker set by Studio's entry point when it (not the user) turned HF_HUB_OFFLINE on
DEFAULT_OFFLINE_MARKER = "STUDIO_HUB_OFFLINE_DEFAULT"

#: what is never fetched unless a catalog item asks for it: pickles, other frameworks, media
DEFAULT_EXCLUDE = (
    "*.bin", "*.ckpt", "*.pt", "*.pth", "*.pkl", "*.msgpack", "*.h5", "*.onnx", "*.onnx_data",
    "*.pb", "*.ot", "*.tflite", "*.mlmodel", "*.mlpackage/*", "onnx/*", "openvino/*",
    "coreml/*", "flax_model*", "tf_model*", ".gitattributes", "*.png", "*.jpg", "*.jpeg",
    "*.gif", "*.webp", "*.mp4", "*.wav", "*.mp3",
)
_VARIANT_TAGS = ("fp16", "fp32", "bf16", "non_ema", "ema", "ema_only", "fp8", "int8")
_TAGS = "|".join(_VARIANT_TAGS)
_VARIANT_WEIGHT = re.compile(
    r"^(?P<base>.+?)\.(?P<tag>" + _TAGS + r")(?P<rest>(-\d+-of-\d+)?\.safetensors)$"
)
_VARIANT_INDEX = re.compile(r"^(?P<base>.+\.safetensors\.index)\.(?P<tag>" + _TAGS + r")\.json$")

_active: set[str] = set()  # staging folders being written in this process
_active_lock = threading.Lock()


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class CatalogItem:
    """A model Studio suggests, with what to fetch from its repo and under which licence."""

    id: str  # short id: "sd-turbo"
    name: str
    repo: str  # "stabilityai/sd-turbo"
    modality: str
    family: str
    size_bytes: int  # about how much will be downloaded (shown before asking the hub)
    licence: str
    licence_url: str = ""
    description: str = ""
    revision: str = "main"
    include: tuple[str, ...] = ()  # fnmatch patterns; empty = every file
    exclude: tuple[str, ...] = ()  # on top of DEFAULT_EXCLUDE
    variant: str = ""  # e.g. "fp16": take model.fp16.safetensors, store it as model.safetensors
    folder: str = ""  # folder name under the download root (default: id)
    role: str = "generate"

    @property
    def folder_name(self) -> str:
        return self.folder or self.id

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogItem:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("include", "exclude"):
            kwargs[key] = tuple(kwargs.get(key) or ())
        item = cls(**kwargs)
        if not (item.id and item.repo and item.name and item.modality):
            raise ValueError("an item needs id, name, repo and modality")
        return item

    @classmethod
    def for_repo(cls, repo: str, revision: str = "main") -> CatalogItem:
        """An ad-hoc item for any hub repo (`studio models download org/name`)."""
        check_repo_id(repo)
        name = repo.rsplit("/", 1)[-1]
        return cls(id=name, name=repo, repo=repo, modality="", family="", size_bytes=0,
                   licence="see the model card", revision=revision)


def catalog_path() -> Path:
    return paths.bundled_models_dir() / CATALOG_FILE


def load_catalog(path: Path | None = None) -> list[CatalogItem]:
    """The curated catalog (models/catalog.json); a bad item is skipped with a warning."""
    path = path or catalog_path()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StudioError(f"The model catalog {path} cannot be read: {exc}.") from None
    items = data.get("models", []) if isinstance(data, dict) else []
    out: list[CatalogItem] = []
    for raw in items:
        try:
            out.append(CatalogItem.from_dict(raw))
        except (TypeError, ValueError) as exc:
            log.warning("catalog: skipping an item of %s (%s)", path, exc)
    return out


def find_item(item_id: str, items: Iterable[CatalogItem] | None = None) -> CatalogItem | None:
    for item in load_catalog() if items is None else items:
        if item.id == item_id or item.repo == item_id:
            return item
    return None


def resolve_item(name: str) -> CatalogItem:
    """A catalog id ("sd-turbo"), or any hub repo id ("org/name")."""
    item = find_item(name)
    if item is not None:
        return item
    if "/" in name:
        return CatalogItem.for_repo(name)
    known = ", ".join(i.id for i in load_catalog()) or "none"
    raise StudioError(f"Unknown model {name!r}: use a catalog id ({known}) or a hub id org/name.")


_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def check_repo_id(repo: str) -> None:
    if not _REPO_RE.match(repo) or ".." in repo or "--" in repo:
        raise StudioError(f"{repo!r} is not a Hugging Face model id (org/name).")


def download_root(settings: Settings) -> Path:
    """Where downloads go: the first model folder in settings, else the project's models/."""
    if settings.model_dirs:
        return Path(settings.model_dirs[0]).expanduser()
    return paths.bundled_models_dir()


def installed_path(item: CatalogItem, settings: Settings) -> Path | None:
    """The finished folder of a catalog item in any model folder, if it is there."""
    from studio.core.catalog import model_dirs

    for root in [download_root(settings), *model_dirs(settings)]:
        folder = root / item.folder_name
        if (folder / RECORD_FILE).is_file() or (
            folder.is_dir() and ((folder / "model_index.json").is_file()
                                 or (folder / "config.json").is_file())
        ):
            return folder
    return None


def partial_bytes(item: CatalogItem, settings: Settings) -> int:
    """Bytes already fetched by an interrupted download (resumed by the next one)."""
    staging = download_root(settings) / STAGING_DIR / item.folder_name
    total = 0
    for root, _dirs, files in os.walk(staging):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- offline


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline_reason() -> str | None:
    """Why Studio must not go online, or None.

    HF_HUB_OFFLINE=1 counts only when the user set it: Studio's entry point sets
    it itself (marking that with STUDIO_HUB_OFFLINE_DEFAULT) so that libraries
    never reach the network while loading, yet a download the user asks for works.
    """
    if _truthy(os.environ.get("STUDIO_OFFLINE")):
        return "Studio is set to stay offline (STUDIO_OFFLINE=1)"
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if _truthy(os.environ.get(var)) and not _truthy(os.environ.get(DEFAULT_OFFLINE_MARKER)):
            return f"offline mode is on ({var}=1)"
    return None


def _proxied(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    scheme = urllib.parse.urlsplit(url).scheme
    return bool(urllib.request.getproxies().get(scheme)) and not urllib.request.proxy_bypass(host)


def check_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Resolve and connect to the endpoint's host within `timeout` seconds, or raise.

    DNS runs on a helper thread so a resolver that hangs (no network) cannot hold
    the caller for long; behind a proxy the proxy decides, so nothing is probed.
    """
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if _proxied(endpoint):
        return
    found: dict[str, Any] = {}

    def resolve() -> None:
        try:
            found["addrs"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    deadline = time.monotonic() + timeout
    worker = threading.Thread(target=resolve, name="studio-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    for family, kind, proto, _name, address in found.get("addrs", []):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return
        except OSError:
            continue
    raise OSError(f"{host} cannot be reached")


def _offline_error(name: str, host: str) -> StudioError:
    return StudioError(
        f"Cannot download {name}: {host} cannot be reached (this computer seems to be offline)."
    )


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repo
    dest: str  # where it is stored in the model folder (variants lose their tag)
    url: str
    size: int | None = None
    sha256: str | None = None  # LFS files
    blob_id: str | None = None  # git blob sha1 (small files)


@dataclass
class Manifest:
    repo: str
    revision: str  # the commit the files come from
    files: list[RemoteFile] = field(default_factory=list)
    skipped_components: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _token() -> str | None:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    with contextlib.suppress(OSError):
        return (home / "token").read_text(encoding="utf-8").strip() or None
    return None


def _open(url: str, endpoint: str, headers: dict[str, str] | None = None,
          timeout: float = READ_TIMEOUT):
    req = urllib.request.Request(url, headers={"User-Agent": "studio", **(headers or {})})
    token = _token()
    if token and urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(endpoint).netloc:
        req.add_unredirected_header("Authorization", f"Bearer {token}")  # not to the CDN
    return urllib.request.urlopen(req, timeout=timeout)


def _http_error(name: str, exc: urllib.error.HTTPError) -> StudioError:
    if exc.code in (401, 403):
        return StudioError(
            f"Cannot download {name}: the hub asks for a login (a gated model); accept its "
            "licence on huggingface.co and set HF_TOKEN."
        )
    if exc.code == 404:
        return StudioError(f"Cannot download {name}: the hub has no such model or file (404).")
    return StudioError(f"Cannot download {name}: the server answered {exc.code} {exc.reason}.")


def variant_dest(name: str, variant: str) -> str | None:
    """The plain name for a file of `variant` ("unet/x.fp16.safetensors" → "unet/x.safetensors"),
    or None when the file is not of that variant."""
    folder, _, base = name.rpartition("/")
    for pattern in (_VARIANT_WEIGHT, _VARIANT_INDEX):
        m = pattern.match(base)
        if m and m.group("tag") == variant:
            plain = m.group("base") + (m.group("rest") if "rest" in m.groupdict() else ".json")
            return f"{folder}/{plain}" if folder else plain
    return None


def _variant_tag(name: str) -> str:
    base = name.rpartition("/")[2]
    for pattern in (_VARIANT_WEIGHT, _VARIANT_INDEX):
        m = pattern.match(base)
        if m:
            return m.group("tag")
    return ""


def _is_weight(name: str) -> bool:
    return name.endswith(".safetensors") or ".safetensors.index." in name


def select_files(names: Iterable[str], include: Iterable[str] = (), exclude: Iterable[str] = (),
                 variant: str = "") -> dict[str, str]:
    """{repo path: local path} of the files to fetch.

    include/exclude are fnmatch patterns (DEFAULT_EXCLUDE always applies); per
    folder, weights of `variant` are taken (and stored under the plain name) when
    the folder has them, else the plain weights; other variants are left out.
    """
    include, exclude = tuple(include), tuple(exclude) + DEFAULT_EXCLUDE
    kept = [n for n in names
            if (not include or any(fnmatch.fnmatch(n, p) for p in include))
            and not any(fnmatch.fnmatch(n, p) for p in exclude)]
    by_folder: dict[str, list[str]] = {}
    for n in kept:
        by_folder.setdefault(n.rpartition("/")[0], []).append(n)
    out: dict[str, str] = {}
    for files in by_folder.values():
        weights = [n for n in files if _is_weight(n)]
        wanted = [n for n in weights if variant and _variant_tag(n) == variant]
        if not wanted:
            wanted = [n for n in weights if not _variant_tag(n)] or weights
        for n in files:
            if not _is_weight(n):
                out[n] = n
        for n in wanted:
            out[n] = (variant_dest(n, variant) if variant else None) or n
    return dict(sorted(out.items()))


def fetch_manifest(item: CatalogItem, endpoint: str | None = None,
                   timeout: float = READ_TIMEOUT) -> Manifest:
    """Ask the hub which files `item` needs, with their sizes and hashes (needs the network)."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.hf_api import ModelInfo

    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    revision = urllib.parse.quote(item.revision, safe="")
    url = f"{endpoint}/api/models/{item.repo}/revision/{revision}?blobs=true"
    try:
        with _open(url, endpoint, timeout=timeout) as resp:
            info = ModelInfo(**json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise _http_error(item.repo, exc) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise _offline_error(item.name, urllib.parse.urlsplit(endpoint).hostname or endpoint) \
            from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise StudioError(f"Cannot download {item.name}: the hub's answer is not readable.") \
            from exc
    siblings = {s.rfilename: s for s in info.siblings or []}
    chosen = select_files(siblings, item.include, item.exclude, item.variant)
    if not any(dest.endswith(".safetensors") for dest in chosen.values()):
        pickles = [n for n in siblings if n.endswith((".bin", ".ckpt", ".pt", ".pth"))]
        why = " (it only has pickled weights)" if pickles else ""
        raise StudioError(f"Cannot download {item.name}: no safetensors weights to fetch{why}.")
    sha = info.sha or item.revision
    files = []
    for path, dest in chosen.items():
        s = siblings[path]
        files.append(RemoteFile(
            path=path, dest=dest, url=hf_hub_url(item.repo, path, revision=sha, endpoint=endpoint),
            size=s.lfs.size if s.lfs else s.size, sha256=s.lfs.sha256 if s.lfs else None,
            blob_id=None if s.lfs else s.blob_id,
        ))
    manifest = Manifest(item.repo, sha, files)
    index = next((n for n in siblings if n == "model_index.json"), None)
    if index is not None:  # pipeline components the patterns left out (safety checker...)
        folders = {d.split("/", 1)[0] for d in chosen.values() if "/" in d}
        tops = {n.split("/", 1)[0] for n in siblings if "/" in n}
        manifest.skipped_components = sorted(tops - folders)
    return manifest


# --------------------------------------------------------------------------- transfer


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
        resp = _open(remote.url, endpoint, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the server cannot resume from there: start over
            part.unlink()
            meter.add(-offset)
            return _fetch(remote, part, endpoint, meter, cancel, name)
        raise _http_error(name, exc) from None
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
        self.handle = None

    def __enter__(self) -> _FolderLock:
        key = str(self.folder)
        with _active_lock:
            if key in _active:
                raise StudioError(f"{self.name} is already being downloaded.")
            _active.add(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.folder / ".lock", "w")  # held until __exit__
            try:
                import fcntl

                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
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
            raise _offline_error(item.name, host) from None
    try:
        manifest = fetch_manifest(item, endpoint)
        staging = _download_files(item, manifest, dest_root, endpoint, meter, cancel)
        with contextlib.suppress(OSError):
            (staging / ".lock").unlink()
        os.replace(staging, final)
    except StudioError:
        raise
    except urllib.error.HTTPError as exc:
        raise _http_error(item.name, exc) from None
    except urllib.error.URLError as exc:
        raise _offline_error(item.name, host) from exc
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
