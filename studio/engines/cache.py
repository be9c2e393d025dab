"""The model cache: load each (model, device, dtype) once, evict the least recently used.

One memory budget covers every loaded model (image, music and text alike).
Before a load, the size the new model will take (estimated from its files) is
made room for by unloading the least recently used models; after the load, the
real size is checked again. An out-of-memory error while loading unloads every
other model and tries once more.

Plain Python so the worker, the CLI and the benchmarks share it. It is used
from one thread at a time (the worker's); the GUI only sees snapshots via signals.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from studio.engines.base import Engine, LoadSpec
from studio.engines.memory import free_memory, is_out_of_memory, release_exception

log = logging.getLogger(__name__)

Estimate = int | Callable[[], int] | None


class ModelCache:
    def __init__(self, budget_bytes: int = 0) -> None:
        self._engines: OrderedDict[LoadSpec, Engine] = OrderedDict()  # oldest use first
        self.budget_bytes = budget_bytes  # 0 = unlimited
        self.loads = 0  # how many times a model was actually loaded (tests, status)
        self.evicted: list[LoadSpec] = []  # every spec unloaded to make room, in order
        self._stamps: dict[LoadSpec, tuple[int, ...] | None] = {}  # files as they were loaded

    def get(self, spec: LoadSpec, load: Callable[[], Engine], estimate: Estimate = None) -> Engine:
        """The cached engine for spec, or `load()` it after making room for `estimate` bytes.

        `estimate` may be a callable: it is only called on a miss (it reads files).
        """
        engine = self._engines.get(spec)
        if engine is not None and self._stamps.get(spec) != files_stamp(spec.model):
            log.info("%s changed on disk since it was loaded; loading it again", spec.model)
            self.unload(spec)  # a model re-exported at the same path (the Lab's resume)
            engine = None
        if engine is not None:
            self._engines.move_to_end(spec)
            return engine
        needed = estimate() if callable(estimate) else int(estimate or 0)
        if needed > 0:
            self.make_room(needed)
        retry = False
        try:
            engine = load()
        except Exception as exc:
            if not (is_out_of_memory(exc) and self._engines):
                raise
            log.warning("out of memory loading %s; unloading other models and retrying",
                        spec.model)
            release_exception(exc)
            retry = True
        if retry:  # outside the except block, so the failed attempt's memory is gone
            for other in list(self._engines):
                self._evict(other)
            free_memory()
            engine = load()
        self.loads += 1
        self._engines[spec] = engine
        self._stamps[spec] = files_stamp(spec.model)
        self.enforce_budget(keep=spec)
        return engine

    def make_room(self, needed: int, keep: LoadSpec | None = None) -> list[LoadSpec]:
        """Unload least recently used engines until `needed` more bytes fit the budget."""
        evicted: list[LoadSpec] = []
        if self.budget_bytes <= 0:
            return evicted
        for spec in list(self._engines):
            if self.used_bytes() + needed <= self.budget_bytes:
                break
            if spec == keep:
                continue
            self._evict(spec)
            evicted.append(spec)
        if needed > self.budget_bytes:
            log.warning("a model of ~%d MB is larger than the memory budget (%d MB)",
                        needed >> 20, self.budget_bytes >> 20)
        return evicted

    def enforce_budget(self, keep: LoadSpec | None = None) -> list[LoadSpec]:
        """Unload least recently used engines until the total fits the budget."""
        return self.make_room(0, keep=keep)

    def _evict(self, spec: LoadSpec) -> None:
        self.evicted.append(spec)
        self.unload(spec)

    def unload(self, spec: LoadSpec) -> None:
        self._stamps.pop(spec, None)
        engine = self._engines.pop(spec, None)
        if engine is not None:
            log.info("unloading %s", spec.model)
            try:
                engine.unload()
            except Exception:  # a faulty unload must not keep the memory pinned
                log.exception("unloading %s failed", spec.model)
            del engine
            free_memory()

    def unload_model(self, model: str) -> None:
        """Unload every cached variant (device/dtype) of one model."""
        for spec in [s for s in self._engines if s.model == model]:
            self.unload(spec)

    def unload_all(self) -> None:
        for spec in list(self._engines):
            self.unload(spec)

    def used_bytes(self) -> int:
        return sum(e.memory_bytes() for e in self._engines.values())

    def loaded(self) -> list[dict]:
        """Snapshot for the status bar and the Models view (plain data), oldest use first.

        Each item: model (id), name (short), device, dtype, bytes (this model),
        used_bytes (all models) and budget_bytes (0 = unlimited), so one list says
        everything a status line needs.
        """
        sizes = [(s, e.memory_bytes()) for s, e in self._engines.items()]
        used = sum(b for _s, b in sizes)
        return [
            {
                "model": s.model,
                "name": short_name(s.model),
                "device": s.device,
                "dtype": s.dtype,
                "bytes": b,
                "used_bytes": used,
                "budget_bytes": self.budget_bytes,
            }
            for s, b in sizes
        ]

    def __contains__(self, spec: LoadSpec) -> bool:
        return spec in self._engines

    def __len__(self) -> int:
        return len(self._engines)


def files_stamp(model: str) -> tuple[int, ...] | None:
    """When and how large a model's files are (a file, or a folder's top-level files and
    their subfolders' files one level down: a diffusers pipeline's weights), so that a
    model written again at the same path is loaded again. None for ids that are not paths
    (built-ins, hub ids). A few stat calls: cheap next to any job."""
    try:
        st = os.stat(model)
    except (OSError, ValueError):
        return None
    if not os.path.isdir(model):
        return (st.st_mtime_ns, st.st_size)
    stamp = [st.st_mtime_ns]
    try:
        with os.scandir(model) as top:
            for entry in top:
                if entry.is_file():
                    info = entry.stat()
                    stamp += [info.st_mtime_ns, info.st_size]
                elif entry.is_dir() and not entry.name.startswith("."):
                    with os.scandir(entry.path) as inner:
                        for sub in inner:
                            if sub.is_file():
                                info = sub.stat()
                                stamp += [info.st_mtime_ns, info.st_size]
    except OSError:
        return None
    return tuple(sorted(stamp))


def short_name(model: str) -> str:
    """What a status bar shows for a model id: the built-in name or the last path part."""
    if model.startswith("builtin:"):
        return model.removeprefix("builtin:")
    parts = Path(model).parts
    if "snapshots" in parts:  # an HF cache snapshot: models--org--name/snapshots/<rev>
        repo = parts[parts.index("snapshots") - 1]
        return repo.removeprefix("models--").replace("--", "/", 1)
    return Path(model).name or model
