"""A conversation with a text model, as plain data (the terminal chat and the Chat view).

A conversation is a system prompt, the run settings (a `TextRequest` without a prompt)
and the turns so far. Each new message becomes one ordinary `TextRequest` whose
`history` holds the earlier turns (user, assistant, user, assistant, ...) and whose
`prompt` is the new message, so a reply is replayable from its recipe like any text.

Context policy (`POLICY`): when the conversation outgrows the model's context, the oldest
turns are dropped first, a user message together with its reply; the system prompt and
the new message are always kept. The engines apply it with `fit_history`.

Saving: `to_result()` makes the `Result` that is written as Markdown (the transcript as
the body, every turn in the front matter); `from_file()` reads one back. One conversation
is ONE file: `save()` writes it under a new name the first time and rewrites that file
(atomically: a crash mid-write leaves the previous version) as it grows, updating its
history row rather than adding one. The file belongs to the conversation's `SavedFile`;
an edited earlier message (a branch) gets a new `SavedFile`, so the branch is a new file
and the file it came from keeps the original turns. A regenerated last reply replaces
the old one in the same file, as it does on screen.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.atomic import atomic_write_bytes
from studio.core.environment import notices
from studio.core.errors import RecipeError, RequestError, StudioError
from studio.core.formats.text import CHAT_KEY, document, read_recipe
from studio.core.outputs import index_outputs, save_and_index
from studio.core.requests import Request, TextRequest
from studio.core.results import Result

if TYPE_CHECKING:
    from studio.core.history import History

USER, ASSISTANT = "user", "assistant"
POLICY = ("When the conversation outgrows the model's context, the oldest turns are "
          "dropped first; the system prompt and the new message are always kept.")
#: the front-matter key (and Result.info key) that holds a saved conversation
RECORD_KEY = CHAT_KEY


def messages(system: str, history: Sequence[str], prompt: str) -> list[dict[str, str]]:
    """Chat-template messages: the system prompt, the turns (user first), the new message."""
    out: list[dict[str, str]] = []
    if system.strip():
        out.append({"role": "system", "content": system})
    for i, text in enumerate(history):
        out.append({"role": USER if i % 2 == 0 else ASSISTANT, "content": text})
    out.append({"role": USER, "content": prompt})
    return out


def plain_prompt(system: str, history: Sequence[str], prompt: str) -> str:
    """The same conversation as plain text, for base models without a chat template."""
    head = f"{system.strip()}\n\n" if system.strip() else ""
    if not history:
        return head + prompt
    lines = [f"{'User' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(history)]
    lines.append(f"User: {prompt}")
    return head + "\n".join(lines) + "\nAssistant:"


def fit_history(history: Sequence[str], budget: int,
                count: Callable[[tuple[str, ...]], int]) -> tuple[tuple[str, ...], int]:
    """The history that fits `budget` prompt tokens, and how many turns were dropped.

    `count(history)` is the prompt's length in tokens with that history (system prompt
    and new message included). Oldest turns go first, two at a time (a message and its
    reply). When even the system prompt and the new message do not fit: RequestError.
    """
    kept = tuple(history)
    if len(kept) % 2:  # a dangling user message without its reply
        kept = kept[1:]
    while True:
        used = count(kept)
        if used <= budget:
            return kept, len(history) - len(kept)
        if not kept:
            raise RequestError(f"The message is too long for this model: {used} tokens with "
                               f"the system prompt, and it reads at most {budget}.")
        kept = kept[2:]


@dataclass
class Turn:
    """One message: who said it, what, and for a reply the seed and facts of its run."""

    role: str  # USER | ASSISTANT
    text: str
    seed: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.seed is not None:
            data["seed"] = self.seed
        return data


@dataclass(eq=False)
class SavedFile:
    """Where one line of a conversation is saved (None until its first save).

    A holder, not a plain path, so that a save still running on a pool thread when the
    conversation branches writes its answer into the old line's holder, never the new
    one's. `lock` keeps two saves of one file from interleaving; tickets keep them in
    order: saves run on a pool, so the save of reply 2 can start after that of reply 3,
    and it must not put the shorter conversation back.
    """

    path: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    written: int = 0  # the ticket of the version on disk (0: none, or untracked saves)
    _tickets: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def ticket(self) -> int:
        """A number for a save about to be queued, larger than every earlier one (taken on
        the thread that took the conversation's turns; `next` on a count is atomic)."""
        return next(self._tickets)


@dataclass
class Conversation:
    """The turns of one chat and the settings every reply is made with."""

    settings: TextRequest  # model, system, preset, sampling; its prompt/history are unused
    turns: list[Turn] = field(default_factory=list)
    file: SavedFile = field(default_factory=SavedFile)  # the one file it is saved as

    @property
    def system(self) -> str:
        return self.settings.system

    def history(self, upto: int | None = None) -> tuple[str, ...]:
        """The texts of the turns (before index `upto`), in order."""
        return tuple(t.text for t in self.turns[:upto])

    def request(self, message: str, seed: int | None = None,
                upto: int | None = None) -> TextRequest:
        """The request for a new message after the turns before `upto` (default: all),
        validated: one sentence when the message is empty. Nothing changes until `add`."""
        if not message.strip():
            raise RequestError("Write a message first.")
        changes: dict[str, Any] = {"prompt": message, "history": self.history(upto),
                                   "continuation": ""}
        if seed is not None:
            changes["seed"] = seed
        request = self.settings.replace(**changes)
        request.validate()
        assert isinstance(request, TextRequest)
        return request

    def add(self, request: TextRequest, result: Result) -> Turn:
        """Record a finished reply: the turns become the request's history, its message and
        the reply (a regenerated reply or an edited message replaces what followed)."""
        n = len(request.history)
        if self.history(n) != tuple(request.history) or n > len(self.turns):
            raise RequestError("This reply belongs to another conversation.")
        reply = Turn(ASSISTANT, result.text, seed=result.request.seed, info=dict(result.info))
        regenerated = n == len(self.turns) - 2 and self.turns[n].text == request.prompt
        if n < len(self.turns) and not regenerated:
            self.file = SavedFile()  # a branch: a file of its own; the old one stays
        self.turns = [*self.turns[:n], Turn(USER, request.prompt), reply]
        return reply

    def regenerate(self, seed: int | None = None) -> TextRequest:
        """The request that writes the last reply again (it replaces it once `add`ed)."""
        if len(self.turns) < 2 or self.turns[-1].role != ASSISTANT:
            raise RequestError("There is no reply to regenerate yet.")
        return self.request(self.turns[-2].text, seed, upto=len(self.turns) - 2)

    def branch(self, index: int, text: str, seed: int | None = None) -> TextRequest:
        """The request for the user message at `index` edited to `text`: once its reply is
        `add`ed, the later turns are gone (the conversation branches from there)."""
        if not 0 <= index < len(self.turns) or self.turns[index].role != USER:
            raise RequestError("Only your own messages can be edited.")
        return self.request(text, seed, upto=index)

    def clear(self) -> None:
        """Start over: the next reply begins a new file (the saved one stays)."""
        self.turns.clear()
        self.file = SavedFile()

    def last_result(self) -> Result | None:
        """The last reply as a Result to save (None before the first reply)."""
        if len(self.turns) < 2 or self.turns[-1].role != ASSISTANT:
            return None
        reply = self.turns[-1]
        request = self.settings.replace(
            prompt=self.turns[-2].text, history=self.history(len(self.turns) - 2),
            seed=reply.seed if reply.seed is not None else self.settings.seed,
            continuation="",
        )
        info = {k: v for k, v in reply.info.items() if k != RECORD_KEY}
        info[RECORD_KEY] = self.record()
        return Result(request, "text", text=reply.text, info=info)

    def to_result(self) -> Result:
        """What `Runner.save` writes for this conversation; RequestError when it is empty."""
        result = self.last_result()
        if result is None:
            raise RequestError("There is nothing to save yet: the conversation has no reply.")
        return result

    def record(self) -> dict[str, Any]:
        """Every turn and the policy, as the front matter keeps them."""
        return {"system": self.system, "preset": self.settings.preset,
                "turns": [t.to_dict() for t in self.turns], "policy": POLICY}

    # reading back ----------------------------------------------------------------
    @classmethod
    def from_record(cls, request: dict[str, Any], record: Any,
                    path: Path | None = None) -> Conversation:
        """A conversation from a saved request and its `chat` record; `path`, the file it
        was read from, is the one going on with it rewrites (see `save`)."""
        try:
            settings = Request.from_dict({**request, "kind": "text"})
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"This conversation's settings cannot be read: {exc}") from exc
        assert isinstance(settings, TextRequest)
        turns: list[Turn] = []
        raw = record.get("turns") if isinstance(record, dict) else None
        if not isinstance(raw, list):
            raise RecipeError("This file holds no conversation (no turns in its front matter).")
        for item in raw:
            if not isinstance(item, dict) or item.get("role") not in (USER, ASSISTANT):
                raise RecipeError("A turn of this conversation cannot be read.")
            seed = item.get("seed")
            turns.append(Turn(str(item["role"]), str(item.get("text", "")),
                              seed if isinstance(seed, int) else None))
        settings = settings.replace(prompt="", history=(), continuation="")
        assert isinstance(settings, TextRequest)
        return cls(settings, turns, SavedFile(Path(path) if path is not None else None))

    @classmethod
    def from_file(cls, path: Path) -> Conversation:
        """Open a saved conversation to go on with it (RecipeError: one sentence)."""
        recipe = read_recipe(Path(path))
        front = recipe.raw.get("front_matter") or {}
        if RECORD_KEY not in front:
            raise RecipeError(f"{Path(path).name} is a text, not a conversation.")
        return cls.from_record(recipe.request, front[RECORD_KEY], Path(path))


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        return False


def save(result: Result, file: SavedFile, out_dir: Path, history: History | None,
         ticket: int | None = None) -> Path:
    """Write a conversation (`Conversation.to_result()`) as its one file and index it.

    The first save writes a new output (a fresh name, never overwriting); later ones
    rewrite that file in place, atomically (a temporary file renamed over it, so a crash
    mid-write leaves the previous version), and update its history row. A file that is
    gone (trashed) or lies outside the output folder (opened from elsewhere) is never
    rewritten: the conversation goes on in a new file. Thread-safe per `file`; with a
    `ticket` (`SavedFile.ticket`), a save older than the version on disk writes nothing.
    """
    with file.lock:
        if ticket is not None and file.path is not None and ticket < file.written:
            return file.path  # a newer version is already there
        path = _write(result, file, Path(out_dir), history)
        if ticket is not None:
            file.written = ticket
        return path


def _write(result: Result, file: SavedFile, out_dir: Path, history: History | None) -> Path:
    path = file.path
    if path is None or not path.is_file() or not _inside(path, out_dir):
        file.path = save_and_index(result, out_dir, history)[0]
        return file.path
    try:
        atomic_write_bytes(path, document(result).encode("utf-8"))
    except OSError as exc:
        raise StudioError(f"Could not save the conversation in {path.name}: "
                          f"{exc.strerror or exc}.") from exc
    problem = index_outputs([path], result, history)
    if problem:
        notices.warning(problem)
    return path
