"""MusicGen-Melody (transformers' MusicgenMelodyForConditionalGeneration): text to music
whose melody follows a reference audio.

The reference's chromagram (studio.engines.chroma: one pitch class a frame, computed in
numpy because transformers' feature extractor needs torchaudio) is the model's
`input_features`; transformers projects it, repeats or cuts it to the model's
`chroma_length` frames and prefixes it to the decoder, with a null melody for the
classifier-free-guidance half. Everything else (the delay pattern, streaming windows,
cancel, seeds) is MusicGen's (studio.engines.musicgen). Without a reference the model
writes from the text alone (transformers' null melody). Prompt blends and extending a
piece are MusicGen's and are refused here in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from studio.core.errors import RequestError, StudioError
from studio.core.requests import MusicRequest, Request
from studio.core.results import Result
from studio.engines.base import Events, LoadSpec
from studio.engines.chroma import ChromaSettings, chromagram, pitch_classes
from studio.engines.musicgen import MusicGenEngine


def read_melody(path_text: str) -> tuple[Any, int]:
    """The reference audio (channels, n) and its rate; one sentence when it is not audio."""
    from studio.core.formats.audio import read_audio

    path = Path(path_text).expanduser()
    try:
        audio, rate = read_audio(path)
    except StudioError as exc:
        raise RequestError(f"The melody reference cannot be read: {exc}") from None
    if audio.size == 0 or not rate:
        raise RequestError(f"The melody reference {path.name} holds no sound.")
    return audio, rate


class MusicGenMelodyEngine(MusicGenEngine):
    """One loaded MusicGen-Melody model and the chroma settings of its feature extractor."""

    model_type = "musicgen_melody"

    def __init__(self, spec: LoadSpec, model: Any, processor: Any, folder: Path) -> None:
        super().__init__(spec, model, processor, folder)
        self.chroma = ChromaSettings.from_folder(folder)
        self._classes: list[str] = []  # the last reference's pitch class per frame

    @staticmethod
    def model_class() -> Any:
        from transformers import MusicgenMelodyForConditionalGeneration

        return MusicgenMelodyForConditionalGeneration

    @staticmethod
    def read_processor(folder: Path) -> Any:
        """None: the melody processor's feature extractor needs torchaudio; the base
        loader then reads the tokenizer alone, and the chroma is ours."""
        return None

    def melody_features(self, request: MusicRequest) -> torch.Tensor | None:
        """The reference's chromagram as the model's input_features (1, frames, 12)."""
        if not request.melody.strip():
            return None
        audio, rate = read_melody(request.melody)
        features = chromagram(audio, rate, self.chroma)
        self._classes = pitch_classes(features)
        param = next(self.model.parameters())
        return torch.from_numpy(features)[None].to(param.device, param.dtype)

    def inputs(self, request: MusicRequest) -> dict[str, Any]:
        """The text (an empty prompt reads as the end token alone) and the melody."""
        device = self.model.device
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        encoded = tokenizer([request.prompt], padding=True, return_tensors="pt")
        out: dict[str, Any] = {"input_ids": encoded["input_ids"].to(device),
                               "attention_mask": encoded["attention_mask"].to(device)}
        features = self.melody_features(request)
        if features is not None:
            out["input_features"] = features
        return out

    def generate(self, request: Request, events: Events) -> Result:
        if isinstance(request, MusicRequest):
            if request.blend > 0 and request.blend_prompt.strip():
                raise RequestError("MusicGen-Melody does not blend prompts: set the blend "
                                   "to 0 (the melody reference conditions it instead).")
            if request.extend_from.strip():
                raise RequestError("MusicGen-Melody cannot extend a piece yet: use a "
                                   "MusicGen model, or give the piece as the melody.")
            events.check_cancelled()
        self._classes = []
        result = super().generate(request, events)
        if isinstance(request, MusicRequest) and request.melody.strip():
            classes = self._classes
            result.info["melody"] = {
                "file": request.melody, "frames": len(classes),
                "frame_rate": self.chroma.sampling_rate / self.chroma.hop_length,
                "pitch_classes": "".join(f"{c} " for c in classes[:64]).strip()}
        return result

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "melody": True,
                "chroma_length": int(getattr(self.model.config, "chroma_length", 0))}
