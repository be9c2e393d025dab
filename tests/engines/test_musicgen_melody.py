"""MusicGen-Melody on a tiny real model built from configs, loaded with the app's loader:
our numpy chromagram (the feature extractor's semantics without torchaudio), the family
recognised on disk, a piece conditioned on a reference's melody, and its recipe replayed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core import catalog, families
from studio.core.errors import ModelError, RequestError
from studio.core.formats.audio import read_recipe, write_wav
from studio.core.history import INPUTS_FOLDER
from studio.core.requests import MusicRequest
from studio.core.settings import Settings
from studio.engines import registry
from studio.engines.base import Events, LoadSpec
from studio.engines.chroma import (
    PITCH_CLASSES,
    ChromaSettings,
    chroma_filters,
    chromagram,
    pitch_classes,
    power_spectrogram,
)
from studio.engines.musicgen import MusicGenEngine
from studio.engines.musicgen_melody import MusicGenMelodyEngine
from studio.engines.runner import Runner
from tests.tiny_musicgen_melody import CHROMA, cached_tiny_musicgen_melody

RATE = CHROMA["sampling_rate"]


@pytest.fixture(scope="module")
def melody_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_musicgen_melody(tmp_path_factory)


@pytest.fixture(scope="module")
def engine(melody_model: Path) -> MusicGenMelodyEngine:
    loaded = registry.engine_class("music", str(melody_model)).load(
        LoadSpec(str(melody_model), "cpu", "float32"), Settings(), Events())
    assert isinstance(loaded, MusicGenMelodyEngine)
    return loaded


def tone(hz: float, seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None]


def tone_file(folder: Path, hz: float, rate: int = RATE, seconds: float = 2.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tone-{hz:g}-{rate}.wav"
    with open(path, "wb") as f:
        write_wav(f, tone(hz, seconds, rate), rate)
    return path


def music(model: Path, **kw) -> MusicRequest:
    base = dict(model=str(model), prompt="a calm piano melody", seed=3, duration=1.0)
    base.update(kw)
    request = MusicRequest(**base)
    request.validate()
    return request


# ─── the chromagram ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("hz", "name"), [(440.0, "A"), (261.63, "C"), (329.63, "E"),
                                          (392.0, "G"), (880.0, "A"), (185.0, "F♯")])
def test_a_tone_has_its_energy_in_its_pitch_class(hz: float, name: str):
    settings = ChromaSettings()  # facebook/musicgen-melody's: 32 kHz, n_fft 16384, hop 4096
    features = chromagram(tone(hz, 3.0, 32000), 32000, settings)
    assert features.shape == (1 + 3 * 32000 // 4096, 12) and features.dtype == np.float32
    assert np.array_equal(features.sum(axis=1), np.ones(len(features)))  # one-hot frames
    assert set(pitch_classes(features)) == {name}
    assert PITCH_CLASSES.index(name) == int(features[0].argmax())


def test_a_changing_melody_is_followed_frame_by_frame_and_silence_reads_as_c():
    settings = ChromaSettings(**CHROMA)
    audio = np.concatenate([tone(440.0, 1.0), tone(329.63, 1.0),
                            np.zeros((1, RATE), np.float32)], axis=1)
    classes = pitch_classes(chromagram(audio, RATE, settings))
    assert len(classes) == 1 + audio.shape[1] // settings.hop_length
    hop_s = settings.hop_length / RATE
    assert classes[int(0.5 / hop_s)] == "A" and classes[int(1.5 / hop_s)] == "E"
    assert classes[-1] == "C"  # nothing sounds: transformers' null melody
    # stereo is mixed down; another sample rate is resampled to the extractor's
    stereo = np.concatenate([tone(440.0, 1.0), tone(440.0, 1.0)])
    assert set(pitch_classes(chromagram(stereo, RATE, settings))) == {"A"}
    assert set(pitch_classes(chromagram(tone(440.0, 1.0, 44100), 44100, settings))) == {"A"}
    # shorter than one FFT window: padded to one, still its pitch
    assert pitch_classes(chromagram(tone(440.0, 0.05), RATE, settings))[0] == "A"


def test_the_chromagram_matches_transformers_semantics():
    """transformers' extractor = torchaudio's Spectrogram (a centred, reflect-padded STFT,
    periodic Hann, power 2, window-normalised) then its librosa-style filter bank and an
    argmax; the same pipeline with torch.stft (torchaudio's own core) gives our frames."""
    import torch
    from transformers.audio_utils import chroma_filter_bank

    settings = ChromaSettings()
    ours = chroma_filters(settings.sampling_rate, settings.n_fft)
    theirs = chroma_filter_bank(num_frequency_bins=settings.n_fft, num_chroma=12,
                                sampling_rate=settings.sampling_rate, tuning=0)
    assert ours.shape == theirs.shape == (12, settings.n_fft // 2 + 1)
    assert np.allclose(ours, theirs, atol=1e-12)
    rng = np.random.default_rng(1)
    audio = np.concatenate([tone(hz, 0.7, 32000) for hz in (440, 494, 523, 587, 659)], axis=1)
    audio = audio + 0.05 * rng.standard_normal(audio.shape).astype(np.float32)
    wave = torch.from_numpy(audio[0].astype(np.float64))
    window = torch.hann_window(settings.n_fft, dtype=torch.float64)
    padded = torch.nn.functional.pad(wave[None, None], (settings.n_fft // 2,) * 2,
                                     mode="reflect")[0, 0]
    spec = torch.stft(padded, settings.n_fft, settings.hop_length, window=window,
                      center=False, return_complex=True).abs() ** 2 / window.pow(2).sum()
    power = power_spectrogram(audio[0], settings.n_fft, settings.hop_length)
    assert power.shape == tuple(spec.shape)
    assert np.allclose(power, spec.numpy(), rtol=1e-6, atol=1e-9 * float(power.max()))
    expected = np.argmax(theirs @ spec.numpy(), axis=0)
    assert np.array_equal(chromagram(audio, 32000, settings).argmax(axis=1), expected)


# ─── the family and the engine ───────────────────────────────────────────────────────


def test_the_family_is_recognised_and_routed(melody_model: Path):
    entry = catalog.classify_folder(melody_model)
    assert entry is not None and entry.family_id == families.MUSICGEN_MELODY.id
    assert entry.descriptor is families.MUSICGEN_MELODY and entry.modality == "music"
    assert registry.engine_class("music", str(melody_model)) is MusicGenMelodyEngine
    assert families.MUSICGEN_MELODY.applies("melody")
    assert not families.MUSICGEN.applies("melody") and not families.COMPOSER.applies("melody")
    with pytest.raises(ModelError, match="MusicGen-Melody model, not a MusicGen one"):
        MusicGenEngine.load(LoadSpec(str(melody_model), "cpu", "float32"), Settings(), Events())


def test_the_chroma_settings_come_from_the_folder(engine: MusicGenMelodyEngine):
    assert engine.chroma == ChromaSettings(**CHROMA)
    assert engine.describe()["melody"] is True and engine.sample_rate == RATE


def test_a_piece_follows_its_reference(engine: MusicGenMelodyEngine, melody_model: Path,
                                       tmp_path: Path):
    a, e = tone_file(tmp_path, 440.0), tone_file(tmp_path, 329.63)
    plain = engine.generate(music(melody_model), Events())
    on_a = engine.generate(music(melody_model, melody=str(a)), Events())
    again = engine.generate(music(melody_model, melody=str(a)), Events())
    on_e = engine.generate(music(melody_model, melody=str(e)), Events())
    assert on_a.audio.shape == plain.audio.shape == (1, RATE)
    assert np.isfinite(on_a.audio).all() and np.abs(on_a.audio).max() > 0
    assert np.array_equal(on_a.audio, again.audio)  # same seed, same reference
    assert not np.array_equal(on_a.audio, plain.audio)  # the melody conditions it
    assert not np.array_equal(on_a.audio, on_e.audio)  # and which melody matters
    assert on_a.info["melody"]["file"] == str(a)
    assert set(on_a.info["melody"]["pitch_classes"].split()) == {"A"}
    # a reference at another sample rate is resampled, not refused
    other = tone_file(tmp_path / "44k", 440.0, rate=44100)
    assert set(engine.generate(music(melody_model, melody=str(other)), Events())
               .info["melody"]["pitch_classes"].split()) == {"A"}


def test_bad_references_and_unsupported_modes_are_one_sentence(
        engine: MusicGenMelodyEngine, melody_model: Path, tmp_path: Path):
    with pytest.raises(RequestError, match="does not exist"):
        music(melody_model, melody=str(tmp_path / "missing.wav"))
    notes = tmp_path / "tune.mid"
    notes.write_bytes(b"MThd")
    with pytest.raises(RequestError, match=r"must be a \.wav or \.flac or \.ogg file"):
        music(melody_model, melody=str(notes))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    with pytest.raises(RequestError, match="melody reference cannot be read"):
        engine.generate(music(melody_model, melody=str(broken)), Events())
    with pytest.raises(RequestError, match="does not blend"):
        engine.generate(music(melody_model, blend_prompt="rock", blend=0.5), Events())


def test_the_recipe_keeps_the_reference_and_replays(melody_model: Path, tmp_path: Path):
    out = tmp_path / "out"
    runner = Runner(Settings(device="cpu", output_dir=str(out)))
    reference = tone_file(tmp_path / "mine", 440.0)
    first = runner.generate(music(melody_model, melody=str(reference), seed=21), Events())
    paths = runner.save(first, None)
    wav = next(p for p in paths if p.suffix == ".wav")
    recipe = read_recipe(wav)
    kept = Path(recipe.request["melody"])
    assert kept.parent.name == INPUTS_FOLDER and kept.parent.parent == wav.parent
    assert kept.read_bytes() == reference.read_bytes()  # content-named copy beside outputs
    reference.unlink()  # the original may go: the recipe still replays
    replay = recipe.to_request()
    assert isinstance(replay, MusicRequest) and replay.melody == str(kept)
    again = runner.generate(replay, Events())
    assert np.array_equal(again.audio, first.audio)
