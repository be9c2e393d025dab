"""Audio outputs (WAV, FLAC) with their recipe inside, and audio/recipes read back.

A WAV we write is plain RIFF that every player opens, with two extra chunks:
- `LIST`/`INFO`: INAM (the prompt), ISFT (the software), ICRD (the date) and ICMT holding
  our JSON record (the whole request, ASCII-escaped so any INFO reader keeps it intact);
- `_PMX`: an XMP packet marking the file as made by a trained algorithm (the chunk Adobe
  tools use for XMP in WAV).
A FLAC gets the same facts as Vorbis comments (TITLE, DATE, ENCODER, STUDIO = the record).
FLAC needs libsndfile (the `soundfile` package); WAV needs nothing but the standard library.

Plain Python + numpy: no torch, no Qt.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from studio.core import metadata
from studio.core.errors import RecipeError, StudioError
from studio.core.outputs import write_beside, write_new_output
from studio.core.results import Result

SampleFormat = Literal["pcm16", "float32"]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
RECIPE_INFO_ID = "ICMT"
XMP_CHUNK_ID = b"_PMX"
FLAC_RECIPE_KEY = "STUDIO"
FLAC_MAGIC = b"fLaC"
FLAC_VORBIS_COMMENT = 4
MAX_META_CHUNK = 16 * 2**20  # larger "metadata" is not something we want to read

# ─── shaping audio ────────────────────────────────────────────────────────────────────


def as_channels_first(audio: Any) -> np.ndarray:
    """float32 (channels, n) in [-1, 1] from a 1-D or 2-D array; bad values become silence."""
    data = np.asarray(audio)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[0] > 16:
        raise StudioError(f"The audio has an unexpected shape {data.shape}; cannot save it.")
    if not np.issubdtype(data.dtype, np.floating):
        raise StudioError(f"The audio is not floating point ({data.dtype}); cannot save it.")
    data = np.nan_to_num(data.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(data, -1.0, 1.0)


def _interleaved(audio: np.ndarray, sample_format: SampleFormat) -> bytes:
    frames = np.ascontiguousarray(audio.T)  # (n, channels): interleaved
    if sample_format == "float32":
        return frames.astype("<f4").tobytes()
    return np.round(frames * 32767.0).astype("<i2").tobytes()


# ─── RIFF/WAV writing ─────────────────────────────────────────────────────────────────


def _chunk(cid: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return cid + struct.pack("<I", len(payload)) + payload + pad


def info_chunk(fields: Mapping[str, str]) -> bytes:
    """A LIST/INFO chunk: four-letter ids → NUL-terminated UTF-8 strings."""
    body = b"INFO"
    for key, value in fields.items():
        if len(key) != 4 or not value:
            continue
        body += _chunk(key.encode("ascii"), value.encode("utf-8") + b"\0")
    return _chunk(b"LIST", body)


def wav_bytes(
    audio: np.ndarray,
    sample_rate: int,
    *,
    sample_format: SampleFormat = "pcm16",
    info: Mapping[str, str] | None = None,
    xmp: str | None = None,
) -> bytes:
    """A complete WAV file: fmt, (fact), LIST/INFO, _PMX, data."""
    audio = as_channels_first(audio)
    if not isinstance(sample_rate, int) or not 1 <= sample_rate <= 768000:
        raise StudioError(f"The sample rate {sample_rate!r} is not usable; cannot save the audio.")
    channels, n = audio.shape
    if sample_format == "float32":
        tag, width = WAVE_FORMAT_IEEE_FLOAT, 4
    elif sample_format == "pcm16":
        tag, width = WAVE_FORMAT_PCM, 2
    else:
        raise StudioError(f"Unknown WAV sample format {sample_format!r}.")
    block = channels * width
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, 8 * width)
    parts = [b"WAVE"]
    if tag == WAVE_FORMAT_IEEE_FLOAT:
        parts.append(_chunk(b"fmt ", fmt + struct.pack("<H", 0)))
        parts.append(_chunk(b"fact", struct.pack("<I", n)))
    else:
        parts.append(_chunk(b"fmt ", fmt))
    if info:
        parts.append(info_chunk(info))
    if xmp:
        parts.append(_chunk(XMP_CHUNK_ID, xmp.encode("utf-8")))
    parts.append(_chunk(b"data", _interleaved(audio, sample_format)))
    body = b"".join(parts)
    if len(body) + 8 > 0xFFFFFFFF:
        raise StudioError("The audio is too long for a WAV file (over 4 GB).")
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ─── FLAC writing ─────────────────────────────────────────────────────────────────────


def _soundfile() -> Any:
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: libsndfile missing
        raise StudioError(
            f"FLAC needs the soundfile package and libsndfile ({exc}); save as WAV instead."
        ) from exc
    return soundfile


def flac_available() -> bool:
    try:
        return "FLAC" in _soundfile().available_formats()
    except StudioError:
        return False


def vorbis_comment_block(comments: Mapping[str, str], vendor: str) -> bytes:
    """The payload of a FLAC VORBIS_COMMENT block (little-endian lengths, UTF-8 text)."""
    items = [f"{k}={v}".encode() for k, v in comments.items() if v]
    out = struct.pack("<I", len(vendor.encode())) + vendor.encode()
    out += struct.pack("<I", len(items))
    for item in items:
        out += struct.pack("<I", len(item)) + item
    return out


def _flac_blocks(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """FLAC metadata blocks [(type, payload)] and where the audio frames start."""
    if data[:4] != FLAC_MAGIC:
        raise ValueError("not a FLAC stream")
    pos, blocks = 4, []
    while True:
        if pos + 4 > len(data):
            raise ValueError("the FLAC metadata ends early")
        header = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        payload = data[pos + 4 : pos + 4 + length]
        if len(payload) != length:
            raise ValueError("a FLAC metadata block ends early")
        blocks.append((header & 0x7F, payload))
        pos += 4 + length
        if header & 0x80:
            return blocks, pos


def flac_bytes(audio: np.ndarray, sample_rate: int, comments: Mapping[str, str]) -> bytes:
    """A 16-bit FLAC (libsndfile) whose Vorbis comments are exactly `comments`."""
    sf = _soundfile()
    audio = as_channels_first(audio)
    buffer = io.BytesIO()
    sf.write(buffer, np.ascontiguousarray(audio.T), sample_rate, format="FLAC", subtype="PCM_16")
    data = buffer.getvalue()
    blocks, start = _flac_blocks(data)
    kept = [(t, p) for t, p in blocks if t != FLAC_VORBIS_COMMENT and t != 1]  # 1 = PADDING
    comment = vorbis_comment_block(comments, metadata.app_version())
    if len(comment) >= 2**24:
        raise StudioError("The recipe is too large for a FLAC comment.")
    kept.insert(1, (FLAC_VORBIS_COMMENT, comment))  # STREAMINFO must stay first
    out = bytearray(FLAC_MAGIC)
    for i, (btype, payload) in enumerate(kept):
        last = 0x80 if i == len(kept) - 1 else 0
        out += bytes([last | btype]) + len(payload).to_bytes(3, "big") + payload
    return bytes(out + data[start:])


# ─── the recipe we embed ──────────────────────────────────────────────────────────────


def recipe_record(result: Result) -> dict[str, Any]:
    """Our JSON record for an audio output: the request plus the engine's plain facts."""
    info = metadata.json_safe(result.info)
    return metadata.studio_record(result.request, result.modality or "music", info=info)


def _facts(result: Result) -> tuple[str, str, str, str]:
    request = result.request
    prompt = getattr(request, "prompt", "") or ""
    record = json.dumps(recipe_record(result), ensure_ascii=True, separators=(",", ":"))
    date = _dt.date.today().isoformat()
    return prompt, record, date, metadata.model_display_name(getattr(request, "model", "") or "")


def wav_for_result(result: Result, sample_format: SampleFormat = "pcm16") -> bytes:
    """The WAV bytes of a result, recipe included."""
    if result.audio is None:
        raise StudioError("This result holds no audio to save.")
    prompt, record, date, model_name = _facts(result)
    info = {"INAM": prompt[:1000], "ISFT": metadata.app_version(), "ICRD": date,
            RECIPE_INFO_ID: record}
    xmp = metadata.build_xmp(prompt, model_name=model_name or None)
    return wav_bytes(result.audio, int(result.sample_rate), sample_format=sample_format,
                     info=info, xmp=xmp)


def flac_for_result(result: Result) -> bytes:
    """The FLAC bytes of a result, recipe included (needs soundfile)."""
    if result.audio is None:
        raise StudioError("This result holds no audio to save.")
    prompt, record, date, _model = _facts(result)
    comments = {"TITLE": prompt, "DATE": date, "ENCODER": metadata.app_version(),
                FLAC_RECIPE_KEY: record}
    return flac_bytes(result.audio, int(result.sample_rate), comments)


def save_audio(result: Result, out_dir: Path) -> list[Path]:
    """Write the WAV (atomically, never overwriting), then each extra file beside it."""
    data = wav_for_result(result)  # fail before anything is written
    seed = getattr(result.request, "seed", -1)
    prompt = getattr(result.request, "prompt", "") or ""

    def write(f: BinaryIO) -> None:
        f.write(data)

    main = write_new_output(Path(out_dir), seed, prompt, ".wav", write)
    paths = [main]
    for suffix, extra in result.extras.items():
        suffix = suffix if suffix.startswith(".") else f".{suffix}"
        paths.append(write_beside(main, suffix, bytes(extra)))
    return paths


def export_audio(result: Result, path: Path) -> Path:
    """Save a copy as .wav or .flac at a chosen path (Save as…), recipe included."""
    from studio.core.atomic import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".flac":
        data = flac_for_result(result)
    elif suffix == ".wav":
        data = wav_for_result(result)
    else:
        raise StudioError(f"Save music as .wav or .flac, not {suffix or 'a file without suffix'}.")
    return atomic_write_bytes(path, data)


# ─── reading ──────────────────────────────────────────────────────────────────────────


def riff_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """[(id, start, size)] of the top-level chunks of a RIFF/WAVE file (tolerates a cut end)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        start = pos + 8
        size = min(size, len(data) - start)
        chunks.append((cid, start, size))
        pos = start + size + (size % 2)
    return chunks


def read_info(data: bytes, start: int, size: int) -> dict[str, str]:
    """The strings of a LIST/INFO chunk (UTF-8, falling back to Latin-1)."""
    body = data[start : start + size]
    if body[:4] != b"INFO":
        return {}
    out, pos = {}, 4
    while pos + 8 <= len(body):
        key = body[pos : pos + 4].decode("latin-1")
        length = struct.unpack_from("<I", body, pos + 4)[0]
        raw = body[pos + 8 : pos + 8 + length].split(b"\0", 1)[0]
        try:
            out[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[key] = raw.decode("latin-1")
        pos += 8 + length + (length % 2)
    return out


def riff_metadata(f: BinaryIO) -> tuple[dict[str, str], dict[str, Any]]:
    """(INFO strings, format facts) of an open WAV file; reads only the small chunks."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    info: dict[str, str] = {}
    facts: dict[str, Any] = {"format": "WAV"}
    while True:
        header = f.read(8)
        if len(header) < 8:
            break
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        if cid in (b"LIST", b"fmt ") and size <= MAX_META_CHUNK:
            payload = f.read(size)
            if cid == b"LIST":
                info.update(read_info(payload, 0, len(payload)))
            elif len(payload) >= 16:
                tag, channels, rate, _bps, _block, bits = struct.unpack_from("<HHIIHH", payload)
                facts.update(format_tag=tag, channels=channels, sample_rate=rate, bits=bits)
            if size % 2:
                f.seek(1, io.SEEK_CUR)
            continue
        if cid == b"data":
            facts["data_bytes"] = size
        elif cid == XMP_CHUNK_ID:
            facts["xmp"] = True
        f.seek(size + size % 2, io.SEEK_CUR)
    if facts.get("channels") and facts.get("bits") and facts.get("sample_rate"):
        frames = facts.get("data_bytes", 0) // (facts["channels"] * max(1, facts["bits"] // 8))
        facts["seconds"] = frames / facts["sample_rate"]
    return info, facts


def flac_comments(f: BinaryIO) -> dict[str, str]:
    """Vorbis comments of an open FLAC file (keys upper-cased; the last of a key wins)."""
    if f.read(4) != FLAC_MAGIC:
        raise ValueError("not a FLAC stream")
    out: dict[str, str] = {}
    while True:
        header = f.read(4)
        if len(header) < 4:
            raise ValueError("the FLAC metadata ends early")
        btype, length = header[0] & 0x7F, int.from_bytes(header[1:], "big")
        if btype == FLAC_VORBIS_COMMENT:
            payload = f.read(length)
            if len(payload) != length:
                raise ValueError("a FLAC comment block ends early")
            pos = 4 + struct.unpack_from("<I", payload, 0)[0]
            count = struct.unpack_from("<I", payload, pos)[0]
            pos += 4
            for _ in range(count):
                size = struct.unpack_from("<I", payload, pos)[0]
                item = payload[pos + 4 : pos + 4 + size].decode("utf-8", "replace")
                pos += 4 + size
                key, sep, value = item.partition("=")
                if sep:
                    out[key.upper()] = value
        else:
            f.seek(length, io.SEEK_CUR)
        if header[0] & 0x80:
            return out


def _recipe_from(texts: Mapping[str, str], keys: tuple[str, ...], name: str,
                 raw: dict[str, Any]) -> Any:
    from studio.core.recipes import Recipe

    for key in keys:
        text = texts.get(key, "")
        if not text.lstrip().startswith("{"):
            continue
        try:
            record = json.loads(text)
        except ValueError:
            continue
        request = metadata.record_request(record)
        if request is not None:
            raw = {**raw, "record": record}
            return Recipe("studio", str(record.get("modality") or request.get("kind") or "music"),
                          dict(request), "", raw)
    raise RecipeError(f"{name} holds no recipe (no generation settings were found in it).")


def read_recipe(path: Path) -> Any:
    """The recipe inside a WAV (LIST/INFO ICMT) or FLAC (Vorbis comment) we wrote."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        try:
            if magic == FLAC_MAGIC:
                comments = flac_comments(f)
                raw = {"format": "FLAC",
                       "comments": {k: v for k, v in comments.items() if k != FLAC_RECIPE_KEY}}
                texts = comments
                keys: tuple[str, ...] = (FLAC_RECIPE_KEY, "COMMENT", "DESCRIPTION")
            elif magic == b"RIFF":
                info, facts = riff_metadata(f)
                raw = {**facts, "info": {k: v for k, v in info.items() if k != RECIPE_INFO_ID}}
                texts, keys = info, (RECIPE_INFO_ID,)
            else:
                raise RecipeError(f"{path.name} is not a WAV or FLAC file.")
        except (ValueError, struct.error) as exc:
            raise RecipeError(f"{path.name} is corrupt ({exc}).") from None
    return _recipe_from(texts, keys, path.name, raw)


def _decode_wav(data: bytes, name: str) -> tuple[np.ndarray, int]:
    fmt = None
    pcm = None
    for cid, start, size in riff_chunks(data):
        if cid == b"fmt " and size >= 16:
            fmt = struct.unpack_from("<HHIIHH", data, start)
            if fmt[0] == WAVE_FORMAT_EXTENSIBLE and size >= 40:
                sub = struct.unpack_from("<H", data, start + 24)[0]  # first 2 bytes of the GUID
                fmt = (sub, *fmt[1:])
        elif cid == b"data":
            pcm = data[start : start + size]
    if fmt is None or pcm is None:
        raise StudioError(f"{name} is not a complete WAV file (no fmt or data chunk).")
    tag, channels, rate, _bps, _block, bits = fmt
    if channels < 1 or rate < 1:
        raise StudioError(f"{name} has a broken WAV header.")
    width = bits // 8
    usable = len(pcm) - len(pcm) % (width * channels)
    pcm = pcm[:usable]
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        samples = np.frombuffer(pcm, "<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag == WAVE_FORMAT_PCM and bits == 8:
        samples = (np.frombuffer(pcm, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == WAVE_FORMAT_PCM and bits == 16:
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    elif tag == WAVE_FORMAT_PCM and bits == 24:
        raw = np.frombuffer(pcm, np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 2**23, value - 2**24, value)
        samples = value.astype(np.float32) / float(2**23)
    elif tag == WAVE_FORMAT_PCM and bits == 32:
        samples = (np.frombuffer(pcm, "<i4").astype(np.float64) / 2**31).astype(np.float32)
    else:
        raise StudioError(f"{name} uses a WAV encoding Studio cannot play ({tag}, {bits} bit).")
    return np.ascontiguousarray(samples.reshape(-1, channels).T), rate


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Audio of a file as float32 (channels, n) and its sample rate.

    WAV is read here; other formats (FLAC, OGG...) through soundfile when it is installed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StudioError(f"No such file: {path}.") from None
    except OSError as exc:
        raise StudioError(f"Could not read {path.name}: {exc.strerror or exc}.") from exc
    if data[:4] == b"RIFF":
        try:
            return _decode_wav(data, path.name)
        except (ValueError, struct.error) as exc:
            raise StudioError(f"{path.name} is not a readable WAV file ({exc}).") from None
    sf = _soundfile()
    try:
        frames, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's own error type; one sentence for the user
        raise StudioError(f"{path.name} is not an audio file Studio can read ({exc}).") from exc
    return np.ascontiguousarray(frames.T), int(rate)


def write_wav(f: BinaryIO, audio: np.ndarray, sample_rate: int,
              sample_format: SampleFormat = "pcm16") -> None:
    """Plain WAV with no metadata (previews, tests)."""
    f.write(wav_bytes(audio, sample_rate, sample_format=sample_format))
