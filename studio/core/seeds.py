"""Seeds: -1 (or empty) means "draw one"; the drawn seed is what gets recorded."""

from __future__ import annotations

import secrets

MAX_SEED = 2**32 - 1


def parse_seed(value: object) -> int:
    """Turn user input (int, str, None) into a seed, with -1 meaning random."""
    if value is None:
        return -1
    if isinstance(value, bool):
        raise ValueError("a seed must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"seed {value!r} is not a whole number")
    text = str(value).strip()
    if text == "" or text.lower() in ("random", "-1"):
        return -1
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"seed {text!r} is not a whole number") from None


def draw_seed() -> int:
    """A fresh random seed in the range every engine accepts."""
    return secrets.randbelow(MAX_SEED + 1)


def resolve_seed(seed: int) -> int:
    """Return `seed` itself, or a freshly drawn one when it is -1."""
    return draw_seed() if seed == -1 else seed
