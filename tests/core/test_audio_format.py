"""WAV/FLAC outputs: real files, read back by other readers and by our recipe reader."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.core.errors import RecipeError, StudioError
from studio.core.formats import audio as fmt
from studio.core.outputs import save_result
from studio.core.recipes import read_recipe
from studio.core.requests import MusicRequest
from studio.core.results import Result

RATE = 32000


def tone(seconds: float = 0.5, channels: int = 1, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave_ = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([wave_ * (1 - 0.3 * c) for c in range(channels)]).astype(np.float32)


def result(prompt: str = "a calm piano", channels: int = 1, **extras: bytes) -> Result:
    request = MusicRequest(model="builtin:composer", prompt=prompt, seed=42, duration=0.5,
                           temperature=0.9, top_k=100, guidance=2.5)
    return Result(request, "music", audio=tone(channels=channels), sample_rate=RATE,
                  extras=extras, info={"frames": 25, "not_json": object()})


def test_save_writes_a_standard_wav_with_the_recipe_inside(tmp_path):
    res = result(**{".mid": b"MThd fake midi"})
    paths = save_result(res, tmp_path)
    wav, mid = paths
    assert wav.suffix == ".wav" and wav.name.split("-")[1] == "42" and "a-calm-piano" in wav.name
    assert mid == wav.with_suffix(".mid") and mid.read_bytes() == b"MThd fake midi"
    with wave.open(str(wav)) as w:  # the standard library's reader
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        assert w.getnframes() == res.audio.shape[1]
    data, rate = soundfile.read(wav, dtype="float32", always_2d=True)  # libsndfile
    assert rate == RATE
    np.testing.assert_allclose(data.T, res.audio, atol=1 / 32767)
    recipe = read_recipe(wav)
    assert (recipe.source, recipe.modality) == ("studio", "music")
    assert recipe.to_request() == res.request
    assert recipe.raw["info"]["INAM"] == "a calm piano" and recipe.raw["xmp"] is True
    assert recipe.raw["record"]["info"] == {"frames": 25}  # what JSON cannot hold is dropped
    assert recipe.raw["seconds"] == pytest.approx(0.5)


def test_outputs_never_overwrite(tmp_path):
    first = fmt.save_audio(result(), tmp_path)[0]
    second = fmt.save_audio(result(), tmp_path)[0]
    assert first != second and first.exists() and second.exists()
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, second.name])


def test_any_script_in_the_prompt_survives(tmp_path):
    prompt = "雨の日のピアノ, «doux» 🎹\nsecond line"
    wav = fmt.save_audio(result(prompt), tmp_path)[0]
    assert read_recipe(wav).request["prompt"] == prompt
    # the JSON in ICMT is pure ASCII, so INFO readers that assume Latin-1 keep it intact
    info, _facts = fmt.riff_metadata(io.BytesIO(wav.read_bytes()))
    assert info["ICMT"].isascii() and json.loads(info["ICMT"])["request"]["prompt"] == prompt


def test_stereo_and_float_wav(tmp_path):
    res = result(channels=2)
    data = fmt.wav_bytes(res.audio, RATE, sample_format="float32")
    path = tmp_path / "float.wav"
    path.write_bytes(data)
    frames, rate = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == RATE and np.array_equal(frames.T, res.audio)
    audio, rate = fmt.read_audio(path)
    assert rate == RATE and np.array_equal(audio, res.audio)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_read_audio_understands_common_wav_encodings(tmp_path, subtype):
    original = tone(0.1, channels=2)
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(path, original.T, RATE, subtype=subtype)
    audio, rate = fmt.read_audio(path)
    expected, _ = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == RATE and audio.shape == original.shape
    np.testing.assert_allclose(audio, expected.T, atol=1e-6)


def test_flac_export_carries_the_recipe_as_a_vorbis_comment(tmp_path):
    res = result("lo-fi beat, ünïcode")
    path = fmt.export_audio(res, tmp_path / "piece.flac")
    with soundfile.SoundFile(path) as f:  # libsndfile decodes it and sees the title
        assert (f.format, f.samplerate, f.channels) == ("FLAC", RATE, 1)
        assert f.title == "lo-fi beat, ünïcode"
        data = f.read(dtype="float32", always_2d=True)
    np.testing.assert_allclose(data.T, res.audio, atol=1 / 32767)
    recipe = read_recipe(path)
    assert recipe.to_request() == res.request and recipe.raw["format"] == "FLAC"
    assert recipe.raw["comments"]["ENCODER"].startswith("Studio")
    audio, rate = fmt.read_audio(path)
    assert rate == RATE and audio.shape == res.audio.shape


def test_export_refuses_other_suffixes(tmp_path):
    with pytest.raises(StudioError, match=r"\.wav or \.flac"):
        fmt.export_audio(result(), tmp_path / "piece.mp3")


def test_bad_audio_is_refused_or_cleaned(tmp_path):
    res = result()
    res.audio = np.array([[0.5, np.nan, np.inf, -3.0]], np.float32)
    wav = fmt.save_audio(res, tmp_path)[0]
    audio, _ = fmt.read_audio(wav)
    np.testing.assert_allclose(audio, [[0.5, 0.0, 1.0, -1.0]], atol=1 / 32767)
    res.audio = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(StudioError, match="shape"):
        fmt.save_audio(res, tmp_path)
    res.audio = None
    with pytest.raises(StudioError, match="no audio"):
        fmt.save_audio(res, tmp_path)
    assert len(list(tmp_path.rglob("*.wav"))) == 1  # nothing half-written


def test_files_without_our_recipe_say_so(tmp_path):
    plain = tmp_path / "plain.wav"
    soundfile.write(plain, tone(0.1).T, RATE)
    with pytest.raises(RecipeError, match="holds no recipe"):
        read_recipe(plain)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(RecipeError):
        read_recipe(garbage)
    not_audio = tmp_path / "notes.flac"
    not_audio.write_text("hello")
    with pytest.raises(RecipeError, match="not a WAV or FLAC"):
        read_recipe(not_audio)
    with pytest.raises(StudioError, match="No such file"):
        fmt.read_audio(tmp_path / "missing.wav")


def test_a_truncated_wav_still_gives_its_recipe_and_audio(tmp_path):
    wav = fmt.save_audio(result(), tmp_path)[0]
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:-1001])  # a copy interrupted near the end
    assert read_recipe(cut).request["seed"] == 42
    audio, _ = fmt.read_audio(cut)
    assert 0 < audio.shape[1] < result().audio.shape[1]


def test_vorbis_comment_block_round_trips(tmp_path: Path):
    block = fmt.vorbis_comment_block({"TITLE": "x", "STUDIO": "{}"}, "vendor")
    data = fmt.FLAC_MAGIC + bytes([0x80 | 4]) + len(block).to_bytes(3, "big") + block
    assert fmt.flac_comments(io.BytesIO(data)) == {"TITLE": "x", "STUDIO": "{}"}
