"""One sentence for failures that come from libraries, where their own text misleads.

torch refuses a pickled checkpoint (`weights_only`) with a page of advice that ends in
"set weights_only=False": in a security context the wrong advice. `load_failure` turns
such an exception (anywhere in its chain) into one sentence naming the file and why it
was refused; None when it does not recognise the failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_FILE_IN_TEXT = re.compile(r"([^\s'\"`]+(?:" + "|".join(re.escape(s) for s in PICKLE_SUFFIXES)
                           + r"))\b")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_weights_only_refusal(exc: BaseException) -> bool:
    return type(exc).__name__ == "UnpicklingError" and "Weights only load failed" in str(exc)


def _pickled_file(model: str, texts: list[str]) -> str:
    """The checkpoint's name: from the messages when they give it, else from the model."""
    for text in texts:
        m = _FILE_IN_TEXT.search(text)
        if m:
            return Path(m.group(1)).name
    path = Path(model)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return path.name
    try:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
            if found:
                return str(found[0].relative_to(path))
    except OSError:
        pass
    return path.name or model


def load_failure(model: str, exc: BaseException) -> str | None:
    """One sentence for a model load that a library refused, or None."""
    chain = list(_chain(exc))
    refusal = next((e for e in chain if _is_weights_only_refusal(e)), None)
    if refusal is None:
        return None
    name = _pickled_file(model, [str(e) for e in chain])
    m = _REFUSED_GLOBAL.search(str(refusal))
    why = (f"would run code while loading ({m.group(1)})" if m
           else "holds Python objects that could run code while loading")
    return (f"Refused to load {name} from {model}: this pickled checkpoint {why}, so it is "
            "not safe to open; use a .safetensors copy of the model instead.")
