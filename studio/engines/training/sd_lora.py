"""LoRA for Stable Diffusion: teach an SD 1.x/2.x/SDXL model a style or a subject from a
folder of images, and export a kohya-format LoRA the image engine loads at once.

The recipe, as kohya's `train_network.py` does it: each image is captioned by its `.txt`
sidecar or else its file name (with the trigger word in front), sorted into an
aspect-ratio bucket of about resolution² pixels (a batch is one bucket, so portraits are
not cropped square), encoded once by the VAE and the frozen text encoder(s); a peft LoRA
on the UNet's attention projections (to_q/k/v/out) learns to predict the noise added at
a random timestep (MSE; the velocity for v-prediction models). The base model is loaded
by the image engine's own loader and never changed; only the adapter's weights train.

Precision (`precision_for`): on a CUDA GPU the frozen base is loaded in half precision
(bfloat16 where the GPU has it, else float16) to halve its memory, and the UNet's forward
runs under autocast in that dtype, with a GradScaler for float16 (whose narrow range
underflows small gradients); the LoRA's own weights and the optimizer stay float32, so
updates are not rounded away. Anywhere else everything is float32, as before. The choice
is written in the model card.

The finished LoRA is written with kohya's key names and `ss_base_model_version`
(`engines/lora.py`), so A1111 and ComfyUI read it too.

The built-in sketch model (`builtin:sketch`, an SD pipeline whose text encoder is MiniLM)
trains by the same recipe; only three things differ, each in its own method: captions are
encoded by its own MiniLM encoding (`sketch_text.encode_captions`, what it was trained on),
images train at its native 64 px in buckets of its VAE's factor (4), and the LoRA says
`ss_base_model_version` "studio_sketch_v1", so the engine offers it to the sketch model and
refuses it for SD (and an SD LoRA for the sketch).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from studio.core import families
from studio.core.atomic import atomic_write_bytes
from studio.core.catalog.classify import SKETCH_LORA_VERSION
from studio.core.errors import StudioError
from studio.core.settings import Settings
from studio.core.training import DataReport, TrainConfig, TrainingError
from studio.engines import sketch_text
from studio.engines.base import Events, LoadSpec
from studio.engines.devices import cpu_generator
from studio.engines.lora import kohya_bytes
from studio.engines.training.base import Recipe, Sample
from studio.engines.training.data import (
    ImageItem,
    bucket_for,
    buckets,
    fit,
    load_rgb,
    require_usable,
    scan_images,
    split,
)

ADAPTER = "studio_train"
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
#: kohya's ss_base_model_version for each latent family
BASE_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0",
                 "sketch": SKETCH_LORA_VERSION}
SAMPLE_SEEDS = (0, 1)
SAMPLE_STEPS = 20


# ------------------------------------------------------------------ precision


@dataclass(frozen=True)
class Precision:
    """How the UNet trains: `compute` is the autocast dtype of its forward (None: float32
    throughout), `base` the dtype the frozen base model is loaded in, `scaled` whether the
    loss goes through a GradScaler (float16 only). The LoRA weights are always float32."""

    compute: str | None  # "bfloat16" | "float16" | None
    base: str  # "float32" | "bfloat16" | "float16"
    scaled: bool = False

    @property
    def mixed(self) -> bool:
        return self.compute is not None

    def describe(self) -> str:
        """The model card's line."""
        if self.compute is None:
            return "float32"
        scaling = ", loss scaling" if self.scaled else ""
        return (f"mixed: {self.compute} autocast for the UNet, base model in {self.base}, "
                f"LoRA weights in float32{scaling}")


FP32 = Precision(None, "float32")


def precision_for(device: str, bf16: bool | None = None) -> Precision:
    """The rule: a CUDA device trains in mixed precision (bfloat16 where the GPU supports
    it, else float16 with loss scaling), with the base loaded in that dtype; any other
    device (CPU, MPS) in float32. `bf16` overrides the GPU's answer (tests)."""
    if not device.startswith("cuda"):
        return FP32
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    half = "bfloat16" if bf16 else "float16"
    return Precision(half, half, scaled=not bf16)


# ------------------------------------------------------------------ the recipe


@dataclass
class Encoded:
    """One image as the UNet trains on it: its latents and its caption's conditioning."""

    latents: torch.Tensor  # [4, h/8, w/8]
    embeds: torch.Tensor  # [tokens, dim]: 77 CLIP tokens, or the sketch's 16 MiniLM ones
    pooled: torch.Tensor | None  # SDXL's pooled text embedding
    size: tuple[int, int]  # (width, height) in pixels
    caption: str


class SdLoraRecipe(Recipe):
    """A LoRA on the UNet of an SD 1.x/2.x/SDXL or the sketch model (module docstring)."""

    id: ClassVar[str] = "lora"

    def __init__(self, config: TrainConfig, device: str = "cpu",
                 precision: Precision | None = None) -> None:
        if families.of_builtin(config.base) is families.SKETCH:
            # the sketch model knows one size: the run's config (card, "train again") says it
            side = families.SKETCH.native_size[0] if families.SKETCH.native_size else 64
            config = dataclasses.replace(config, resolution=side)
        super().__init__(config, device)
        self.precision = precision or precision_for(device)
        self.scaler: torch.amp.GradScaler | None = None
        self.engine: Any = None
        self.pipe: Any = None
        self.items: list[ImageItem] = []
        self.train: list[Encoded] = []
        self.val: list[Encoded] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.noise_scheduler: Any = None
        self.generator = torch.Generator().manual_seed(config.seed)
        self.order_rng = np.random.default_rng(config.seed)
        self.batches: list[list[int]] = []  # this epoch's batches (indices into train)
        self.position = 0  # the next batch of `batches`
        self.epoch = 0

    # data ------------------------------------------------------------------------------
    def check_data(self) -> DataReport:
        images, report = scan_images(Path(self.config.data).expanduser())
        require_usable(report)
        self.items = list(images.items)
        return report

    def caption(self, item: ImageItem) -> str:
        trigger = self.config.trigger.strip()
        return f"{trigger}, {item.caption}" if trigger and item.caption else \
            trigger or item.caption

    # setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        from diffusers import DDPMScheduler

        from studio.engines.image_diffusers import DiffusersImageEngine

        if not self.items:
            self.check_data()
        torch.manual_seed(self.config.seed)
        try:
            self.engine = DiffusersImageEngine.load(
                LoadSpec(self.config.base, self.device, self.precision.base), Settings.load(),
                Events())
        except StudioError as exc:
            raise TrainingError(f"The base model could not be loaded: {exc}") from None
        pipe = self.pipe = self.engine.pipe
        if self.engine.family not in BASE_VERSIONS:
            raise TrainingError(f"{self.engine.name} is not a Stable Diffusion model (or the "
                                "built-in sketch model) a LoRA can be trained on.")
        for module in (pipe.unet, pipe.vae, getattr(pipe, "text_encoder", None),
                       getattr(pipe, "text_encoder_2", None)):
            if module is not None:
                module.requires_grad_(False)
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        train_ix, val_ix = split(len(self.items), self.config.val_split, self.config.seed)
        self.train = [self._encode(self.items[i]) for i in train_ix]
        self.val = [self._encode(self.items[i]) for i in val_ix]
        self._add_lora()
        self._new_epoch()

    def _add_lora(self) -> None:
        from peft import LoraConfig

        unet = self.pipe.unet
        unet.add_adapter(LoraConfig(r=self.config.rank, lora_alpha=self.config.alpha,
                                    target_modules=TARGETS, init_lora_weights="gaussian"),
                         adapter_name=ADAPTER)
        unet.set_adapters([ADAPTER])
        params = [p for n, p in unet.named_parameters() if ADAPTER in n]
        for p in params:
            # peft casts an adapter to its base layer's dtype; the trained weights stay
            # float32 (a no-op on a float32 base) so that small updates are not lost
            p.data = p.data.to(torch.float32)
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=1e-2)
        if self.precision.scaled:
            self.scaler = torch.amp.GradScaler(self._device_type())

    def _device_type(self) -> str:
        return torch.device(self.device).type

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        """The UNet's forward in the compute dtype (nothing at all in float32)."""
        if self.precision.compute is None:
            yield
            return
        dtype = getattr(torch, self.precision.compute)
        with torch.autocast(self._device_type(), dtype=dtype):
            yield

    def _is_sketch(self) -> bool:
        return sketch_text.is_sketch_pipe(self.pipe)

    def _resolution(self) -> int:
        """The side images train at: the config's, but the sketch model's native 64 px for
        it (it knows no other size; the recipe's 512 px default would be 64× the work)."""
        if self._is_sketch():
            return families.SKETCH.native_size[0]
        return self.config.resolution

    def _step_size(self) -> int:
        factor = int(getattr(self.pipe, "vae_scale_factor", 8))
        return 64 if self._resolution() >= 256 else factor

    @torch.no_grad()
    def _encode(self, item: ImageItem) -> Encoded:
        options = buckets(self._resolution(), self._step_size())
        width, height = bucket_for(item.width, item.height, options)
        image = fit(load_rgb(item.path), width, height)  # transparency on white, cropped
        pixels = torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)
        pixels = pixels.permute(2, 0, 1)[None]
        latents = self._latents(pixels)
        caption = self.caption(item)
        embeds, pooled = self._caption_embeds(caption)
        return Encoded(latents[0], embeds, pooled, (width, height), caption)

    def _caption_embeds(self, caption: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A caption's UNet conditioning [tokens, dim] and SDXL's pooled embedding: the
        pipeline's own CLIP encoding, or the sketch model's MiniLM one."""
        if self._is_sketch():
            return sketch_text.encode_captions(self.pipe, [caption])[0], None
        out = self.pipe.encode_prompt(prompt=caption, device=self.device,
                                      num_images_per_prompt=1,
                                      do_classifier_free_guidance=False)
        pooled = out[2][0] if len(out) == 4 and out[2] is not None else None
        return out[0][0], pooled

    def _latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VAE's scaled latents, float32. A float16 VAE that overflows in float16
        (SDXL's: `force_upcast` in its config) encodes in float32 for the moment."""
        vae = self.pipe.vae
        upcast = vae.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
        if upcast:
            vae.to(torch.float32)
        try:
            pixels = pixels.to(self.device, vae.dtype)
            latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
        finally:
            if upcast:
                vae.to(torch.float16)
        return latents.float()

    # the order of the data -------------------------------------------------------------
    def _new_epoch(self) -> None:
        """Batches of one bucket each, in a seeded order."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(self.train):
            by_size.setdefault(item.size, []).append(i)
        batches: list[list[int]] = []
        for size in sorted(by_size):
            members = [by_size[size][j] for j in self.order_rng.permutation(len(by_size[size]))]
            batches += [members[k:k + self.config.batch]
                        for k in range(0, len(members), self.config.batch)]
        self.batches = [batches[j] for j in self.order_rng.permutation(len(batches))]
        self.position = 0

    def _next_batch(self) -> list[Encoded]:
        if self.position >= len(self.batches):
            self.epoch += 1
            self._new_epoch()
        batch = self.batches[self.position]
        self.position += 1
        return [self.train[i] for i in batch]

    # training --------------------------------------------------------------------------
    def _loss(self, batch: list[Encoded], generator: torch.Generator) -> torch.Tensor:
        latents = torch.stack([b.latents for b in batch])
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        steps = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(0, steps, (len(batch),), generator=generator).to(self.device)
        unet = self.pipe.unet
        # the UNet's inputs in its weights' dtype (no-ops in float32)
        noisy = self.noise_scheduler.add_noise(latents, noise, t).to(unet.dtype)
        embeds = torch.stack([b.embeds for b in batch]).to(unet.dtype)
        kwargs: dict[str, Any] = {}
        if batch[0].pooled is not None:  # SDXL: pooled text and the size conditioning
            w, h = batch[0].size
            ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=embeds.dtype, device=self.device)
            pooled = torch.stack([b.pooled for b in batch])  # type: ignore[misc]
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(unet.dtype),
                                           "time_ids": ids.repeat(len(batch), 1)}
        with self._autocast():
            pred = unet(noisy, t, encoder_hidden_states=embeds, **kwargs).sample
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def train_step(self) -> float:
        assert self.optimizer is not None, "setup() first"
        self.pipe.unet.train()
        loss = self._loss(self._next_batch(), self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # float16: scaled so that small gradients survive
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if not self.val:
            return None
        self.pipe.unet.eval()
        fixed = torch.Generator().manual_seed(self.config.seed + 1)  # the same noise each time
        losses = [float(self._loss([item], fixed)) for item in self.val]
        return sum(losses) / len(losses)

    @torch.no_grad()
    def samples(self) -> list[Sample]:
        self.pipe.unet.eval()
        caption = (self.train or self.val)[0].caption
        width, height = (self.train or self.val)[0].size
        out = []
        for seed in SAMPLE_SEEDS:
            images = self.pipe(**self._sample_prompt(caption),
                               num_inference_steps=SAMPLE_STEPS, width=width, height=height,
                               generator=cpu_generator(seed), output_type="np").images
            array = (np.clip(np.asarray(images[0]), 0, 1) * 255).round().astype(np.uint8)
            out.append(Sample("image", array, f"seed {seed}: {caption}"))
        return out

    def _sample_prompt(self, caption: str) -> dict[str, Any]:
        """The pipeline's prompt arguments for a sample: the caption (CLIP encodes it), or
        the sketch model's MiniLM states and its own guidance."""
        if not self._is_sketch():
            return {"prompt": caption, "guidance_scale": 7.0}
        cond, uncond = sketch_text.encode_captions(self.pipe, [caption, ""]).chunk(2)
        return {"prompt_embeds": cond, "negative_prompt_embeds": uncond,
                "guidance_scale": families.SKETCH.default_guidance}

    # checkpoints and export ------------------------------------------------------------
    def lora_state(self) -> dict[str, torch.Tensor]:
        """The adapter's weights, keyed as diffusers' save_lora_weights keys them."""
        from peft.utils import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.pipe.unet, adapter_name=ADAPTER)
        return {f"unet.{k}": v.detach().cpu().clone() for k, v in state.items()}

    def state_dict(self) -> dict[str, Any]:
        assert self.optimizer is not None, "setup() first"
        # a copy: the optimizer's moments change in place with every later step
        state: dict[str, Any] = {
            "lora": self.lora_state(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "generator": self.generator.get_state(),
            "order": self.order_rng.bit_generator.state,
            "batches": [list(b) for b in self.batches], "position": self.position,
            "epoch": self.epoch}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from peft.utils import set_peft_model_state_dict

        assert self.optimizer is not None, "setup() first"
        weights = {k.removeprefix("unet."): v for k, v in state["lora"].items()}
        set_peft_model_state_dict(self.pipe.unet, weights, adapter_name=ADAPTER)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.order_rng.bit_generator.state = state["order"]
        self.batches = [list(b) for b in state["batches"]]
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def export(self, out_dir: Path) -> Path:
        """`<out_dir>/<name>.safetensors` in kohya's format: `<lora:name:1>` at once."""
        state = self.lora_state()
        modules = {k.rsplit(".lora_", 1)[0] for k in state}
        data = kohya_bytes(state, base=BASE_VERSIONS[self.engine.family],
                           xl=self.engine.family == "sdxl", name=self.config.name,
                           alphas={m: float(self.config.alpha) for m in modules})
        return atomic_write_bytes(Path(out_dir) / f"{self.config.name}.safetensors", data)

    def card_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"Base model": self.config.base,
                                 "LoRA": f"rank {self.config.rank}, alpha {self.config.alpha:g} "
                                         "on the UNet's attention (to_q, to_k, to_v, to_out)"}
        if self.engine is not None:
            facts["Family"] = self.engine.family
            if self._is_sketch():
                facts["Resolution"] = (f"{self._resolution()} px, the sketch model's own size "
                                       "(the Resolution setting is for SD bases)")
        facts["Precision"] = self.precision.describe()
        if self.config.trigger:
            facts["Trigger word"] = self.config.trigger
        sizes = sorted({f"{e.size[0]}×{e.size[1]}" for e in self.train})
        if sizes:
            facts["Buckets"] = ", ".join(sizes)
        return facts
