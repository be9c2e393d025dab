"""Text-to-music with any MusicGen folder (transformers), streamed as it is generated.

MusicGen predicts K EnCodec codebooks per audio frame with a "delay pattern": codebook k
of frame t is produced at step t + k + 1. transformers' `streamer=` does not see those
tokens for MusicGen, so a StoppingCriteria that never stops is our per-step hook: it
reports progress, checks for cancel (raising Cancelled stops `generate` at once), undoes
the delay for the frames that are complete and, every ~1 s of audio, decodes a window of
frames with EnCodec.

Windows overlap so that each piece of audio is decoded with the context a whole-piece
decode would give it: LEFT_CONTEXT_S of frames before (EnCodec's decoder has an LSTM
and reflect-padded convolutions) and RIGHT_CONTEXT_FRAMES after (the convolutions look
a few frames ahead; measured: 4 frames give 1e-7 agreement). The final audio is exactly
the concatenation of the streamed chunks, and it is decoded the same way whether or not
anyone watches the previews, so the same request always gives the same samples.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.catalog import model_dirs
from studio.core.errors import ModelError, RequestError
from studio.core.requests import MusicRequest, Request
from studio.core.results import Preview, Result
from studio.core.settings import Settings
from studio.engines.base import Engine, Events, LoadSpec, wrong_kind
from studio.engines.devices import module_bytes, torch_dtype

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

log = logging.getLogger(__name__)

FIRST_CHUNK_S = 0.5  # a short first chunk so that playback can start early
CHUNK_S = 1.0  # then one chunk per second of audio
LEFT_CONTEXT_S = 1.0  # frames decoded before a chunk (LSTM + conv warm-up), then dropped
RIGHT_CONTEXT_FRAMES = 8  # frames decoded after a chunk (conv look-ahead), then dropped
PROMPT_S = 10.0  # the seconds of a piece's end that condition its continuation
WINDOW_S = 30.0  # the most audio (prompt + new) one generate call holds, as MusicGen was trained
HOW_TO_GET = (
    "put a MusicGen folder (config.json, model.safetensors and the processor files, e.g. "
    "facebook/musicgen-small saved with save_pretrained) in the models folder, or choose a "
    "models folder in Settings"
)


def resolve_folder(model: str, settings: Settings) -> Path:
    """The folder a model id names: an absolute path, or a folder name in a models folder."""
    raw = Path(model).expanduser()
    candidates = [raw] if raw.is_absolute() else [Path.cwd() / raw] + [
        d / raw for d in model_dirs(settings)
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    places = ", ".join(str(c) for c in candidates)
    raise ModelError(f"MusicGen model {model!r} was not found (looked in {places}); {HOW_TO_GET}.")


def check_folder(folder: Path, allow_pickle: bool, model_type: str = "musicgen") -> dict[str, Any]:
    """Read config.json and refuse what we cannot (or should not) load, in one sentence
    (`model_type`: what the engine runs, "musicgen" or "musicgen_melody")."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} has no config.json, so it is not a MusicGen model; "
                         f"{HOW_TO_GET}.") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / 'config.json'} could not be read ({exc}).") from exc
    found = str(config.get("model_type", ""))
    if found != model_type:
        names = {"musicgen": "MusicGen", "musicgen_melody": "MusicGen-Melody"}
        raise ModelError(
            f"{folder.name} is a {names.get(found, repr(found or '?'))} model, not a "
            f"{names.get(model_type, model_type)} one."
        )
    names = [p.name for p in folder.iterdir() if p.is_file()]
    has_safe = any(n.endswith(".safetensors") for n in names)
    has_pickle = any(n.endswith((".bin", ".pt", ".pth", ".ckpt")) for n in names)
    if not has_safe and not has_pickle:
        raise ModelError(f"{folder.name} has a config but no weights (.safetensors) in it.")
    if not has_safe and not allow_pickle:
        raise ModelError(
            f"{folder.name} only has pickled .bin weights, which can run code when opened; "
            "allow pickled checkpoints in Settings to load it as plain weights."
        )
    return config


class CodeLayout:
    """Where frame t of codebook row r sits in MusicGen's delayed token matrix.

    Column 0 holds the start token; row r is delayed by r (mono) or r // 2 (stereo,
    whose left/right codebooks are interleaved), so frame t of row r is at column
    1 + delay(r) + t, and a frame is complete once its most delayed row is generated.
    """

    def __init__(self, num_codebooks: int, audio_channels: int) -> None:
        self.rows = num_codebooks
        self.channels = audio_channels
        per_channel = num_codebooks // audio_channels
        self.delays = [r // audio_channels if audio_channels > 1 else r for r in range(self.rows)]
        self.max_delay = per_channel - 1

    def steps_for(self, frames: int) -> int:
        """New tokens to generate for `frames` complete frames."""
        return frames + self.max_delay

    def complete(self, columns: int) -> int:
        """Complete frames in a token matrix of `columns` columns (start token included)."""
        return max(0, columns - 1 - self.max_delay)

    def frames(self, ids: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Codes (rows, stop - start) of frames [start, stop) from ids (rows, columns)."""
        return torch.stack(
            [ids[r, 1 + d + start : 1 + d + stop] for r, d in enumerate(self.delays)]
        )


class WindowDecoder:
    """Turns complete frames into audio chunks, decoding overlapping windows (see module)."""

    def __init__(
        self,
        decode: Any,  # codes (rows, n) → float32 numpy (channels, n * hop)
        hop: int,
        frame_rate: float,
        total_frames: int,
        total_samples: int,
        *,
        first_chunk_s: float = FIRST_CHUNK_S,
        chunk_s: float = CHUNK_S,
        left_s: float = LEFT_CONTEXT_S,
        right_frames: int = RIGHT_CONTEXT_FRAMES,
    ) -> None:
        self.decode = decode
        self.hop = hop
        self.total_frames = total_frames
        self.total_samples = total_samples
        self.first_chunk = max(1, round(first_chunk_s * frame_rate))
        self.chunk = max(1, round(chunk_s * frame_rate))
        self.left = max(0, round(left_s * frame_rate))
        self.right = max(0, right_frames)
        self.done = 0  # frames turned into audio so far
        self.first_left: int | None = None  # context for the first chunk, when it differs
        self.samples = 0  # samples handed out so far
        self.decode_seconds = 0.0

    def poll(self, codes_of: Any, available: int) -> list[np.ndarray]:
        """Chunks that `available` complete frames allow; codes_of(a, b) gives frames [a, b)."""
        chunks: list[np.ndarray] = []
        while True:
            size = self.first_chunk if self.done == 0 else self.chunk
            end = self.done + size
            if end >= self.total_frames:
                break  # the tail is decoded by finish(), with no right context needed
            if end + self.right > available:
                break
            chunks.append(self._window(codes_of, end, min(available, end + self.right)))
        return chunks

    def finish(self, codes_of: Any) -> np.ndarray | None:
        """The last chunk, once every frame is there (None when nothing is left)."""
        if self.done >= self.total_frames:
            return None
        return self._window(codes_of, self.total_frames, self.total_frames)

    def _window(self, codes_of: Any, end: int, stop: int) -> np.ndarray:
        left = self.first_left if self.samples == 0 and self.first_left is not None \
            else self.left
        start = max(0, self.done - left)
        t0 = time.perf_counter()
        audio = self.decode(codes_of(start, stop))
        self.decode_seconds += time.perf_counter() - t0
        a = (self.done - start) * self.hop
        b = (end - start) * self.hop
        chunk = audio[:, a:b]
        room = self.total_samples - self.samples
        chunk = chunk[:, : max(0, room)]
        self.done = end
        self.samples += chunk.shape[1]
        return np.ascontiguousarray(np.clip(chunk, -1.0, 1.0), dtype=np.float32)


class StreamHook:
    """A StoppingCriteria that never stops: progress, cancel and audio chunks per step."""

    def __init__(self, layout: CodeLayout, window: WindowDecoder, events: Events,
                 total_steps: int, sample_rate: int, previews: bool, *,
                 prompt_frames: int = 0, base_step: int = 0) -> None:
        """prompt_frames: audio-prompt columns already in the ids (not steps); base_step:
        the steps of earlier windows of a windowed continuation (progress is overall)."""
        self.prompt_frames = prompt_frames
        self.prompt: torch.Tensor | None = None  # the audio prompt's codes (rows, frames)
        self.base_step = base_step
        self.layout = layout
        self.window = window
        self.events = events
        self.total = total_steps
        self.sample_rate = sample_rate
        self.previews = previews
        self.chunks: list[np.ndarray] = []
        self.ids: torch.Tensor | None = None
        self.first_chunk_s: float | None = None
        self._t0 = time.perf_counter()

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        self.ids = input_ids
        step = input_ids.shape[-1] - 1 - self.prompt_frames + self.base_step
        self.events.progress(min(step, self.total), self.total)  # raises Cancelled
        available = self.layout.complete(input_ids.shape[-1])
        for chunk in self.window.poll(self.codes_of, available):
            self.emit(chunk, step)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def codes_of(self, start: int, stop: int) -> torch.Tensor:
        assert self.ids is not None
        codes = self.layout.frames(self.ids, start, stop)
        if self.prompt is not None and start < self.prompt.shape[1]:
            # the ids hold what was sampled where the delay pattern forces the prompt's
            # own codes (transformers applies that mask to what it returns; so do we)
            end = min(stop, self.prompt.shape[1])
            codes = codes.clone()
            codes[:, : end - start] = self.prompt[:, start:end].to(codes.device)
        return codes

    def emit(self, chunk: np.ndarray, step: int) -> None:
        if self.first_chunk_s is None:
            self.first_chunk_s = time.perf_counter() - self._t0
        self.chunks.append(chunk)
        if self.previews and chunk.shape[1]:
            self.events.preview(
                Preview("audio", chunk, step, self.total, sample_rate=self.sample_rate,
                        info={"seconds": self.window.samples / self.sample_rate})
            )


class _CodesOnly:
    """What MusicGen's generate gets instead of its final whole-piece decode.

    We have already decoded everything in windows; skipping the second decode keeps the
    cost of streaming close to that of a plain `generate`.
    """

    audio_values = torch.zeros(1, 1, 1)


@contextlib.contextmanager
def codes_only(model: Any) -> Iterator[None]:
    """Temporarily make `model.audio_encoder.decode` a no-op (restored afterwards)."""
    encoder = model.audio_encoder
    encoder.decode = lambda *args, **kwargs: _CodesOnly()
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del encoder.decode


class MusicGenEngine(Engine):
    """One loaded MusicGen model (text encoder, decoder LM and EnCodec) on one device."""

    kinds = ("music",)

    def __init__(self, spec: LoadSpec, model: Any, processor: Any, folder: Path) -> None:
        super().__init__(spec)
        self.model = model
        self.processor = processor
        self.folder = folder
        codec = model.config.audio_encoder
        self.sample_rate = int(codec.sampling_rate)
        self.hop = int(np.prod(codec.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop
        decoder = model.decoder.config
        self.layout = CodeLayout(int(decoder.num_codebooks), int(decoder.audio_channels))

    # loading -------------------------------------------------------------------------
    model_type = "musicgen"  # the config.json model_type this engine runs

    @staticmethod
    def model_class() -> Any:
        from transformers import MusicgenForConditionalGeneration

        return MusicgenForConditionalGeneration

    @staticmethod
    def read_processor(folder: Path) -> Any:
        """The folder's processor (tokenizer and EnCodec feature extractor), or None."""
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> MusicGenEngine:
        folder = resolve_folder(spec.model, settings)
        check_folder(folder, settings.allow_pickle, cls.model_type)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        kwargs: dict[str, Any] = {"dtype": torch_dtype(spec.dtype), "local_files_only": True}
        if not settings.allow_pickle:
            kwargs["use_safetensors"] = True
        model = cls.model_class().from_pretrained(str(folder), **kwargs)
        model.to(spec.device).eval()
        processor = cls.read_processor(folder)
        if processor is None or not hasattr(processor, "tokenizer"):
            try:
                processor = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError, TypeError) as exc:
                raise ModelError(
                    f"{folder.name} has no tokenizer or processor files (tokenizer.json or "
                    "spiece.model), so prompts cannot be read."
                ) from exc
        return cls(spec, model, processor, folder)

    def memory_bytes(self) -> int:
        return module_bytes(self.model) if self.model is not None else 0

    def unload(self) -> None:
        self.model = None
        self.processor = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sample_rate": self.sample_rate,
                "codebooks": self.layout.rows, "channels": self.layout.channels}

    # generating ----------------------------------------------------------------------
    def plan(self, request: MusicRequest) -> tuple[int, int, int]:
        """(frames, new tokens, samples) for the request's duration."""
        frames = max(1, math.ceil(request.duration * self.frame_rate - 1e-9))
        samples = min(frames * self.hop, round(request.duration * self.sample_rate))
        return frames, self.layout.steps_for(frames), samples

    def sampling_kwargs(self, request: MusicRequest) -> dict[str, Any]:
        """generate() arguments for the request's sampling settings (0 turns one off)."""
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {
            "do_sample": sample,
            "guidance_scale": float(request.guidance) if request.guidance > 1 else 1.0,
            "num_beams": 1,
        }
        if sample:
            kwargs["temperature"] = float(request.temperature)
            kwargs["top_k"] = int(request.top_k)
            kwargs["top_p"] = float(request.top_p) if 0 < request.top_p < 1 else 1.0
        else:
            kwargs.update(temperature=1.0, top_k=0, top_p=1.0)
        return kwargs

    def inputs(self, request: MusicRequest) -> dict[str, Any]:
        """The text condition (or the null condition for an empty prompt) on our device."""
        device = self.model.device
        if not request.prompt.strip():
            uncond = self.model.get_unconditional_inputs(num_samples=1)
            return {"encoder_outputs": uncond.encoder_outputs,
                    "attention_mask": uncond.attention_mask.to(device)}
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        encoded = tokenizer([request.prompt], padding=True, return_tensors="pt")
        return {"input_ids": encoded["input_ids"].to(device),
                "attention_mask": encoded["attention_mask"].to(device)}

    def encode_text(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden states (1, L, H), mask (1, L)) of one prompt; "" is the null condition."""
        device = self.model.device
        if not prompt.strip():
            uncond = self.model.get_unconditional_inputs(num_samples=1)
            return uncond.encoder_outputs[0].to(device), uncond.attention_mask.to(device)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        encoded = tokenizer([prompt], return_tensors="pt")
        ids = encoded["input_ids"].to(device)
        mask = encoded["attention_mask"].to(device)
        with torch.inference_mode():
            hidden = self.model.get_encoder()(input_ids=ids, attention_mask=mask,
                                              return_dict=True).last_hidden_state
        return hidden, mask

    def blended_inputs(self, request: MusicRequest, guidance: float) -> dict[str, Any]:
        """generate() inputs whose text condition is a lerp of two prompts' encodings.

        The two encodings are zero-padded to one length. Strictly between the ends the
        cross-attention sees every token either prompt has (the union of the masks: a
        padded slot then holds the other prompt's state, scaled by its weight); at the
        ends only the mask of the prompt that has all the weight is used, so blend 1 is
        the blend prompt alone. Precomputed `encoder_outputs` skip transformers' own
        classifier-free-guidance setup, so the null half (zero states, zero mask) is
        appended here exactly as transformers would, and a one-row dummy `input_ids`
        keeps generate's batch size at 1 (it would otherwise count the null row).
        """
        from transformers.modeling_outputs import BaseModelOutput

        a, mask_a = self.encode_text(request.prompt)
        b, mask_b = self.encode_text(request.blend_prompt)
        length = max(a.shape[1], b.shape[1])

        def pad(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, 0, 0, length - x.shape[1]))

        def pad_mask(m: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(m, (0, length - m.shape[1]))

        a, b, mask_a, mask_b = pad(a), pad(b.to(a.dtype)), pad_mask(mask_a), pad_mask(mask_b)
        weight = float(request.blend)
        hidden = torch.lerp(a, b, weight)  # exact at both ends
        if weight >= 1.0:
            mask = mask_b
        elif weight <= 0.0:
            mask = mask_a
        else:
            mask = torch.maximum(mask_a, mask_b)
        if guidance > 1:
            hidden = torch.cat([hidden, torch.zeros_like(hidden)], dim=0)
            mask = torch.cat([mask, torch.zeros_like(mask)], dim=0)
        dummy = torch.full((1, 1), -100, dtype=torch.long, device=hidden.device)
        return {"input_ids": dummy, "attention_mask": mask,
                "encoder_outputs": BaseModelOutput(last_hidden_state=hidden)}

    def decode_codes(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (rows, n) → float32 audio (channels, n * hop) with the model's EnCodec."""
        encoder = self.model.audio_encoder
        decode = type(encoder).decode  # the class's own, even while codes_only() is active
        codes = codes.to(next(encoder.parameters()).device)
        with torch.inference_mode():
            if self.layout.channels == 1:
                audio = decode(encoder, codes[None, None], [None]).audio_values[0]
            else:
                left = decode(encoder, codes[None, None, 0::2], [None]).audio_values[0]
                right = decode(encoder, codes[None, None, 1::2], [None]).audio_values[0]
                audio = torch.cat([left, right], dim=0)
        return audio.float().cpu().numpy()

    def generate(self, request: Request, events: Events) -> Result:
        if not isinstance(request, MusicRequest):
            raise RequestError(wrong_kind(self.folder.name, request.kind, "music"))
        if self.model is None:
            raise ModelError(f"{self.folder.name} was unloaded; run the job again to reload it.")
        if request.extend_from.strip():
            return self.extend(request, events)
        from transformers import StoppingCriteriaList

        frames, steps, samples = self.plan(request)
        window = WindowDecoder(self.decode_codes, self.hop, self.frame_rate, frames, samples)
        hook = StreamHook(self.layout, window, events, steps, self.sample_rate,
                          previews=events.wants_previews())
        kwargs = self.sampling_kwargs(request)
        if request.blend > 0 and request.blend_prompt.strip():
            inputs = self.blended_inputs(request, kwargs["guidance_scale"])
        else:
            inputs = self.inputs(request)
            if not request.prompt.strip():
                kwargs["guidance_scale"] = 1.0  # the condition is the null condition already
        events.check_cancelled()
        t0 = time.perf_counter()
        torch.manual_seed(request.seed)
        with torch.inference_mode(), codes_only(self.model):
            self.model.generate(
                **inputs,
                **kwargs,
                max_new_tokens=steps,
                stopping_criteria=StoppingCriteriaList([hook]),
            )
        events.check_cancelled()
        if hook.ids is None:
            raise ModelError(f"{self.folder.name} generated nothing.")
        window.total_frames = min(frames, self.layout.complete(hook.ids.shape[-1]))
        last = window.finish(hook.codes_of)
        if last is not None:
            hook.emit(last, steps)
        audio = np.concatenate(hook.chunks, axis=1) if hook.chunks else np.zeros(
            (self.layout.channels, 0), np.float32)
        elapsed = time.perf_counter() - t0
        info = {
            "sample_rate": self.sample_rate,
            "seconds": audio.shape[1] / self.sample_rate,
            "frames": frames,
            "frame_rate": self.frame_rate,
            "tokens_per_s": steps / elapsed if elapsed > 0 else 0.0,
            "elapsed_s": elapsed,
            "decode_s": window.decode_seconds,
            "first_chunk_s": hook.first_chunk_s or elapsed,
            "device": self.spec.device,
            "dtype": self.spec.dtype,
            "model_name": self.folder.name,
        }
        return Result(request, "music", audio=audio, sample_rate=self.sample_rate, info=info)

    # continuing a piece ---------------------------------------------------------------
    def source_audio(self, request: MusicRequest) -> np.ndarray:
        """The piece to extend, as float32 (channels, n) at this model's rate and channels."""
        from studio.core.errors import RecipeError, StudioError
        from studio.core.formats.audio import read_audio, read_recipe

        path = Path(request.extend_from).expanduser()
        try:
            read_recipe(path)
            audio, rate = read_audio(path)
        except (RecipeError, StudioError, OSError):
            raise RequestError(
                f"{path.name} is not a Studio piece (a WAV or FLAC with its recipe), so "
                f"MusicGen cannot extend it.") from None
        if rate != self.sample_rate:  # linear resampling is enough for a prompt
            n = round(audio.shape[1] * self.sample_rate / rate)
            t = np.arange(n) * (rate / self.sample_rate)
            audio = np.stack([np.interp(t, np.arange(audio.shape[1]), ch) for ch in audio])
        want = self.layout.channels
        if audio.shape[0] != want:
            audio = (audio.mean(axis=0, keepdims=True) if want == 1
                     else np.repeat(audio[:1], want, axis=0))
        if audio.shape[1] < self.hop:
            raise RequestError(f"{path.name} is too short to continue.")
        return np.ascontiguousarray(audio, dtype=np.float32)

    def encode_audio(self, audio: np.ndarray) -> torch.Tensor:
        """EnCodec codes (rows, frames) of audio (channels, n), as transformers encodes an
        audio prompt (stereo: left and right codebooks interleaved)."""
        encoder = self.model.audio_encoder
        param = next(encoder.parameters())
        x = torch.from_numpy(audio)[None].to(param.device, param.dtype)
        with torch.inference_mode():
            if self.layout.channels == 1:
                return encoder.encode(input_values=x[:, :1], return_dict=True).audio_codes[0, 0]
            left = encoder.encode(input_values=x[:, :1], return_dict=True).audio_codes[0, 0]
            right = encoder.encode(input_values=x[:, 1:2], return_dict=True).audio_codes[0, 0]
            codes = left.new_ones((2 * left.shape[0], left.shape[1]))
            codes[0::2], codes[1::2] = left, right
            return codes

    def extend(self, request: MusicRequest, events: Events) -> Result:
        """The piece, then `duration` more seconds continued from its last PROMPT_S seconds.

        The continuation runs in windows of at most WINDOW_S seconds (prompt included):
        each window's prompt is the last PROMPT_S seconds of codes so far, so a piece can
        go on for minutes. The piece's own samples come first, unchanged; each window's new
        frames are decoded with the frames before them as context (see WindowDecoder).
        """
        from transformers import StoppingCriteriaList

        original = self.source_audio(request)
        prompt_n = min(original.shape[1], round(PROMPT_S * self.sample_rate))
        prompt_n -= prompt_n % self.hop
        codes = self.encode_audio(original[:, original.shape[1] - prompt_n:])
        frames, _steps, samples = self.plan(request)
        prompt_frames = max(1, min(codes.shape[1], round(PROMPT_S * self.frame_rate)))
        window_frames = max(prompt_frames + 1, round(WINDOW_S * self.frame_rate))
        sizes: list[int] = []
        left = frames
        while left > 0:
            sizes.append(min(left, window_frames - prompt_frames))
            left -= sizes[-1]
        total_steps = sum(self.layout.steps_for(n) for n in sizes)
        kwargs = self.sampling_kwargs(request)
        inputs = self.inputs(request)
        if not request.prompt.strip():
            kwargs["guidance_scale"] = 1.0
        chunks: list[np.ndarray] = []
        if events.wants_previews():  # the piece itself first, so playback can start at 0
            events.preview(Preview("audio", original, 0, total_steps,
                                   sample_rate=self.sample_rate, info={"seconds": 0.0}))
        t0 = time.perf_counter()
        torch.manual_seed(request.seed)
        done_steps, made = 0, 0
        history = codes
        for n in sizes:
            events.check_cancelled()
            prompt = history[:, -prompt_frames:]
            p = prompt.shape[1]
            want = min(n * self.hop, samples - made)
            window = WindowDecoder(self.decode_codes, self.hop, self.frame_rate, p + n, want)
            window.done = p  # the prompt's audio is the piece's own: only new frames
            window.first_left = p  # decoded after the whole prompt, as generate decodes it
            hook = StreamHook(self.layout, window, events, total_steps, self.sample_rate,
                              previews=events.wants_previews(), prompt_frames=p,
                              base_step=done_steps)
            hook.prompt = prompt
            with torch.inference_mode(), codes_only(self.model):
                self.model.generate(
                    **inputs, **kwargs, decoder_input_ids=prompt.to(self.model.device),
                    max_new_tokens=self.layout.steps_for(n),
                    stopping_criteria=StoppingCriteriaList([hook]))
            events.check_cancelled()
            if hook.ids is None:
                raise ModelError(f"{self.folder.name} generated nothing.")
            window.total_frames = min(p + n, self.layout.complete(hook.ids.shape[-1]))
            last = window.finish(hook.codes_of)
            if last is not None:
                hook.emit(last, done_steps + self.layout.steps_for(n))
            new = hook.codes_of(p, window.total_frames).to(history.device)
            history = torch.cat([history, new], dim=1)
            chunks += hook.chunks
            made += sum(c.shape[1] for c in hook.chunks)
            done_steps += self.layout.steps_for(n)
        added = np.concatenate(chunks, axis=1) if chunks else np.zeros(
            (self.layout.channels, 0), np.float32)
        audio = np.concatenate([original, added], axis=1)
        elapsed = time.perf_counter() - t0
        info = {
            "sample_rate": self.sample_rate,
            "seconds": audio.shape[1] / self.sample_rate,
            "frames": frames,
            "frame_rate": self.frame_rate,
            "elapsed_s": elapsed,
            "device": self.spec.device,
            "dtype": self.spec.dtype,
            "model_name": self.folder.name,
            "extended": {"from": request.extend_from, "seconds": request.duration,
                         "original_seconds": original.shape[1] / self.sample_rate,
                         "prompt_seconds": prompt_n / self.sample_rate,
                         "windows": len(sizes)},
        }
        return Result(request, "music", audio=audio, sample_rate=self.sample_rate, info=info)
