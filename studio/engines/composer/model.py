"""The composer network: a small decoder-only transformer over event tokens.

Pre-norm blocks, learned positions, tied input/output embeddings, and a
key/value cache so sampling costs one short forward pass per token.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ComposerConfig:
    vocab_size: int
    d_model: int = 192
    n_layer: int = 4
    n_head: int = 6
    d_ff: int = 768
    max_len: int = 256
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComposerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Block(nn.Module):
    def __init__(self, cfg: ComposerConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        drop = self.dropout if self.training else 0.0
        if past is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        elif t == 1:
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:  # several new tokens after a cache: causal within them, all of the past visible
            n_past = k.shape[2] - t
            mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(n_past)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        a = a.transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(a))
        x = x + self.drop(self.ff(self.ln2(x)))
        return x, (k, v)


class ComposerLM(nn.Module):
    """Next-event prediction; `forward(ids, past)` returns logits and the new cache."""

    def __init__(self, cfg: ComposerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("ff.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, ids: torch.Tensor | None, past: KVCache | None = None,
        embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """`embeds` (batch, t, d_model) replaces `self.tok(ids)`: blended conditioning."""
        start = past[0][0].shape[2] if past else 0
        if embeds is None:
            if ids is None:
                raise ValueError("forward needs ids or embeds")
            embeds = self.tok(ids)
        t = embeds.shape[1]
        if start + t > self.cfg.max_len:
            raise ValueError(f"sequence of {start + t} tokens exceeds the context")
        pos = torch.arange(start, start + t, device=embeds.device)
        x = self.drop(embeds + self.pos(pos)[None])
        cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, past[i] if past else None)
            cache.append(kv)
        return self.head(self.ln_f(x)), cache


WEIGHTS = "composer.safetensors"


def save_pretrained(folder: Path, model: ComposerLM, tokens: list[str],
                    meta: dict[str, Any] | None = None) -> Path:
    """Write composer.safetensors (fp16), config.json and vocab.json into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous()
             for k, v in model.state_dict().items() if k != "head.weight"}  # tied to tok
    save_file(state, str(folder / WEIGHTS), metadata={"format": "composer-v1"})
    config = {"format": "composer-v1", "model": model.cfg.to_dict(),
              "parameters": model.num_params(), **(meta or {})}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (folder / "vocab.json").write_text(json.dumps(tokens, indent=0) + "\n", encoding="utf-8")
    return folder / WEIGHTS


def load_pretrained(folder: Path) -> tuple[ComposerLM, list[str], dict[str, Any]]:
    """The model (fp32, eval mode), its token list and its config; ValueError if broken."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tokens = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    if config.get("format") != "composer-v1":
        raise ValueError(f"unknown format {config.get('format')!r} in config.json")
    cfg = ComposerConfig.from_dict(config["model"])
    if cfg.vocab_size != len(tokens):
        raise ValueError("config.json and vocab.json disagree on the vocabulary size")
    model = ComposerLM(cfg)
    state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - {"head.weight"} or unexpected:
        raise ValueError(f"weights do not fit the config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    model.head.weight = model.tok.weight
    model.eval()
    return model, tokens, config
