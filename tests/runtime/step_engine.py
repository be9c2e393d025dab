"""A small real engine for worker tests: it paints a gradient step by step.

It exercises the whole Engine contract (load, progress, previews, cancel, failure)
with controllable timing, so worker behaviour can be tested without a big model.
"""

from __future__ import annotations

import time

import numpy as np

from studio.core.requests import ImageRequest
from studio.core.results import Preview, Result
from studio.engines.base import Engine, Events, LoadSpec

LOADS: list[str] = []
LOAD_STARTS: list[str] = []


class StepEngine(Engine):
    """Model ids pick the behaviour: "…missing" fails to load; "…slow…" takes
    `load_seconds` to load, in small sleeps, like one long `from_pretrained` that no flag
    can interrupt; "…slow-checks…" looks at the cancel flag between its "components"."""

    kinds = ("image", "explore")
    step_seconds = 0.01
    load_seconds = 3.0

    @classmethod
    def load(cls, spec: LoadSpec, settings, events: Events) -> StepEngine:
        if spec.model.endswith("missing"):
            from studio.core.errors import ModelError

            raise ModelError(f"No model at {spec.model}.")
        LOAD_STARTS.append(spec.model)
        if "slow" in spec.model:
            deadline = time.perf_counter() + cls.load_seconds
            while time.perf_counter() < deadline:
                time.sleep(0.02)
                if "checks" in spec.model:
                    events.check_cancelled()
        LOADS.append(spec.model)
        return cls(spec)

    def generate(self, request: ImageRequest, events: Events) -> Result:
        if "boom" in request.prompt:
            raise RuntimeError("the engine exploded\nwith a second line")
        rng = np.random.default_rng(request.seed)
        h, w = request.height, request.width
        image = np.zeros((h, w, 3), np.uint8)
        for step in range(1, request.steps + 1):
            time.sleep(self.step_seconds)
            image[:] = rng.integers(0, 255, 3, dtype=np.uint8)
            events.progress(step, request.steps)
            if "words" in request.prompt:  # a text engine's stream, one word a step
                events.preview(Preview("text", f"w{step} ", step, request.steps))
            elif events.wants_previews():
                events.preview(Preview("image", image.copy(), step, request.steps))
        return Result(request, "image", images=[image], info={"seeds": [request.seed]})

    def memory_bytes(self) -> int:
        return 1000
