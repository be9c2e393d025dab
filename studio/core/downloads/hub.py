"""The hub client: may Studio go online, can the host be reached, which files to fetch.

Plain Python (stdlib HTTP): the hub's metadata (file list, sizes, sha256 of LFS
files, git blob ids of the others) comes from
`{endpoint}/api/models/{repo}/revision/{rev}?blobs=true`, parsed with
huggingface_hub's own `ModelInfo`; file URLs come from `hf_hub_url`. `endpoint`
can point at any server that speaks the hub's two routes (a mirror, a test
server on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

from studio.core.downloads.catalog import CatalogItem
from studio.core.errors import StudioError

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT = 4.0  # s to resolve and connect before calling the machine offline
READ_TIMEOUT = 30.0  # s without a byte before a transfer counts as stalled
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


def endpoint_url(endpoint: str | None = None) -> str:
    """The hub to talk to: the argument, else HF_ENDPOINT, else huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


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


def offline_error(name: str, host: str) -> StudioError:
    """The one sentence for a host that cannot be reached."""
    return StudioError(
        f"Cannot download {name}: {host} cannot be reached (this computer seems to be offline)."
    )


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


def open_url(url: str, endpoint: str, headers: dict[str, str] | None = None,
             timeout: float = READ_TIMEOUT) -> HTTPResponse:
    """GET url; the user's hub token goes only to the endpoint's own host, never to a CDN."""
    req = urllib.request.Request(url, headers={"User-Agent": "studio", **(headers or {})})
    token = _token()
    if token and urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(endpoint).netloc:
        req.add_unredirected_header("Authorization", f"Bearer {token}")  # not to the CDN
    return urllib.request.urlopen(req, timeout=timeout)


def http_error(name: str, exc: urllib.error.HTTPError) -> StudioError:
    """One sentence for an HTTP error answer (a gated model, a missing repo, anything else)."""
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

    endpoint = endpoint_url(endpoint)
    revision = urllib.parse.quote(item.revision, safe="")
    url = f"{endpoint}/api/models/{item.repo}/revision/{revision}?blobs=true"
    try:
        with open_url(url, endpoint, timeout=timeout) as resp:
            info = ModelInfo(**json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise http_error(item.repo, exc) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise offline_error(item.name, urllib.parse.urlsplit(endpoint).hostname or endpoint) \
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

