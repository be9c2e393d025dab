"""The melody of a reference audio as MusicGen-Melody reads it: a chromagram, in numpy.

transformers' MusicgenMelodyFeatureExtractor needs torchaudio (absent beside this
torch), so the same features are computed here. What they are (its semantics, which
the model was trained on):

1. mono audio at the extractor's rate, at most `chunk_length` seconds, zero-padded
   evenly to one FFT window when shorter;
2. a power spectrogram: a periodic Hann window of n_fft samples every hop_length
   samples, the signal reflect-padded by n_fft / 2 at both ends (so frame t is centred
   on sample t * hop), |FFT|² divided by the window's energy; 1 + n // hop frames;
3. a chroma filter bank: every FFT bin votes for the 12 pitch classes with a Gaussian
   bump around its own pitch class (about a semitone wide, wider where FFT bins are
   further apart than a semitone), each bin's votes scaled to unit length, then weighted
   by a Gaussian over octaves centred five octaves above A0 (880 Hz), two octaves wide,
   so the mid register counts most; pitch class C first;
4. per frame, only the strongest pitch class: a one-hot vector (frames, 12). A silent
   frame has no strongest class and reads as C, as in transformers.

The model repeats or cuts these frames to its `chroma_length` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PITCH_CLASSES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")
A0_HZ = 27.5  # the pitch the octave scale counts from (A440 / 16)
OCTAVE_CENTRE, OCTAVE_WIDTH = 5.0, 2.0  # the register weighting: octaves above A0
EPS = 1e-6


@dataclass(frozen=True)
class ChromaSettings:
    """The feature extractor's parameters (preprocessor_config.json of a melody model)."""

    sampling_rate: int = 32000
    n_fft: int = 16384
    hop_length: int = 4096
    num_chroma: int = 12
    chunk_length: float = 30.0

    @classmethod
    def from_folder(cls, folder: Path) -> ChromaSettings:
        """The settings a model folder's preprocessor_config.json gives (defaults for
        facebook/musicgen-melody where it is missing or says nothing)."""
        try:
            data = json.loads((Path(folder) / "preprocessor_config.json").read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        base = cls()

        def number(key: str, default: float) -> float:
            value = data.get(key)
            return value if isinstance(value, (int, float)) and value > 0 else default

        return cls(int(number("sampling_rate", base.sampling_rate)),
                   int(number("n_fft", base.n_fft)), int(number("hop_length", base.hop_length)),
                   int(number("num_chroma", base.num_chroma)),
                   float(number("chunk_length", base.chunk_length)))


def chroma_filters(sampling_rate: int, n_fft: int, num_chroma: int = 12) -> np.ndarray:
    """(num_chroma, n_fft // 2 + 1): how much each FFT bin counts for each pitch class."""
    hz = np.arange(1, n_fft) * (sampling_rate / n_fft)
    # each bin's pitch in chroma steps above A0; the DC bin is put 1.5 octaves below bin 1
    pitch = num_chroma * np.log2(hz / A0_HZ)
    pitch = np.concatenate(([pitch[0] - 1.5 * num_chroma], pitch))
    spacing = np.append(np.maximum(np.diff(pitch), 1.0), 1.0)
    classes = np.arange(num_chroma, dtype=np.float64)[:, None]
    half = float(np.round(num_chroma / 2))
    offset = np.mod(pitch[None, :] - classes + half, num_chroma) - half  # in [-half, half)
    votes = np.exp(-0.5 * (2.0 * offset / spacing[None, :]) ** 2)
    votes /= np.sqrt(np.sum(votes ** 2, axis=0, keepdims=True))
    octave = pitch / num_chroma
    votes *= np.exp(-0.5 * ((octave - OCTAVE_CENTRE) / OCTAVE_WIDTH) ** 2)[None, :]
    votes = np.roll(votes, -3 * (num_chroma // 12), axis=0)  # A first → C first
    return np.ascontiguousarray(votes[:, : n_fft // 2 + 1])


def power_spectrogram(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(n_fft // 2 + 1, 1 + len(wave) // hop): centred frames, periodic Hann window,
    |FFT|² over the window's energy."""
    wave = np.asarray(wave, dtype=np.float64)
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    count = 1 + (padded.shape[0] - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2) / np.sum(window ** 2)
    return power.T


def prepare(audio: np.ndarray, rate: int, settings: ChromaSettings) -> np.ndarray:
    """Mono float64 audio at the extractor's rate, cut to chunk_length seconds and padded
    evenly to one FFT window when shorter (step 1 of the module doc)."""
    audio = np.asarray(audio, dtype=np.float64)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1)
    if rate != settings.sampling_rate and mono.size:
        n = max(1, round(mono.size * settings.sampling_rate / rate))
        mono = np.interp(np.arange(n) * (rate / settings.sampling_rate),
                         np.arange(mono.size), mono)
    mono = mono[: round(settings.chunk_length * settings.sampling_rate)]
    if mono.size < settings.n_fft:
        pad = settings.n_fft - mono.size
        mono = np.pad(mono, (pad // 2, pad - pad // 2))
    return mono


def chromagram(audio: np.ndarray, rate: int, settings: ChromaSettings) -> np.ndarray:
    """The one-hot melody (frames, num_chroma) float32 of audio (n,) or (channels, n)."""
    wave = prepare(audio, rate, settings)
    power = power_spectrogram(wave, settings.n_fft, settings.hop_length)
    raw = chroma_filters(settings.sampling_rate, settings.n_fft, settings.num_chroma) @ power
    peak = np.maximum(raw.max(axis=0, keepdims=True), EPS)
    strongest = np.argmax(raw / peak, axis=0)
    onehot = np.zeros((raw.shape[1], settings.num_chroma), dtype=np.float32)
    onehot[np.arange(raw.shape[1]), strongest] = 1.0
    return onehot


def pitch_classes(features: np.ndarray) -> list[str]:
    """The pitch class of each frame of a chromagram, by name (for info and tests)."""
    return [PITCH_CLASSES[int(i) % 12] for i in np.argmax(features, axis=-1)]
