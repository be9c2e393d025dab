"""MusicGen with a tiny real model built from configs, saved, and loaded by the app's loader."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import Cancelled, ModelError
from studio.core.requests import MusicRequest
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.musicgen import CodeLayout, MusicGenEngine, WindowDecoder
from studio.engines.runner import Runner
from tests.tiny_musicgen import cached_tiny_musicgen

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

RATE = 16000  # the tiny model's EnCodec sample rate (50 frames a second)


@pytest.fixture(scope="module")
def engine(tiny) -> MusicGenEngine:
    return MusicGenEngine.load(LoadSpec(str(tiny), "cpu", "float32"), Settings(), Events())


class Recorder(Events):
    """Collects what an engine reports; can cancel itself after a given step."""

    def __init__(self, previews: bool = True, cancel_at: int | None = None) -> None:
        super().__init__(threading.Event())
        self.previews: list[Preview] = []
        self.steps: list[int] = []
        self._wants = previews
        self.cancel_at = cancel_at

    def wants_previews(self) -> bool:
        return self._wants

    def on_progress(self, progress: Progress) -> None:
        self.steps.append(progress.step)
        if self.cancel_at is not None and progress.step >= self.cancel_at:
            self.cancel_flag.set()

    def on_preview(self, preview: Preview) -> None:
        self.previews.append(preview)


def music(model: Path, **kw) -> MusicRequest:
    base = dict(model=str(model), prompt="a calm piano melody", seed=7, duration=3.0)
    base.update(kw)
    return MusicRequest(**base)


def test_runner_loads_and_streams_chunks_that_concatenate_to_the_result(tiny):
    events = Recorder()
    result = Runner(Settings(device="cpu")).generate(music(tiny), events)
    assert result.modality == "music" and result.sample_rate == RATE
    assert result.audio.dtype == np.float32 and result.audio.shape == (1, 3 * RATE)
    assert np.abs(result.audio).max() > 0  # real (random-weight) sound, not silence
    chunks = [p.data for p in events.previews]
    assert all(p.kind == "audio" and p.sample_rate == RATE for p in events.previews)
    # a short first chunk so playback starts early, then about one second each
    assert [c.shape[1] for c in chunks] == [RATE // 2, RATE, RATE, RATE // 2]
    assert np.array_equal(np.concatenate(chunks, axis=1), result.audio)
    # progress every step, to the end: 150 frames + 3 steps of codebook delay
    assert events.steps == list(range(1, 154))
    assert result.info["frames"] == 150 and result.info["first_chunk_s"] > 0


def test_streamed_audio_matches_a_plain_generate_with_the_same_seed(engine, tiny):
    request = music(tiny, seed=11, duration=2.5)
    result = engine.generate(request, Recorder())
    tokenizer = engine.processor.tokenizer
    inputs = tokenizer([request.prompt], return_tensors="pt", padding=True)
    _frames, steps, samples = engine.plan(request)
    torch.manual_seed(request.seed)
    plain = engine.model.generate(**inputs, **engine.sampling_kwargs(request),
                                  max_new_tokens=steps)
    plain = plain[0].numpy()[:, :samples]
    assert plain.shape == result.audio.shape
    # windows with context agree with one whole-piece decode to float precision
    np.testing.assert_allclose(result.audio, np.clip(plain, -1, 1), atol=1e-5)


def test_same_seed_same_audio_with_or_without_previews(engine, tiny):
    first = engine.generate(music(tiny, duration=2.0), Recorder())
    quiet = Recorder(previews=False)
    second = engine.generate(music(tiny, duration=2.0), quiet)
    assert quiet.previews == []
    assert np.array_equal(first.audio, second.audio)
    other = engine.generate(music(tiny, duration=2.0, seed=8), Recorder())
    assert not np.array_equal(first.audio, other.audio)


def test_sampling_settings_reach_generate(engine, tiny):
    greedy = [engine.generate(music(tiny, duration=1.0, temperature=0.0, seed=s), Recorder())
              for s in (1, 2)]
    assert np.array_equal(greedy[0].audio, greedy[1].audio)  # greedy ignores the seed
    kwargs = engine.sampling_kwargs(music(tiny, temperature=0.7, top_k=0, top_p=0.9,
                                          guidance=1.0))
    assert kwargs == {"do_sample": True, "guidance_scale": 1.0, "num_beams": 1,
                      "temperature": 0.7, "top_k": 0, "top_p": 0.9}
    off = engine.sampling_kwargs(music(tiny, top_p=0.0, guidance=4.5))
    assert off["top_p"] == 1.0 and off["guidance_scale"] == 4.5
    # without guidance and with an empty prompt (the null condition) it still runs
    for request in (music(tiny, duration=1.0, guidance=0.0), music(tiny, duration=1.0,
                                                                    prompt="")):
        assert engine.generate(request, Recorder()).audio.shape == (1, RATE)


def test_odd_durations_give_exactly_that_many_samples(engine, tiny):
    events = Recorder()
    result = engine.generate(music(tiny, duration=0.73), events)
    assert result.audio.shape == (1, round(0.73 * RATE))
    assert np.array_equal(np.concatenate([p.data for p in events.previews], axis=1),
                          result.audio)


def test_cancel_stops_within_one_step(engine, tiny):
    events = Recorder(cancel_at=20)
    with pytest.raises(Cancelled):
        engine.generate(music(tiny, duration=10.0), events)
    assert events.steps[-1] == 20  # the very next check raised
    assert sum(p.data.shape[1] for p in events.previews) < 10 * RATE


def test_cancel_through_the_runner_saves_nothing(tiny, tmp_path):
    settings = Settings(device="cpu", output_dir=str(tmp_path / "out"))
    runner = Runner(settings)
    with pytest.raises(Cancelled):
        runner.generate(music(tiny, duration=5.0), Recorder(cancel_at=5))
    assert not (tmp_path / "out").exists()


def test_stereo_model_gives_two_channels(tmp_path_factory):
    folder = cached_tiny_musicgen(tmp_path_factory, stereo=True)
    engine = MusicGenEngine.load(LoadSpec(str(folder), "cpu", "float32"), Settings(), Events())
    assert engine.layout.rows == 8 and engine.layout.channels == 2
    events = Recorder()
    result = engine.generate(music(folder, duration=1.5), events)
    assert result.audio.shape == (2, int(1.5 * RATE))
    assert not np.array_equal(result.audio[0], result.audio[1])
    assert np.array_equal(np.concatenate([p.data for p in events.previews], axis=1),
                          result.audio)


@pytest.mark.parametrize("channels", [1, 2])
def test_code_layout_undoes_the_delay_pattern_like_transformers(engine, channels):
    """Our frame extraction agrees with MusicGen's own mask-and-filter on the final ids."""
    rows, frames = 4 * channels, 12
    layout = CodeLayout(rows, channels)
    decoder = engine.model.decoder
    old = decoder.config.audio_channels, decoder.num_codebooks
    decoder.config.audio_channels, decoder.num_codebooks = channels, rows
    try:
        steps = layout.steps_for(frames)
        start = torch.full((rows, 1), 64)
        _ids, mask = decoder.build_delay_pattern_mask(start, 64, max_length=steps + 1)
        ids = torch.cat([start, torch.randint(0, 64, (rows, steps))], dim=1)
        masked = decoder.apply_delay_pattern_mask(ids, mask)
        theirs = masked[masked != 64].reshape(rows, -1)
    finally:
        decoder.config.audio_channels, decoder.num_codebooks = old
    assert layout.complete(ids.shape[-1]) == frames
    assert torch.equal(layout.frames(ids, 0, frames), theirs)
    assert torch.equal(layout.frames(ids, 3, 7), theirs[:, 3:7])


def test_window_decoder_hands_out_each_frame_once_with_context():
    calls = []

    def decode(codes: np.ndarray) -> np.ndarray:  # 2 samples per frame: the frame index
        calls.append((int(codes[0]), int(codes[-1]) + 1))
        return np.repeat(codes.astype(np.float32), 2)[None] / 100

    window = WindowDecoder(decode, hop=2, frame_rate=10, total_frames=35, total_samples=69,
                           first_chunk_s=0.5, chunk_s=1.0, left_s=0.3, right_frames=2)

    def codes_of(a: int, b: int) -> np.ndarray:
        return np.arange(a, b)

    got = []
    for available in range(1, 36):
        got += window.poll(codes_of, available)
    got.append(window.finish(codes_of))
    audio = np.concatenate(got, axis=1)[0]
    assert [c.shape[1] for c in got] == [10, 20, 20, 19]  # the last one trimmed to 69 samples
    assert np.array_equal(audio, np.repeat(np.arange(35, dtype=np.float32), 2)[:69] / 100)
    # each window: up to 3 frames of left context, 2 of right context (none at the end)
    assert calls == [(0, 7), (2, 17), (12, 27), (22, 35)]
    assert window.finish(codes_of) is None


def test_model_errors_are_one_clear_sentence(tmp_path):
    spec = LoadSpec(str(tmp_path / "nowhere"), "cpu", "float32")
    with pytest.raises(ModelError, match="was not found"):
        MusicGenEngine.load(spec, Settings(), Events())
    other = tmp_path / "gpt"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelError, match="MusicGen"):
        MusicGenEngine.load(LoadSpec(str(other), "cpu", "float32"), Settings(), Events())
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "musicgen"}))
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelError, match="allow pickled"):
        MusicGenEngine.load(LoadSpec(str(pickled), "cpu", "float32"), Settings(), Events())
    with pytest.raises(ModelError, match="no weights"):
        (pickled / "pytorch_model.bin").unlink()
        MusicGenEngine.load(LoadSpec(str(pickled), "cpu", "float32"), Settings(), Events())


def test_a_model_name_is_found_in_the_model_folders(tiny):
    settings = Settings(model_dirs=[str(tiny.parent)])
    engine = MusicGenEngine.load(LoadSpec(tiny.name, "cpu", "float32"), settings, Events())
    assert engine.folder == tiny and engine.memory_bytes() > 0
    engine.unload()
    assert engine.memory_bytes() == 0


# -- blending two prompts' text conditions ----------------------------------------------

CALM, ROCK = "a calm piano melody", "fast rock guitar with loud drums"


@pytest.fixture(scope="module")
def conditioned(tiny) -> MusicGenEngine:
    """The tiny model with its text path turned up: at random init (std 0.02) the
    cross-attention barely moves the logits, so every prompt samples the same codes and
    a blend test would prove nothing. Scaling the projection and cross-attention makes
    the prompt change the music, as it does in a trained model."""
    engine = MusicGenEngine.load(LoadSpec(str(tiny), "cpu", "float32"), Settings(), Events())
    with torch.no_grad():
        engine.model.enc_to_dec_proj.weight.mul_(30)
        for layer in engine.model.decoder.model.decoder.layers:
            layer.encoder_attn.v_proj.weight.mul_(10)
            layer.encoder_attn.out_proj.weight.mul_(10)
    return engine


def test_blend_zero_is_the_plain_prompt(conditioned, tiny):
    plain = conditioned.generate(music(tiny, prompt=CALM), Recorder(previews=False)).audio
    zero = conditioned.generate(music(tiny, prompt=CALM, blend_prompt=ROCK, blend=0.0),
                           Recorder(previews=False)).audio
    assert np.array_equal(plain, zero)


@pytest.mark.parametrize("guidance", [3.0, 1.0])
def test_blend_one_is_the_blend_prompt_alone(conditioned, tiny, guidance):
    """Blend 1 goes through precomputed encoder states (with our own null half for
    guidance), yet matches generating from the blend prompt's tokens: the states are
    the same, torch.lerp is exact at 1, and the longer prompt's extra slots are masked."""
    alone = conditioned.generate(music(tiny, prompt=ROCK, guidance=guidance),
                            Recorder(previews=False)).audio
    one = conditioned.generate(music(tiny, prompt=CALM, blend_prompt=ROCK, blend=1.0,
                                guidance=guidance), Recorder(previews=False)).audio
    np.testing.assert_allclose(one, alone, atol=1e-5)
    # and the other way round (the blend prompt is the shorter one)
    short = conditioned.generate(music(tiny, prompt="jazz", guidance=guidance),
                            Recorder(previews=False)).audio
    one = conditioned.generate(music(tiny, prompt=ROCK, blend_prompt="jazz", blend=1.0,
                                guidance=guidance), Recorder(previews=False)).audio
    np.testing.assert_allclose(one, short, atol=1e-5)


def test_half_blend_differs_from_both_and_is_deterministic(conditioned, tiny):
    calm = conditioned.generate(music(tiny, prompt=CALM), Recorder(previews=False)).audio
    rock = conditioned.generate(music(tiny, prompt=ROCK), Recorder(previews=False)).audio
    half = music(tiny, prompt=CALM, blend_prompt=ROCK, blend=0.5)
    assert not np.allclose(calm, rock, atol=1e-4)  # the prompt matters to this model
    first = conditioned.generate(half, Recorder(previews=False)).audio
    second = conditioned.generate(half, Recorder(previews=True)).audio
    assert np.array_equal(first, second)
    assert first.shape == calm.shape
    assert not np.allclose(first, calm, atol=1e-4)
    assert not np.allclose(first, rock, atol=1e-4)
    # a prompt blended with itself is that prompt (lerp of equal states, same mask)
    same = conditioned.generate(music(tiny, prompt=CALM, blend_prompt=CALM, blend=0.5),
                           Recorder(previews=False)).audio
    np.testing.assert_allclose(same, calm, atol=1e-5)


def test_blend_from_an_empty_prompt_starts_at_the_null_condition(conditioned, tiny):
    audio = conditioned.generate(music(tiny, prompt="", blend_prompt=ROCK, blend=0.3),
                            Recorder(previews=False)).audio
    assert audio.shape == (1, 3 * RATE) and np.isfinite(audio).all()


# ---------------------------------------------------------------- extending a piece
@pytest.fixture(scope="module")
def piece(tiny, tmp_path_factory) -> Path:
    """A 2 s Studio piece from the tiny model, saved with its recipe."""
    runner = Runner(Settings(device="cpu", output_dir=str(tmp_path_factory.mktemp("out"))))
    result = runner.generate(music(tiny, duration=2.0, seed=3), Events())
    return next(p for p in runner.save(result, None) if p.suffix == ".wav")


def test_a_continuation_equals_generate_with_the_same_audio_prompt(engine, tiny, piece):
    from studio.core.formats.audio import read_audio

    request = music(tiny, seed=21, duration=1.0, extend_from=str(piece))
    result = engine.generate(request, Recorder())
    original, rate = read_audio(piece)
    assert rate == RATE and result.audio.shape == (1, original.shape[1] + RATE)
    # the piece itself comes first, sample for sample
    np.testing.assert_allclose(result.audio[:, : original.shape[1]], original, atol=1e-6)
    assert result.info["extended"]["windows"] == 1
    # transformers' own audio-prompt path, decoded whole: the new part agrees
    tokenizer = engine.processor.tokenizer
    inputs = tokenizer([request.prompt], return_tensors="pt", padding=True)
    _frames, steps, samples = engine.plan(request)
    torch.manual_seed(request.seed)
    plain = engine.model.generate(**inputs, **engine.sampling_kwargs(request),
                                  input_values=torch.from_numpy(original)[None],
                                  max_new_tokens=steps)[0].numpy()
    prompt_samples = original.shape[1]
    new_plain = np.clip(plain[:, prompt_samples: prompt_samples + samples], -1, 1)
    np.testing.assert_allclose(result.audio[:, original.shape[1]:], new_plain, atol=1e-5)


def test_windowed_continuation_runs_past_one_window(engine, tiny, piece, monkeypatch):
    import studio.engines.musicgen as mg

    monkeypatch.setattr(mg, "WINDOW_S", 1.5)
    monkeypatch.setattr(mg, "PROMPT_S", 0.5)
    events = Recorder()
    request = music(tiny, seed=5, duration=3.2, extend_from=str(piece))
    result = engine.generate(request, events)
    again = engine.generate(request, Recorder(previews=False))
    assert result.info["extended"]["windows"] == 4  # 160 new frames, 50 new ones a window
    assert result.audio.shape[1] == 2 * RATE + round(3.2 * RATE)
    assert np.array_equal(result.audio, again.audio)
    assert np.array_equal(np.concatenate([p.data for p in events.previews], axis=1),
                          result.audio)  # the piece, then every new chunk, streamed
    # progress runs over all the windows: 50 + 50 + 50 + 10 frames, 3 delay steps each
    assert events.steps == sorted(events.steps) and events.steps[-1] == 172


def test_extending_a_file_that_is_not_a_studio_piece_is_one_sentence(engine, tiny, tmp_path):
    from studio.core.errors import RequestError
    from studio.core.formats.audio import write_wav

    plain = tmp_path / "other.wav"
    with open(plain, "wb") as f:
        write_wav(f, np.zeros((1, RATE), np.float32), RATE)
    with pytest.raises(RequestError, match="is not a Studio piece") as err:
        engine.generate(music(tiny, duration=1.0, extend_from=str(plain)), Recorder())
    assert "\n" not in str(err.value)
