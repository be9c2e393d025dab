"""Which engine runs which request: the model's family says (studio.core.families).

A built-in's family is its descriptor's; a path's is what the catalog's classifier says
(once per path and modification time). The family's engine runs it, or the runtime the
family names for its format (`Family.runtimes`: GGUF files of the causal LM on llama.cpp).
A model the catalog cannot classify (a name in a models folder, a path that is not there,
a LoRA given as a checkpoint) goes to the first family that serves the request's kind, so
that family's engine says in one sentence what is wrong with it. Engine modules pull in
torch/diffusers/transformers, so `Family.engine` ("module:Class") is imported only when a
job needs it (worker thread).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from studio.core import catalog, families
from studio.core.errors import ModelError
from studio.core.families import Family
from studio.core.requests import Request
from studio.engines.base import Engine

#: extra routes tried first, (request kind, model id prefix, "module:Class"): for engines
#: whose "models" are not files, such as the test and benchmark engines ("slow:…").
#: Real model families are registered with families.register() instead.
ROUTES: list[tuple[str, str, str]] = []

#: (path, mtime_ns) → (family id, format); ("", "") = unknown
_classified: dict[tuple[str, int], tuple[str, str]] = {}


def _classify(model: str) -> tuple[str, str]:
    """(family id, format) of a path, by the catalog's classifier, once per modification."""
    path = Path(model).expanduser()
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return "", ""
    key = (str(path), stamp)
    if key not in _classified:
        entry = catalog.classify(path)
        descriptor = entry.descriptor if entry is not None else None
        _classified[key] = (descriptor.id, entry.format) if descriptor and entry else ("", "")
    return _classified[key]


def classified_family(model: str) -> Family | None:
    """The family of a model id by its descriptor (built-ins) or the catalog's classifier."""
    found = families.of_builtin(model)
    if found is not None or model.startswith("builtin:"):
        return found
    family_id = _classify(model)[0]
    return families.get(family_id) if family_id else None


def model_format(model: str) -> str:
    """How a model's weights are stored ("gguf", "transformers", ...; "" when unknown)."""
    builtin = families.builtin(model)
    if builtin is not None:
        return builtin.format
    return "" if model.startswith("builtin:") else _classify(model)[1]


def family_for(kind: str, model: str) -> Family | None:
    """The family whose engine runs `model` for a `kind` request (see the module docstring).

    None only when no registered family serves the kind at all.
    """
    found = classified_family(model)
    if found is not None and found.engine:
        return found
    return next((f for f in families.for_kind(kind) if f.engine), None)


def import_engine(target: str) -> type[Engine]:
    """The engine class a "module:Class" string names (imports its module)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def route(kind: str, model: str) -> tuple[Family | None, str]:
    """(family, "module:Class") for a request kind and model id; the family is None for
    an extra route (ROUTES)."""
    for route_kind, prefix, target in ROUTES:
        if route_kind == kind and model.startswith(prefix):
            return None, target
    family = family_for(kind, model)
    if family is None:
        raise ModelError(f"No engine can run a {kind} job with model {model!r}.")
    return family, family.engine_for(model_format(model)) if family.runtimes else family.engine


def engine_class(kind: str, model: str) -> type[Engine]:
    return import_engine(route(kind, model)[1])


def engine_class_for(request: Request) -> type[Engine]:
    return engine_class(request.kind, request.model)
