"""Phrase plans: which bars are new, which repeat an earlier bar, where the cadences fall.

A form such as AABB names sections; a letter seen before is a repeat of its first
statement. A repeat copies the earlier bars note for note, except the bars it varies:
a repeat's last bar when it needs another cadence (the first A of AABB ends on the
dominant, its repeat on the tonic, like first and second endings), the second half of
a verse when it comes back, and the final bar, which closes on the tonic. Varied bars
are resampled by the network from the music before them, under the same cadence
constraint. Every section's last bar is a cadence: its last beat sounds only tones of
the dominant (a half cadence) or of the tonic (an authentic one).
Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engines.composer.tokens import TICKS_PER_QUARTER, bar_ticks

HALF, AUTHENTIC, FINAL = "half", "authentic", "final"
DOMINANT_PCS = (7, 11, 2)


@dataclass(frozen=True)
class BarPlan:
    """One bar: new material, a copy of bar `source`, or a varied (resampled) repeat of it."""

    index: int
    section: int  # index into Plan.letters
    kind: str  # "new" | "copy" | "vary"
    source: int | None = None
    cadence: str | None = None  # HALF | AUTHENTIC | FINAL at a phrase end


@dataclass(frozen=True)
class Plan:
    form: str
    letters: tuple[str, ...]  # one per section: "A", "B", … (verse-chorus: "V", "C")
    bars: tuple[BarPlan, ...]

    @property
    def section_length(self) -> int:
        return sum(1 for b in self.bars if b.section == 0)

    def repeated(self) -> list[BarPlan]:
        """The bars the form says repeat an earlier one (copied or varied)."""
        return [b for b in self.bars if b.source is not None]


def letters_of(form: str, n_bars: int, ts: str) -> tuple[str, ...]:
    """The sections of a form (phrases: one per phrase of 2 or 4 bars)."""
    if form == "verse-chorus":
        return ("V", "C", "V", "C")
    if form in ("phrases", "through"):
        quarters = bar_ticks(ts) / TICKS_PER_QUARTER
        length = 2 if form == "phrases" and quarters >= 4 else 4
        return tuple(f"P{i + 1}" for i in range(max(1, n_bars // length)))
    return tuple(form)


def bar_multiple(form: str, ts: str) -> int:
    """Bars should come in multiples of this: whole sections (or whole phrases)."""
    if form == "through":
        return 1
    if form == "phrases":
        return 2 if bar_ticks(ts) / TICKS_PER_QUARTER >= 4 else 4
    return len(letters_of(form, 16, ts))


def cadence_pcs(kind: str, mode: str) -> tuple[int, ...]:
    """Pitch classes (tonic = 0) a cadence's last beat may sound."""
    if kind == HALF:
        return DOMINANT_PCS
    return (0, 4 if mode == "major" else 3, 7)


def plan(form: str, n_bars: int, ts: str) -> Plan:
    """The bar plan of `form` over `n_bars` (fewer bars than sections: one section each,
    and leftover bars after the last whole section belong to it as new bars)."""
    letters = letters_of(form, n_bars, ts)
    if n_bars < len(letters):
        letters = letters[:max(1, n_bars)]
    k = len(letters)
    length = max(1, n_bars // k)
    bars: list[BarPlan] = []
    first_at: dict[str, int] = {}
    first_cadence: dict[str, str] = {}
    for s, letter in enumerate(letters):
        start = s * length
        size = length if s < k - 1 else n_bars - start
        repeats_now = s + 1 < k and letters[s + 1] == letter
        end_kind = HALF if repeats_now or (form == "phrases" and s % 2 == 0) else AUTHENTIC
        if s == k - 1:
            end_kind = FINAL
        source = first_at.get(letter)
        for i in range(size):
            index = start + i
            last = i == size - 1
            cadence = end_kind if last else None
            if source is None or i >= length:
                bars.append(BarPlan(index, s, "new", None, cadence))
                continue
            src = source + i
            varied = (letter == "V" and i >= length // 2) or (
                last and (cadence == FINAL or cadence != first_cadence.get(letter)))
            bars.append(BarPlan(index, s, "vary" if varied else "copy", src, cadence))
        first_at[letter] = start  # the next repeat copies this, the latest statement
        first_cadence[letter] = end_kind
    return Plan(form, letters, tuple(bars))
