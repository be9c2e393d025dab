"""`studio info FILE`: print the recipe stored in an output as JSON."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print the recipe stored in a file as JSON")
    p.add_argument("file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from studio.core.recipes import read_recipe

    recipe = read_recipe(args.file)
    print(json.dumps(recipe.to_dict(), indent=2, ensure_ascii=False))
    return 0
