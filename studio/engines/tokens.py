"""The prompt box's token count with the model's own CLIP tokenizer, loaded alone.

Only the tokenizer is read (vocab.json + merges.txt, no weights): from a diffusers
folder's `tokenizer/`, or for a single-file checkpoint from the offline config folder of
its latent family (models/configs/<latent>/tokenizer, the one the engine loads it with).
Tokenizers are kept by folder, so counting while typing costs only the BPE.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths, prompts
from studio.core.errors import RequestError
from studio.engines.prompt_encoding import count_tokens

_lock = threading.Lock()
_tokenizers: dict[str, Any] = {}


@dataclass(frozen=True)
class TokenCount:
    """What the prompt box shows: "tokens/limit", and why part of the text is literal."""

    tokens: int
    limit: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return f"{self.tokens}/{self.limit}"


def tokenizer_folder(model_path: Path, latent: str) -> Path | None:
    """Where the CLIP tokenizer of a model lives (None: it has none Studio can read)."""
    if model_path.is_dir():
        folder = model_path / "tokenizer"
    else:  # the folder engines/image_diffusers.py `configs_dir()` loads single files with
        folder = paths.bundled_models_dir() / "configs" / latent / "tokenizer"
    readable = ("vocab.json", "tokenizer.json")  # the BPE files, or transformers' one file
    return folder if any((folder / name).is_file() for name in readable) else None


def load_tokenizer(folder: Path) -> Any:
    """The CLIP tokenizer in `folder`, loaded once per folder (thread-safe)."""
    key = str(folder.resolve())
    with _lock:
        found = _tokenizers.get(key)
    if found is None:
        from transformers import CLIPTokenizer

        found = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
        with _lock:
            _tokenizers[key] = found
    return found


def count_prompt(text: str, model_path: Path | None, latent: str,
                 steps: int = prompts.DEFAULT_STEPS) -> TokenCount | None:
    """The token count of a prompt as A1111 shows it (None when the model has no CLIP
    tokenizer to count with), with the syntax warnings of `core/prompts.py`."""
    if model_path is None:
        return None
    folder = tokenizer_folder(model_path, latent)
    if folder is None:
        return None
    tokenizer = load_tokenizer(folder)
    try:
        warned = tuple(prompts.parse(text, steps).warnings)
        tokens, limit = count_tokens(tokenizer, text, steps)
    except RequestError as exc:  # a LoRA weight that is not a number: the job would refuse
        tokens, limit = count_tokens(tokenizer, re.sub(r"<[^<>]*>", "", text), steps)
        warned = (str(exc),)
    return TokenCount(tokens, limit, warned)
