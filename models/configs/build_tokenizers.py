"""Rebuild the CLIP tokenizer files of the offline config folders (no network needed).

The CLIP BPE vocabulary ships inside the `open-clip-torch` wheel as
`open_clip/bpe_simple_vocab_16e6.txt.gz` (MIT, from OpenAI's CLIP). This script turns it
into the `vocab.json` + `merges.txt` pair that `transformers.CLIPTokenizer` reads, the same
way OpenAI's `SimpleTokenizer` builds its table, and writes them (with a small
tokenizer_config.json) into every tokenizer folder below.

    pip download --no-deps open-clip-torch -d /tmp/oc && unzip -o /tmp/oc/*.whl -d /tmp/oc
    python models/configs/build_tokenizers.py /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# tokenizer folder -> pad token. OpenCLIP text encoders (SD 2.x, SDXL's second) pad with "!"
# (id 0); OpenAI CLIP-L pads with <|endoftext|>.
FOLDERS = {
    "sd1/tokenizer": "<|endoftext|>",
    "sd2/tokenizer": "!",
    "sdxl/tokenizer": "<|endoftext|>",
    "sdxl/tokenizer_2": "!",
}
N_MERGES = 49152 - 256 - 2  # what CLIP uses of the file (the first line is a header)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def build(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    with gzip.open(bpe_gz) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def tokenizer_config(pad: str) -> dict:
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    vocab, merges = build(Path(argv[0]))
    assert len(vocab) == 49408, len(vocab)
    for rel, pad in FOLDERS.items():
        folder = HERE / rel
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vocab.json").write_text(
            json.dumps(vocab, ensure_ascii=False), encoding="utf-8"
        )
        (folder / "merges.txt").write_text(
            "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
        )
        config = tokenizer_config(pad)
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
        print("wrote", folder.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
