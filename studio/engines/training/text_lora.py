"""Text LoRA: a writer's own .txt/.md files teach a transformers causal LM their voice.

The base loads with the Text panel's own loader (`text_lm.TextEngine`: a transformers
folder, or a GGUF file that transformers dequantises, such as the built-in SmolLM2);
peft wraps it with LoRA matrices of `rank` / `alpha` on every linear layer of its blocks
(attention and MLP, not the output head), and only those train. The texts are joined
(one end-of-text token between files) and cut into blocks of `resolution` tokens;
`val_split` of the blocks is held out. Samples: a greedy continuation of the data's
first words.

The export is a peft adapter folder (adapter_config.json, adapter_model.safetensors) with
a `studio.json` naming the base model's catalog id; the catalog lists it as a text LoRA
of the causal-LM family, and the text engine loads base + adapter. llama.cpp cannot run
it (that needs a GGUF adapter), so a text LoRA always runs on transformers.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.core import families
from studio.core.training import DataReport, TrainingError
from studio.engines.text_lm import ADAPTER_CONFIG, adapter_base
from studio.engines.training.base import Recipe, Sample
from studio.engines.training.data import check_folder, decode_text
from studio.engines.training.export import publish_folder, write_json

SUFFIXES = (".txt", ".md")
STUDIO_JSON = "studio.json"
SAMPLE_PROMPT_WORDS = 6
SAMPLE_TOKENS = 32
MAX_FILE_BYTES = 50_000_000  # a text file larger than this is not prose


def read_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a text file in any common encoding (the caption reader's
    rules: a BOM, else UTF-8, else cp1252 / Latin-1); ValueError for binary data."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in data[:4096]:
        raise ValueError("it is not text (binary data)")
    return decode_text(data)


def read_texts(folder: Path) -> tuple[list[tuple[str, str]], DataReport]:
    """The usable (file name, text) pairs of a data folder and the report on them.
    Reads only; raises TrainingError when the folder holds no usable text."""
    folder = check_folder(folder)
    try:
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() in SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    except OSError as exc:
        raise TrainingError(f"The data folder {folder} cannot be read "
                            f"({exc.strerror or exc}).") from None
    texts: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    recoded: dict[str, int] = {}
    seen: set[str] = set()
    duplicates = 0
    for path in files:
        name = str(path.relative_to(folder))
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                skipped.append((name, "larger than 50 MB."))
                continue
            text, encoding = read_text(path.read_bytes())
        except OSError as exc:
            skipped.append((name, f"unreadable ({exc.strerror or exc})."))
            continue
        except ValueError as exc:
            skipped.append((name, f"{exc}."))
            continue
        text = text.replace("\r\n", "\n").strip()
        if not text:
            skipped.append((name, "empty."))
            continue
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        if encoding not in ("utf-8", "utf-8-sig"):
            recoded[encoding] = recoded.get(encoding, 0) + 1
        texts.append((name, text))
    notes = tuple(f"{n} file{'s' if n > 1 else ''} read as {enc} (not UTF-8)."
                  for enc, n in sorted(recoded.items()))
    words = sum(len(t.split()) for _n, t in texts)
    sizes = f"{words / 1000:.1f} k words" if words >= 1000 else f"{words} words"
    report = DataReport(str(folder), len(files), len(texts), tuple(skipped), notes,
                        duplicates, 0, sizes if texts else "")
    if not texts:
        found = f"{len(files)} .txt/.md file{'s' if len(files) != 1 else ''}"
        raise TrainingError(f"No usable text in {folder} ({found} found"
                            f"{', none readable' if files else ''}).")
    return texts, report


class TextLoraRecipe(Recipe):
    """peft LoRA on a causal LM (see the module docstring)."""

    id: ClassVar[str] = "text"

    def check_data(self) -> DataReport:
        return read_texts(Path(self.config.data).expanduser())[1]

    # ---------------------------------------------------------------- setup
    def _load_base(self) -> Any:
        from studio.core.settings import Settings
        from studio.engines.base import Events, LoadSpec
        from studio.engines.text_lm import TextEngine

        base = self.config.base
        path = Path(base).expanduser()
        if not base.startswith("builtin:") and (path / ADAPTER_CONFIG).is_file():
            raise TrainingError(f"{path.name} is a text LoRA itself: train on its base "
                                f"model ({adapter_base(path) or 'the model it names'}).")
        family = families.of_builtin(base)
        if base.startswith("builtin:") and (family is None or family.id != "causal-lm"):
            raise TrainingError(f"{base} is not a language model: pick a causal LM as "
                                "the base of a text LoRA.")
        return TextEngine.load(LoadSpec(base, self.device, "float32"), Settings(), Events())

    def setup(self) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        cfg = self.config
        texts, _report = read_texts(Path(cfg.data).expanduser())
        torch.manual_seed(cfg.seed)
        engine = self._load_base()
        self.tokenizer = engine.tokenizer
        self.base_name = engine.source.name
        context = engine.context_length() or cfg.resolution
        eos = self.tokenizer.eos_token_id
        ids: list[int] = []
        for _name, text in texts:
            ids += self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            if eos is not None:
                ids.append(int(eos))
        if len(ids) < 2:
            raise TrainingError("The texts are too short to train on (fewer than 2 tokens).")
        self.block = max(2, min(cfg.resolution, context, len(ids)))
        n_blocks = len(ids) // self.block
        blocks = np.asarray(ids[: n_blocks * self.block], dtype=np.int64).reshape(
            n_blocks, self.block)
        perm = np.random.RandomState(cfg.seed).permutation(n_blocks)
        n_val = 0
        if cfg.val_split > 0 and n_blocks >= 2:
            n_val = min(n_blocks - 1, max(1, round(n_blocks * cfg.val_split)))
        self.val_blocks = blocks[np.sort(perm[:n_val])]
        self.train_blocks = blocks[np.sort(perm[n_val:])]
        self.prompt = " ".join(texts[0][1].split()[:SAMPLE_PROMPT_WORDS])
        # every linear layer of the blocks (attention and MLP; not the output head): a
        # voice is more than attention patterns, and rank-r updates stay small
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, bias="none",
                          task_type="CAUSAL_LM", target_modules="all-linear")
        try:
            with warnings.catch_warnings():  # GPT-2's Conv1D layers: peft says it adapts
                warnings.simplefilter("ignore", UserWarning)
                self.model = get_peft_model(engine.model, lora)
        except ValueError as exc:
            raise TrainingError(f"peft cannot put a LoRA on {self.base_name}: "
                                f"{str(exc).splitlines()[0]}") from None
        self.model.to(self.device)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        # the data order draws from its own generator (a tensor state: checkpoints load
        # with weights_only); dropout draws from torch's global one, kept in the state too
        self.data_gen = torch.Generator().manual_seed(cfg.seed * 2 + 1)
        self.order = torch.randperm(len(self.train_blocks), generator=self.data_gen)
        self.pos = 0

    # ---------------------------------------------------------------- training
    def _next_batch(self) -> np.ndarray:
        import torch

        rows = []
        for _ in range(min(self.config.batch, len(self.train_blocks))):
            if self.pos >= len(self.order):
                self.order = torch.randperm(len(self.train_blocks), generator=self.data_gen)
                self.pos = 0
            rows.append(self.train_blocks[int(self.order[self.pos])])
            self.pos += 1
        return np.stack(rows)

    def train_step(self) -> float:
        import torch

        batch = torch.from_numpy(self._next_batch()).to(self.device)
        self.model.train()
        loss = self.model(input_ids=batch, labels=batch).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def validation_loss(self) -> float | None:
        import torch

        if not len(self.val_blocks):
            return None
        self.model.eval()
        losses = []
        with torch.no_grad():
            for start in range(0, len(self.val_blocks), 8):
                chunk = torch.from_numpy(self.val_blocks[start:start + 8]).to(self.device)
                losses.append(float(self.model(input_ids=chunk, labels=chunk).loss)
                              * len(chunk))
        self.model.train()
        return sum(losses) / len(self.val_blocks)

    def continuation(self, prompt: str, tokens: int = SAMPLE_TOKENS) -> str:
        """A greedy continuation of `prompt` by the model as it is now."""
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        ids = tok(prompt, add_special_tokens=False)["input_ids"] or [tok.eos_token_id or 0]
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        config = GenerationConfig(max_new_tokens=tokens, do_sample=False, pad_token_id=pad,
                                  eos_token_id=tok.eos_token_id)
        self.model.eval()
        with torch.no_grad():
            x = torch.tensor([ids], device=self.device)
            out = self.model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                                      generation_config=config)
        self.model.train()
        return str(tok.decode(out[0, len(ids):], skip_special_tokens=True))

    def samples(self) -> list[Sample]:
        text = self.continuation(self.prompt)
        return [Sample("text", self.prompt + text, label=f"prompt: {self.prompt}")]

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        import torch
        from peft import get_peft_model_state_dict

        with warnings.catch_warnings():  # a GGUF base has no config.json for peft
            warnings.simplefilter("ignore", UserWarning)  # to compare vocabularies
            lora = get_peft_model_state_dict(self.model)
        return {
            "lora": {k: v.detach().cpu().clone() for k, v in lora.items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # Adam updates in place
            "torch_rng": torch.get_rng_state(),
            "data_gen": self.data_gen.get_state(),
            "order": self.order.clone(),
            "pos": self.pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.model, state["lora"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.data_gen.set_state(state["data_gen"])
        self.order = state["order"].clone()
        self.pos = int(state["pos"])

    # ---------------------------------------------------------------- the result
    def export(self, out_dir: Path) -> Path:
        cfg = self.config

        def fill(tmp: Path) -> None:
            with warnings.catch_warnings():  # a GGUF base has no config.json for peft
                warnings.simplefilter("ignore", UserWarning)  # to compare vocabularies
                self.model.save_pretrained(str(tmp), safe_serialization=True)
            (tmp / "README.md").unlink(missing_ok=True)  # peft's empty template; card.md is ours
            write_json(tmp / STUDIO_JSON, {
                "kind": "text-lora", "name": cfg.name, "base": cfg.base,
                "base_name": self.base_name, "rank": cfg.rank, "alpha": cfg.alpha,
                "block_tokens": self.block,
            })

        return publish_folder(out_dir, cfg.name, fill)

    def card_facts(self) -> dict[str, Any]:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        return {
            "Base": self.base_name,
            "Adapter": f"LoRA rank {self.config.rank}, alpha {self.config.alpha:g}, on every "
                       "linear layer of the blocks",
            "Trainable parameters": f"{trainable:,} of {total:,}",
            "Blocks": f"{len(self.train_blocks)} training, {len(self.val_blocks)} validation, "
                      f"{self.block} tokens each",
            "Runs on": "transformers (llama.cpp would need a GGUF adapter)",
        }


__all__ = ["TextLoraRecipe", "read_text", "read_texts"]
