"""An exploring session: the state of the latent explorer, without widgets.

The session holds what a point in latent space is made of (the model, its anchors, the
pad position or weights set by hand, the offsets along named directions, the variation
steps taken from the grid) plus the render and walk settings, and builds the
ExploreRequest of the current point from them. Views change it through its methods
and follow it through its `*_changed` signals (a plain model with Qt views bound to
it, as in Krita AI Diffusion or napari).

Explorer frames go through the one latest-wins pump (runtime/explore_pump.py). Models
whose family has steps render a quick preview while dragging and the full frame once
the pad settles. Saves, ratings and walks are the session's outputs
(runtime/explore_outputs.py): generate-lane jobs, and history calls off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from studio.core import catalog, families
from studio.core.catalog import ModelEntry
from studio.core.errors import StudioError
from studio.core.explore import (
    GRID_SIZE,
    MAX_ANCHORS,
    DirectionNames,
    ExploreRequest,
    grid_child_seed,
    pad_weights,
)
from studio.core.families import Family
from studio.core.history import History
from studio.core.requests import SCHEDULERS, ImageRequest, Request
from studio.core.results import Result
from studio.core.seeds import draw_seed
from studio.core.text import first_line
from studio.runtime.explore_outputs import ExploreOutputs
from studio.runtime.explore_pump import ExplorePump, Timing
from studio.runtime.tasks import run_in_pool
from studio.runtime.tracker import JobTracker
from studio.runtime.worker import JobQueue

SAVE_SCALES = (1, 2, 4, 8)
SETTLE_MS = 450  # a drag that pauses this long counts as settled (full render)
__all__ = ["Anchor", "ExploreSession", "RenderSettings", "Timing", "WalkSettings"]


@dataclass
class Anchor:
    seed: int
    prompt: str = ""


@dataclass(frozen=True)
class RenderSettings:
    """What the Render tab sets (only fields the model's family applies are used)."""

    steps: int = 20
    preview_steps: int = 4
    guidance: float = 7.0
    width: int = 512
    height: int = 512
    preview_size: int = 256
    scheduler: str = "Euler"
    negative: str = ""


@dataclass(frozen=True)
class WalkSettings:
    frames: int = 48
    loop: bool = False
    easing: str = "ease-in-out"
    fps: int = 12


def family_of(model: str, entries: list[ModelEntry]) -> Family | None:
    """The descriptor of a model id: a built-in's family, or the catalog entry's."""
    fam = families.of_builtin(model)
    if fam is not None:
        return fam
    entry = catalog.find(entries, model)
    return entry.descriptor if entry is not None else None


class ExploreSession(QObject):
    """The explorer's state; it feeds the latest-wins pump (see the module docstring)."""

    model_changed = Signal(str)
    anchors_changed = Signal()  # seeds, prompts or their number
    weights_changed = Signal(list, bool)  # normalised weights, set by hand
    pad_changed = Signal(float, float)  # the pad position was set (recipe, clamping)
    directions_changed = Signal(list)  # the model's directions, as the engine describes them
    offsets_changed = Signal()
    variations_changed = Signal(int)  # steps taken from the blend
    settings_changed = Signal()  # render/walk settings, spread or save scale set at once
    frame_changed = Signal(object, str)  # Result now shown, caption
    frame_preview = Signal(object, str)  # an in-between image (numpy) of the frame job
    caption_changed = Signal(str)  # a status line of an explorer job ("Loading …")
    thumbs_changed = Signal(list)  # the anchors' own images (numpy), in anchor order
    grid_changed = Signal(list)  # the nine children (numpy)
    timing_changed = Signal(object)  # Timing of the frame just shown
    info = Signal(str)
    error = Signal(str)

    def __init__(self, jobs: JobQueue, history: History | None = None,
                 models: Callable[[], list[ModelEntry]] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.history = history
        self._models = models or (lambda: [])
        self.tracker = JobTracker(jobs, self)
        self.names = DirectionNames()
        self.model = ""
        self.anchors: list[Anchor] = []
        self.pad: tuple[float, float] = (0.5, 0.5)
        self.explicit_weights: list[float] | None = None
        self.offsets: dict[str, float] = {}
        self.direction_keys: list[str] = []
        self.variations: list[tuple[int, float]] = []
        self.grid_seed = draw_seed()
        self.spread = 0.3
        self.render = RenderSettings()
        self.walk = WalkSettings()
        self.save_scale = 4
        self.grid_visible = False
        self.shown_request: ExploreRequest | None = None
        self.shown_thumbs: ExploreRequest | None = None
        self.last_result: Result | None = None
        self.timing: Timing | None = None
        self.pump = ExplorePump(self.tracker, self)
        self.outputs = ExploreOutputs(self.tracker, history, self)  # saves, ratings, walks
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.settle)
        self.pump.done.connect(self._explored)
        self.pump.preview.connect(self.frame_preview)
        self.pump.status.connect(self.caption_changed)
        self.pump.failed.connect(self.error)
        self.outputs.info.connect(self.info)
        self.outputs.error.connect(self.error)

    # ------------------------------------------------------------------ capabilities
    @property
    def family(self) -> Family | None:
        return family_of(self.model, self._models()) if self.model else None

    def applies(self, field_name: str) -> bool:
        """Whether a request field changes the model's output (unknown models: diffusion)."""
        fam = self.family
        return fam is None or fam.applies(field_name)

    @property
    def conditional(self) -> bool:
        fam = self.family
        return fam is None or fam.conditional

    @property
    def progressive(self) -> bool:
        """Models with steps preview cheaply while dragging and render in full when settled."""
        return self.applies("steps")

    @property
    def prompt_label(self) -> str:
        fam = self.family
        return fam.prompt_label if fam is not None else "Prompt"

    def native_size(self) -> tuple[int, int] | None:
        """The size a fixed-size model renders at (frames are shown with a "×N" note)."""
        fam = self.family
        return fam.native_size if fam is not None and fam.fixed_size else None

    # ------------------------------------------------------------------ model, anchors
    def set_model(self, model: str) -> None:
        """Explore another model: directions, offsets and variation steps start afresh."""
        self.model = model
        self.offsets.clear()
        self.variations.clear()
        self._set_directions([], force=True)
        self.offsets_changed.emit()
        self.model_changed.emit(model)
        self._anchors_changed()

    def add_anchor(self, seed: int | None = None, prompt: str = "", *,
                   render: bool = True) -> int | None:
        """Add an anchor (a pad corner); returns its index, None when all four are used."""
        if len(self.anchors) >= MAX_ANCHORS:
            return None
        self.anchors.append(Anchor(draw_seed() if seed is None else seed, prompt))
        self._count_changed(render)
        return len(self.anchors) - 1

    def remove_anchor(self, index: int) -> None:
        if len(self.anchors) <= 1 or not 0 <= index < len(self.anchors):
            return
        del self.anchors[index]
        self._count_changed(True)

    def set_anchors(self, seeds: list[int], prompts: list[str] | None = None, *,
                    render: bool = True) -> None:
        """Replace the anchors (recipes, "use these settings", tests)."""
        prompts = list(prompts or [])
        prompts += [""] * (len(seeds) - len(prompts))
        self.anchors = [Anchor(s, p) for s, p in zip(seeds[:MAX_ANCHORS], prompts,
                                                     strict=False)]
        self._count_changed(render)

    def set_anchor(self, index: int, *, seed: int | None = None, prompt: str | None = None,
                   render: bool = True) -> None:
        """Change one anchor; render=False only records it (a prompt being typed)."""
        if not 0 <= index < len(self.anchors):
            return
        anchor = self.anchors[index]
        changed = (seed is not None and seed != anchor.seed) or \
            (prompt is not None and prompt != anchor.prompt)
        if seed is not None:
            anchor.seed = seed
        if prompt is not None:
            anchor.prompt = prompt
        if render:
            self._anchors_changed()
        elif changed:
            self.anchors_changed.emit()

    def anchor_seeds(self) -> list[int]:
        return [a.seed for a in self.anchors]

    def anchor_from_path(self, index: int, path: Path) -> None:
        """Read a saved output's recipe (off the GUI thread) and use its seed and prompt."""

        def read() -> Request | str:
            from studio.core.recipes import read_recipe

            try:
                return read_recipe(path).to_request()
            except StudioError as exc:
                return first_line(exc)

        def done(value: Request | str) -> None:
            if isinstance(value, str):
                self.error.emit(value)
                return
            if index >= len(self.anchors):
                return
            seed, prompt = value.seed, value.prompt
            if isinstance(value, ExploreRequest) and value.anchors:
                seed, prompt = value.anchors[0], value.anchor_prompts()[0]
            seed = seed if seed != -1 else draw_seed()
            note = f"Anchor {index + 1} from {path.name} (seed {seed})."
            if value.model and value.model != self.model:
                note += f" It was made with {Path(value.model).name or value.model}."
            self.info.emit(note)
            self.set_anchor(index, seed=seed, prompt=prompt)

        run_in_pool(read, done, on_failed=self.error.emit)

    def _count_changed(self, render: bool) -> None:
        """The number of anchors changed: the pad re-clamps, hand-set weights are dropped."""
        self.explicit_weights = None
        self.set_pad(*self.pad)
        self.weights_changed.emit(self.weights(), False)
        if render:
            self._anchors_changed()
        else:
            self.anchors_changed.emit()

    def _anchors_changed(self) -> None:
        self.variations.clear()
        self.variations_changed.emit(0)
        self.shown_thumbs = None
        self.anchors_changed.emit()
        self._queue_anchor_thumbs()
        self.request_frame(settled=True)

    # ------------------------------------------------------------------ blend
    def set_pad(self, x: float, y: float) -> None:
        """Place the puck (clamped; with two anchors y stays in the middle), no render."""
        x = min(max(float(x), 0.0), 1.0)
        y = 0.5 if len(self.anchors) == 2 else min(max(float(y), 0.0), 1.0)
        if (x, y) != self.pad:
            self.pad = (x, y)
            self.pad_changed.emit(x, y)

    def move_pad(self, x: float, y: float) -> None:
        """The puck moved (a drag): back to the pad's weights, render the new point."""
        self.explicit_weights = None
        self.set_pad(x, y)
        self.weights_changed.emit(self.weights(), False)
        self.request_frame()

    def set_weights(self, values: list[float]) -> None:
        """Weights set by hand (they win over the pad until it is touched again)."""
        if sum(values) <= 0:
            return
        self.explicit_weights = [float(v) for v in values]
        self.weights_changed.emit(self.weights(), True)
        self.request_frame()

    def weights(self) -> list[float]:
        if self.explicit_weights is not None:
            total = sum(self.explicit_weights) or 1.0
            return [w / total for w in self.explicit_weights]
        return pad_weights(len(self.anchors), *self.pad)

    # ------------------------------------------------------------------ directions
    def _set_directions(self, described: list[dict[str, Any]], *, force: bool = False) -> None:
        keys = [str(d.get("key", "")) for d in described]
        if keys == self.direction_keys and not force:
            return
        self.direction_keys = keys
        self.offsets = {k: v for k, v in self.offsets.items() if k in keys}
        self.directions_changed.emit(described)

    def direction_label(self, key: str, default: str = "") -> str:
        return self.names.name(self.model, key, default)

    def set_offset(self, key: str, value: float, *, settled: bool = True) -> None:
        """Move along one direction (a slider drag passes settled=False)."""
        self.offsets[key] = value
        self.offsets_changed.emit()
        self.request_frame(settled=settled)

    def reset_offsets(self) -> None:
        self.offsets.clear()
        self.offsets_changed.emit()
        self.request_frame(settled=True)

    def rename_direction(self, key: str, name: str) -> str | None:
        """Name a direction (kept per model; recipes keep the key); returns the new label."""
        try:
            self.names.rename(self.model, key, name)
        except OSError as exc:
            self.error.emit(f"Could not save the name: {exc.strerror or exc}.")
            return None
        return self.names.name(self.model, key)

    # ------------------------------------------------------------------ variations
    def set_grid_visible(self, visible: bool) -> None:
        """The variation grid renders only while someone can see it."""
        self.grid_visible = visible
        self.refresh_grid()

    def refresh_grid(self) -> None:
        if not self.grid_visible or not self.model:
            return
        self.pump.queue("grid", replace(self.point_request(fast=True), mode="grid",
                                        seed=self.grid_seed))

    def reseed_children(self) -> None:
        self.grid_seed = draw_seed()
        self.refresh_grid()

    def pick_child(self, index: int) -> None:
        """Make grid child `index` the current point (the centre draws new children)."""
        if index == GRID_SIZE // 2:
            self.reseed_children()
            return
        self.variations.append((grid_child_seed(self.grid_seed, index), self.spread))
        self.grid_seed = draw_seed()
        self.variations_changed.emit(len(self.variations))
        self.request_frame(settled=True)
        self.refresh_grid()

    def undo_variation(self) -> None:
        if self.variations:
            self.variations.pop()
            self.variations_changed.emit(len(self.variations))
            self.request_frame(settled=True)
            self.refresh_grid()

    # ------------------------------------------------------------------ requests
    def _size(self, *, for_saving: bool) -> tuple[int, int]:
        native = self.native_size()
        if native is not None:
            scale = self.save_scale if for_saving else 1
            return native[0] * scale, native[1] * scale
        return self.render.width // 8 * 8, self.render.height // 8 * 8

    def point_request(self, *, fast: bool = False, for_saving: bool = False) -> ExploreRequest:
        """The ExploreRequest of the current point (what the view shows, or will)."""
        r = self.render
        prompts = tuple(a.prompt.strip() for a in self.anchors) if self.conditional else ()
        width, height = self._size(for_saving=for_saving)
        x, y = self.pad
        weights = tuple(round(w, 6) for w in self.weights()) \
            if self.explicit_weights is not None else ()
        return ExploreRequest(
            model=self.model,
            prompt=prompts[0] if prompts else "",
            anchors=tuple(self.anchor_seeds()),
            prompts=prompts if any(prompts) else (),
            negative=r.negative.strip() if self.applies("negative") else "",
            weights=weights,
            pad_x=round(x, 6),
            pad_y=round(y, 6),
            variation_seeds=tuple(s for s, _ in self.variations),
            variation_strengths=tuple(st for _, st in self.variations),
            directions={k: round(v, 4) for k, v in self.offsets.items() if v},
            mode="point",
            **asdict(self.walk),  # frames, loop, easing, fps
            spread=self.spread,
            steps=r.steps,
            guidance=r.guidance,
            width=width,
            height=height,
            scheduler=r.scheduler,
            fast=fast and self.progressive,
            preview_steps=min(r.preview_steps, r.steps),
            preview_size=r.preview_size,
        )

    def walk_request(self) -> ExploreRequest:
        return replace(self.point_request(for_saving=True), mode="walk", weights=())

    def request_frame(self, *, settled: bool = False) -> None:
        """Render the current point: every frame for one-pass models, a quick preview
        then the full frame for models with steps."""
        if not self.model:
            return
        fast = self.progressive and not settled
        self.pump.queue("frame", self.point_request(fast=fast))
        if fast:
            self._settle.start()
        else:
            self._settle.stop()

    def settle(self) -> None:
        """The pad or a slider came to rest: the full frame (if only a preview is shown or
        on its way), then the variations."""
        self._settle.stop()
        if self.model and self.progressive:
            full = self.point_request(fast=False)
            running = self.pump.running_request
            if running is not None and running.fast:
                self.pump.cancel_running()  # its preview is stale: start the full one
            if self.shown_request != full.resolved():
                self.pump.queue("frame", full)
        self.refresh_grid()

    def rerender(self) -> None:
        """Settings changed: new anchor thumbnails and the full frame."""
        self._queue_anchor_thumbs()
        self.request_frame(settled=True)

    def _queue_anchor_thumbs(self) -> None:
        if not self.model or not self.anchors:
            return
        self.pump.queue("anchors", replace(
            self.point_request(fast=True), mode="anchors", weights=(), variation_seeds=(),
            variation_strengths=(), directions={}))

    # ------------------------------------------------------------------ jobs
    def activate(self) -> None:
        """Start rendering (the panel is first shown: app start stays light until then)."""
        self.pump.activate()

    def busy(self) -> bool:
        """True while an explorer job runs or waits (tests wait for it to settle)."""
        return self.pump.busy()

    @property
    def jobs_started(self) -> int:
        return self.pump.jobs_started

    def _explored(self, slot: str, result: Result, timing: Timing) -> None:
        if slot == "frame":
            self._show_frame(result, timing)
        elif slot == "anchors" and isinstance(result.request, ExploreRequest):
            self.shown_thumbs = result.request
            self.thumbs_changed.emit(list(result.images))
        elif slot == "grid":
            self.grid_changed.emit(list(result.images))

    def _show_frame(self, result: Result, timing: Timing) -> None:
        request = result.request
        if not result.images or not isinstance(request, ExploreRequest):
            return
        if request.model != self.model:
            return  # a frame of the model shown before: its directions do not apply any more
        caption = ""
        if result.info.get("fast"):
            array = result.images[0]
            size = result.info.get("render_size") or [array.shape[1], array.shape[0]]
            caption = f"quick preview ({request.preview_steps} steps, {size[0]}×{size[1]})"
        self.shown_request = request
        self.last_result = result
        self._set_directions(list(result.info.get("directions") or []))
        self.frame_changed.emit(result, caption)
        self.timing = timing
        self.timing_changed.emit(timing)
        self.outputs.show(request)

    # ------------------------------------------------------------------ outputs
    def save_point(self) -> int | None:
        """Save the current point as an output (re-rendered at full quality and save size)."""
        if not self.model:
            return None
        return self.outputs.save(self.point_request(for_saving=True).resolved())

    def rate(self, rating: int) -> None:
        """Rate (and favourite, at 5) the current point: saved first when it is not yet."""
        if self.model:
            self.outputs.rate(self.point_request(for_saving=True).resolved(), rating)

    def render_walk(self) -> int | None:
        """Render a path through the anchors to GIF and MP4 (a saved generate job)."""
        return self.outputs.render_walk(self.walk_request())

    def cancel_walk(self) -> None:
        self.outputs.cancel_walk()

    # ------------------------------------------------------------------ recipes
    def apply_request(self, request: Request) -> None:
        """Fill the session from a recipe: an explorer point/walk, or an image as anchor 1."""
        if isinstance(request, ExploreRequest):
            self._apply_explore(request)
        elif isinstance(request, ImageRequest):
            self.set_model(request.model)
            self.render = replace(
                self.render, steps=request.steps, guidance=request.guidance,
                width=request.width, height=request.height, negative=request.negative,
                scheduler=request.scheduler if request.scheduler in SCHEDULERS
                else self.render.scheduler)
            self.settings_changed.emit()
            seeds = self.anchor_seeds()
            prompts = [a.prompt for a in self.anchors]
            seeds[0] = request.seed if request.seed != -1 else draw_seed()
            prompts[0] = request.prompt
            self.set_anchors(seeds, prompts)
        else:
            self.error.emit(f"The explorer cannot use a {request.kind} recipe.")

    def _apply_explore(self, r: ExploreRequest) -> None:
        self.set_model(r.model)
        prompts = list(r.prompts) if r.prompts else [r.prompt] * len(r.anchors)
        seeds = [s if s != -1 else draw_seed() for s in r.anchors] or [draw_seed()]
        self.walk = WalkSettings(frames=r.frames, loop=r.loop, easing=r.easing, fps=r.fps)
        self.spread = r.spread
        self.render = replace(
            self.render, steps=r.steps, guidance=r.guidance, preview_steps=r.preview_steps,
            preview_size=r.preview_size, negative=r.negative,
            scheduler=r.scheduler if r.scheduler in SCHEDULERS else self.render.scheduler)
        native = self.native_size()
        if native is not None:
            scale = max(1, r.width // native[0])
            self.save_scale = min(SAVE_SCALES, key=lambda s: abs(s - scale))
        else:
            self.render = replace(self.render, width=r.width, height=r.height)
        self.set_anchors(seeds, prompts, render=False)
        self.set_pad(r.pad_x, r.pad_y)
        self.explicit_weights = list(r.weights) if r.weights else None
        self.weights_changed.emit(self.weights(), self.explicit_weights is not None)
        self.offsets = dict(r.directions)
        self.offsets_changed.emit()
        self.variations = list(zip(r.variation_seeds, r.variation_strengths, strict=True))
        self.variations_changed.emit(len(self.variations))
        if r.mode == "grid":
            self.grid_seed = r.seed
        self.settings_changed.emit()
        self._queue_anchor_thumbs()
        self.request_frame(settled=True)
        self.refresh_grid()
        self.info.emit("Loaded the explorer recipe.")
