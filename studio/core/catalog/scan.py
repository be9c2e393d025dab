"""Walking for models: folders (models/, the ones chosen in settings) and the HF cache.

os.scandir over thousands of entries, bounded by depth and an entry budget, with
symlink loops cut; each candidate goes to the one classifier (classify.py).

Where models are found, in order:
- the built-in ids (weights that ship inside pip packages);
- the project's `models/` folder and the folders chosen in settings (an
  AUTOMATIC1111 `models/Stable-diffusion` or ComfyUI `models/checkpoints` folder
  works as-is: single `.safetensors`/`.ckpt` files and diffusers folders alike);
- the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`),
  so models other tools downloaded are found too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from studio.core import families, paths
from studio.core.catalog import comfy_paths, fooocus_paths
from studio.core.catalog.builtins import builtin_entries
from studio.core.catalog.classify import (
    EMBEDDING_FOLDERS,
    FOLDER_MARKERS,
    INVOKE_BASE_FAMILIES,
    LORA_FOLDERS,
    classify_embedding,
    classify_file,
    classify_folder,
    few_step,
    has_weights,
    with_family,
)
from studio.core.catalog.entry import ModelEntry
from studio.core.settings import Settings

_SKIP_DIRS = {
    "__pycache__", "node_modules", "site-packages", "venv", "env", "repositories",
    "extensions", "outputs", "output", "input", "custom_nodes", "wandb",
}
DEFAULT_MAX_DEPTH = 6
DEFAULT_MAX_ENTRIES = 200_000  # directory entries looked at per root before giving up

_last_issues: list[str] = []
_BASES = (families.SD1, families.SD2, families.SDXL)


class _Budget:
    """Limits shared by one walk: entries looked at, a cancel flag, seen directories."""

    def __init__(self, max_entries: int, cancel: threading.Event | None) -> None:
        self.left = max_entries
        self.cancel = cancel
        self.seen: set[tuple[int, int]] = set()

    @property
    def stopped(self) -> bool:
        return self.left <= 0 or (self.cancel is not None and self.cancel.is_set())


def scan_folder(
    root: Path,
    max_depth: int = DEFAULT_MAX_DEPTH,
    *,
    source: str = "folder",
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Iterator[ModelEntry]:
    """Models under root, yielded as they are found (depth-first, sorted by name).

    Model folders are not descended into; hidden and tool folders (.git, venv,
    node_modules...) are skipped; a directory reached twice (symlink loop) is cut;
    the walk stops after `max_depth` levels or `max_entries` directory entries.
    """
    root = Path(root).expanduser()
    budget = _Budget(max_entries, cancel)
    location = str(root)
    stack: list[tuple[str, int]] = [(str(root), 0)]
    while stack and not budget.stopped:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in budget.seen:
            continue
        budget.seen.add(key)
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if issues is not None and depth == 0:
                issues.append(f"{folder}: cannot be read ({exc.strerror or exc}).")
            continue
        budget.left -= len(children)
        names = {e.name for e in children}
        if names & set(FOLDER_MARKERS):  # a model folder
            entry = classify_folder(Path(folder), names=names)
            if entry is not None:
                yield replace(entry, location=location, source=source)
                continue
        subdirs: list[str] = []
        for child in children:
            if child.name.startswith(".") or child.name in _SKIP_DIRS:
                continue
            try:
                if child.is_dir():  # follows symlinks; loops are cut by `seen`
                    if depth < max_depth:
                        subdirs.append(child.path)
                    continue
                if not child.is_file():
                    continue  # a dangling link, a socket...
            except OSError:
                continue  # ELOOP on a self-referencing link
            found = classify_file(Path(child.path), issues)
            if found is not None:
                yield replace(found, location=location, source=source)
        stack.extend((d, depth + 1) for d in reversed(subdirs))
    if budget.left <= 0 and issues is not None:
        issues.append(f"{root}: too many files; stopped looking after {max_entries:,} entries.")


# --------------------------------------------------------------------------- HF cache


def hf_cache_dirs() -> list[Path]:
    """Where the Hugging Face hub cache lives (the env variables huggingface_hub reads)."""
    candidates: list[Path] = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]).expanduser())
    if os.environ.get("HF_HOME"):
        candidates.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    candidates.append(base / "huggingface" / "hub")
    out: list[Path] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def repo_id_from_cache_name(name: str) -> str:
    """`models--org--name` → `org/name` (the hub's cache folder naming)."""
    return name.removeprefix("models--").replace("--", "/", 1)


def _cache_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot that refs/main points at, else the newest one."""
    snaps = repo_dir / "snapshots"
    try:
        ref = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        ref = ""
    if ref and (snaps / ref).is_dir():
        return snaps / ref
    try:
        found = [Path(e.path) for e in os.scandir(snaps) if e.is_dir()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def scan_hf_cache(
    cache: Path | None = None,
    *,
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ModelEntry]:
    """Models in a Hugging Face hub cache (`models--org--name/snapshots/<rev>/…`)."""
    for hub in [Path(cache)] if cache is not None else hf_cache_dirs():
        try:
            repos = sorted(e.name for e in os.scandir(hub)
                           if e.name.startswith("models--") and e.is_dir())
        except OSError:
            continue
        for repo_name in repos:
            if cancel is not None and cancel.is_set():
                return
            repo_id = repo_id_from_cache_name(repo_name)
            snapshot = _cache_snapshot(hub / repo_name)
            if snapshot is None:
                continue
            names = set(os.listdir(snapshot)) if snapshot.is_dir() else set()
            entry = None
            if names & set(FOLDER_MARKERS):
                if not has_weights(snapshot):
                    continue  # configs only (another tool read the config, not the weights)
                entry = classify_folder(snapshot, repo_id, names=names)
            if entry is not None:
                base = entry.descriptor
                if base in _BASES:  # repo names tell Turbo/LCM apart
                    entry = with_family(entry, few_step(base, repo_id))
                yield replace(entry, location=str(hub), source="hf-cache", repo_id=repo_id)
                continue
            for found in scan_folder(snapshot, 2, source="hf-cache", issues=issues,
                                     cancel=cancel, max_entries=20_000):
                name = f"{repo_id}/{Path(found.id).name}"
                yield replace(found, name=name, location=str(hub), repo_id=repo_id)


# --------------------------------------------------------------------------- scan


def model_dirs(settings: Settings) -> list[Path]:
    """models/ first, then the user's own (the Lab's), then the folders chosen in settings
    (deduplicated)."""
    dirs = [paths.bundled_models_dir(), paths.user_models_dir()]
    dirs += [Path(d).expanduser() for d in settings.model_dirs]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


#: folder names (case-insensitive) that hold LoRAs: ours, A1111's, ComfyUI's and Fooocus's
#: (`loras`), InvokeAI's (`<base>/lora`), LyCORIS
#: InvokeAI's models folder keeps each kind per base model: `models/sd-1/lora`, `sdxl/lora`…
INVOKE_BASES = (*INVOKE_BASE_FAMILIES, "any")
#: the kinds a ComfyUI extra_model_paths.yaml names the folders of
_COMFY_KINDS = {LORA_FOLDERS: ("loras",), EMBEDDING_FOLDERS: ("embeddings",)}
#: checkpoints have no sub-folder name of their own here: only the folders files name
CHECKPOINT_FOLDERS: tuple[str, ...] = ()
#: the keys of a Fooocus config.txt that name the folders of each kind
_FOOOCUS_KEYS = {LORA_FOLDERS: (fooocus_paths.LORAS,),
                 EMBEDDING_FOLDERS: (fooocus_paths.EMBEDDINGS,),
                 CHECKPOINT_FOLDERS: (fooocus_paths.CHECKPOINTS,)}


def _children(folder: Path, names: Sequence[str]) -> list[Path]:
    """Sub-folders of `folder` whose lower-cased name is one of `names`."""
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it
                          if e.name.lower() in names and e.is_dir())
    except OSError:
        return []


def _bases(root: Path) -> list[Path]:
    """The folders whose children may be LoRA/embedding folders, for one models folder:
    the folder, its `models/`, the tool's root beside a checkpoints folder, and InvokeAI's
    per-base folders (`models/sd-1`, `models/sdxl`)."""
    bases = [root, root / "models"]
    if root.parent.name.lower() == "models":  # root is models/Stable-diffusion or checkpoints
        bases += [root.parent, root.parent.parent]  # …/models/Lora; A1111's …/embeddings
    elif root.name.lower() == "models":
        bases.append(root.parent)  # A1111's root: …/embeddings
    elif root.parent.name.lower() in INVOKE_BASES:  # InvokeAI's models/sd-1/main
        bases.append(root.parent.parent)
    return bases + [c for b in list(bases) for c in _children(b, INVOKE_BASES)]


def _folders(settings: Settings, names: Sequence[str],
             issues: list[str] | None = None) -> list[Path]:
    found: list[Path] = []
    seen: set[str] = set()

    def add(folder: Path) -> None:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            found.append(folder)

    for root in model_dirs(settings):
        for base in _bases(Path(root).expanduser()):
            for child in _children(base, names) if names else ():
                add(child)
            comfy = base / comfy_paths.FILE_NAME
            kinds = _COMFY_KINDS.get(tuple(names))
            if kinds and comfy.is_file():  # a ComfyUI root: the folders its paths file names
                for folder in comfy_paths.extra_paths(comfy, kinds, issues):
                    if folder.is_dir():
                        add(folder)
            fooocus = base / fooocus_paths.FILE_NAME
            if fooocus.is_file():  # a Fooocus root: the folders its config.txt names
                for folder in fooocus_paths.config_paths(fooocus, _FOOOCUS_KEYS[tuple(names)],
                                                         issues):
                    if folder.is_dir():
                        add(folder)
    return found


def checkpoint_dirs(settings: Settings, issues: list[str] | None = None) -> list[Path]:
    """The checkpoint folders a Fooocus root's config.txt names (`path_checkpoints`), for
    the models folders chosen (a Fooocus root, or its models/ or models/checkpoints)."""
    return _folders(settings, CHECKPOINT_FOLDERS, issues)


def lora_dirs(settings: Settings, issues: list[str] | None = None) -> list[Path]:
    """Every LoRA folder: models/Lora, A1111's models/Lora, ComfyUI's and Fooocus's
    models/loras, InvokeAI's models/<base>/lora, and those ComfyUI's
    extra_model_paths.yaml or Fooocus's config.txt names (a bad one is a line in `issues`)."""
    return _folders(settings, LORA_FOLDERS, issues)


def embedding_dirs(settings: Settings, issues: list[str] | None = None) -> list[Path]:
    """Every embeddings folder: models/embeddings, A1111's embeddings/, ComfyUI's and
    Fooocus's, InvokeAI's models/<base>/embedding, and those extra_model_paths.yaml or
    Fooocus's config.txt names."""
    return _folders(settings, EMBEDDING_FOLDERS, issues)


def scan_embeddings(folders: Sequence[Path], *, issues: list[str] | None = None,
                    cancel: threading.Event | None = None) -> Iterator[ModelEntry]:
    """The textual-inversion embeddings in embeddings folders (subfolders too, as A1111
    reads them), each with the base family its layout says. They are too small for the
    model walk, which leaves files under a megabyte to these folders."""
    for folder in folders:
        seen: set[str] = set()
        for root, dirs, files in os.walk(folder, followlinks=True):
            real = os.path.realpath(root)
            if real in seen or (cancel is not None and cancel.is_set()):
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(files):
                found = classify_embedding(Path(root) / file, issues)
                if found is not None:
                    yield replace(found, location=str(folder), source="folder")


def iter_scan(
    settings: Settings,
    *,
    issues: list[str] | None = None,
    cancel: threading.Event | None = None,
    hf_cache: bool = True,
) -> Iterator[ModelEntry]:
    """Every model, streamed: built-ins, models/, settings folders, the LoRA and embedding
    folders beside them, then the HF cache.

    The same file reached from two roots (a symlinked folder, models/ inside a
    chosen folder) is listed once.
    """
    yield from builtin_entries()
    bundled = paths.bundled_models_dir()
    # a built-in whose weights live in models/ (the sketch model) is listed once, as itself
    seen: set[str] = {os.path.realpath(p) for b in families.builtins()
                      if (p := b.path()) is not None}
    sources: list[Iterable[ModelEntry]] = [
        scan_folder(d, source="models" if d == bundled else "folder", issues=issues,
                    cancel=cancel)
        for d in model_dirs(settings)
    ]
    roots = [os.path.realpath(d) for d in model_dirs(settings)]
    extra = [*checkpoint_dirs(settings, issues),  # what a Fooocus config.txt names
             *lora_dirs(settings, issues)]  # a Lora folder beside a checkpoints folder
    sources += [scan_folder(d, source="folder", issues=issues, cancel=cancel)
                for d in extra
                if not any(Path(os.path.realpath(d)).is_relative_to(r) for r in roots)]
    sources.append(scan_embeddings(embedding_dirs(settings, issues), issues=issues,
                                   cancel=cancel))
    if hf_cache:
        sources.append(scan_hf_cache(issues=issues, cancel=cancel))
    for source in sources:
        for entry in source:
            key = os.path.realpath(entry.id)
            if key in seen:
                continue
            seen.add(key)
            yield entry


def scan(settings: Settings, cancel: threading.Event | None = None) -> list[ModelEntry]:
    """Built-ins first, then every model found (see iter_scan). Records `last_issues()`."""
    global _last_issues
    issues: list[str] = []
    entries = list(iter_scan(settings, issues=issues, cancel=cancel))
    _last_issues = issues
    return entries


def last_issues() -> list[str]:
    """What the most recent scan() skipped and why (broken files, unreadable folders)."""
    return list(_last_issues)


def for_modality(
    entries: Iterable[ModelEntry], modality: str, settings: Settings | None = None
) -> list[ModelEntry]:
    """What a panel's picker offers: generators of that modality (and, given settings,
    no pickled checkpoints unless they are allowed)."""
    return [e for e in entries if e.modality == modality and e.usable(settings)]


def find(entries: Iterable[ModelEntry], model_id: str) -> ModelEntry | None:
    for e in entries:
        if e.id == model_id:
            return e
    return None


