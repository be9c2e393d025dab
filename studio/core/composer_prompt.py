"""Prompt → composer controls: style, dance form, key and mode, metre, tempo, instruments.

The composer cannot read free text, so the prompt is scanned for words it
knows ("bach chorale in D minor", "lively irish jig on fiddle with guitar",
"slow chinese folk song, 70 bpm, koto"). Whatever the prompt leaves open is
drawn from the seed, so a prompt plus a seed is still a whole recipe.
Plain Python in core (no torch), so the panel can show what the composer will
understand before it starts (`describe(understand(request)[1])`), as the CLI does.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from studio.core import music
from studio.core.music import INSTRUMENTS, PITCH_NAMES, STYLES, beat_quarters
from studio.core.music import METERS as TIME_SIGNATURES

__all__ = ["INSTRUMENTS", "PITCH_NAMES", "Controls", "describe", "parse_prompt", "resolve",
           "understand"]
_LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

# (words, weight): the style with the highest total wins; ties go to the earlier style.
STYLE_WORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "chorale": (("bach", 3), ("chorale", 3), ("choral", 2), ("hymn", 3), ("baroque", 2),
                ("church", 2), ("sacred", 2), ("four-part", 2), ("four part", 2),
                ("cantata", 2), ("lutheran", 2), ("counterpoint", 1), ("harmonized", 1)),
    "fiddle": (("irish", 2), ("celtic", 2), ("fiddle", 2), ("jig", 3), ("reel", 3),
               ("hornpipe", 3), ("strathspey", 3), ("polka", 2), ("ceili", 2), ("session", 1),
               ("trad", 1), ("dance", 1), ("scottish", 1), ("bluegrass", 2), ("country", 1),
               ("american", 1), ("march", 1)),
    "air": (("air", 2), ("airs", 2), ("lament", 2), ("slow air", 3), ("aird", 3),
            ("pastoral", 1), ("scottish air", 3), ("highland", 1), ("fife", 2),
            ("northumbrian", 2), ("melody", 0.5), ("lullaby", 1)),
    "folksong": (("folk song", 3), ("folksong", 3), ("folk", 1), ("german", 3),
                 ("volkslied", 3), ("lied", 2), ("children", 2), ("nursery", 2),
                 ("kinder", 2), ("essen", 3), ("ballad", 2), ("european", 1), ("song", 1),
                 ("singalong", 1), ("sing-along", 1)),
    "chinese": (("chinese", 6), ("china", 6), ("pentatonic", 2), ("han", 1), ("erhu", 2),
                ("guzheng", 2), ("pipa", 2), ("dizi", 2), ("east asian", 2), ("asian", 1)),
}

FORM_WORDS: tuple[tuple[str, str], ...] = (
    ("slip jig", "slip_jig"), ("slip-jig", "slip_jig"), ("slipjig", "slip_jig"),
    ("hop jig", "slip_jig"), ("jig", "jig"), ("reel", "reel"), ("hornpipe", "hornpipe"),
    ("clog", "hornpipe"), ("strathspey", "strathspey"), ("fling", "strathspey"),
    ("march", "march"), ("waltz", "waltz"), ("polka", "polka"),
)

# (word, factor on the style's own tempo, band in beats a minute the result is held in):
# the factor keeps a "slow jig" a jig, the band keeps "slow" slow whatever the style.
TEMPO_WORDS: tuple[tuple[str, float, float, float], ...] = (
    ("very slow", 0.6, 30, 56), ("very fast", 1.4, 150, 300), ("grave", 0.55, 30, 50),
    ("largo", 0.6, 35, 60), ("lento", 0.62, 40, 64), ("adagio", 0.7, 50, 72),
    ("slowly", 0.75, 40, 76), ("slow", 0.75, 40, 76), ("calm", 0.85, 50, 92),
    ("gentle", 0.85, 50, 92), ("peaceful", 0.85, 50, 88), ("relaxed", 0.85, 50, 92),
    ("andante", 0.85, 72, 100), ("moderato", 0.95, 88, 116), ("moderate", 1.0, 80, 120),
    ("allegretto", 1.08, 100, 128), ("allegro", 1.18, 116, 168), ("lively", 1.2, 112, 168),
    ("spirited", 1.2, 112, 168), ("upbeat", 1.2, 112, 168), ("brisk", 1.2, 112, 168),
    ("quick", 1.2, 120, 176), ("fast", 1.25, 120, 176), ("energetic", 1.25, 120, 176),
    ("vivace", 1.28, 132, 184), ("presto", 1.4, 160, 300),
)
TEMPO_BANDS = {word: (lo, hi) for word, _f, lo, hi in TEMPO_WORDS}

MODE_WORDS: tuple[tuple[str, str], ...] = (
    ("minor", "minor"), ("major", "major"), ("dorian", "minor"), ("aeolian", "minor"),
    ("phrygian", "minor"), ("mixolydian", "major"), ("ionian", "major"), ("lydian", "major"),
    ("sad", "minor"), ("melancholy", "minor"), ("melancholic", "minor"), ("dark", "minor"),
    ("mournful", "minor"), ("sorrowful", "minor"), ("happy", "major"), ("joyful", "major"),
    ("bright", "major"), ("cheerful", "major"), ("sunny", "major"),
)

# Defaults per style: where the tune starts (MIDI pitch range of its first top note, the
# 10th-90th percentile of the corpus), tempo in quarter notes per minute, melody and
# accompaniment programs (None: no accompaniment), likely tonics, how often it is major.
STYLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "chorale": {"register": (64, 74), "qpm": 76, "program": 19, "accomp": None, "ts": "4/4",
                "tonics": (7, 2, 9, 5, 0, 10, 4), "major": 0.55},
    "fiddle": {"register": (62, 77), "qpm": 180, "program": 40, "accomp": 24, "ts": "4/4",
               "tonics": (2, 7, 9, 4, 11), "major": 0.75},
    "air": {"register": (62, 78), "qpm": 84, "program": 73, "accomp": 46, "ts": "3/4",
            "tonics": (7, 2, 5, 0, 9), "major": 0.7},
    "folksong": {"register": (60, 72), "qpm": 104, "program": 0, "accomp": 0, "ts": "4/4",
                 "tonics": (7, 5, 0, 2, 9), "major": 0.75},
    "chinese": {"register": (67, 78), "qpm": 84, "program": 73, "accomp": None, "ts": "2/4",
                "tonics": (0, 2, 5, 7), "major": 0.85},
}
# Forms set the metre and their own tempo (quarter notes per minute at a moderate pace).
# The metres are those of the training data, whose 16th-note fiddle tunes were rewritten
# in 8th notes (a reel is 2/2 in 8ths, a strathspey 4/2).
FORM_DEFAULTS: dict[str, tuple[str, float]] = {
    "reel": ("2/2", 200), "jig": ("6/8", 180), "slip_jig": ("9/8", 180),
    "hornpipe": ("2/2", 160), "strathspey": ("4/2", 150), "march": ("4/4", 130),
    "waltz": ("3/4", 150), "polka": ("2/4", 140),
}
FORM_STYLES = ("fiddle", "air")  # styles whose training data has dance forms
# Forms the network has seen enough of; the others (waltz, polka) still set metre and tempo.
TRAINED_FORMS = ("none", "reel", "jig", "slip_jig", "hornpipe", "strathspey", "march")


def model_form(form: str | None) -> str:
    """The form token to condition on (an untrained form token would be noise)."""
    return form if form in TRAINED_FORMS else "none"


@dataclass(frozen=True)
class Controls:
    """What the composer is asked for; None means "not said" before `resolve`."""

    style: str | None = None
    form: str | None = None
    tonic: int | None = None  # pitch class 0-11
    mode: str | None = None
    ts: str | None = None
    qpm: float | None = None  # quarter notes per minute
    bpm: float | None = None  # beats per minute as written in the prompt
    tempo_factor: float = 1.0
    program: int | None = None  # GM program of the melody (0-based)
    accomp_program: int | None = None
    accompaniment: bool | None = None
    instrument: str | None = None
    tempo_word: str | None = None  # the tempo word heard ("slow"), which bounds the bpm
    structure: str | None = None  # the phrase plan (music.FORMS): AABB, AABA, phrases…
    voices: tuple[int, ...] = ()  # GM programs of the SATB voices of a chorale (or ())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.tonic is not None:
            data["key"] = f"{PITCH_NAMES[self.tonic]} {self.mode or ''}".strip()
        return data


def _has(text: str, word: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text) is not None


_ACC = r"(?:\s*(#|♯|-?sharp|b|♭|-?flat)(?![a-z]))?"
_MODE = r"(major|minor|maj|min|dorian|mixolydian|aeolian|ionian|phrygian|lydian)"
_KEY_PATTERNS = (
    re.compile(rf"\b(?:in|key of|key)\s+([A-Ga-g]){_ACC}\s*{_MODE}?(?![a-z])", re.I),
    re.compile(rf"\b([A-Ga-g]){_ACC}\s*{_MODE}(?![a-z])", re.I),
    re.compile(r"\b([A-G])(#|b)?m\b"),
)


def parse_key(prompt: str) -> tuple[int | None, str | None]:
    """("D minor" → (2, "minor"), "in G" → (7, None), "in a lively mood" → (None, None))."""
    for i, pattern in enumerate(_KEY_PATTERNS):
        for m in pattern.finditer(prompt):
            letter = m.group(1)
            acc = (m.group(2) or "").lower()
            mode_word = (m.group(3) or "").lower() if i < 2 else "minor"
            if i == 0 and not mode_word and not letter.isupper():
                continue  # "in a lively mood": a lowercase letter needs a mode word
            if i == 0 and letter.lower() == "a" and not acc and not mode_word:
                # "in A" is a key only when nothing word-like follows it
                rest = prompt[m.end():].lstrip()
                if rest[:1].isalpha():
                    continue
            pc = _LETTER_PC[letter.lower()]
            if acc in ("#", "♯", "sharp", "-sharp"):
                pc += 1
            elif acc in ("b", "♭", "flat", "-flat"):
                pc -= 1
            mode = None
            if mode_word:
                mode = "major" if mode_word in ("major", "maj", "ionian", "mixolydian",
                                                "lydian") else "minor"
            return pc % 12, mode
    return None, None


def parse_prompt(prompt: str) -> Controls:
    """Everything the prompt says; unknown words are ignored."""
    text = " " + prompt.lower().replace("’", "'") + " "
    scores = {s: sum(w for word, w in STYLE_WORDS[s] if _has(text, word)) for s in STYLES}
    form = next((f for word, f in FORM_WORDS if _has(text, word)), None)
    tonic, mode = parse_key(prompt)
    if mode is None:
        mode = next((m for word, m in MODE_WORDS if _has(text, word)), None)
    ts = next((t for t in TIME_SIGNATURES if _has(text, t)), None)
    bpm = None
    m = re.search(r"(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute|beats a minute)", text)
    m = m or re.search(r"(?:tempo|♩|q)\s*[=:]?\s*(\d{2,3}(?:\.\d+)?)\b", text)
    if m:
        bpm = min(300.0, max(20.0, float(m.group(1))))
    factor, tempo_word = 1.0, None
    for word, f, _lo, _hi in TEMPO_WORDS:
        if _has(text, word):
            factor, tempo_word = f, word
            break
    structure = next((f for f in ("AABB", "AABA", "ABAB", "AAB") if _has(text, f.lower())), None)
    if structure is None:
        if _has(text, "verse") or (_has(text, "song") and not _has(text, "folk song")):
            structure = "verse-chorus"
        elif _has(text, "through-composed"):
            structure = "through"
    # instruments: the first named plays the tune; one after "with"/"and" accompanies
    found: list[tuple[int, str, int]] = []
    taken: list[tuple[int, int]] = []
    for name, number in INSTRUMENTS:
        for hit in re.finditer(rf"(?<![a-z]){re.escape(name)}(?![a-z])", text):
            span = (hit.start(), hit.end())
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue
            taken.append(span)
            found.append((hit.start(), name, number))
    found.sort()
    program: int | None = None
    accomp_program: int | None = None
    instrument = None
    if found:
        instrument, program = found[0][1], found[0][2]
        for start, _name, prog in found[1:]:
            if re.search(r"(with|and|&|\+|over)\s+(a\s+|an\s+|the\s+)?$", text[:start]):
                accomp_program = prog
                break
    hinted = _instrument_style(program)
    if hinted is not None and scores[hinted] > 0:
        scores[hinted] += 1  # "hymn for organ": the instrument confirms the style
    style = max(STYLES, key=lambda s: scores[s]) if max(scores.values()) > 0 else None
    accompaniment: bool | None = None
    if re.search(r"\b(solo|unaccompanied|alone|a cappella|monophonic)\b", text):
        accompaniment = False
    elif accomp_program is not None or re.search(r"\b(accompanied|with chords|"
                                                 r"accompaniment)\b", text):
        accompaniment = True
    return Controls(style=style, form=form, tonic=tonic, mode=mode, ts=ts, bpm=bpm,
                    tempo_factor=factor, program=program, accomp_program=accomp_program,
                    accompaniment=accompaniment, instrument=instrument,
                    tempo_word=tempo_word, structure=structure)


STRINGS = (40, 41, 42, 43, 44, 45, 48, 49, 110)  # GM bowed and ensemble strings


def _instrument_style(program: int | None) -> str | None:
    return {19: "chorale", 20: "chorale", 52: "chorale", 40: "fiddle", 110: "fiddle",
            109: "fiddle", 78: "air", 107: "chinese", 106: "chinese"}.get(program or -1)


def default_structure(style: str, form: str) -> str:
    """The phrase plan a style and dance take when nothing asks for another."""
    if style == "chorale":
        return "phrases"
    if style == "fiddle" or form in ("reel", "jig", "slip_jig", "hornpipe", "polka", "march"):
        return "AABB"
    return "AABA"


def _texture_style(program: int | None, factor: float) -> str | None:
    """A style that writes well for the instrument asked: bowed strings get string writing
    (a dance when fast, an air when not), never a hymn."""
    if program in STRINGS:
        return "fiddle" if factor > 1.0 else "air"
    return _instrument_style(program)


def resolve(controls: Controls, seed: int) -> Controls:
    """Fill every open control from style defaults and the seed (deterministic)."""
    rng = random.Random(f"composer-controls-{seed}")
    style = controls.style or _texture_style(controls.program, controls.tempo_factor)
    if style is None:
        style = "fiddle" if controls.form else rng.choice(STYLES)
    defaults = STYLE_DEFAULTS[style]
    form = controls.form if style in FORM_STYLES else None
    if form is not None and style == "air" and form != "waltz":
        style, defaults = "fiddle", STYLE_DEFAULTS["fiddle"]
    form = form or "none"
    ts = controls.ts or (FORM_DEFAULTS[form][0] if form in FORM_DEFAULTS else defaults["ts"])
    qpm = FORM_DEFAULTS[form][1] if form in FORM_DEFAULTS else defaults["qpm"]
    if controls.bpm is not None:
        qpm = controls.bpm * beat_quarters(ts)
    else:
        qpm *= controls.tempo_factor
        if controls.tempo_word in TEMPO_BANDS:  # "slow" is slow in beats a minute
            lo, hi = TEMPO_BANDS[controls.tempo_word]
            qpm = min(hi, max(lo, qpm / beat_quarters(ts))) * beat_quarters(ts)
    qpm = float(min(400.0, max(30.0, qpm)))
    tonic = controls.tonic if controls.tonic is not None else rng.choice(defaults["tonics"])
    mode = controls.mode or ("major" if rng.random() < defaults["major"] else "minor")
    program = controls.program if controls.program is not None else defaults["program"]
    accompaniment = controls.accompaniment
    if accompaniment is None:
        accompaniment = defaults["accomp"] is not None and style != "chorale"
    accomp_program = None
    if accompaniment:
        accomp_program = controls.accomp_program
        if accomp_program is None and controls.program in STRINGS and \
                controls.instrument != "fiddle":
            accomp_program = 48  # a string tune gets a string accompaniment
        if accomp_program is None:
            accomp_program = defaults["accomp"] if defaults["accomp"] is not None else 0
    structure = controls.structure or default_structure(style, form)
    voices: tuple[int, ...] = ()
    if style == "chorale":
        asked = controls.voices or (program,)
        voices = asked * 4 if len(asked) == 1 else (asked + (asked[-1],) * 4)[:4]
        if controls.voices == () and program == 48 and controls.instrument in (
                "string quartet", "strings", "string"):
            voices = (40, 40, 41, 42)  # a string quartet plays a chorale in four parts
    return Controls(style=style, form=form, tonic=tonic, mode=mode, ts=ts, qpm=round(qpm, 2),
                    bpm=controls.bpm, tempo_factor=controls.tempo_factor, program=program,
                    accomp_program=accomp_program, accompaniment=bool(accompaniment),
                    instrument=controls.instrument, tempo_word=controls.tempo_word,
                    structure=structure, voices=voices)


def from_fields(said: Controls, request: object) -> Controls:
    """The prompt's controls with every explicit (non-auto) request field put over them."""
    changes: dict[str, Any] = {}
    key = getattr(request, "key", "auto")
    if not music.is_auto(key):
        tonic, mode = music.parse_key_name(key)
        changes.update(tonic=tonic, mode=mode or said.mode)
    meter = getattr(request, "meter", "auto")
    if not music.is_auto(meter):
        changes["ts"] = meter.strip()
    bpm = float(getattr(request, "bpm", 0.0) or 0.0)
    if bpm:
        changes["bpm"] = bpm
    form = getattr(request, "form", "auto")
    if not music.is_auto(form):
        changes["structure"] = form.strip()
    style = getattr(request, "style", "auto")
    if not music.is_auto(style):
        changes["style"] = style.strip().lower()
    instruments = getattr(request, "instruments", "auto")
    if not music.is_auto(instruments):
        programs = music.parse_instruments(instruments)
        names = [n.strip().lower() for n in instruments.split(",") if n.strip()]
        changes.update(program=programs[0], instrument=names[0], voices=programs)
        if len(programs) > 1:
            changes.update(accomp_program=programs[1], accompaniment=True)
        elif said.accomp_program is not None and said.program != programs[0]:
            changes["accomp_program"] = said.accomp_program
    return replace(said, **changes)


def understand(request: object) -> tuple[Controls, Controls]:
    """(what the prompt and fields said, everything resolved): the engine and the CLI's
    "understood" line read the same."""
    said = from_fields(parse_prompt(str(getattr(request, "prompt", ""))), request)
    return said, resolve(said, int(getattr(request, "seed", 0)))


def describe(c: Controls) -> str:
    """One line: key, metre, tempo, form, style, instruments."""
    names = {p: n for n, p in INSTRUMENTS} | {48: "strings", 52: "choir", 40: "violin",
                                              73: "flute", 24: "guitar", 107: "koto"}
    bpm = (c.qpm or 0) / beat_quarters(c.ts or "4/4")
    played = list(dict.fromkeys(c.voices)) if c.voices else [
        p for p in (c.program, c.accomp_program) if p is not None]
    dance = f" {c.form.replace('_', ' ')}" if c.form and c.form != "none" else ""
    return (f"{PITCH_NAMES[c.tonic or 0]} {c.mode}, {c.ts}, {bpm:.0f} bpm, form "
            f"{c.structure}, {c.style}{dance}, "
            f"{' + '.join(names.get(p, f'program {p}') for p in played)}")
