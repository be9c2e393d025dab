"""Recipes: what made a file, read back from it (ours, A1111, ComfyUI, InvokeAI, Fooocus...).

`read_recipe(path)` picks the reader for the file's suffix; every reader returns a
`Recipe` or raises RecipeError with one sentence (no such file, not an image, no recipe
found, corrupt). A recipe's `request` is our request dict, ready for Request.from_dict.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import RecipeError, RequestError
from studio.core.requests import Request

if TYPE_CHECKING:
    from studio.core.catalog import ModelEntry

log = logging.getLogger(__name__)

# suffix → module with `read_recipe(path) -> Recipe`
READERS: dict[str, str] = {
    ".png": "studio.core.formats.png",
    ".jpg": "studio.core.formats.png",
    ".jpeg": "studio.core.formats.png",
    ".webp": "studio.core.formats.png",
    ".md": "studio.core.formats.text",
    ".txt": "studio.core.formats.text",
    ".wav": "studio.core.formats.audio",
    ".flac": "studio.core.formats.audio",
    ".gif": "studio.core.formats.video",
    ".mp4": "studio.core.formats.video",
}


@dataclass
class Recipe:
    """The recipe found in a file.

    source: who wrote it ("studio", "a1111", "comfyui", "invokeai", "fooocus", ...)
    modality: "image" | "text" | "music"
    request: our request dict (with "kind"), as complete as the file allows
    parameters: the A1111 infotext, when the file has one (what "copy recipe" copies)
    raw: everything read from the file, for the curious (text chunks, sizes...)
    notes: sentences about what could not be carried over exactly
    """

    source: str
    modality: str
    request: dict[str, Any] = field(default_factory=dict)
    parameters: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "modality": self.modality,
            "request": dict(self.request),
            "parameters": self.parameters,
            "notes": list(self.notes),
            "raw": self.raw,
        }

    def to_request(self, *, validate: bool = False) -> Request:
        """The request to replay (or to fill a form with); RecipeError when there is none.

        With validate=True the request must also be ready to run as is.
        """
        if not self.request:
            raise RecipeError(f"This {self.source} recipe holds no settings to reuse.")
        data = {k: v for k, v in self.request.items() if k != "notes"}
        data.setdefault("kind", self.modality)
        try:
            request = Request.from_dict(data)
            if validate:
                request.validate()
        except RequestError as exc:
            raise RecipeError(f"This recipe cannot be used: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"This recipe cannot be used: {exc}.") from exc
        return request


def read_recipe(path: str | Path) -> Recipe:
    """Read the recipe stored in an output file (PNG/JPEG/WebP, Markdown/text, WAV/FLAC,
    GIF/MP4 walks)."""
    path = Path(path)
    if not path.exists():
        raise RecipeError(f"No such file: {path}.")
    if path.is_dir():
        raise RecipeError(f"{path} is a folder, not a file.")
    if not path.is_file():  # /dev/zero, a pipe, a socket: reading it could never end
        raise RecipeError(f"{path} is not a regular file (a device, pipe or socket).")
    module_name = READERS.get(path.suffix.lower())
    if module_name is None:
        known = ", ".join(sorted(READERS))
        raise RecipeError(f"{path.name} is not a kind of file that holds recipes ({known}).")
    try:
        module = importlib.import_module(module_name)
        reader = module.read_recipe
    except (ImportError, AttributeError):
        raise RecipeError(
            f"Reading recipes from {path.suffix.lower()} files is not available."
        ) from None
    try:
        return reader(path)
    except RecipeError:
        raise
    except OSError as exc:
        raise RecipeError(f"Could not read {path.name}: {exc.strerror or exc}.") from exc
    except Exception as exc:  # a malformed file must never reach the user as a traceback
        log.warning("reading the recipe of %s failed", path, exc_info=True)
        raise RecipeError(f"{path.name} could not be read; it may be corrupt "
                          f"({type(exc).__name__}).") from exc


def match_model(name: str, entries: Iterable[ModelEntry]) -> str | None:
    """The catalog id for a model named in a recipe (an id, a path, a file name or stem).

    Other apps record "v1-5-pruned-emaonly" or "sd15.safetensors" rather than our path;
    this finds the installed model it most likely means, or None.
    """
    wanted = (name or "").strip()
    if not wanted:
        return None
    entries = list(entries)
    low = wanted.lower()
    stem = Path(wanted).stem.lower() if not wanted.startswith("builtin:") else low
    for test in (
        lambda e: e.id == wanted,
        lambda e: Path(e.id).name.lower() == Path(wanted).name.lower(),
        lambda e: e.name.lower() == low,
        lambda e: Path(e.id).stem.lower() == stem,
    ):
        for entry in entries:
            if test(entry):
                return entry.id
    return None
