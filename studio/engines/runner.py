"""One job from request to files: the pipeline shared by the GUI worker and the CLI.

resolve seeds → route by the model's family (refusing a kind the family or its engine
does not serve, in one sentence) → pick device → get the engine from the cache (loading
it once) → generate with events → save atomically → index in history.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core import families
from studio.core.errors import ModelError, RequestError, StudioError
from studio.core.families import Explore, Family
from studio.core.messages import load_failure
from studio.core.outputs import save_and_index
from studio.core.requests import Request
from studio.core.results import Result
from studio.core.settings import Settings
from studio.core.text import first_line
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.cache import ModelCache
from studio.engines.memory import (
    OOM_MESSAGE,
    budget_bytes,
    estimate_load_bytes,
    free_memory,
    is_out_of_memory,
    release_exception,
)
from studio.engines.registry import import_engine, route

if TYPE_CHECKING:
    from studio.core.history import History

log = logging.getLogger(__name__)


class Runner:
    """Owns the model cache; runs one request at a time (not thread-safe by design)."""

    def __init__(self, settings: Settings, cache: ModelCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or ModelCache()

    def spec_for(self, request: Request) -> LoadSpec:
        from studio.engines.devices import default_dtype, pick_device

        device = pick_device(self.settings.device)
        return LoadSpec(request.model, device, default_dtype(device))

    def generate(self, request: Request, events: Events) -> Result:
        """Validate, resolve seeds, load (cached) and generate. Raises StudioError/Cancelled."""
        request.validate()
        request = request.resolved()
        family, target = route(request.kind, request.model)
        if family is not None and not family.serves(request.kind):
            raise RequestError(refusal(request, family))
        cls = import_engine(target)
        if request.kind not in cls.kinds:
            raise RequestError(refusal(request, family))
        spec = self.spec_for(request)

        def load():
            events.status(f"Loading {Path(request.model).name or request.model}…")
            try:
                return cls.load(spec, self.settings, events)
            except StudioError:
                raise
            except Exception as exc:  # a broken file must say which file and why
                log.exception("loading %s failed", request.model)
                raise ModelError(load_failure(request.model, exc)
                                 or f"Could not load {request.model}: {one_line(exc)}") from exc

        self.cache.budget_bytes = budget_bytes(self.settings, spec.device)  # 0 in settings = auto
        try:
            engine = self.cache.get(spec, load, estimate=lambda: estimate_load_bytes(spec))
            if request.kind not in engine.kinds:  # loaded for another kind by another route
                raise RequestError(refusal(request, family, engine))
            events.check_cancelled()
            return engine.generate(request, events)
        except Exception as exc:
            if is_out_of_memory(exc):  # free what the job held before the next one runs
                release_exception(exc)
                free_memory()
            raise

    def save(self, result: Result, history: History | None) -> list[Path]:
        """Save and index every complete file (a part-way failure raises SaveError after
        indexing what was written; see studio.core.outputs)."""
        return save_and_index(result, self.settings.output_path, history)


#: how the explorer's refusal names the families it can drive
_EXPLORE_STYLES = {Explore.GAN_LATENT: "a GAN", Explore.DIFFUSION: "a diffusion model",
                   Explore.PREFIX: "a model with a conditioning prefix"}


def refusal(request: Request, family: Family | None, engine: Engine | None = None) -> str:
    """One sentence for a model chosen for a kind it does not serve ("builtin:smollm2
    makes text, not music."; "… cannot be explored." for the explorer)."""
    name = Path(request.model).name or request.model
    if request.kind == "explore":
        what = f" ({family.name})" if family is not None else ""
        styles = dict.fromkeys(_EXPLORE_STYLES.get(f.explore, f.name)
                               for f in families.all_families() if f.explorable)
        return f"{name}{what} cannot be explored; choose {' or '.join(styles)}."
    makes = family.modality if family is not None else ""
    if not makes and engine is not None and engine.kinds:
        makes = engine.kinds[0]
    return wrong_kind(name, request.kind, makes)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, trimmed, with its type when it says little."""
    text = first_line(str(exc))
    if isinstance(exc, StudioError) and text:
        return text
    if len(text) > 300:
        text = text[:297] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure_message(exc: BaseException) -> str:
    """One sentence for the user about why a job failed."""
    if is_out_of_memory(exc):  # also a ModelError raised from an OOM while loading
        return OOM_MESSAGE
    if isinstance(exc, StudioError):
        return one_line(exc)
    return f"Generation failed: {one_line(exc)}"
