"""Tiny real language models for the text tests and benchmark.

- build_tiny_gpt2: a 2-layer GPT-2 with a byte-level BPE tokenizer trained here by the
  `tokenizers` library, saved with save_pretrained (safetensors) like a real model folder;
  `chat=True` gives the tokenizer a chat template, as instruct models have.
- export_gguf: the same model written as a GGUF file with the `gguf` package (F32 tensors,
  GPT-2 architecture, the byte-level vocabulary and merges), which transformers loads back
  through `gguf_file=`.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A poem is a song that the heart writes in the quiet hours.",
    "Once upon a time there was a small red boat on a wide blue sea.",
    "Stars fall softly over the sleeping town, and the river sings.",
    "Café crème, naïve façade, jalapeño: accents are letters too.",
    "日本の夏は暑い。東京の空は青い。",
    "Emoji travel far: 🌊🎨🎵 and the moon 🌙.",
    "Lyrics need rhythm; stories need a turn; prompts need colour and light.",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

EOS = "<|endoftext|>"


def train_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on CORPUS in milliseconds (a fast tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                   unk_token=EOS)


def build_tiny_gpt2(folder: Path, *, chat: bool = False, seed: int = 0,
                    n_positions: int = 1024) -> Path:
    """Save a tiny GPT-2 LM + tokenizer under folder/tiny-gpt2[-chat]; returns the folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer()
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    eos = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,  # GGUF gpt2 files carry no n_positions: 1024 is assumed
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.eos_token_id = eos
    out = Path(folder) / ("tiny-gpt2-chat" if chat else "tiny-gpt2")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def export_gguf(hf_folder: Path, out: Path) -> Path:
    """Write the tiny GPT-2 at hf_folder as an F32 GGUF file at out (gguf package)."""
    import gguf
    import numpy as np
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(hf_folder)
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    cfg = model.config
    writer = gguf.GGUFWriter(str(out), "gpt2")
    writer.add_name("tiny-gpt2")
    writer.add_block_count(cfg.n_layer)
    writer.add_context_length(cfg.n_positions)
    writer.add_embedding_length(cfg.n_embd)
    writer.add_feed_forward_length(4 * cfg.n_embd)
    writer.add_head_count(cfg.n_head)
    writer.add_layer_norm_eps(cfg.layer_norm_epsilon)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = set(tokenizer.all_special_tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL
                            for t in tokens])
    backend = tokenizer.backend_tokenizer.to_str()
    import json

    merges = json.loads(backend)["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    eos = tokenizer.convert_tokens_to_ids(EOS)
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, cfg.n_layer)
    transposed = ("attn_qkv.weight", "attn_output.weight", "ffn_up.weight", "ffn_down.weight")
    for hf_name, tensor in model.state_dict().items():
        if hf_name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        base, _, suffix = hf_name.rpartition(".")
        name = name_map.get_name(base)
        if name is None:
            raise ValueError(f"no GGUF name for {hf_name}")
        name = f"{name}.{suffix}"
        data = tensor.detach().float().numpy()
        if name.endswith(transposed):
            data = data.T
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


_BUILT: dict[tuple[str, bool], Path] = {}


def tiny_gpt2_once(root: Path, *, chat: bool = False) -> Path:
    """build_tiny_gpt2 once per test session (per root and flavour): building costs seconds."""
    key = (str(root), chat)
    if key not in _BUILT or not _BUILT[key].is_dir():
        _BUILT[key] = build_tiny_gpt2(root, chat=chat)
    return _BUILT[key]
