"""Which engine runs which request: by request kind and model id, imported lazily.

Importing an engine module pulls in torch/diffusers/transformers, so nothing
here is imported until a job actually needs it (in the worker thread).
"""

from __future__ import annotations

import importlib

from studio.core.errors import ModelError
from studio.core.requests import Request
from studio.engines.base import Engine

# (request kind, model id prefix or "" for any, "module:Class"); first match wins.
ROUTES: list[tuple[str, str, str]] = [
    ("image", "builtin:faces", "studio.engines.gan:GanEngine"),
    ("image", "builtin:eyes", "studio.engines.gan:GanEngine"),
    ("explore", "", "studio.engines.explore:ExploreEngine"),
    ("text", "", "studio.engines.text_lm:TextEngine"),
    ("music", "builtin:composer", "studio.engines.composer.engine:ComposerEngine"),
    ("music", "", "studio.engines.musicgen:MusicGenEngine"),
    ("image", "", "studio.engines.image_diffusers:DiffusersImageEngine"),
]


def engine_class(kind: str, model: str) -> type[Engine]:
    for route_kind, prefix, target in ROUTES:
        if route_kind == kind and model.startswith(prefix):
            module, name = target.split(":")
            return getattr(importlib.import_module(module), name)
    raise ModelError(f"No engine can run a {kind} job with model {model!r}.")


def engine_class_for(request: Request) -> type[Engine]:
    return engine_class(request.kind, request.model)
