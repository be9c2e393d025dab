"""The composer's explicit controls as plain data: keys, metres, forms, styles, instruments.

The music request carries these as text fields whose "auto" (or empty) value leaves the
choice to the prompt and the seed. Validation lives here, not in the engine, so that a
bad key or metre is one sentence before any model (or torch) is loaded.
Plain Python.
"""

from __future__ import annotations

import re
from pathlib import Path

from studio.core import paths
from studio.core.errors import RequestError

AUTO = "auto"
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
#: the metres the composer was trained on (the same list as its token vocabulary)
METERS: tuple[str, ...] = (
    "2/4", "3/4", "4/4", "5/4", "2/2", "3/2", "4/2", "6/4", "3/8", "6/8", "9/8", "12/8",
)
#: phrase plans: letters are sections (a repeated letter is a repeat, exact or varied)
FORMS: tuple[str, ...] = ("AABB", "AABA", "AAB", "ABAB", "verse-chorus", "phrases", "through")
STYLES: tuple[str, ...] = ("chorale", "fiddle", "air", "folksong", "chinese")
BPM_RANGE = (20.0, 300.0)

# Instrument names → General MIDI programs (0-based). Longest names first so that
# "church organ" wins over "organ" when a prompt is scanned.
INSTRUMENTS: tuple[tuple[str, int], ...] = tuple(sorted((
    ("piano", 0), ("grand piano", 0), ("acoustic piano", 0), ("bright piano", 1),
    ("honky-tonk", 3), ("electric piano", 4), ("rhodes", 4), ("harpsichord", 6),
    ("clavinet", 7), ("celesta", 8), ("glockenspiel", 9), ("music box", 10),
    ("vibraphone", 11), ("vibes", 11), ("marimba", 12), ("xylophone", 13), ("bells", 14),
    ("dulcimer", 15), ("hammered dulcimer", 15), ("organ", 19), ("church organ", 19),
    ("pipe organ", 19), ("hammond", 16), ("reed organ", 20), ("harmonium", 20),
    ("accordion", 21), ("concertina", 21), ("harmonica", 22), ("bandoneon", 23),
    ("guitar", 24), ("acoustic guitar", 24), ("nylon guitar", 24), ("classical guitar", 24),
    ("steel guitar", 25), ("electric guitar", 27), ("bouzouki", 25), ("mandolin", 25),
    ("bass", 32), ("double bass", 43), ("violin", 40), ("fiddle", 40), ("viola", 41),
    ("cello", 42), ("contrabass", 43), ("pizzicato", 45), ("harp", 46), ("timpani", 47),
    ("strings", 48), ("string", 48), ("string quartet", 48), ("string ensemble", 48),
    ("orchestra", 48), ("choir", 52), ("chorus", 52), ("voices", 52), ("vocal", 52),
    ("voice", 53), ("trumpet", 56), ("trombone", 57), ("tuba", 58), ("horn", 60),
    ("french horn", 60), ("brass", 61), ("saxophone", 65), ("sax", 65), ("oboe", 68),
    ("english horn", 69), ("bassoon", 70), ("clarinet", 71), ("piccolo", 72), ("flute", 73),
    ("dizi", 73), ("recorder", 74), ("pan flute", 75), ("panpipes", 75), ("shakuhachi", 77),
    ("whistle", 78), ("tin whistle", 78), ("penny whistle", 78), ("ocarina", 79),
    ("sitar", 104), ("banjo", 105), ("shamisen", 106), ("koto", 107), ("guzheng", 107),
    ("pipa", 107), ("kalimba", 108), ("bagpipe", 109), ("bagpipes", 109), ("pipes", 109),
    ("erhu", 110), ("synth", 80),
), key=lambda kv: -len(kv[0])))
INSTRUMENT_PROGRAMS: dict[str, int] = dict(INSTRUMENTS)

_KEY = re.compile(r"^\s*([A-Ga-g])\s*(#|♯|b|♭|-?sharp|-?flat)?\s*(major|minor|maj|min|m)?\s*$",
                  re.I)


def beat_quarters(ts: str) -> float:
    """The conducted beat of a time signature in quarter notes (6/8 → dotted quarter)."""
    num, den = (int(x) for x in ts.split("/"))
    if den == 8 and num % 3 == 0:
        return 1.5
    return 4.0 / den


def is_auto(value: str) -> bool:
    return not value.strip() or value.strip().lower() == AUTO


def parse_key_name(text: str) -> tuple[int, str | None]:
    """"D minor" → (2, "minor"), "F#" → (6, None), "Bb major" → (10, "major")."""
    m = _KEY.match(text)
    if not m:
        raise RequestError(
            f"Unsupported key {text!r}: write a note name and a mode, such as \"D minor\", "
            f"\"F# major\" or \"Bb\".")
    pc = LETTER_PC[m.group(1).lower()]
    acc = (m.group(2) or "").lower()
    if acc in ("#", "♯", "sharp", "-sharp"):
        pc += 1
    elif acc in ("b", "♭", "flat", "-flat"):
        pc -= 1
    word = (m.group(3) or "").lower()
    mode = None if not word else ("major" if word in ("major", "maj") else "minor")
    return pc % 12, mode


def parse_instruments(text: str) -> tuple[int, ...]:
    """"violin, guitar" → (40, 24): the first plays the tune, the others accompany."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in INSTRUMENT_PROGRAMS]
    if unknown:
        raise RequestError(
            f"Unknown instrument {unknown[0]!r}; choose among names such as violin, cello, "
            f"guitar, piano, flute, organ, choir or strings.")
    return tuple(INSTRUMENT_PROGRAMS[n] for n in names)


def soundfonts_dir() -> Path:
    return paths.bundled_models_dir() / "soundfonts"


def soundfont_path(name: str) -> Path | None:
    """The file a soundfont field names (a name in models/soundfonts or a path); None: default."""
    if is_auto(name):
        return None
    raw = Path(name).expanduser()
    path = raw if raw.is_absolute() or raw.parent != Path(".") else soundfonts_dir() / raw
    if path.suffix.lower() != ".sf2":
        path = path.with_name(path.name + ".sf2") if not path.suffix else path
    return path


def available_soundfonts() -> list[Path]:
    """Every .sf2 in models/soundfonts, by name."""
    folder = soundfonts_dir()
    return sorted(folder.glob("*.sf2")) if folder.is_dir() else []


def check_controls(key: str, meter: str, bpm: float, form: str, style: str,
                   instruments: str, soundfont: str) -> None:
    """One sentence for the first control that the composer cannot honour."""
    for value, what in ((key, "key"), (meter, "metre"), (form, "form"), (style, "style"),
                        (instruments, "instruments"), (soundfont, "soundfont")):
        if not isinstance(value, str):
            raise RequestError(f"The {what} must be text.")
    if not is_auto(key):
        parse_key_name(key)
    if not is_auto(meter) and meter.strip() not in METERS:
        raise RequestError(f"Unsupported metre {meter!r}; choose one of {', '.join(METERS)}.")
    if not is_auto(form) and form.strip() not in FORMS:
        raise RequestError(f"Unknown form {form!r}; choose one of {', '.join(FORMS)}.")
    if not is_auto(style) and style.strip().lower() not in STYLES:
        raise RequestError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
    if isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or bpm != bpm:
        raise RequestError("The tempo must be a number of beats a minute (0 = auto).")
    if bpm and not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:
        raise RequestError(
            f"A tempo of {bpm:g} bpm is out of range; choose {BPM_RANGE[0]:g} to "
            f"{BPM_RANGE[1]:g} bpm, or 0 for auto.")
    if not is_auto(instruments):
        parse_instruments(instruments)
    path = soundfont_path(soundfont)
    if path is not None and not path.is_file():
        found = ", ".join(p.name for p in available_soundfonts()) or "none"
        raise RequestError(
            f"No soundfont {soundfont!r} at {path} (soundfonts in models/soundfonts: {found}).")


def check_source(path_text: str, what: str, suffixes: tuple[str, ...]) -> Path | None:
    """A referenced input file (a motif, a piece to extend) that exists; None when empty."""
    if not isinstance(path_text, str):
        raise RequestError(f"The {what} must be a file path.")
    if not path_text.strip():
        return None
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise RequestError(f"The {what} {path} does not exist.")
    if path.suffix.lower() not in suffixes:
        raise RequestError(
            f"The {what} must be a {' or '.join(suffixes)} file, not {path.name}.")
    return path
