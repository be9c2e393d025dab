"""Does the built-in sketch model draw what the prompt asks? Colour and object hit rates.

    python benchmarks/sketch_adherence.py [--model builtin:sketch] [--seeds 4] [--steps 20]
        [--guidance 5] [--sampler DDIM] [--out models/sketch/adherence.json]
        [--grid models/sketch/heldout.png]

Renders the held-out colour × object prompts (`sketch_data.HELDOUT_PROMPTS`: never seen
word for word in training) through the app's own image engine, and scores each image
(`sketch_eval`): its dominant hue against the colour asked (chance 1/6) and, by the
object of its nearest training image (shape only, colour-blind), against the object asked
(chance 1/12), with a confusion summary (asked → judged → images). Also renders each
object with no colour word, to show how often its usual colour would have "hit" anyway,
and the judge's own ceiling (`sketch_eval.ceiling`: the real training images of the
objects, each judged with its own source left out; averaged over objects, over images, on
the emoji alone, and per object), to read the object rate against.
Prints the figures with the machine's load, and a render time per image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import machine_line  # noqa: E402
from studio.core.requests import ImageRequest  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.engines.base import Events, LoadSpec  # noqa: E402
from studio.engines.training import sketch_data, sketch_eval  # noqa: E402


def render_all(engine: object, prompts: list[str], seeds: int, steps: int, guidance: float,
               sampler: str) -> tuple[list[list[np.ndarray]], float]:
    """Each prompt's images (one per seed, as one batch); seconds per image."""
    out, spent = [], 0.0
    for prompt in prompts:
        req = ImageRequest(model="sketch", prompt=prompt, width=64, height=64, steps=steps,
                           guidance=guidance, batch_size=seeds, seed=1, scheduler=sampler)
        t0 = time.perf_counter()
        res = engine.generate(req, Events())  # type: ignore[attr-defined]
        spent += time.perf_counter() - t0
        out.append([np.asarray(im) for im in res.images])
    return out, spent / max(1, len(prompts) * seeds)


def measure(model: str = "builtin:sketch", seeds: int = 4, steps: int = 20,
            guidance: float = 5.0, sampler: str = "DDIM",
            pairs: tuple[tuple[str, str], ...] = sketch_data.HELDOUT) -> dict:
    """The figures as a dict (and the images, under "images", for a grid)."""
    import torch

    from studio.engines.image_diffusers import DiffusersImageEngine

    torch.set_num_threads(1)  # fastest for this size on busy cores
    engine = DiffusersImageEngine.load(LoadSpec(model, "cpu", "float32"), Settings(),
                                       Events())
    judge = sketch_eval.ObjectJudge.default()
    ceiling = sketch_eval.ceiling(judge)
    prompts = [sketch_data.colour_caption(c, o) for c, o in pairs]
    images, per_image = render_all(engine, prompts, seeds, steps, guidance, sampler)
    items = [(c, o, im) for (c, o), ims in zip(pairs, images, strict=True) for im in ims]
    held = sketch_eval.score(items, judge)
    objects = sorted({o for _c, o in pairs})
    plain, _ = render_all(engine, [f"a {o}" for o in objects], seeds, steps, guidance,
                          sampler)
    by_object = dict(zip(objects, plain, strict=True))
    baseline = sketch_eval.score([(c, o, im) for c, o in pairs for im in by_object[o]],
                                 judge)
    per_colour = {}
    for colour in sketch_data.COLOUR_NAMES:
        mine = [(c, o, im) for c, o, im in items if c == colour]
        if mine:
            per_colour[colour] = round(sketch_eval.score(mine, judge).colour_rate, 3)
    per_object = {o: round(sketch_eval.score([it for it in items if it[1] == o],
                                             judge).object_rate, 3) for o in objects}
    return {"model": model, "prompts": len(prompts), "seeds": seeds, "steps": steps,
            "guidance": guidance, "sampler": sampler, "heldout": held.as_dict(),
            "no_colour_word_baseline": baseline.as_dict(), "colour_rate_by_colour": per_colour,
            "object_rate_by_object": per_object,
            "object_confusion": sketch_eval.confusion(items, judge),
            "object_judge_ceiling": round(ceiling.balanced, 4),
            "object_judge_ceiling_detail": ceiling.as_dict(),
            "seconds_per_image": round(per_image, 3), "images": images, "prompt_list": prompts}


def grid(images: list[list[np.ndarray]], path: Path) -> None:
    """One row per prompt, one column per seed."""
    from PIL import Image

    rows = [np.concatenate(row, axis=1) for row in images]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:sketch")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--sampler", default="DDIM")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None)
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    found = measure(args.model, args.seeds, args.steps, args.guidance, args.sampler)
    images = found.pop("images")
    print(json.dumps(found, indent=2))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    if args.grid:
        grid(images, args.grid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
