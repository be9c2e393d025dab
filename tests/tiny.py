"""Tiny real models built from configs, saved to disk, for tests and benchmarks.

They are loaded back with the app's own loaders, so the whole path is exercised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def clip_tokenizer_files(folder: Path) -> None:
    """A tiny byte-level CLIP BPE vocabulary written as vocab.json + merges.txt."""
    from transformers import CLIPTokenizer

    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in letters:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    merges = ["#version: 0.2"]
    for pair in ("r e", "e d</w>", "f o", "o x</w>", "c a", "a t</w>"):
        a, b = pair.split()
        vocab[a + b] = len(vocab)
        merges.append(pair)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)


def build_tiny_sd(folder: Path, *, sample_size: int = 16, block: int = 32, seed: int = 0) -> Path:
    """A tiny StableDiffusionPipeline (UNet, CLIP text encoder, VAE) saved as a diffusers folder.

    The VAE downsamples 8×, like the real one, so width/height follow the same rules.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(block, block * 2),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=sample_size * 8,
    )
    tok_dir = folder / "_tok"
    clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        )
    )
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = folder / "tiny-sd"
    pipe.save_pretrained(out, safe_serialization=True)
    import shutil

    shutil.rmtree(tok_dir)
    return out


def tiny_sdxl_pipe(
    tokenizers: tuple[Any, Any],
    text_encoders: Callable[[], tuple[Any, Any]],
    *,
    text_widths: tuple[int, int] = (32, 32),
    vae: int | Path = 4,
    sample_size: int = 16,
    transformer_layers: tuple[int, int] = (1, 1),
    norm_groups: int = 1,
    steps_offset: int = 0,
    seed: int = 0,
) -> Any:
    """A tiny StableDiffusionXLPipeline (not saved) around the caller's two CLIP text encoders.

    The UNet attends to both encoders' hidden states side by side and takes the second's
    pooled output, as in the real model, so it is built for `text_widths`. `vae` is a folder
    to load one from, or the number of blocks of a fresh one (each block but the last halves
    the size). The UNet, the VAE, then `text_encoders()` are made in that order after `seed`,
    so encoders drawn from the running seed come out the same every time.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=transformer_layers,
        projection_class_embeddings_input_dim=6 * 8 + text_widths[1],
        cross_attention_dim=sum(text_widths),
        norm_num_groups=norm_groups)
    if isinstance(vae, Path):
        autoencoder = AutoencoderKL.from_pretrained(vae)
    else:
        autoencoder = AutoencoderKL(
            block_out_channels=(8,) * vae, in_channels=3, out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * vae,
            up_block_types=("UpDecoderBlock2D",) * vae, latent_channels=4, norm_num_groups=4,
            sample_size=sample_size * 2 ** (vae - 1))
    text_encoder, text_encoder_2 = text_encoders()
    widths = (text_encoder.config.hidden_size, text_encoder_2.config.projection_dim)
    if widths != text_widths:
        raise ValueError(f"the text encoders are {widths} wide, not text_widths={text_widths}")
    return StableDiffusionXLPipeline(
        vae=autoencoder, unet=unet, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizers[0], tokenizer_2=tokenizers[1],
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                         beta_end=0.012, steps_offset=steps_offset,
                                         timestep_spacing="leading"))
