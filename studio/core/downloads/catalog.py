"""The curated catalog of suggested downloads (models/catalog.json) and where items land.

Plain data and the file system only: no network here. An item names a hub repo,
which files of it to take, its licence and the folder it is stored in; the
helpers answer "is it installed?" and "how much of it is already fetched?".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.settings import Settings

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.json"
STAGING_DIR = ".downloads"  # under a download root: unfinished folders
RECORD_FILE = ".studio-download.json"  # in a finished folder: what was fetched, from where


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

