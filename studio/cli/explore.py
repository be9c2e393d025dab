"""`studio explore walk|point`: the latent explorer, headless.

    studio explore walk  --model builtin:faces --frames 48 --anchors 1,2,3 --loop --out DIR
    studio explore point --model builtin:faces --anchors 1,2 --weights 0.3,0.7 \\
                         --direction pc1=1.5 --direction pc3=-2 --out DIR

A walk writes a GIF and an MP4 (or a numbered PNG folder without a video encoder); a point
writes one PNG. Each path is printed on its own line, and every file holds the recipe
(`studio info FILE`). `--variation SEED:STRENGTH` replays the steps taken by clicking
children of the GUI's variation grid. `walk --ray auto|local|HOST:PORT` renders the frames
on a Ray cluster's actors and writes the same walk here.
"""

from __future__ import annotations

import argparse

from studio.cli.batch import add_ray_flags, walk_on_cluster
from studio.cli.common import print_paths, run_request
from studio.core import families
from studio.core.errors import RequestError
from studio.core.explore import (
    EASINGS,
    ExploreRequest,
    parse_directions,
    resolve_direction_names,
    split_list,
)
from studio.core.requests import SCHEDULERS

#: frames of a fixed-size family (a GAN) are saved at this multiple of its native size,
#: unless --size says otherwise; other families default to DEFAULT_SIDE
FIXED_SIZE_SCALE = 4
DEFAULT_SIDE = 512


def _explorable_builtins() -> list[tuple[str, families.Family]]:
    """(id, family) of the built-ins the explorer can drive, as the descriptors say."""
    found = ((b.id, families.of_builtin(b.id)) for b in families.builtins())
    return [(i, f) for i, f in found if f is not None and f.explorable]


def default_size(model: str) -> tuple[int, int]:
    """(width, height) of a frame when --size is not given."""
    family = families.of_builtin(model)
    if family is not None and family.fixed_size and family.native_size:
        width, height = family.native_size
        return width * FIXED_SIZE_SCALE, height * FIXED_SIZE_SCALE
    return DEFAULT_SIDE, DEFAULT_SIDE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="walk, blend and vary in a model's latent space")
    modes = p.add_subparsers(dest="explore_mode", parser_class=type(p))
    walk = modes.add_parser("walk", help="render a walk through the anchors to GIF and MP4")
    _common(walk)
    walk.add_argument("--frames", type=int, default=48, help="number of frames (default 48)")
    walk.add_argument("--loop", action="store_true", help="return to the first anchor")
    walk.add_argument("--easing", default="ease-in-out", help=", ".join(EASINGS))
    walk.add_argument("--fps", type=int, default=12, help="frames per second (default 12)")
    add_ray_flags(walk)  # --ray: the frames on a Ray cluster (studio.cli.batch)
    walk.set_defaults(handler=run, mode="walk")

    point = modes.add_parser("point", help="render one point of the latent space to a PNG")
    _common(point)
    point.set_defaults(handler=run, mode="point")


def _common(p: argparse.ArgumentParser) -> None:
    builtins = _explorable_builtins()
    labelled = "; ".join(f"{f.prompt_label.lower()}s for {i}" for i, f in builtins
                         if f.conditional and f.prompt_label != "Prompt")
    p.add_argument("--model", required=True,
                   help=", ".join(i for i, _f in builtins) + " or a diffusers model")
    p.add_argument("--anchors", action="append", default=None,
                   help="anchor seeds, comma-separated (-1 draws one); 1 to 4")
    p.add_argument("--prompts", nargs="+", default=None,
                   help="one prompt per anchor (diffusion models"
                        + (f"; {labelled})" if labelled else ")"))
    p.add_argument("--prompt", default="", help="a prompt shared by every anchor")
    p.add_argument("--negative", default="")
    p.add_argument("--weights", default=None, help="blend weights, comma-separated")
    p.add_argument("--pad", default=None, help="pad position X,Y in 0..1 (instead of weights)")
    p.add_argument("--direction", action="append", default=[], metavar="K=V",
                   help="offset along a direction: pc3=1.5, a name you gave it, noise=0.2")
    p.add_argument("--variation", action="append", default=[], metavar="SEED:STRENGTH",
                   help="a variation step (what clicking a grid child records)")
    p.add_argument("--size", default=None,
                   help=f"frame size N or WxH (default: {FIXED_SIZE_SCALE}× native for "
                        f"fixed-size models such as GANs, {DEFAULT_SIDE} otherwise)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=7.0)
    p.add_argument("--scheduler", default="Euler", help=", ".join(SCHEDULERS))
    p.add_argument("--out", default=None, help="output folder (default: from settings)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _numbers(text: str | None, name: str, count: int | None = None) -> list[float]:
    if text is None:
        return []
    try:
        values = [float(v) for v in split_list(text)]
    except ValueError:
        raise RequestError(f"{name} must be numbers separated by commas, not {text!r}.") from None
    if count is not None and len(values) != count:
        raise RequestError(f"{name} needs {count} numbers, not {len(values)}.")
    return values


def _size(text: str | None, model: str) -> tuple[int, int]:
    if text is None:
        return default_size(model)
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise RequestError(f"--size must be N or WxH, not {text!r}.") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise RequestError(f"--size must be N or WxH, not {text!r}.")


def _variations(items: list[str]) -> tuple[list[int], list[float]]:
    seeds, strengths = [], []
    for item in items:
        seed, sep, strength = item.partition(":")
        try:
            seeds.append(int(seed))
            strengths.append(float(strength) if sep else 0.3)
        except ValueError:
            raise RequestError(f"A variation must look like SEED:STRENGTH, not {item!r}.") from None
    return seeds, strengths


def build_request(args: argparse.Namespace) -> ExploreRequest:
    """The ExploreRequest the command line describes (validated)."""
    mode = args.mode
    anchors = split_list(args.anchors) or (["-1", "-1"] if mode == "walk" else ["-1"])
    prompts = list(args.prompts or [])
    if prompts and len(prompts) == 1 and len(anchors) > 1:
        raise RequestError(f"Give one prompt per anchor ({len(anchors)}), or use --prompt.")
    if prompts and args.anchors is None and len(prompts) != len(anchors):
        anchors = ["-1"] * len(prompts)  # one random anchor per prompt
    weights = _numbers(args.weights, "--weights")
    pad = _numbers(args.pad, "--pad", 2) if args.pad is not None else [0.5, 0.5]
    directions = resolve_direction_names(args.model, parse_directions(args.direction))
    vseeds, vstrengths = _variations(args.variation)
    width, height = _size(args.size, args.model)
    data = {
        "model": args.model,
        "prompt": args.prompt,
        "negative": args.negative,
        "anchors": anchors,
        "prompts": prompts,
        "weights": weights,
        "pad_x": pad[0],
        "pad_y": pad[1],
        "directions": directions,
        "variation_seeds": vseeds,
        "variation_strengths": vstrengths,
        "mode": mode,
        "width": width,
        "height": height,
        "steps": args.steps,
        "guidance": args.guidance,
        "scheduler": args.scheduler,
    }
    for name in ("frames", "loop", "easing", "fps"):
        if hasattr(args, name):
            data[name] = getattr(args, name)
    request = ExploreRequest.from_dict(data)
    request.validate()
    return request  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    request = build_request(args)
    if getattr(args, "ray", None) is not None:
        return walk_on_cluster(request, args)
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
