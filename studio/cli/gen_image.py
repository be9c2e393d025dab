"""`studio gen image`: text-to-image, img2img, inpainting, outpainting and the hires fix;
prints each written path on its own line."""

from __future__ import annotations

import argparse

from studio.cli.common import add_common, add_fields, field_values, print_paths, run_request
from studio.core.fields import spec
from studio.core.requests import INPAINT_AREAS, SAMPLERS, SCHEDULES, ImageRequest

FIELDS = ("negative", "steps", "guidance", "width", "height", "scheduler", "schedule",
          "clip_skip", "vae", "batch_size", "variation_seed", "variation_strength")
#: img2img / inpainting / hires fix flags (--init, --strength, --mask, …)
MODE_FIELDS = ("init_image", "strength", "mask", "mask_blur", "inpaint_area", "inpaint_padding",
               "hires_scale", "hires_steps", "hires_strength", "hires_upscaler")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="text to image, img2img, inpainting, hires fix")
    add_common(p)
    add_fields(p, ImageRequest, FIELDS, help_extra={"scheduler": ", ".join(SAMPLERS),
                                                    "schedule": ", ".join(SCHEDULES)})
    add_fields(p, ImageRequest, MODE_FIELDS,
               help_extra={"inpaint_area": " | ".join(INPAINT_AREAS)})
    outpaint = spec(ImageRequest, "outpaint")
    p.add_argument(outpaint.flag, dest="outpaint", default="0,0,0,0", metavar="L,T,R,B",
                   help=outpaint.tip)
    lora = spec(ImageRequest, "loras")
    p.add_argument(lora.flag, dest="loras", action="append", default=[],
                   metavar="NAME:WEIGHT", help=lora.tip)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = ImageRequest.from_dict(
        {"model": args.model, "prompt": args.prompt, "seed": args.seed,
         **field_values(args, FIELDS), **field_values(args, MODE_FIELDS),
         "outpaint": args.outpaint, "loras": args.loras}
    )
    _result, paths = run_request(request, args)
    print_paths(paths)
    return 0
