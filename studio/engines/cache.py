"""The model cache: load each (model, device, dtype) once, evict the least recently used.

Plain Python so the worker, the CLI and the benchmarks share it. It is used
from one thread at a time (the worker's); the GUI only sees snapshots via signals.
"""

from __future__ import annotations

import gc
import logging
from collections import OrderedDict
from collections.abc import Callable

from studio.engines.base import Engine, LoadSpec

log = logging.getLogger(__name__)


class ModelCache:
    def __init__(self, budget_bytes: int = 0) -> None:
        self._engines: OrderedDict[LoadSpec, Engine] = OrderedDict()
        self.budget_bytes = budget_bytes  # 0 = unlimited
        self.loads = 0  # how many times a model was actually loaded (tests, status)

    def get(self, spec: LoadSpec, load: Callable[[], Engine]) -> Engine:
        """The cached engine for spec, or `load()` it, evicting LRU models over budget."""
        engine = self._engines.get(spec)
        if engine is not None:
            self._engines.move_to_end(spec)
            return engine
        engine = load()
        self.loads += 1
        self._engines[spec] = engine
        self.enforce_budget(keep=spec)
        return engine

    def enforce_budget(self, keep: LoadSpec | None = None) -> list[LoadSpec]:
        """Unload least recently used engines until the total fits the budget."""
        evicted: list[LoadSpec] = []
        if self.budget_bytes <= 0:
            return evicted
        for spec in list(self._engines):
            if self.used_bytes() <= self.budget_bytes:
                break
            if spec == keep:
                continue
            self.unload(spec)
            evicted.append(spec)
        return evicted

    def unload(self, spec: LoadSpec) -> None:
        engine = self._engines.pop(spec, None)
        if engine is not None:
            log.info("unloading %s", spec.model)
            engine.unload()
            del engine
            _free_memory()

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
        """Snapshot for the status bar and the Models view (plain data)."""
        return [
            {"model": s.model, "device": s.device, "dtype": s.dtype, "bytes": e.memory_bytes()}
            for s, e in self._engines.items()
        ]

    def __contains__(self, spec: LoadSpec) -> bool:
        return spec in self._engines

    def __len__(self) -> int:
        return len(self._engines)


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
