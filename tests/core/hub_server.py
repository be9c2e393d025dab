"""A tiny Hugging Face hub on 127.0.0.1 for download tests (stdlib http.server, one thread).

It speaks the two routes Studio's downloader uses, the way huggingface.co does:
- GET /api/models/<org>/<name>/revision/<rev>?blobs=true → {id, sha, siblings: [{rfilename,
  size, blobId, lfs: {size, sha256, pointerSize}}]}
- GET /<org>/<name>/resolve/<rev>/<path> → the bytes (Range: bytes=N- → 206), LFS files
  through a 302 to /cdn/..., like the hub's redirect to its CDN.
Switches make it misbehave on purpose: slow chunks, a dropped connection, a corrupted
file, Range ignored, a gated repo. It stops itself after `lifetime` seconds at most.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self, repos: dict[str, dict[str, bytes]], *, lifetime: float = 120.0) -> None:
        self.repos = repos
        self.sha = {repo: hashlib.sha1(repo.encode()).hexdigest() for repo in repos}
        self.delay = 0.0  # seconds slept per chunk sent
        self.chunk = 16 * 1024
        self.corrupt: set[str] = set()  # file paths served with one byte flipped
        self.drop_after: dict[str, int] = {}  # path → bytes sent before hanging up (once)
        self.ignore_range = False
        self.gated: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (url path, Range header)
        self.auth: list[str | None] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(lifetime, self._server.shutdown)
        self._watchdog.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def ranges_for(self, path: str) -> list[str]:
        """The Range headers of the requests for one file (resolve and CDN)."""
        return [r for p, r in self.requests if p.endswith("/" + path)]

    # ------------------------------------------------------------------ routes
    def info(self, repo: str) -> dict:
        siblings = []
        for name, data in sorted(self.repos[repo].items()):
            sib = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if name.endswith((".safetensors", ".bin", ".gguf")):
                sib["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                              "pointerSize": 134}
            siblings.append(sib)
        return {"id": repo, "sha": self.sha[repo], "siblings": siblings, "private": False}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def _json(self, code: int, data: dict) -> None:
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((path, self.headers.get("Range", "")))
                hub.auth.append(self.headers.get("Authorization"))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                    repo = "/".join(parts[2:4])
                    if repo in hub.gated:
                        return self._json(401, {"error": "Access to this model is restricted"})
                    if repo not in hub.repos:
                        return self._json(404, {"error": "Repository not found"})
                    return self._json(200, hub.info(repo))
                cdn = parts[0] == "cdn"
                if cdn:
                    parts = parts[1:]
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, file = "/".join(parts[:2]), "/".join(parts[4:])
                    data = hub.repos.get(repo, {}).get(file)
                    if data is None or parts[3] not in (hub.sha.get(repo), "main"):
                        return self._json(404, {"error": "Entry not found"})
                    if not cdn and file.endswith(".safetensors"):
                        self.send_response(302)
                        self.send_header("Location", f"/cdn{path}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self._send_file(file, data)
                return self._json(404, {"error": "Not found"})

            def _send_file(self, file: str, data: bytes) -> None:
                if file in hub.corrupt:
                    middle = len(data) // 2
                    data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
                start = 0
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes=") and not hub.ignore_range:
                    start = int(wanted[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                limit = hub.drop_after.pop(file, None)
                sent = 0
                for i in range(0, len(body), hub.chunk):
                    piece = body[i:i + hub.chunk]
                    if limit is not None and sent + len(piece) > limit:
                        self.wfile.write(piece[: limit - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(piece)
                        self.wfile.flush()
                    except OSError:  # the client went away (a cancelled download)
                        return
                    sent += len(piece)
                    if hub.delay:
                        time.sleep(hub.delay)

        return Handler
