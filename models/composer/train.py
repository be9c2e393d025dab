"""Train the built-in composer (builtin:composer) from the music21 corpus, on the CPU.

    python models/composer/prepare.py     # once: parse the corpus (10-20 min, cached)
    python models/composer/train.py       # ~20-40 min on a (shared) 2-core CPU

Writes into models/composer/: composer.safetensors (fp16 weights), config.json
(architecture, training settings, data summary), vocab.json (token list),
loss.csv and loss.png (the loss curve). Deterministic: fixed seeds, one data
order, deterministic torch kernels, one thread (a tiny model gains little from
more, and the thread count changes float sums); the same data file and the
same torch build give the same weights.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812

from studio.engines.composer.model import (  # noqa: E402
    ComposerConfig,
    ComposerLM,
    save_pretrained,
)
from studio.engines.composer.tokens import (  # noqa: E402
    PREFIX_LEN,
    STYLES,
    Note,
    Piece,
    Vocab,
    encode_piece,
)

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path.home() / ".cache" / "studio" / "composer" / "dataset.jsonl"

# How often each style is drawn per batch (the corpus is mostly Essen songs otherwise).
STYLE_SHARE = {"chorale": 0.28, "fiddle": 0.3, "air": 0.15, "folksong": 0.17, "chinese": 0.1}


def load_pieces(path: Path, vocab: Vocab) -> list[dict[str, Any]]:
    """Tokenised pieces with the token index of every <bar> in their body."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            piece = Piece(rec["style"], rec["form"], rec["mode"], rec["ts"],
                          [Note(*n) for n in rec["notes"]], rec["n_bars"])
            ids = encode_piece(piece, vocab)
            body = np.asarray(ids[PREFIX_LEN:], dtype=np.int64)
            bars = np.flatnonzero(body == vocab.bar)
            out.append({"prefix": np.asarray(ids[:PREFIX_LEN], dtype=np.int64), "body": body,
                        "bars": bars, "style": rec["style"], "part": rec["part"],
                        "form": rec["form"], "mode": rec["mode"], "ts": rec["ts"]})
    return out


class Windows:
    """Training windows: the conditioning prefix + a run of bars starting at a bar line."""

    def __init__(self, pieces: list[dict[str, Any]], ctx: int, seed: int) -> None:
        self.ctx = ctx
        self.rng = np.random.RandomState(seed)
        self.by_style: dict[str, list[dict[str, Any]]] = {}
        for p in pieces:
            self.by_style.setdefault(p["style"], []).append(p)
        self.styles = [s for s in STYLES if s in self.by_style]
        share = np.asarray([STYLE_SHARE.get(s, 0.1) for s in self.styles], dtype=float)
        self.style_p = share / share.sum()
        self.piece_p = {}
        for s in self.styles:
            w = np.asarray([1.0 + len(p["body"]) / ctx for p in self.by_style[s]])
            self.piece_p[s] = w / w.sum()

    def window(self) -> np.ndarray:
        s = self.styles[self.rng.choice(len(self.styles), p=self.style_p)]
        group = self.by_style[s]
        p = group[self.rng.choice(len(group), p=self.piece_p[s])]
        start = 0 if self.rng.rand() < 0.25 else int(self.rng.choice(p["bars"]))
        body = p["body"][start:start + self.ctx + 1 - PREFIX_LEN]
        seq = np.zeros(self.ctx + 1, dtype=np.int64)  # 0 is <pad>
        seq[:PREFIX_LEN] = p["prefix"]
        seq[PREFIX_LEN:PREFIX_LEN + len(body)] = body
        return seq

    def batch(self, n: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.window() for _ in range(n)]))


def loss_of(model: ComposerLM, seq: torch.Tensor) -> torch.Tensor:
    """Next-token loss, ignoring padding and the conditioning tokens (the user gives those)."""
    x, y = seq[:, :-1], seq[:, 1:].clone()
    y[:, : PREFIX_LEN - 1] = 0
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=0)


def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label="train")
    val = [r for r in rows if r["val_loss"] != ""]
    ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("builtin:composer training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--ctx", type=int, default=192)
    ap.add_argument("--d-model", type=int, default=160)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--bench", action="store_true", help="time 10 steps and exit")
    args = ap.parse_args(argv)

    if not args.data.is_file():
        print(f"No prepared data at {args.data}: run python models/composer/prepare.py first.")
        return 1
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    vocab = Vocab()
    pieces = load_pieces(args.data, vocab)
    val = [p for i, p in enumerate(pieces) if i % 25 == 0]
    train = [p for i, p in enumerate(pieces) if i % 25 != 0]
    n_tokens = sum(len(p["body"]) + PREFIX_LEN for p in pieces)
    print(f"{len(train)} training / {len(val)} validation pieces, {n_tokens} tokens")

    cfg = ComposerConfig(vocab_size=len(vocab), d_model=args.d_model, n_layer=args.layers,
                         n_head=args.heads, d_ff=4 * args.d_model, max_len=args.ctx,
                         dropout=args.dropout)
    model = ComposerLM(cfg)
    print(f"{model.num_params():,} parameters")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    windows = Windows(train, args.ctx, args.seed)
    val_windows = Windows(val, args.ctx, args.seed + 1)
    val_batches = [val_windows.batch(args.batch) for _ in range(8)]

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [loss_of(model, b).item() for b in val_batches]
        model.train()
        return float(np.mean(losses))

    rows: list[dict[str, Any]] = []
    t0 = time.time()
    running: list[float] = []
    steps = 10 if args.bench else args.steps
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1, args.steps, args.lr, args.warmup)
        loss = loss_of(model, windows.batch(args.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if args.bench:
            continue
        if step % args.log_every == 0 or step == steps:
            row = {"step": step, "train_loss": round(float(np.mean(running)), 4), "val_loss": "",
                   "lr": round(opt.param_groups[0]["lr"], 6), "seconds": round(time.time() - t0)}
            running = []
            if step % args.eval_every == 0 or step == steps:
                row["val_loss"] = round(evaluate(), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    elapsed = time.time() - t0
    tok_s = steps * args.batch * args.ctx / elapsed
    if args.bench:
        print(f"bench: {elapsed / steps:.2f} s/step, {tok_s:.0f} tokens/s")
        return 0

    data_sha = hashlib.sha256(args.data.read_bytes()).hexdigest()
    summary = {
        "pieces": len(pieces),
        "tokens": n_tokens,
        "by_part_and_style": dict(sorted(Counter(f"{p['part']}/{p['style']}"
                                                 for p in pieces).items())),
        "by_form": dict(sorted(Counter(p["form"] for p in pieces).items())),
        "by_mode": dict(sorted(Counter(p["mode"] for p in pieces).items())),
        "by_time_signature": dict(sorted(Counter(p["ts"] for p in pieces).items())),
        "dataset_sha256": data_sha,
    }
    meta = {
        "training": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("data", "out", "bench")},
        "style_share": STYLE_SHARE,
        "final_train_loss": rows[-1]["train_loss"],
        "final_val_loss": rows[-1]["val_loss"],
        "seconds": round(elapsed),
        "tokens_per_second": round(tok_s),
        "torch": torch.__version__,
        "data": summary,
    }
    weights = save_pretrained(args.out, model, vocab.tokens, meta)
    with (args.out / "loss.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "loss.png")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
