"""Seeds: -1 (or empty) means "draw one"; the drawn seed is what gets recorded.

Seeds are 64-bit unsigned, as ComfyUI, Fooocus and InvokeAI write them, so their
recipes reproduce exactly. torch's CPU generator is seeded with the full value
(`torch.Generator.manual_seed` accepts 0..2**64-1; its mt19937 then reads the low 32
bits, exactly as in ComfyUI, which seeds the same generator, so a ComfyUI seed draws
ComfyUI's noise), and the SDE sampler's Brownian tree takes all 64 bits.
Seeds are parsed from text as whole numbers only: never through float(), which loses
the low digits of anything above 2**53.
"""

from __future__ import annotations

import re

MAX_SEED = 2**64 - 1
_WHOLE = re.compile(r"[+-]?\d+")


def parse_seed(value: object) -> int:
    """Turn user input (int, str, None) into a seed, with -1 meaning random."""
    if value is None:
        return -1
    if isinstance(value, bool):
        raise ValueError("a seed must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # a float can only be exact up to 2**53: a larger one has already lost digits
        if value.is_integer() and abs(value) <= 2**53:
            return int(value)
        raise ValueError(f"seed {value!r} is not an exact whole number (write it as text)")
    text = str(value).strip()
    if text == "" or text.lower() in ("random", "-1"):
        return -1
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"seed {text!r} is not a whole number")
    return int(text)


def draw_seed() -> int:
    """A fresh random seed in the range every engine accepts."""
    import secrets  # here, not at import: it pulls in hmac and OpenSSL's hashlib (~7 ms)

    return secrets.randbelow(MAX_SEED + 1)


def resolve_seed(seed: int) -> int:
    """Return `seed` itself, or a freshly drawn one when it is -1."""
    return draw_seed() if seed == -1 else seed


def next_seed(seed: int, offset: int = 1) -> int:
    """`seed + offset` in the seed range (batch item i uses seed+i, wrapping at the top)."""
    return (seed + offset) % (MAX_SEED + 1)
