"""The "sketch" recipe: a small latent diffusion model in the shape of Stable Diffusion,
trained from scratch on clip art and emoji (`sketch_data.py`).

Three parts, in diffusers classes so the result is an ordinary pipeline folder:
- a small `AutoencoderKL` (64×64 RGB ↔ 4×16×16 latents), trained first, on 32×32 crops
  (it is fully convolutional; crops cost a quarter of full images);
- a small `UNet2DConditionModel` that predicts the noise of latents, cross-attending to
- the frozen all-MiniLM-L6-v2 encoder's token states (`sketch_text.py`; 16 tokens, 384-d),
  in place of SD's CLIP; or (`config.text == "trained"`) those of a 2-layer, 128-wide BERT
  on MiniLM's tokenizer, trained with the UNet from scratch (`sketch_text.small_bert`).

One run, two phases: the first `vae_steps(config.steps)` steps train the autoencoder
(reconstruction MSE + a tiny KL), the rest the UNet (noise-prediction MSE under SD's
scaled-linear DDPM schedule, 10 % empty captions for classifier-free guidance, samples
drawn by `SketchData.weights`, the learning rate decayed on a cosine to a tenth). The UNet
that is sampled, validated and exported is an exponential moving average of the trained
one (`EMA_DECAY`): on a short run it is the difference between noise and a picture. Latents
and caption embeddings are computed the first time a sample is drawn and kept, so each
costs once. Data order and noise come from generators seeded by (seed, step): a resumed run
draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes
from studio.core.prompts import Fragment
from studio.core.training import DataReport, TrainingError
from studio.engines.training import sketch_data
from studio.engines.training.base import Recipe, Sample

#: the share of the steps that train the autoencoder before the UNet starts
VAE_SHARE = 0.15
CROP = 32
LATENT = 16  # latent side for 64×64 images (the VAE downsamples 4×)
CFG_DROPOUT = 0.1
#: extra weight on colour (RGB minus its grey) in the autoencoder's loss: plain MSE is
#: dominated by brightness, and a short first run learned shapes in sepia, its latents
#: holding no colour at all (a linear probe's R² for chroma was 0), so no prompt could
#: colour them
CHROMA_WEIGHT = 3.0
SAMPLE_PROMPTS = ("a red heart", "a blue car", "a yellow star", "a green tree",
                  "a purple cat", "an orange fish")
TRAIN_TIMESTEPS = 1000
EMA_DECAY = 0.999
WARMUP = 100
#: the autoencoder's learning rate falls on a cosine to this share of it at its last step:
#: at a constant rate where it stopped was luck, and one run's autoencoder stopped where
#: it turned yellow into amber (every yellow prompt then judged orange)
VAE_LR_FLOOR = 0.02
#: … and the UNet's, after its warm-up
UNET_LR_FLOOR = 0.1


def cosine(done: float, floor: float) -> float:
    """A learning-rate factor falling on a half cosine from 1 (done 0) to `floor` (done 1)."""
    return floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def set_lr(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def vae_steps(steps: int) -> int:
    return max(1, int(steps * VAE_SHARE)) if steps > 1 else 0


def build_vae() -> Any:
    """The autoencoder: 3 levels (16, 32, 64 channels), 64×64 → 4×16×16."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64), layers_per_block=1, latent_channels=4,
        norm_num_groups=16, sample_size=64)


#: the UNet's channels per level by `TrainConfig.width` ("" is the standard): the wide one
#: puts its extra parameters at the two levels that cross-attend to the text
UNET_CHANNELS = {"": (64, 96, 128), "standard": (64, 96, 128), "wide": (80, 128, 160)}


def build_unet(context: int | None = None, width: str = "") -> Any:
    """The denoiser: 16×16 → 8×8 → 4×4 (`UNET_CHANNELS[width]`), cross-attention to the
    text's token states (`context` wide: MiniLM's 384 by default) at the two lower levels
    and the middle."""
    from diffusers import UNet2DConditionModel

    from studio.engines.sketch_text import HIDDEN

    return UNet2DConditionModel(
        sample_size=LATENT, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=UNET_CHANNELS[width],
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=context or HIDDEN, attention_head_dim=4, norm_num_groups=16)


def build_scheduler() -> Any:
    """SD's training schedule (scaled linear betas, epsilon prediction)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_start=0.00085,
                         beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


class SketchRecipe(Recipe):
    """Trains the built-in sketch model (see the module docstring)."""

    id = "sketch"

    def __init__(self, config: Any, device: str = "cpu") -> None:
        super().__init__(config, device)
        self.data: sketch_data.SketchData | None = None
        self.vae: Any = None
        self.unet: Any = None
        self.ema: Any = None
        self.trains_text = False
        self.vae_val_mse: float | None = None  # the autoencoder's, when its phase ended
        self.vae_colour_kept: float | None = None  # … and the colours it kept
        self.vae_total = 0
        self.step = 0

    # ------------------------------------------------------------------ data
    def _sources(self) -> tuple[Path, list[str] | None]:
        folder = Path(self.config.data).expanduser()
        if not folder.is_dir():
            raise TrainingError(f"The data folder {folder} does not exist.")
        return folder, sketch_data.read_emoji_list(folder)

    def check_data(self) -> DataReport:
        folder, emoji = self._sources()
        pngs = sorted(folder.rglob("*.png"))
        named = sketch_data.named_emoji(emoji)
        n_emoji = len(named) if sketch_data.EMOJI_FONT.is_file() else 0
        n_emojione = sum(1 for e in named if e.core and sketch_data.emojione_file(e.cp).is_file())
        if not pngs and not n_emoji + n_emojione:
            raise TrainingError(f"{folder} has no PNG clip art and no emoji are installed: "
                                "nothing to train the sketch model on.")
        notes = [f"{n_emoji} Noto emoji (CLDR names) join the clip art." if n_emoji else
                 "The Noto emoji font is not installed: no Noto emoji.",
                 f"{n_emojione} EmojiOne emoji (ruby-gemojione) join them." if n_emojione else
                 "ruby-gemojione is not installed: no EmojiOne emoji."]
        for d in sketch_data.FONT_DRAWINGS:
            notes.append(f"{d.count} {d.noun} drawings from {d.package} join them." if d.count
                         else f"{d.package} is not installed: no {d.noun} drawings from it.")
        notes.append(f"Every image is also recoloured; {len(sketch_data.HELDOUT)} colour × "
                     "object pairs are held out for the benchmark.")
        found = len(pngs) + n_emoji + n_emojione + sum(d.count for d in sketch_data.FONT_DRAWINGS)
        return DataReport(folder=str(folder), found=found, usable=found, notes=tuple(notes),
                          captions=found, sizes="fitted to 64×64")

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch

        from studio.engines import sketch_text

        folder, emoji = self._sources()
        self.data = sketch_data.build(folder, emoji, seed=self.config.seed)
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.vae = build_vae().to(self.device)
        self.trains_text = cfg.text == "trained"
        if self.trains_text:  # a small BERT learnt with the UNet, MiniLM's tokenizer
            self.text_model = sketch_text.small_bert().to(self.device)
            self.text = sketch_text.MiniLM(sketch_text.load_tokenizer(), self.text_model)
            context = sketch_text.SMALL_HIDDEN
        else:  # the packaged MiniLM, frozen
            self.text = sketch_text.MiniLM.load(self.device)
            context = sketch_text.HIDDEN
        self.unet = build_unet(context, cfg.width).to(self.device)
        self.ema = _frozen_copy(self.unet)
        self.pairs = [(self.ema, self.unet)]  # (the average, what it averages)
        self.eval_text = self.text  # what samples and validation read the captions with
        if self.trains_text:
            self.ema_text = _frozen_copy(self.text_model)
            self.pairs.append((self.ema_text, self.text_model))
            self.eval_text = sketch_text.MiniLM(self.text.tokenizer, self.ema_text)
        self.scheduler = build_scheduler()
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.trained = [p for _e, m in self.pairs for p in m.parameters()]
        self.unet_opt = torch.optim.AdamW(self.trained, lr=cfg.lr, weight_decay=1e-4)
        self.vae_total = vae_steps(cfg.steps)
        entries = self.data.entries
        order = np.random.default_rng(cfg.seed).permutation(len(entries))
        n_val = min(len(entries) - 1, max(1, round(len(entries) * cfg.val_split))) \
            if cfg.val_split > 0 and len(entries) > 1 else 0
        self.val_idx = np.sort(order[:n_val])
        self.train_idx = np.sort(order[n_val:])
        w = self.data.weights()[self.train_idx]
        self.train_p = w / w.sum()
        cached = 0 if self.trains_text else len(self.data.captions)  # its states change
        self.emb = np.zeros((cached, sketch_text.TOKENS, context), np.float16)
        self.emb_done = np.zeros(len(self.data.captions), bool)
        self.lat = np.zeros((len(entries), 4, LATENT, LATENT), np.float32)
        self.lat_done = np.zeros(len(entries), bool)
        self.scale = 1.0
        self.step = 0

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, self.step, salt])

    def _gen(self, salt: int) -> Any:
        import torch

        return torch.Generator().manual_seed(
            (self.config.seed * 1_000_003 + self.step * 7919 + salt) % (2**63))

    def _pixels(self, idx: np.ndarray) -> Any:
        import torch

        assert self.data is not None
        e = self.data.entries[idx]
        return torch.from_numpy(self.data.sample_pixels(e[:, 0], e[:, 1])).to(self.device)

    def _embeddings(self, captions: np.ndarray) -> Any:
        import torch

        assert self.data is not None
        missing = np.unique(captions[~self.emb_done[captions]])
        for start in range(0, len(missing), 256):
            part = missing[start:start + 256]
            z = self.text.encode([self.data.captions[i] for i in part])
            self.emb[part] = z.float().cpu().numpy().astype(np.float16)
            self.emb_done[part] = True
        return torch.from_numpy(self.emb[captions].astype(np.float32)).to(self.device)

    def _condition(self, captions: np.ndarray, train: bool) -> Any:
        """The captions' token states: the frozen MiniLM's, cached; or the trained
        encoder's (with autograd in training, the average's otherwise), computed anew."""
        import torch


        if not self.trains_text:
            return self._embeddings(captions)
        assert self.data is not None
        texts = [[Fragment(self.data.captions[i], 1.0)] for i in captions]
        if train:
            self.text_model.train()
            return self.text.states(texts)[0]
        self.ema_text.eval()
        with torch.no_grad():
            return self.eval_text.states(texts)[0]

    def _latents(self, idx: np.ndarray) -> Any:
        import torch

        missing = np.unique(idx[~self.lat_done[idx]])
        if len(missing):
            self.vae.eval()
            with torch.no_grad():
                for start in range(0, len(missing), 128):
                    part = missing[start:start + 128]
                    mean = self.vae.encode(self._pixels(part)).latent_dist.mean
                    self.lat[part] = mean.cpu().numpy()
                    self.lat_done[part] = True
        return torch.from_numpy(self.lat[idx] * self.scale).to(self.device)

    # ------------------------------------------------------------------ training
    @property
    def phase(self) -> str:
        return "vae" if self.step < self.vae_total else "unet"

    def train_step(self) -> float:
        loss = self._vae_step() if self.phase == "vae" else self._unet_step()
        self.step += 1
        if self.step == self.vae_total:
            self._fix_scale()
        return loss

    def _vae_step(self) -> float:
        import torch

        rng = self._rng(1)
        idx = rng.choice(self.train_idx, size=self.config.batch)
        x = self._pixels(idx)
        ox, oy = rng.integers(0, sketch_data.SIZE - CROP + 1, size=2)
        x = x[:, :, oy:oy + CROP, ox:ox + CROP]
        set_lr(self.vae_opt, self.config.lr * self.vae_lr_factor(self.step))
        self.vae.train()
        post = self.vae.encode(x).latent_dist
        z = post.sample(generator=self._gen(1))
        y = self.vae.decode(z).sample
        loss = (torch.nn.functional.mse_loss(y, x) + CHROMA_WEIGHT * torch.nn.functional.mse_loss(
            _chroma(y), _chroma(x)) + 1e-6 * post.kl().mean())
        self.vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.vae_opt.step()
        return float(loss.detach())

    def vae_lr_factor(self, step: int) -> float:
        """The autoencoder's learning rate over its phase: a cosine from 1 at its first step
        to `VAE_LR_FLOOR` at its last."""
        return cosine(min(1.0, step / max(1, self.vae_total - 1)), VAE_LR_FLOOR)

    def _fix_scale(self) -> None:
        """SD's scaling factor: latents of the data scaled to unit variance."""
        rng = np.random.default_rng([self.config.seed, 99])
        probe = rng.choice(self.train_idx, size=min(512, len(self.train_idx)), replace=False)
        self.scale = 1.0
        z = self._latents(np.sort(probe))
        self.scale = float(1.0 / max(float(z.std()), 1e-3))
        self.vae.register_to_config(scaling_factor=self.scale)
        self.vae_val_mse = self._vae_val_mse()
        self.vae_colour_kept = self._vae_colour_kept()

    def _noise_loss(self, idx: np.ndarray, captions: np.ndarray, gen: Any,
                    train: bool) -> Any:
        import torch

        z0 = self._latents(idx)
        c = self._condition(captions, train)
        noise = torch.randn(z0.shape, generator=gen).to(self.device)
        t = torch.randint(0, TRAIN_TIMESTEPS, (len(idx),), generator=gen).to(self.device)
        zt = self.scheduler.add_noise(z0, noise, t)
        unet = self.unet if train else self.ema
        unet.train(train)
        pred = unet(zt, t, encoder_hidden_states=c).sample
        return torch.nn.functional.mse_loss(pred, noise)

    def _unet_step(self) -> float:
        assert self.data is not None
        import torch

        rng = self._rng(2)
        idx = rng.choice(self.train_idx, size=self.config.batch, p=self.train_p)
        captions = self.data.entries[idx, 2].copy()
        captions[rng.random(len(idx)) < CFG_DROPOUT] = 0  # "" : the unconditional caption
        set_lr(self.unet_opt, self.config.lr * self.lr_factor(self.step))
        loss = self._noise_loss(idx, captions, self._gen(2), train=True)
        self.unet_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trained, 1.0)
        self.unet_opt.step()
        self._update_ema(self.step - self.vae_total)
        return float(loss.detach())

    def lr_factor(self, step: int) -> float:
        """The UNet's learning rate over its phase: a linear warm-up, then a cosine from
        1 to 0.1 at the last step."""
        n = step - self.vae_total
        span = max(1, self.config.steps - self.vae_total - WARMUP)
        if n < WARMUP:
            return (n + 1) / WARMUP
        done = min(1.0, (n - WARMUP) / span)
        return cosine(done, UNET_LR_FLOOR)

    def _update_ema(self, n: int) -> None:
        """ema ← d·ema + (1−d)·unet, d ramping up to EMA_DECAY (early averages would
        otherwise hold the random start)."""
        import torch

        d = min(EMA_DECAY, (1 + n) / (10 + n))
        with torch.no_grad():
            for ema, model in self.pairs:
                for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                    e.lerp_(p, 1.0 - d)

    def validation_loss(self) -> float | None:
        """The UNet's noise-prediction loss on held-out samples; none in the autoencoder
        phase, whose reconstruction error is another quantity: on one curve the trainer
        would call it the best validation and export-best would pick an untrained UNet
        (the autoencoder's figure goes to the card, `vae_val_mse`)."""
        import torch

        if not len(self.val_idx) or self.phase == "vae":
            return None
        assert self.data is not None
        idx = self.val_idx[:128]
        with torch.no_grad():
            gen = torch.Generator().manual_seed(self.config.seed + 4242)
            return float(self._noise_loss(idx, self.data.entries[idx, 2], gen, train=False))

    def _vae_val_mse(self) -> float | None:
        import torch

        if not len(self.val_idx):
            return None
        with torch.no_grad():
            self.vae.eval()
            x = self._pixels(self.val_idx[:64])
            return float(torch.nn.functional.mse_loss(self.vae(x).sample, x))

    def _vae_colour_kept(self, rows: int = 64) -> float | None:
        """The share of held-out images, each recoloured in every named colour, that the
        benchmark's colour judge still reads as that colour after the autoencoder: a decoder
        that drifts a hue (yellow to amber) fails every prompt in it, whatever the UNet."""
        import torch

        from studio.engines.training import sketch_eval

        assert self.data is not None
        image_rows = np.unique(self.data.entries[self.val_idx, 0])[:rows]
        if not len(image_rows):
            return None
        n = len(sketch_data.COLOUR_NAMES)
        src = np.repeat(image_rows, n)
        colours = np.tile(np.arange(n), len(image_rows))
        with torch.no_grad():
            self.vae.eval()
            x = torch.from_numpy(self.data.sample_pixels(src, colours)).to(self.device)
            y = self.vae(x).sample
        asked = [sketch_data.COLOUR_NAMES[c] for c in colours]
        read = [sketch_eval.dominant_colour(_to_uint8(im)) for im in y]
        return float(np.mean([a == r for a, r in zip(asked, read, strict=True)]))

    # ------------------------------------------------------------------ samples
    def samples(self) -> list[Sample]:
        import torch

        if self.phase == "vae":
            assert self.data is not None
            idx = self.val_idx[:4] if len(self.val_idx) >= 4 else self.train_idx[:4]
            with torch.no_grad():
                self.vae.eval()
                x = self._pixels(idx)
                y = self.vae(x).sample
            pairs = torch.cat([x, y], dim=3)
            return [Sample("image", _to_uint8(p), f"reconstruction {i}")
                    for i, p in enumerate(pairs)]
        images = self.generate(list(SAMPLE_PROMPTS), seed=0, steps=20, guidance=4.0)
        return [Sample("image", im, f"prompt: {p}") for im, p in zip(images, SAMPLE_PROMPTS,
                                                                     strict=True)]

    def generate(self, prompts: list[str], seed: int, steps: int = 20,
                 guidance: float = 4.0) -> list[np.ndarray]:
        """Prompts → 64×64 images with DDIM and CFG (the training-time sampler; the app
        renders through the image engine instead)."""
        import torch


        sched = build_scheduler()
        sched.set_timesteps(steps)
        n = len(prompts)
        with torch.no_grad():
            self.ema.eval()
            self.vae.eval()
            self.eval_text.model.eval()
            cond = self.eval_text.encode(prompts)
            uncond = self.eval_text.encode([""] * n)
            gen = torch.Generator().manual_seed(seed)
            z = torch.randn((n, 4, LATENT, LATENT), generator=gen).to(self.device)
            for t in sched.timesteps:
                both = self.ema(torch.cat([z, z]), t, encoder_hidden_states=torch.cat(
                    [uncond, cond])).sample
                eu, ec = both.chunk(2)
                z = sched.step(eu + guidance * (ec - eu), t, z).prev_sample
            x = self.vae.decode(z / self.scale).sample
        return [_to_uint8(im) for im in x]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        import torch

        text = {"text": self.text_model.state_dict(), "ema_text": self.ema_text.state_dict()
                } if self.trains_text else {}
        return {"vae": self.vae.state_dict(), "unet": self.unet.state_dict(),
                "ema": self.ema.state_dict(), **text,
                "vae_opt": self.vae_opt.state_dict(), "unet_opt": self.unet_opt.state_dict(),
                "step": torch.tensor(self.step), "scale": torch.tensor(self.scale),
                "vae_val_mse": torch.tensor(float("nan") if self.vae_val_mse is None
                                            else self.vae_val_mse),
                "vae_colour_kept": torch.tensor(float("nan") if self.vae_colour_kept is None
                                                else self.vae_colour_kept)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vae.load_state_dict(state["vae"])
        self.unet.load_state_dict(state["unet"])
        self.ema.load_state_dict(state.get("ema", state["unet"]))  # runs saved before the EMA
        if self.trains_text:
            self.text_model.load_state_dict(state["text"])
            self.ema_text.load_state_dict(state["ema_text"])
        self.vae_opt.load_state_dict(state["vae_opt"])
        self.unet_opt.load_state_dict(state["unet_opt"])
        self.step = int(state["step"])
        self.scale = float(state["scale"])
        mse = float(state.get("vae_val_mse", float("nan")))
        self.vae_val_mse = None if math.isnan(mse) else mse
        kept = float(state.get("vae_colour_kept", float("nan")))
        self.vae_colour_kept = None if math.isnan(kept) else kept
        self.vae.register_to_config(scaling_factor=self.scale)
        self.lat_done[:] = False  # latents follow the restored autoencoder

    # ------------------------------------------------------------------ export
    def export(self, out_dir: Path) -> Path:
        """A diffusers StableDiffusionPipeline folder: unet/, vae/, scheduler/, tokenizer/
        and text_encoder/minilm.json (the packaged MiniLM it reads; not copied)."""
        from studio.engines import sketch_text

        target = out_dir / self.config.name
        tmp = out_dir / f".{self.config.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.ema.save_pretrained(tmp / "unet", safe_serialization=True)
        self.vae.register_to_config(scaling_factor=self.scale)
        self.vae.save_pretrained(tmp / "vae", safe_serialization=True)
        build_scheduler().save_pretrained(tmp / "scheduler")
        sketch_text.write_text_parts(tmp, self.ema_text if self.trains_text else None)
        atomic_write_bytes(tmp / "model_index.json",
                           json.dumps(sketch_text.model_index(), indent=2).encode())
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target

    def card_facts(self) -> dict[str, Any]:
        text = ("a 2-layer BERT trained with the UNet" if self.config.text == "trained" else
                "frozen all-MiniLM-L6-v2")
        facts: dict[str, Any] = {"architecture": "latent diffusion (AutoencoderKL 64²↔4×16², "
                                 f"UNet2DConditionModel, {text} text)"}
        if self.unet is not None:
            facts["UNet parameters"] = sum(p.numel() for p in self.unet.parameters())
            facts["UNet channels"] = "/".join(map(str, self.unet.config.block_out_channels))
            facts["VAE parameters"] = sum(p.numel() for p in self.vae.parameters())
            facts["autoencoder steps"] = self.vae_total
            facts["UNet weights"] = f"exponential moving average (decay {EMA_DECAY})"
            facts["latent scaling factor"] = round(self.scale, 5)
            if self.vae_val_mse is not None:
                facts["autoencoder validation MSE"] = round(self.vae_val_mse, 5)
            if self.vae_colour_kept is not None:
                facts["autoencoder colours kept"] = round(self.vae_colour_kept, 3)
        if self.data is not None:
            facts.update({f"data {k}": v for k, v in self.data.summary().items()})
        return facts


def _frozen_copy(model: Any) -> Any:
    """A copy of `model` that no optimizer moves: the start of its moving average."""
    import copy

    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema


def _chroma(x: Any) -> Any:
    """Colour without brightness: each channel minus the pixel's mean."""
    return x - x.mean(dim=1, keepdim=True)


def _to_uint8(x: Any) -> np.ndarray:
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)
