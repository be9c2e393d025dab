"""The Lab's training recipes: one module per recipe, each a `Recipe` (see `base.py`).

`RECIPES` names each recipe's class by "module:Class" so that only the one that trains is
imported (a text LoRA needs peft, a GAN does not). The plain description of every recipe
(name, defaults, data it reads) is `studio.core.training.RECIPES`.
"""

from __future__ import annotations

import importlib

from studio.core.errors import RequestError
from studio.engines.training.base import Recipe

RECIPES: dict[str, str] = {
    "gan": "studio.engines.training.gan:GanRecipe",
    "vae": "studio.engines.training.vae:VaeRecipe",
    "composer": "studio.engines.training.composer:ComposerRecipe",
    "text": "studio.engines.training.text_lora:TextLoraRecipe",
    "lora": "studio.engines.training.sd_lora:SdLoraRecipe",
    "sketch": "studio.engines.training.sketch:SketchRecipe",
}


def recipe_class(recipe: str) -> type[Recipe]:
    """The Recipe subclass for a recipe id (one sentence for an unknown one)."""
    target = RECIPES.get(recipe)
    if target is None:
        known = ", ".join(sorted(RECIPES))
        raise RequestError(f"Unknown training recipe {recipe!r}; pick one of {known}.")
    module, _, name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("studio."):
            raise RequestError(f"The {recipe!r} recipe is not part of this build.") from None
        raise
    return cls
