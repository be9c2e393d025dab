"""`studio upscale IMG --model NAME|lanczos --scale N`: a picture ×2 or ×4, saved with its recipe.

    studio upscale photo.png --model lanczos --scale 2
    studio upscale photo.png --model 4x-UltraSharp --scale 4 --tile 256 --out upscaled/

NAME is an upscaler file (a path) or the name of one found in the model folders
(`models/upscale`, A1111 `models/ESRGAN`, ComfyUI `models/upscale_models`, ...);
`lanczos` is the built-in fallback. Prints the written path; bad input is one line on
stderr and exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import add_fields, field_values, print_paths, run_request, settings_for
from studio.core.errors import RequestError
from studio.core.upscale import LANCZOS, UpscaleRequest

FIELDS = ("scale", "tile", "tile_overlap")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale a picture ×2 or ×4 (an upscaler model or Lanczos)")
    p.add_argument("image", help="the picture to upscale")
    p.add_argument("--model", default="lanczos",
                   help="an upscaler file or its name in the model folders, or lanczos "
                        "(default)")
    add_fields(p, UpscaleRequest, FIELDS)
    p.add_argument("--out", default=None, help="output folder (default: from settings)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (default when not a terminal)")
    p.set_defaults(handler=run)


def resolve_model(name: str, args: argparse.Namespace) -> str:
    """The model id for NAME: Lanczos, an existing file, or an upscaler the catalog lists."""
    if name.strip().lower() in ("lanczos", LANCZOS):
        return LANCZOS
    path = Path(name).expanduser()
    if path.is_file():
        return str(path.resolve())
    from studio.core import catalog

    wanted = name.strip().lower()
    found = [e for e in catalog.iter_scan(settings_for(args), hf_cache=False)
             if e.descriptor is not None and e.descriptor.serves("upscale")
             and wanted in (e.name.lower(), Path(e.id).name.lower())]
    if not found:
        raise RequestError(f"No upscaler named {name!r}: give a file, the name of one in "
                           "models/upscale, or lanczos.")
    return found[0].id


def build_request(args: argparse.Namespace) -> UpscaleRequest:
    image = Path(args.image).expanduser()
    if not image.is_file():
        raise RequestError(f"There is no picture at {image}.")
    request = UpscaleRequest.from_dict({
        "model": resolve_model(args.model, args),
        "image": str(image.resolve()),
        **field_values(args, FIELDS),
    })
    assert isinstance(request, UpscaleRequest)
    return request


def run(args: argparse.Namespace) -> int:
    _result, paths = run_request(build_request(args), args)
    print_paths(paths)
    return 0
