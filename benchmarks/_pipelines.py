"""Full-size (or scaled-down) SD 2.x / SDXL pipelines with random weights, built from the
offline configs in models/configs/ (no hub, no weights): what the CPU and GPU benchmarks
time. Random weights cost the same per step as trained ones; the pictures are noise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
CONFIGS = REPO / "models" / "configs"


def _json(path: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def build(family: str = "sd2", *, scale: int = 1, text_layers: int | None = None,
          vae_scale: int = 1, seed: int = 0) -> Any:
    """A StableDiffusion(XL)Pipeline of `family` ("sd2" | "sdxl") with random weights.

    scale > 1 divides the UNet's widths (a smaller-shape pipeline for quick runs and smoke
    tests); text_layers cuts the text encoders' depth; vae_scale divides the VAE's widths.
    At scale 1 every shape is the real model's.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    folder = CONFIGS / family
    torch.manual_seed(seed)
    unet_config = _json(folder / "unet" / "config.json")
    if scale > 1:
        unet_config["block_out_channels"] = [c // scale for c in unet_config["block_out_channels"]]
        heads = unet_config.get("attention_head_dim")
        if isinstance(heads, list) and family == "sdxl":  # SDXL: head width 64 → fewer heads
            unet_config["attention_head_dim"] = [max(1, h // scale) for h in heads]
        if family == "sdxl":
            unet_config["transformer_layers_per_block"] = [
                max(1, n // scale) for n in unet_config["transformer_layers_per_block"]]
        channels = unet_config["block_out_channels"]
        unet_config["norm_num_groups"] = max(
            g for g in range(1, 33) if all(c % g == 0 for c in channels))
    vae_config = _json(folder / "vae" / "config.json")
    if vae_scale > 1:
        widths = vae_config["block_out_channels"]
        vae_config["block_out_channels"] = [c // vae_scale for c in widths]
        vae_config["norm_num_groups"] = min(vae_config.get("norm_num_groups", 32),
                                            min(vae_config["block_out_channels"]))

    def text(sub: str, cls: Any) -> Any:
        config = CLIPTextConfig(**_json(folder / sub / "config.json"))
        if text_layers:
            config.num_hidden_layers = min(config.num_hidden_layers, text_layers)
        return cls(config).eval()

    unet = UNet2DConditionModel(**unet_config).eval()
    vae = AutoencoderKL(**vae_config).eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    scheduler_config = _json(folder / "scheduler" / "scheduler_config.json")
    if family == "sdxl":
        return StableDiffusionXLPipeline(
            vae=vae, unet=unet, tokenizer=tokenizer,
            tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
            text_encoder=text("text_encoder", CLIPTextModel),
            text_encoder_2=text("text_encoder_2", CLIPTextModelWithProjection),
            scheduler=EulerDiscreteScheduler.from_config(scheduler_config))
    return StableDiffusionPipeline(
        vae=vae, unet=unet, tokenizer=tokenizer, text_encoder=text("text_encoder", CLIPTextModel),
        scheduler=DDIMScheduler.from_config(scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)


def tiny_autoencoder(seed: int = 0) -> Any:
    """TAESD's architecture (diffusers' AutoencoderTiny defaults) with random weights."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny().eval()


def params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def engine_for(pipe: Any, family: str, *, device: str, dtype: str, taesd: Any = None,
               name: str = "random") -> Any:
    """The Studio image engine around an already built pipeline (as its loader would
    make it: progress bar off, on the device, the scheduler config kept)."""
    from studio.engines.base import LoadSpec
    from studio.engines.image_diffusers import DiffusersImageEngine

    pipe.set_progress_bar_config(disable=True)
    spec = LoadSpec(f"bench:{name}", device, dtype)
    return DiffusersImageEngine(spec, pipe, family, name,
                                scheduler_config=dict(pipe.scheduler.config), taesd=taesd,
                                source="random weights")
