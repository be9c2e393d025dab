"""Getting models: the curated catalog and a resumable, verified download from the hub.

Three modules, one job each; everything callers use is re-exported here, so
`from studio.core import downloads; downloads.download(...)` keeps working:

- `catalog`: the suggested downloads (models/catalog.json), where they land, what
  is installed or half fetched (no network);
- `hub`: the hub client: whether Studio may go online, whether the host answers,
  which files of a repo to fetch, with their sizes and hashes;
- `install`: the transfer: `.part` files resumed with HTTP Range, verified, and a
  staging folder renamed into place only when complete, with progress snapshots.

Tunables live in the module that uses them (`install.CHUNK`, `hub.PROBE_TIMEOUT`):
set them there, not on this package.
"""

from __future__ import annotations

from studio.core.downloads.catalog import (
    CATALOG_FILE,
    RECORD_FILE,
    STAGING_DIR,
    CatalogItem,
    catalog_path,
    check_repo_id,
    download_root,
    find_item,
    installed_path,
    load_catalog,
    partial_bytes,
    resolve_item,
)
from studio.core.downloads.hub import (
    DEFAULT_ENDPOINT,
    DEFAULT_EXCLUDE,
    DEFAULT_OFFLINE_MARKER,
    PROBE_TIMEOUT,
    READ_TIMEOUT,
    Manifest,
    RemoteFile,
    check_reachable,
    endpoint_url,
    fetch_manifest,
    offline_reason,
    select_files,
    variant_dest,
)
from studio.core.downloads.install import (
    CHUNK,
    PROGRESS_INTERVAL,
    DownloadProgress,
    download,
    format_eta,
    verify_file,
)

__all__ = [
    "CATALOG_FILE",
    "CHUNK",
    "DEFAULT_ENDPOINT",
    "DEFAULT_EXCLUDE",
    "DEFAULT_OFFLINE_MARKER",
    "PROBE_TIMEOUT",
    "PROGRESS_INTERVAL",
    "READ_TIMEOUT",
    "RECORD_FILE",
    "STAGING_DIR",
    "CatalogItem",
    "DownloadProgress",
    "Manifest",
    "RemoteFile",
    "catalog_path",
    "check_reachable",
    "check_repo_id",
    "download",
    "download_root",
    "endpoint_url",
    "fetch_manifest",
    "find_item",
    "format_eta",
    "installed_path",
    "load_catalog",
    "offline_reason",
    "partial_bytes",
    "resolve_item",
    "select_files",
    "variant_dest",
    "verify_file",
]
