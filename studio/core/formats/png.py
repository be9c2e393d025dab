"""PNG outputs with their recipe inside; the texts of an image read back for its recipe.

Every PNG we write carries three text chunks:
- `parameters`: AUTOMATIC1111 infotext (tEXt, or iTXt when the text is not Latin-1),
  which A1111, Forge, Civitai and most SD tools read;
- `studio`: our JSON record with the whole request for that very image (its own seed),
  so it can be replayed exactly;
- `XML:com.adobe.xmp`: an XMP packet marking the image as made by a trained algorithm.

Reading gathers an image's texts (PNG text chunks, or A1111 text in the EXIF
UserComment of JPEG/WebP files, or "stealth" info hidden in the low bits of a PNG's
or WebP's pixels) and hands them to `importers`, which understands ours and other
apps' recipes (A1111/Forge, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from studio.core import metadata
from studio.core.errors import RecipeError, StudioError
from studio.core.formats.importers import PARAMETERS_KEY, STUDIO_KEY, recipe_from_texts
from studio.core.outputs import write_new_output
from studio.core.recipes import Recipe
from studio.core.results import Result
from studio.core.seeds import MAX_SEED

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEY = "XML:com.adobe.xmp"

MAX_CHUNK = 64 * 2**20  # larger "text" chunks are not metadata we want to read
MAX_TEXT_TOTAL = 128 * 2**20

# ─── writing ──────────────────────────────────────────────────────────────────────────


def _per_image(values: Any, base: int, i: int) -> int:
    """Seed of image i: the engine's list when it gave one, else base + i (A1111)."""
    if isinstance(values, (list, tuple)) and i < len(values):
        try:
            return int(values[i])
        except (TypeError, ValueError):
            pass
    if base is None or base < 0:
        return -1
    return (base + i) % (MAX_SEED + 1)  # as the image engine draws batch noise


def _to_pil(array: Any, index: int) -> Image.Image:
    import numpy as np  # here, not at the top: `studio info` reads recipes without numpy

    data = np.asarray(array)
    if data.dtype != np.uint8:
        raise StudioError(f"Picture {index + 1} is not 8-bit ({data.dtype}); cannot save it.")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4)):
        return Image.fromarray(np.ascontiguousarray(data))
    raise StudioError(f"Picture {index + 1} has an unexpected shape {data.shape}; cannot save it.")


def image_request(request: Any, seed: int, variation_seed: int | None) -> Any:
    """The request that makes exactly one image of a batch: its own seed, batch of one."""
    names = {f.name for f in dataclasses.fields(request)} if dataclasses.is_dataclass(
        request) else set()
    changes: dict[str, Any] = {}
    if "seed" in names:
        changes["seed"] = seed
    if "batch_size" in names:
        changes["batch_size"] = 1
    if variation_seed is not None and "variation_seed" in names:
        changes["variation_seed"] = variation_seed
    return dataclasses.replace(request, **changes) if changes else request


def png_info(
    request: Any, modality: str, *, model_hash: str | None = None, extra: Mapping[str, Any],
    vae_hash: str | None = None,
) -> PngInfo:
    """The three metadata chunks for one image."""
    model_name = metadata.model_display_name(getattr(request, "model", "") or "")
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, metadata.format_infotext(
        request, model_hash=model_hash,
        extras={**({"VAE hash": vae_hash} if vae_hash else {}),
                **metadata.infotext_extras(extra.get("info"))} or None))
    record = metadata.studio_record(request, modality, **extra)
    info.add_text(STUDIO_KEY, json.dumps(record, ensure_ascii=False))
    xmp = metadata.build_xmp(getattr(request, "prompt", "") or "", model_name=model_name)
    info.add_itxt(XMP_KEY, xmp, zip=False)
    return info


def save_images(result: Result, out_dir: Path) -> list[Path]:
    """Write one PNG per image of the result (atomically, never overwriting).

    Image i gets seed info["seeds"][i] when the engine reported it, else seed + i, as in
    A1111; its metadata describes that single image, so it can be replayed alone.
    """
    request = result.request
    images = list(result.images)
    n = len(images)
    base_seed = getattr(request, "seed", -1)
    strength = getattr(request, "variation_strength", 0) or 0
    base_variation = getattr(request, "variation_seed", -1)
    info = metadata.json_safe(result.info)
    model_hash = result.info.get("model_hash")
    model_hash = str(model_hash) if model_hash else None

    pictures = [_to_pil(array, i) for i, array in enumerate(images)]  # fail before writing
    paths: list[Path] = []
    for i, picture in enumerate(pictures):
        seed = _per_image(result.info.get("seeds"), base_seed, i)
        variation = None
        if strength > 0:
            variation = _per_image(result.info.get("variation_seeds"), base_variation, i)
        one = image_request(request, seed, variation)
        chunks = png_info(
            one,
            result.modality,
            model_hash=model_hash,
            extra={"batch": {"index": i, "size": n, "seed": base_seed}, "info": info},
            vae_hash=str(result.info.get("vae_hash") or "") or None,
        )

        def write(f: Any, picture: Image.Image = picture, chunks: PngInfo = chunks) -> None:
            picture.save(f, format="PNG", pnginfo=chunks)

        paths.append(write_new_output(out_dir, seed, getattr(one, "prompt", ""), ".png", write))
    return paths


# ─── reading PNG chunks ───────────────────────────────────────────────────────────────


def _inflate(data: bytes, name: str) -> bytes:
    decomp = zlib.decompressobj()
    out = decomp.decompress(data, MAX_CHUNK)
    if decomp.unconsumed_tail:
        raise ValueError(f"a compressed text chunk in {name} is too large")
    return out


def _decode_text_chunk(ctype: bytes, data: bytes, name: str) -> tuple[str, str]:
    key_bytes, sep, rest = data.partition(b"\0")
    if not sep:
        raise ValueError("no keyword separator")
    key = key_bytes.decode("latin-1")
    if ctype == b"tEXt":
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        return key, _inflate(rest[1:], name).decode("latin-1")
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        raise ValueError("short iTXt chunk")
    compressed = rest[0] == 1
    _lang, _, rest = rest[2:].partition(b"\0")
    _tkey, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, name)
    return key, text.decode("utf-8", errors="replace")


def read_png_chunks(path: Path) -> tuple[dict[str, str], tuple[int, int] | None, bool]:
    """Text chunks (last one wins, as in Pillow), the IHDR size, and whether IEND was found.

    Reads only the small chunks and skips the pixel data, so it is fast on big images.
    Raises RecipeError when the file is not a PNG; a damaged text chunk is skipped.
    """
    name = path.name
    texts: dict[str, str] = {}
    size: tuple[int, int] | None = None
    total = 0
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            raise RecipeError(f"{name} is not a PNG image.")
        file_size = path.stat().st_size
        while True:
            header = f.read(8)
            if len(header) < 8:
                return texts, size, False
            length, ctype = struct.unpack(">I4s", header)
            if ctype == b"IEND":
                return texts, size, True
            if f.tell() + length + 4 > file_size:
                return texts, size, False
            if ctype not in (b"IHDR", b"tEXt", b"zTXt", b"iTXt") or length > MAX_CHUNK:
                f.seek(length + 4, 1)
                continue
            data = f.read(length)
            crc = f.read(4)
            if len(data) < length or len(crc) < 4:
                return texts, size, False
            if zlib.crc32(ctype + data) != struct.unpack(">I", crc)[0]:
                log.warning("%s: skipping a %s chunk with a bad checksum", name, ctype.decode())
                continue
            if ctype == b"IHDR":
                if length >= 8:
                    size = struct.unpack(">II", data[:8])
                continue
            total += length
            if total > MAX_TEXT_TOTAL:
                log.warning("%s: too much text metadata; reading stops here", name)
                return texts, size, True
            try:
                key, value = _decode_text_chunk(ctype, data, name)
            except (ValueError, zlib.error) as exc:
                log.warning("%s: skipping an unreadable %s chunk (%s)", name, ctype.decode(), exc)
                continue
            texts[key] = value


# ─── reading "stealth" info hidden in the pixels ─────────────────────────────────────

# A1111's stealth-pnginfo extension and NovelAI hide the recipe in the least significant
# bits of the alpha channel (1 bit a pixel) or of R, G, B (3 bits), read column by
# column: a 15-byte signature, a 32-bit big-endian bit count, then the payload, gzipped
# for the "comp" signatures. A1111 writes its infotext; NovelAI the JSON of its texts.
STEALTH_ALPHA = (b"stealth_pnginfo", b"stealth_pngcomp")
STEALTH_RGB = (b"stealth_rgbinfo", b"stealth_rgbcomp")


def _stealth_payload(plane: np.ndarray, signatures: tuple[bytes, bytes]) -> bytes | None:
    """The payload hidden in one plane (H, W, channels), or None when there is none."""
    import numpy as np
    head = len(signatures[0]) * 8
    per_column = plane.shape[0] * plane.shape[2]
    columns = min(plane.shape[1], -(-(head + 32) // max(per_column, 1)))
    first = (plane[:, :columns].transpose(1, 0, 2) & 1).reshape(-1)
    if first.size < head + 32:
        return None
    signature = np.packbits(first[:head]).tobytes()
    if signature not in signatures:
        return None
    length = int.from_bytes(np.packbits(first[head:head + 32]).tobytes(), "big")
    bits = (plane.transpose(1, 0, 2) & 1).reshape(-1)
    if length <= 0 or length % 8 or head + 32 + length > bits.size:
        raise ValueError("the hidden recipe's length does not fit the picture")
    payload = np.packbits(bits[head + 32:head + 32 + length]).tobytes()
    if signature == signatures[1]:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip
        payload = inflate.decompress(payload, MAX_CHUNK)
        if inflate.unconsumed_tail:
            raise ValueError("the hidden recipe is too large")
    return payload


def read_stealth_texts(path: Path) -> dict[str, str]:
    """Texts hidden in a PNG/WebP's pixels ({} when there are none).

    A1111's infotext comes back as `parameters`; NovelAI's JSON as its own keys
    (`Description`, `Comment`, `Software`...). A damaged payload is logged and skipped.
    """
    import numpy as np
    try:
        with Image.open(path) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            pixels = np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return {}
    planes = ([(pixels[..., 3:4], STEALTH_ALPHA)] if has_alpha else []) + [
        (pixels[..., :3], STEALTH_RGB)]
    for plane, signatures in planes:
        try:
            payload = _stealth_payload(plane, signatures)
        except (ValueError, zlib.error) as exc:
            log.warning("%s: unreadable hidden recipe (%s)", path.name, exc)
            return {}
        if payload is None:
            continue
        text = payload.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return {PARAMETERS_KEY: text}
    return {}


def _with_stealth(path: Path, texts: dict[str, str], raw: dict[str, Any]) -> Recipe:
    """The recipe in the texts, else the one hidden in the pixels (A1111/NovelAI stealth)."""
    try:
        return recipe_from_texts(texts, path.name, raw)
    except RecipeError:
        hidden = read_stealth_texts(path)
        if not hidden:
            raise
    raw = dict(raw, stealth=sorted(hidden))
    recipe = recipe_from_texts({**hidden, **texts}, path.name, raw)
    recipe.notes.insert(0, "The recipe was read from information hidden in the picture's "
                           "pixels (stealth PNG info).")
    return recipe


# ─── reading EXIF (JPEG, WebP) ────────────────────────────────────────────────────────

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
IMAGE_DESCRIPTION = 0x010E


def decode_user_comment(value: Any) -> str:
    """EXIF UserComment: 8-byte charset prefix, then text (A1111 writes UTF-16)."""
    if isinstance(value, str):
        return value.rstrip("\0")
    if not isinstance(value, (bytes, bytearray)):
        return ""
    data = bytes(value)
    prefix, body = data[:8], data[8:]
    if prefix.startswith(b"UNICODE"):
        if len(body) % 2:
            body = body[:-1]
        # Byte order is not recorded: pick the one that puts zero bytes where ASCII-ish
        # text (most infotext) would have them.
        even = body[0::2].count(0)
        odd = body[1::2].count(0)
        text = body.decode("utf-16-be" if even >= odd else "utf-16-le", errors="replace")
    elif prefix.startswith(b"ASCII") or prefix == b"\0" * 8:
        text = body.decode("utf-8", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    return text.rstrip("\0")


def _read_exif_texts(path: Path) -> tuple[dict[str, str], tuple[int, int], str]:
    kind = path.suffix.lower().lstrip(".").upper().replace("JPG", "JPEG")
    try:
        with Image.open(path) as image:
            size = image.size
            fmt = image.format or kind
            info = dict(image.info)
            exif = image.getexif()
            sub = exif.get_ifd(EXIF_IFD)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RecipeError(f"{path.name} is not a readable {kind} image ({exc}).") from None
    texts = {k: v for k, v in info.items()
             if isinstance(k, str) and isinstance(v, str) and k != "comment"}
    comment = decode_user_comment(sub.get(USER_COMMENT) or exif.get(USER_COMMENT))
    if comment.strip():
        texts[PARAMETERS_KEY] = comment
    maker = sub.get(MAKER_NOTE) or exif.get(MAKER_NOTE)
    if isinstance(maker, bytes):
        maker = maker.decode("utf-8", errors="replace").rstrip("\0")
    if isinstance(maker, str) and maker in ("fooocus", "a1111"):
        texts["fooocus_scheme"] = maker
    jpeg_comment = info.get("comment")
    if jpeg_comment and PARAMETERS_KEY not in texts:
        if isinstance(jpeg_comment, bytes):
            jpeg_comment = jpeg_comment.decode("utf-8", errors="replace")
        texts[PARAMETERS_KEY] = str(jpeg_comment)
    return texts, size, fmt


def read_recipe(path: Path) -> Recipe:
    """The recipe inside a PNG (any app we know), or A1111 text in a JPEG/WebP's EXIF."""
    path = Path(path)
    with open(path, "rb") as f:
        is_png = f.read(8) == PNG_SIGNATURE
    if is_png:
        texts, size, complete = read_png_chunks(path)
        if size is None:
            raise RecipeError(f"{path.name} is corrupt (its PNG header is damaged).")
        raw: dict[str, Any] = {"format": "PNG", "size": list(size)}
        if not complete:
            if not texts:
                raise RecipeError(f"{path.name} is corrupt (the PNG data ends early).")
            raw["truncated"] = True
            log.warning("%s is truncated; reading the recipe that survived", path.name)
        texts.pop(XMP_KEY, None)
        if not complete:
            return recipe_from_texts(texts, path.name, raw)
        return _with_stealth(path, texts, raw)
    try:
        texts, size, fmt = _read_exif_texts(path)
    except RecipeError:
        if path.suffix.lower() == ".png":
            raise RecipeError(f"{path.name} is not a PNG image.") from None
        raise
    raw = {"format": fmt, "size": list(size)}
    if fmt == "WEBP":  # lossless WebP keeps the low bits; JPEG never does
        return _with_stealth(path, texts, raw)
    return recipe_from_texts(texts, path.name, raw)
