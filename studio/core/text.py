"""Plain-text helpers every room shares: the first line of an error, durations, byte sizes.

One definition each, so that the status bar, the queue, the panels and the CLI say
"1.5 KB" and "1:05" the same way.
"""

from __future__ import annotations


def first_line(error: BaseException | str, default: str = "") -> str:
    """The first non-empty line of an error (or a text), trimmed; `default` (else the
    exception's type name) when it has none."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    if default:
        return default
    return type(error).__name__ if isinstance(error, BaseException) else ""


def format_duration(seconds: float, *, clock: bool = False) -> str:
    """A duration for people: "7 s", "1:05", "1:02:03"; `clock=True` always shows minutes
    ("0:07", like a player's time readout) and counts whole seconds down, not to nearest."""
    if clock:
        total = max(0, int(seconds + 1e-6))
    else:
        total = max(0, round(seconds))
        if total < 60:
            return f"{total} s"
    minutes, sec = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def human_bytes(n: float) -> str:
    """1536 → '1.5 KB' (binary units, as file managers show)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
