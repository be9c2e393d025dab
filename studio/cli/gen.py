"""`studio gen image|text|music`: one generation, headless, on the same engines as the GUI."""

from __future__ import annotations

import argparse
import importlib

MODALITIES = ("image", "text", "music")


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("gen", help="generate an image, text or music")
    kinds = gen.add_subparsers(dest="modality", parser_class=type(gen))
    for name in MODALITIES:
        importlib.import_module(f"studio.cli.gen_{name}").register(kinds)
