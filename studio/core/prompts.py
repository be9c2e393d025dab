"""The AUTOMATIC1111 prompt syntax, read the way A1111 1.x reads it.

Artists bring years of prompts written for A1111, and every imported recipe holds
one, so this module accepts that syntax exactly (its quirks included) rather than
a cleaner one of our own:

- `(word)` ×1.1, `[word]` ÷1.1, `(word:1.3)`, nested brackets multiply;
  `\\(` `\\)` `\\[` `\\]` `\\\\` are literal characters;
- `BREAK` ends the current 75-token chunk;
- unbalanced brackets are lenient: an unclosed one is closed at the end of the
  prompt, a stray closing one is kept as text (we return a warning for the UI);
- prompt editing `[from:to:when]`, `[to:when]`, `[from::when]` and alternation
  `[a|b]`, which make a per-step schedule of texts;
- `<lora:name:weight>` and the other `<kind:...>` extra networks, taken out of
  the text before anything else is parsed.

The stages are A1111's: networks out, then the schedule (`prompt_schedule`),
then, for each scheduled text, the weights (`parse_attention`). The token chunks
(`chunk_tokens`) are plain list work and live here too, so the counter and the
encoder (`studio.engines.prompt_encoding`) share them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from studio.core.errors import RequestError

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
CHUNK_LENGTH = 75  # tokens per chunk, without BOS/EOS
COMMA_BACKTRACK = 20  # A1111's "comma_padding_backtrack" default
DEFAULT_STEPS = 20


class PromptError(RequestError):
    """A prompt cannot be used as written (e.g. a LoRA weight that is not a number)."""


@dataclass(frozen=True)
class Fragment:
    """A piece of text and its attention weight (A1111's `[text, weight]` pair)."""

    text: str
    weight: float

    @property
    def is_break(self) -> bool:
        """A1111 starts a new chunk only for an unweighted BREAK (weight exactly -1)."""
        return self.text == "BREAK" and self.weight == -1.0


BREAK = Fragment("BREAK", -1.0)


# ─── extra networks: <lora:name:0.8> ──────────────────────────────────────────────────

_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")  # A1111 1.5+ reads <lyco:...> as <lora:...>


@dataclass(frozen=True)
class LoraRef:
    """A `<lora:name:te:unet>` in a prompt: the text-encoder and UNet multipliers."""

    name: str
    weight: float = 1.0
    unet_weight: float = 1.0
    kind: str = "lora"
    written: str = ""

    @property
    def pair(self) -> tuple[str, float]:
        return self.name, self.unet_weight


@dataclass(frozen=True)
class Networks:
    """A prompt with its extra networks taken out (A1111 leaves the spaces around them)."""

    text: str
    loras: tuple[LoraRef, ...] = ()
    notes: tuple[str, ...] = ()


def _multiplier(value: str, written: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise PromptError(f"The weight {value.strip()!r} in {written} is not a number.") from None
    if not math.isfinite(number):
        raise PromptError(f"The weight {value.strip()!r} in {written} is not a finite number.")
    return number


def extract_networks(prompt: str) -> Networks:
    """Take every `<kind:...>` out of a prompt, as A1111 does before parsing.

    LoRAs (`lora`, `lyco`) come back with their weights: `<lora:x>` is 1.0,
    `<lora:x:0.8>` 0.8 for both models, `<lora:x:0.8:0.5>` or `te=`/`unet=` set
    them apart. Hypernetworks and unknown kinds are removed with a note, as A1111
    skips what it does not know. A weight that is not a number raises PromptError.
    """
    loras: list[LoraRef] = []
    notes: list[str] = []

    def take(match: re.Match[str]) -> str:
        kind = match.group(1).lower()
        written = match.group(0)
        positional: list[str] = []
        named: dict[str, str] = {}
        for item in match.group(2).split(":"):
            key, eq, value = item.partition("=")
            if eq and "=" not in value:
                named[key.strip()] = value
            else:
                positional.append(item)
        if kind in LORA_KINDS:
            name = positional[0].strip() if positional else ""
            if not name:
                raise PromptError(f"{written} names no LoRA.")
            te = _multiplier(positional[1], written) if len(positional) > 1 else 1.0
            if "te" in named:
                te = _multiplier(named["te"], written)
            unet = _multiplier(positional[2], written) if len(positional) > 2 else te
            if "unet" in named:
                unet = _multiplier(named["unet"], written)
            if "dyn" in named or len(positional) > 3:
                notes.append(f"The dynamic dimension in {written} is not supported; "
                             "the whole LoRA is used.")
            loras.append(LoraRef(name, te, unet, kind, written))
        elif kind == "hypernet":
            notes.append(f"Hypernetworks are not supported; {written} was left out.")
        else:
            notes.append(f"{written} is not an extra network Studio knows; it was left out.")
        return ""

    text = _EXTRA_NETWORK.sub(take, prompt or "")
    return Networks(text, tuple(loras), tuple(notes))


# ─── prompt editing and alternation: the schedule ─────────────────────────────────────

class _Seq(list[object]):
    """A run of nodes (A1111's `prompt`): text, sequences, schedules, alternations."""


@dataclass
class _Scheduled:
    before: _Seq | None
    after: _Seq
    number: str
    when: int = 0


@dataclass
class _Alternate:
    options: list[_Seq]


class _NoParse(Exception):  # noqa: N818 - internal control flow
    """The schedule grammar does not match (A1111 then takes the prompt literally)."""


_NUMBER_END = re.compile(
    r"(\s*)([+-]?(?:\d+[eE][+-]?\d+|(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+))(\s*)\]")
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
_STRAY = "[]():"


class _ScheduleParser:
    """A1111's schedule grammar by recursive descent.

    Inside brackets only whole constructs are allowed; at the top level a bracket
    or colon that starts no construct is kept as text; a `|` outside an
    alternation, or a backslash with nothing to escape, fails the whole parse.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> _Seq:
        out = _Seq()
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in "([":
                start = self.pos
                try:
                    out.append(self._item())
                    continue
                except _NoParse:
                    self.pos = start
            if ch in _STRAY:
                out.append(ch)
                self.pos += 1
                continue
            if not self._plain(out):
                raise _NoParse  # "|" at the top level, or a lone trailing backslash
        return out

    def _plain(self, out: _Seq) -> bool:
        m = _PLAIN.match(self.text, self.pos)
        if m is None:
            return False
        out.append(m.group(0))
        self.pos = m.end()
        return True

    def _prompt(self) -> _Seq:
        out = _Seq()
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in "([":
                out.append(self._item())
            elif ch in "]):|":
                break
            elif not self._plain(out):
                raise _NoParse
        return out

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, ch: str) -> None:
        if self._peek() != ch:
            raise _NoParse
        self.pos += 1

    def _number_end(self) -> str | None:
        m = _NUMBER_END.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group(2)

    def _item(self) -> str | _Seq | _Scheduled | _Alternate:
        opener = self._peek()
        self.pos += 1
        first = self._prompt()
        nxt = self._peek()
        if opener == "(":
            if nxt == ")":
                self.pos += 1
                return _Seq(["(", first, ")"])
            self._expect(":")
            second = self._prompt()
            self._expect(")")
            return _Seq(["(", first, ":", second, ")"])
        if nxt == "]":
            self.pos += 1
            return _Seq(["[", first, "]"])
        if nxt == "|":
            options = [first]
            while self._peek() == "|":
                self.pos += 1
                options.append(self._prompt())
            self._expect("]")
            return _Alternate(options)
        self._expect(":")
        start = self.pos
        number = self._number_end()
        if number is not None:
            return _Scheduled(None, first, number)
        self.pos = start
        second = self._prompt()
        self._expect(":")
        number = self._number_end()
        if number is None:
            raise _NoParse
        return _Scheduled(first, second, number)


def _when(number: str, steps: int, old_scheduling: bool) -> int:
    """A1111 1.6+: a number with a "." is a fraction of the steps, else a step number.

    With old_scheduling (the A1111 option) a number below 1 is a fraction instead.
    """
    value = float(number)
    if old_scheduling:
        value = value * steps if value < 1 else value
    elif "." in number:
        value = value * steps
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return steps if value > 0 else 0
    return min(steps, int(value))


def _collect(node: object, steps: int, old: bool, found: set[int]) -> None:
    if isinstance(node, _Scheduled):
        node.when = _when(node.number, steps, old)
        if node.when >= 1:
            found.add(node.when)
        if node.before is not None:
            _collect(node.before, steps, old, found)
        _collect(node.after, steps, old, found)
    elif isinstance(node, _Alternate):
        found.update(range(1, steps + 1))
        for option in node.options:
            _collect(option, steps, old, found)
    elif isinstance(node, list):
        for child in node:
            _collect(child, steps, old, found)


def _render(node: object, step: int, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, _Scheduled):
        chosen = node.before if step <= node.when else node.after
        if chosen is not None:
            _render(chosen, step, out)
    elif isinstance(node, _Alternate):
        _render(node.options[(step - 1) % len(node.options)], step, out)
    elif isinstance(node, list):
        for child in node:
            _render(child, step, out)


def prompt_schedule(text: str, steps: int = DEFAULT_STEPS, *,
                    old_scheduling: bool = False) -> tuple[list[tuple[int, str]], list[str]]:
    """[(end_at_step, text)] as A1111's get_learned_conditioning_prompt_schedules.

    Each text applies up to and including its end step (steps count from 1). When
    the editing syntax does not parse, the prompt is one literal entry and a
    warning says why (A1111 falls back silently).
    """
    steps = max(1, int(steps))
    try:
        tree = _ScheduleParser(text).parse()
    except _NoParse:
        warnings = []
        if "[" in text:
            warnings.append("Prompt editing [a:b:n] and alternation [a|b] are not applied to "
                            "this prompt: it has a '|' outside [a|b] or a '\\' with nothing "
                            "after it (A1111 reads it the same way).")
        return [(steps, text)], warnings
    found = {steps}
    _collect(tree, steps, old_scheduling, found)
    schedule = []
    for step in sorted(found):
        out: list[str] = []
        _render(tree, step, out)
        schedule.append((step, "".join(out)))
    return schedule, []


# ─── attention weights ────────────────────────────────────────────────────────────────

_ATTENTION = re.compile(r"""
\\[()\[\]\\]?               # an escape (a lone backslash escapes nothing and vanishes)
| [(\[]                     # an opening bracket
| :\s*([+-]?[.\d]+)\s*\)    # ":1.3)" closes a round bracket with that weight
| [)\]]                     # a closing bracket
| [^\\()\[\]:]+             # text
| :                         # a colon that is only text
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_attention(text: str) -> tuple[list[Fragment], list[str]]:
    """Fragments with their weights, as A1111's parse_prompt_attention, and warnings.

    Runs of equal weight are merged; a BREAK becomes the `BREAK` fragment (weight
    -1; inside brackets that weight is multiplied too, and A1111 then encodes the
    word instead of breaking, which we reproduce and warn about).
    """
    res: list[list[object]] = []
    rounds: list[int] = []
    squares: list[int] = []
    warnings: list[str] = []
    stray: list[str] = []
    breaks: list[int] = []

    def multiply(start: int, by: float) -> None:
        for item in res[start:]:
            item[1] = float(item[1]) * by  # type: ignore[arg-type]

    def add_text(piece: str) -> None:
        for i, part in enumerate(_BREAK.split(piece)):
            if i > 0:
                breaks.append(len(res))
                res.append(["BREAK", -1.0])
            res.append([part, 1.0])

    for m in _ATTENTION.finditer(text):
        token = m.group(0)
        weight = m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            rounds.append(len(res))
        elif token == "[":
            squares.append(len(res))
        elif weight is not None and rounds:
            try:
                value = float(weight)
            except ValueError:
                # A1111 stops with a Python error here; we keep the text and close
                # the bracket as a plain one.
                warnings.append(f"The weight {weight!r} is not a number; it was kept as text.")
                add_text(token[:-1])
                multiply(rounds.pop(), ROUND_MULTIPLIER)
                continue
            multiply(rounds.pop(), value)
        elif token == ")" and rounds:
            multiply(rounds.pop(), ROUND_MULTIPLIER)
        elif token == "]" and squares:
            multiply(squares.pop(), SQUARE_MULTIPLIER)
        else:
            if token in (")", "]") or (weight is not None and token.endswith(")")):
                stray.append(token[-1])
            add_text(token)

    for start in rounds:
        multiply(start, ROUND_MULTIPLIER)
    for start in squares:
        multiply(start, SQUARE_MULTIPLIER)
    unclosed = "(" * len(rounds) + "[" * len(squares)
    if unclosed:
        warnings.append(f"Unbalanced brackets: {' '.join(unclosed)} never closed, so "
                        "they weight the rest of the prompt (as in A1111).")
    if stray:
        warnings.append(f"Unbalanced brackets: {' '.join(stray)} with nothing to close "
                        "are kept as text.")

    if any(res[i][1] != -1.0 for i in breaks):
        warnings.append("BREAK inside brackets does not start a new chunk in A1111; it is "
                        "read as the word BREAK.")
    if not res:
        res = [["", 1.0]]
    merged: list[list[object]] = [res[0]]
    for item in res[1:]:
        if merged[-1][1] == item[1]:
            merged[-1][0] = str(merged[-1][0]) + str(item[0])
        else:
            merged.append(item)
    fragments = [Fragment(str(t), float(w)) for t, w in merged]  # type: ignore[arg-type]
    return fragments, warnings


# ─── the whole prompt ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Scheduled:
    """The prompt as it reads up to step `end_at_step` (steps count from 1)."""

    end_at_step: int
    text: str
    fragments: tuple[Fragment, ...]


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt read as A1111 reads it: its LoRAs, its schedule, and what to tell the user."""

    prompt: str
    steps: int
    schedules: tuple[Scheduled, ...]
    loras: tuple[LoraRef, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def fragments(self) -> tuple[Fragment, ...]:
        """The fragments of the first step (all of them when nothing is scheduled)."""
        return self.schedules[0].fragments

    @property
    def is_scheduled(self) -> bool:
        return len(self.schedules) > 1

    def index_at(self, step_index: int) -> int:
        """Which schedule A1111 uses at sampler step `step_index` (counting from 0).

        A1111's sampler compares its 0-based step with the 1-based end steps, so
        the first text also gets one step more than its number says (`[a:b:10]`:
        `a` for steps 0-10, `b` from 11). We keep that so recipes match.
        """
        for i, entry in enumerate(self.schedules):
            if step_index <= entry.end_at_step:
                return i
        return 0

    def at(self, step_index: int) -> Scheduled:
        return self.schedules[self.index_at(step_index)]


_AND = re.compile(r"\bAND\b")


def parse(prompt: str, steps: int = DEFAULT_STEPS, *, old_scheduling: bool = False,
          negative: bool = False) -> ParsedPrompt:
    """Read a prompt: networks out, then the schedule, then each text's weights.

    A negative prompt keeps its `<lora:...>` tags as words: A1111 takes extra
    networks out of the prompt only. Raises PromptError only for what cannot be
    used at all (a LoRA weight that is not a number); syntax mistakes become
    warnings and literal text, as in A1111.
    """
    prompt = prompt or ""
    if negative:
        networks = Networks(prompt)
        if _EXTRA_NETWORK.search(prompt):
            networks = Networks(prompt, (), ("<...> tags in the negative prompt are read as "
                                             "words, as A1111 does; LoRAs go in the prompt.",))
    else:
        networks = extract_networks(prompt)
    warnings = list(networks.notes)
    if not negative and _AND.search(networks.text):
        warnings.append("AND (composable diffusion) is not supported; the prompt is read as "
                        "one text with the word AND in it.")
    schedule, more = prompt_schedule(networks.text, steps, old_scheduling=old_scheduling)
    warnings.extend(more)
    entries = []
    for end, text in schedule:
        fragments, notes = parse_attention(text)
        warnings.extend(n for n in notes if n not in warnings)
        entries.append(Scheduled(end, text, tuple(fragments)))
    return ParsedPrompt(prompt, max(1, int(steps)), tuple(entries), networks.loras,
                        tuple(warnings))


def strip_networks(prompt: str) -> str:
    """The prompt without any `<kind:...>` tag, never raising (for counters and titles)."""
    return _EXTRA_NETWORK.sub("", prompt or "")


def plain_text(prompt: str, steps: int = DEFAULT_STEPS) -> str:
    """The words of a prompt without its syntax, for file names and titles.

    `a (red:1.5) fox <lora:x:1>` → `a red fox`. Uses the text of the last step
    (what the picture ends with). Never raises: a malformed LoRA tag is dropped.
    """
    parsed = parse(strip_networks(prompt), steps)
    words = " ".join(" " if f.is_break else f.text for f in parsed.schedules[-1].fragments)
    words = re.sub(r"\s+", " ", words).strip()
    return re.sub(r"\s+([,.;!?])", r"\1", words)


# ─── chunks of 75 tokens ──────────────────────────────────────────────────────────────


@dataclass
class Chunk:
    """Up to 75 token ids with their weights (BOS/EOS are added by the encoder)."""

    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def chunk_tokens(
    tokenized: Sequence[Sequence[int]],
    fragments: Sequence[Fragment],
    comma_token: int | None,
    *,
    chunk_length: int = CHUNK_LENGTH,
    backtrack: int = COMMA_BACKTRACK,
) -> tuple[list[Chunk], int]:
    """Split a prompt's tokens into chunks as A1111's tokenize_line does.

    `tokenized[i]` are the ids of `fragments[i]` (tokenized alone, no BOS/EOS).
    A chunk that fills up moves the words after its last comma to the next chunk
    when that comma is within `backtrack` tokens of the end; an unweighted BREAK
    starts a new chunk. Chunks come back unpadded. The count is A1111's: every
    finished chunk counts as a full one, the last as its length.
    """
    chunks: list[Chunk] = []
    chunk = Chunk()
    count = 0
    last_comma = -1

    def finish(is_last: bool = False) -> None:
        nonlocal chunk, count, last_comma
        count += len(chunk.tokens) if is_last else chunk_length
        last_comma = -1
        chunks.append(chunk)
        chunk = Chunk()

    for ids, fragment in zip(tokenized, fragments, strict=True):
        if fragment.is_break:
            finish()
            continue
        for token in ids:
            if comma_token is not None and token == comma_token:
                last_comma = len(chunk.tokens)
            elif (backtrack and len(chunk.tokens) == chunk_length and last_comma != -1
                  and len(chunk.tokens) - last_comma <= backtrack):
                cut = last_comma + 1
                moved_tokens, moved_weights = chunk.tokens[cut:], chunk.weights[cut:]
                del chunk.tokens[cut:], chunk.weights[cut:]
                finish()
                chunk.tokens, chunk.weights = moved_tokens, moved_weights
            if len(chunk.tokens) == chunk_length:
                finish()
            chunk.tokens.append(token)
            chunk.weights.append(fragment.weight)
    if chunk.tokens or not chunks:
        finish(is_last=True)
    return chunks, count


def chunk_limit(token_count: int, chunk_length: int = CHUNK_LENGTH) -> int:
    """The token limit the counter shows: the next multiple of 75 (A1111)."""
    return math.ceil(max(token_count, 1) / chunk_length) * chunk_length
