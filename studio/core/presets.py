"""Writing presets: a form a writer can pick (haiku, quatrain, lyrics, a list of N...).

Each preset is plain data: a system prompt that asks for the form, and a GBNF grammar
that forces it on the llama.cpp runtime (so the form holds even on a 135M model: three
lines, exactly N numbered items, one line without a newline). The transformers runtime
uses the system prompt only. `TextRequest.preset` names one ("haiku", "list:7"); it is
part of the recipe, so a saved output replays with the same form.

`shape_kept(preset, text)` says whether a text has the preset's shape; the tests and
`benchmarks/text_forms.py` use it to measure how often a model keeps the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.core.errors import RequestError

#: the most and fewest items the list preset makes
LIST_MIN, LIST_MAX = 1, 30
LIST_DEFAULT = 5

# Lines are bounded in words so that a form fits in a few hundred tokens even on a small
# model that would ramble, and a line always ends between two words (the model decides
# where a word ends): a line is words separated by single spaces, no newline inside.
_WORD = 'word ::= [^\\x00-\\x20\\x7f]{1,24}\n'  # no space, no control character
_LINE = 'line ::= word (" " word){0,15}\n' + _WORD
_SHORT_LINE = 'line ::= word (" " word){0,9}\n' + _WORD


def _lines(n: int, line_rule: str = _LINE) -> str:
    body = ' "\\n" '.join(["line"] * n)
    return f"root ::= {body}\n{line_rule}"


@dataclass(frozen=True)
class Preset:
    """A writing form: what to ask for, the grammar that forces it, and how to check it."""

    id: str  # what TextRequest.preset holds ("list:7" for a list of seven)
    name: str  # what a picker shows
    system: str  # the system prompt that asks for the form
    grammar: str  # GBNF for llama.cpp ("" = none)
    lines: int | None = None  # exact number of non-empty lines, when the form fixes it
    blocks: tuple[int, ...] = ()  # lines per stanza (blank line between), for lyrics
    items: int | None = None  # numbered items "1. ..." .. "N. ..."
    one_line: bool = False  # no newline at all
    min_tokens: int = 64  # max_new_tokens that leaves room to finish the form

    @property
    def noun(self) -> str:
        """What sentences call it: "haiku", "song lyrics", "list of 5 items"."""
        return self.name.split(" (")[0].lower()

    def describe(self) -> str:
        """One line for help texts and pickers."""
        return f"{self.id}: {self.name}"


_LYRICS_BLOCKS = (4, 4, 4, 4)
_LYRICS_GRAMMAR = (
    'root ::= "[Verse]\\n" stanza "\\n\\n[Chorus]\\n" stanza "\\n\\n[Verse]\\n" stanza '
    '"\\n\\n[Chorus]\\n" stanza\n'
    'stanza ::= line "\\n" line "\\n" line "\\n" line\n' + _SHORT_LINE
)
_IMAGE_GRAMMAR = (
    "root ::= phrase (\", \" phrase){3,11}\n"
    "phrase ::= pword (\" \" pword){0,9}\n"
    "pword ::= [a-zA-Z0-9'-]{1,20}\n"
)
# one paragraph that ends on a sentence's end (the model stops there or at its budget)
_STORY_GRAMMAR = 'root ::= [A-Z"] [^\\x00-\\x1f\\x7f]* [.!?"]\n'


_FIXED: dict[str, Preset] = {
    p.id: p
    for p in (
        Preset("haiku", "Haiku (three lines)",
               "You are a poet. Answer with a haiku only: exactly three short lines "
               "(five, seven and five syllables), no title, no explanation.",
               _lines(3, _SHORT_LINE), lines=3, min_tokens=64),
        Preset("quatrain", "Quatrain (four rhyming lines)",
               "You are a poet. Answer with a quatrain only: exactly four lines that rhyme, "
               "no title, no explanation.",
               _lines(4), lines=4, min_tokens=96),
        Preset("lyrics", "Song lyrics (verse / chorus)",
               "You are a songwriter. Answer with song lyrics only, in this order: a verse, "
               "a chorus, a second verse, the chorus again. Each part has four short lines.",
               _LYRICS_GRAMMAR, blocks=_LYRICS_BLOCKS, min_tokens=320),
        Preset("image-prompt", "Image prompt (one line for Art)",
               "You write prompts for an image generator. Answer with one line only: the "
               "subject first, then comma-separated visual details (style, lighting, "
               "colours, composition). No sentences, no quotes, no explanation.",
               _IMAGE_GRAMMAR, one_line=True, min_tokens=96),
        Preset("story-opening", "Story opening (one paragraph)",
               "You are a novelist. Answer with the opening paragraph of a story only: two "
               "to five sentences, no title, no explanation.",
               _STORY_GRAMMAR, lines=1, min_tokens=256),
    )
}

#: every preset a picker offers, in order ("list" stands for "list:5")
PRESET_IDS: tuple[str, ...] = ("haiku", "quatrain", "lyrics", "list", "image-prompt",
                               "story-opening")


def list_preset(n: int) -> Preset:
    """A numbered list of exactly n items, one line each."""
    if isinstance(n, bool) or not isinstance(n, int) or not LIST_MIN <= n <= LIST_MAX:
        raise RequestError(f"A list preset holds between {LIST_MIN} and {LIST_MAX} items, "
                           f"not {n}.")
    items = " \"\\n\" ".join(f'"{i}. " item' for i in range(1, n + 1))
    grammar = f"root ::= {items}\nitem ::= line\n{_LINE}"
    noun = "item" if n == 1 else "items"
    return Preset(
        f"list:{n}", f"List of {n} {noun}",
        f"Answer with a numbered list of exactly {n} {noun} only, one short item per line "
        "(1. ... 2. ...), no introduction, no explanation.",
        grammar, lines=n, items=n, min_tokens=24 * n + 16,
    )


def get(preset_id: str) -> Preset | None:
    """The preset a request names; None for "" (no preset). RequestError when unknown."""
    text = (preset_id or "").strip()
    if not text:
        return None
    if text in _FIXED:
        return _FIXED[text]
    name, sep, count = text.partition(":")
    if name == "list":
        if not sep:
            return list_preset(LIST_DEFAULT)
        try:
            n = int(count)
        except ValueError:
            raise RequestError(f"A list preset is written list:N (a number of items), "
                               f"not {text!r}.") from None
        return list_preset(n)
    raise RequestError(f"Unknown preset {text!r}; choose one of {', '.join(PRESET_IDS)} "
                       "(list:N for N items).")


def all_presets() -> list[Preset]:
    found = [get(p) for p in PRESET_IDS]
    return [p for p in found if p is not None]


def system_prompt(preset: Preset | None, system: str) -> str:
    """The system prompt a run uses: the preset's, then the writer's own (if any)."""
    own = (system or "").strip()
    if preset is None:
        return system or ""
    return f"{preset.system}\n\n{own}" if own else preset.system


def skeleton(preset: Preset) -> str:
    """The fixed parts of the form with "…" for the free text (what a stop string must not
    cut): "…\n…\n…" for a haiku, "1. …\n2. …" for a list of two."""
    if preset.one_line:
        return ", ".join(["…"] * 4)
    if preset.blocks:
        heads = ("[Verse]", "[Chorus]")
        return "\n\n".join(f"{heads[i % 2]}\n" + "\n".join(["…"] * n)
                            for i, n in enumerate(preset.blocks))
    if preset.items is not None:
        return "\n".join(f"{i}. …" for i in range(1, preset.items + 1))
    return "\n".join(["…"] * (preset.lines or 1))


def check_stops(preset: Preset, stops: tuple[str, ...] | list[str]) -> None:
    """RequestError when a stop string would end the text inside the form itself (the
    form could never be finished): a "\n" stop with a haiku, "," with an image prompt."""
    shape = skeleton(preset)
    for stop in stops:
        if stop and stop in shape:
            raise RequestError(f"The {preset.noun} form cannot be finished: the stop "
                               f"string {stop!r} is part of its shape; remove it.")


# ─── checking a text's shape ─────────────────────────────────────────────────────────

_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+\S")


def shape_kept(preset: Preset, text: str) -> bool:
    """Whether `text` has the preset's form (what the grammar forces on llama.cpp)."""
    text = text.strip()
    if not text:
        return False
    if preset.one_line:
        return "\n" not in text and text.count(",") >= 2
    if preset.blocks:
        stanzas = [s for s in re.split(r"\n\s*\n", text) if s.strip()]
        if len(stanzas) != len(preset.blocks):
            return False
        for stanza, want in zip(stanzas, preset.blocks, strict=True):
            lines = [ln for ln in stanza.split("\n") if ln.strip()]
            if lines and lines[0].strip().startswith("["):
                lines = lines[1:]  # a [Verse] / [Chorus] heading
            if len(lines) != want:
                return False
        return True
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if preset.items is not None:
        numbers = [int(m.group(1)) for ln in lines if (m := _NUMBERED.match(ln))]
        return len(lines) == preset.items and numbers == list(range(1, preset.items + 1))
    if preset.lines is not None and len(lines) != preset.lines:
        return False
    return "\n\n" not in text
