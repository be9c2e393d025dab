"""Upscalers: ESRGAN / Real-ESRGAN / SwinIR-style networks through spandrel, and Lanczos.

spandrel (the library ComfyUI and chaiNNer use) detects the architecture and its
hyper-parameters from the weights, so one engine runs every upscaler family; the
catalog's classifier (`upscaler_layout`) only sorts them for the Models view. Weights
are read as safetensors, or as pickles only when the settings allow them (and then with
`weights_only`). Large pictures are upscaled in overlapping tiles blended with linear
ramps, so memory stays bounded; progress is reported and cancel is honoured per tile.

`upscale_array` is the entry point for the image engine's hires fix.
"""

from __future__ import annotations

import contextlib
import enum
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import families
from studio.core.errors import ModelError, RequestError
from studio.core.requests import Request
from studio.core.results import Result
from studio.core.settings import Settings
from studio.core.upscale import LANCZOS, UpscaleRequest
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.memory import is_out_of_memory

MAX_OUTPUT_SIDE = 16384
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")

Array = np.ndarray


# ------------------------------------------------------------------ pictures


def read_image(path: str | Path) -> Array:
    """An RGB uint8 (H, W, 3) array from any picture Pillow reads (one sentence if not)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if not p.is_file():
        raise RequestError(f"There is no picture at {p}.")
    try:
        with Image.open(p) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(f"{p.name} is not a picture Studio can read.") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def lanczos(image: Array, scale: float, size: tuple[int, int] | None = None) -> Array:
    """The picture resized with Pillow's Lanczos filter (×scale, or to `size` (w, h))."""
    from PIL import Image

    h, w = image.shape[:2]
    target = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    if target == (w, h):
        return image
    out = Image.fromarray(np.ascontiguousarray(image)).resize(target, Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8).copy()


def check_output_size(width: int, height: int, scale: int) -> None:
    if max(width, height) * scale > MAX_OUTPUT_SIDE:
        raise RequestError(
            f"A {width}×{height} picture ×{scale} would be larger than {MAX_OUTPUT_SIDE} px "
            f"on a side; downscale it or choose a smaller scale.")


# ------------------------------------------------------------------ tiles


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along one side: stride tile - overlap, the last one flush."""
    if tile <= 0 or length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_boxes(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of every tile in source pixels, row by row."""
    th = min(tile, height) if tile > 0 else height
    tw = min(tile, width) if tile > 0 else width
    return [(y, x, y + th, x + tw) for y in tile_starts(height, tile, overlap)
            for x in tile_starts(width, tile, overlap)]


def _ramp(n: int, ramp: int, at_start: bool, at_end: bool) -> Array:
    """Blend weights along one tile side: rising over `ramp` px at each inner edge."""
    w = np.ones(n, dtype=np.float32)
    if ramp <= 0:
        return w
    r = np.arange(1, n + 1, dtype=np.float32) / (ramp + 1)
    if at_start:
        w = np.minimum(w, r)
    if at_end:
        w = np.minimum(w, r[::-1])
    return w


def run_tiled(run: Callable[[Array], Array], image: Array, scale: int, tile: int, overlap: int,
              events: Events | None = None) -> Array:
    """Upscale float (H, W, 3) `image` in [0, 1] with `run` tile by tile.

    `run` maps an (h, w, 3) tile to (h·scale, w·scale, 3). Neighbouring tiles overlap by
    `overlap` source pixels and are blended with linear ramps there, so the result equals
    the untiled one wherever a single tile covers (away from the seams). Reports progress
    per tile and checks for cancel before each one.
    """
    h, w = image.shape[:2]
    boxes = tile_boxes(h, w, tile, overlap)
    out = np.zeros((h * scale, w * scale, 3), dtype=np.float32)
    weight = np.zeros((h * scale, w * scale, 1), dtype=np.float32)
    for i, (top, left, bottom, right) in enumerate(boxes):
        if events is not None:
            events.check_cancelled()
        piece = run(image[top:bottom, left:right])
        ph, pw = (bottom - top) * scale, (right - left) * scale
        if piece.shape[:2] != (ph, pw):
            raise ModelError(f"The upscaler returned a {piece.shape[1]}×{piece.shape[0]} tile "
                             f"for a {right - left}×{bottom - top} one at ×{scale}.")
        ramp = overlap * scale
        wy = _ramp(ph, ramp, top > 0, bottom < h)
        wx = _ramp(pw, ramp, left > 0, right < w)
        mask = (wy[:, None] * wx[None, :])[:, :, None]
        ys, xs = slice(top * scale, top * scale + ph), slice(left * scale, left * scale + pw)
        out[ys, xs] += piece * mask
        weight[ys, xs] += mask
        if events is not None:
            events.progress(i + 1, len(boxes), f"Tile {i + 1} of {len(boxes)}")
    return out / np.maximum(weight, 1e-8)


# ------------------------------------------------------------------ spandrel


@contextlib.contextmanager
def _torchvision_for_import() -> Iterator[None]:
    """Let `import spandrel` succeed where torchvision is missing or cannot load.

    spandrel imports two torchvision helpers at import time for two architectures that
    are not upscalers (LaMa inpainting, RestoreFormer faces). Where torchvision is
    absent (or its binary does not match torch), a stand-in module is present only for
    the duration of the import; those two architectures then fail when used, saying so,
    and nothing else in the process ever sees the stand-in.
    """
    try:
        import torchvision.transforms.functional  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        pass
    else:
        yield
        return

    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise ModelError("This model needs torchvision, which is not installed.")

    saved = {k: v for k, v in sys.modules.items() if k == "torchvision"
             or k.startswith("torchvision.")}
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = enum.Enum(  # type: ignore[attr-defined]
        "InterpolationMode", {"NEAREST": "nearest", "BILINEAR": "bilinear",
                              "BICUBIC": "bicubic"})
    functional.rotate = missing  # type: ignore[attr-defined]
    functional.normalize = missing  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    for name in list(saved):
        del sys.modules[name]
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional})
    try:
        yield
    finally:
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _spandrel() -> Any:
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    try:
        with _torchvision_for_import():
            import spandrel
    except ImportError as exc:
        raise ModelError("Upscaler models need the spandrel package: pip install spandrel."
                         ) from exc
    return spandrel


def read_state_dict(path: Path, allow_pickle: bool) -> dict[str, Any]:
    """The tensors of an upscaler file: safetensors, or a pickle read with weights_only."""
    suffix = path.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    if suffix not in PICKLE_SUFFIXES:
        raise ModelError(f"{path.name} is not an upscaler file (.safetensors or .pth).")
    if not allow_pickle:
        raise ModelError(f"{path.name} is a pickled checkpoint; turn on 'Allow pickled "
                         "checkpoints' in Settings to use it (it is read with weights_only).")
    import torch

    data = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("params_ema", "params", "state_dict"):  # BasicSR / Lightning wrappers
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} does not hold a state dict of tensors.")
    return data


def load_descriptor(path: Path, allow_pickle: bool = False) -> Any:
    """spandrel's ImageModelDescriptor for an upscaler file (one sentence if it is not one)."""
    spandrel = _spandrel()
    state = read_state_dict(path, allow_pickle)
    try:
        model = spandrel.ModelLoader().load_from_state_dict(
            spandrel.canonicalize_state_dict(state))
    except spandrel.UnsupportedModelError:
        raise ModelError(f"{path.name} is not an upscaler architecture Studio knows "
                         "(spandrel could not detect one from its weights).") from None
    if not isinstance(model, spandrel.ImageModelDescriptor) or model.input_channels != 3:
        raise ModelError(f"{path.name} is a {model.architecture.name} model, not an RGB "
                         "upscaler.")
    return model.eval()


# ------------------------------------------------------------------ the engine


class UpscaleEngine(Engine):
    """One upscaler: a spandrel model on a device, or Lanczos (`model` is None)."""

    kinds = ("upscale",)

    def __init__(self, spec: LoadSpec, model: Any = None) -> None:
        super().__init__(spec)
        self.model = model

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> UpscaleEngine:
        if is_lanczos(spec.model):
            return cls(spec)
        path = Path(spec.model).expanduser()
        if not path.is_file():
            raise ModelError(f"There is no upscaler file at {path}; put upscalers in "
                             "models/upscale (or an ESRGAN / upscale_models folder).")
        model = load_descriptor(path, settings.allow_pickle)
        import torch

        dtype = torch.float32
        if spec.device != "cpu":
            if spec.dtype == "float16" and model.supports_half:
                dtype = torch.float16
            elif spec.dtype == "bfloat16" and model.supports_bfloat16:
                dtype = torch.bfloat16
        return cls(spec, model.to(spec.device).to(dtype))

    @property
    def scale(self) -> int:
        """The network's own factor (Lanczos: any)."""
        return int(self.model.scale) if self.model is not None else 0

    def memory_bytes(self) -> int:
        if self.model is None:
            return 0
        return sum(p.numel() * p.element_size() for p in self.model.model.parameters())

    def unload(self) -> None:
        self.model = None

    def generate(self, request: Request, events: Events) -> Result:
        if not isinstance(request, UpscaleRequest):
            raise RequestError(wrong_kind(Path(request.model).name or request.model,
                                          request.kind, "upscale"))
        image = read_image(request.image)
        h, w = image.shape[:2]
        check_output_size(w, h, request.scale)
        out = self.upscale(image, request.scale, request.tile, request.tile_overlap, events)
        info = {"upscaler": Path(request.model).name or request.model,
                "source_size": [w, h], "size": [out.shape[1], out.shape[0]]}
        return Result(request, "image", images=[out], info=info)

    def upscale(self, image: Array, scale: int, tile: int = 512, overlap: int = 32,
                events: Events | None = None) -> Array:
        """A uint8 RGB picture `scale` times larger (tiles of `tile` source px, 0 = whole)."""
        h, w = image.shape[:2]
        target = (w * scale, h * scale)
        if self.model is None:
            if events is not None:
                events.progress(1, 1, "Lanczos")
            return lanczos(image, scale, target)
        src = image.astype(np.float32) / 255.0
        try:
            out = run_tiled(self._run, src, self.scale, tile, overlap, events)
        except Exception as exc:
            if tile == 0 and is_out_of_memory(exc):
                raise ModelError(f"A {w}×{h} picture is too large to upscale at once; set a "
                                 "tile size (e.g. 512 px) or downscale it.") from exc
            raise
        result = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return lanczos(result, 1, target)  # a ×4 network asked for ×2: resized to fit

    def _run(self, tile: Array) -> Array:
        import torch

        model = self.model
        param = next(model.model.parameters())
        x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None]
        with torch.inference_mode():
            y = model(x.to(param.device, param.dtype))
        return y[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def is_lanczos(model: str) -> bool:
    """Whether a model id names the built-in Lanczos upscaler ("lanczos" too)."""
    return model in ("lanczos", LANCZOS) or families.of_builtin(model) is families.UPSCALER_LANCZOS


def upscale_array(engine_or_model_id: UpscaleEngine | str, image: Array, scale: int, *,
                  settings: Settings | None = None, tile: int = 512, overlap: int = 32,
                  events: Events | None = None) -> Array:
    """Upscale a uint8 (H, W, 3) array ×scale: the hires fix's entry point.

    Pass a loaded `UpscaleEngine` to reuse it, or a model id ("builtin:lanczos",
    "lanczos", an upscaler file), which is loaded on the CPU for this call.
    """
    engine = engine_or_model_id
    if isinstance(engine, str):
        spec = LoadSpec(engine, "cpu", "float32")
        engine = UpscaleEngine.load(spec, settings or Settings(), events or Events())
    return engine.upscale(np.asarray(image, dtype=np.uint8), int(scale), tile, overlap, events)
