"""`studio chat`: a conversation with a text model on the terminal.

    studio chat --model builtin:smollm2 --system "You are a helpful editor." --preset haiku

Type a message and press Enter; the reply streams as it is written. Line editing and
the message history come from `readline` on a terminal. Every finished reply saves the
conversation so far, like every output, as Markdown with its recipe (model, settings,
every turn) in the output folder and the history: one file per conversation, rewritten
atomically after each reply with its history row updated (studio.core.chat.save), so a
killed process loses at most the reply that was streaming. Ctrl+D (or `/quit`) ends the
chat; the files it saved are the last lines printed, the current one last. Ctrl+C while
a reply streams stops that reply (the conversation so far stays); at the prompt it ends
the chat like Ctrl+D. `/regen` writes the last reply again (in the same file), `/clear`
starts over in a new file (the finished one stays saved), `--resume FILE` goes on with a
saved chat in that same file (a file outside the output folder is left as it is and the
chat goes on in a new one, as in the Chat view). Bad input (an empty message, an unknown
preset): one line on stderr, and the chat goes on.

The conversation itself is `studio.core.chat.Conversation` (the Chat view reuses it);
when it outgrows the model's context the oldest turns are dropped (chat.POLICY).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from studio.cli.common import settings_for
from studio.cli.gen_text import unescape
from studio.core import chat
from studio.core.errors import Cancelled, RequestError, StudioError
from studio.core.requests import TextRequest
from studio.core.results import Preview, Result

DEFAULTS = TextRequest()
COMMANDS = {"/quit": "end", "/regen": "write the last reply again",
            "/clear": "start over in a new file"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="a conversation with a text model (saved after every reply)")
    p.add_argument("--model", default="", help="model id: builtin:… or a path "
                                               "(default: the saved chat's, with --resume)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--preset", default=None,
                   help="a writing form: haiku, quatrain, lyrics, list:N, image-prompt, "
                        "story-opening")
    p.add_argument("--seed", default="-1", help="-1 draws a seed for every reply (recorded)")
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=None,
                   help="most new tokens per reply")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", dest="top_p", type=float, default=None)
    p.add_argument("--top-k", dest="top_k", type=int, default=None)
    p.add_argument("--repetition-penalty", dest="repetition_penalty", type=float, default=None)
    p.add_argument("--stop", nargs="+", action="extend", default=None, metavar="STR",
                   help="end a reply at one of these strings (\\n is a newline)")
    p.add_argument("--resume", default=None, metavar="FILE",
                   help="go on with a chat saved earlier, in that file (its settings unless "
                        "given here)")
    p.add_argument("--out", default=None, help="output folder (default: from settings)")
    p.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    p.set_defaults(handler=run)


def start(args: argparse.Namespace) -> chat.Conversation:
    """The conversation to go on with: a saved one (--resume) or a new one, with the
    settings given on the command line laid over it; validated before any model loads."""
    if args.resume:
        conversation = chat.Conversation.from_file(Path(args.resume).expanduser().resolve())
        base = conversation.settings.to_dict()
    else:
        conversation = chat.Conversation(DEFAULTS)
        base = DEFAULTS.to_dict()
    given = {
        "model": args.model or None, "system": args.system, "preset": args.preset,
        "max_new_tokens": args.max_tokens, "temperature": args.temperature,
        "top_p": args.top_p, "top_k": args.top_k,
        "repetition_penalty": args.repetition_penalty,
        "stop": None if args.stop is None else [unescape(s) for s in args.stop],
    }
    base.update({k: v for k, v in given.items() if v is not None})
    base.update(seed=args.seed, prompt="", history=[], continuation="")
    settings = TextRequest.from_dict(base)
    assert isinstance(settings, TextRequest)
    if not settings.model.strip():
        raise RequestError("Choose a model first (--model).")
    settings.replace(prompt="-").validate()  # every setting, before torch is imported
    conversation.settings = settings
    return conversation


class ChatEvents:
    """Headless events for one reply: text to stdout as it streams, status to stderr."""

    def __init__(self, out: Any, quiet: bool) -> None:
        from studio.engines.base import Events

        outer = self

        class _Events(Events):
            def on_preview(self, preview: Preview) -> None:
                if preview.kind == "text" and preview.data:
                    outer.written.append(preview.data)
                    out.write(preview.data)
                    out.flush()

            def on_status(self, text: str) -> None:
                if not quiet:
                    print(text, file=sys.stderr, flush=True)

        self.written: list[str] = []
        self.events = _Events()


def reply(runner: Any, request: TextRequest, out: Any, quiet: bool) -> Result:
    """Generate one reply, streaming it; Ctrl+C cancels this reply only (Cancelled)."""
    sink = ChatEvents(out, quiet)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if main:
        signal.signal(signal.SIGINT, lambda *_: sink.events.cancel_flag.set())
    try:
        result = runner.generate(request, sink.events)
        sink.events.check_cancelled()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if not sink.written:
        out.write(result.text)
    out.write("\n\n")
    out.flush()
    return result


def summary(result: Result) -> str:
    info = result.info
    parts = [f"{info.get('tokens', 0)} tokens at {info.get('tokens_per_s', 0):.1f} tokens/s",
             f"seed {result.request.seed}"]
    if info.get("dropped_turns"):
        parts.append(f"{info['dropped_turns']} oldest turns dropped to fit the context")
    if info.get("note"):
        parts.append(str(info["note"]))
    return "(" + "; ".join(parts) + ")"


def run(args: argparse.Namespace) -> int:
    from studio.engines.runner import Runner

    conversation = start(args)
    seed = conversation.settings.seed
    fixed_seed = seed if seed >= 0 else None
    interactive = sys.stdin.isatty()
    quiet = args.quiet or not sys.stderr.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

        print(f"Chatting with {conversation.settings.model}. Every reply is saved; "
              "Ctrl+D ends; "
              + ", ".join(f"{k} {v}" for k, v in COMMANDS.items()) + ".", file=sys.stderr)
    runner = Runner(settings_for(args))
    saver = Saver(runner.settings.output_path)
    try:
        chat_loop(runner, conversation, saver, fixed_seed, interactive, quiet)
        return saver.finish(conversation)
    finally:
        saver.close()


def chat_loop(runner: Any, conversation: chat.Conversation, saver: Saver,
              fixed_seed: int | None, interactive: bool, quiet: bool) -> None:
    """Read messages until the end of input, /quit or Ctrl+C; save after every reply."""
    out = sys.stdout
    while True:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            if interactive:
                print(file=sys.stderr)
            return
        command = line.strip()
        try:
            if command == "/quit":
                return
            if command == "/clear":
                if saver.unsaved and saver.save(conversation) is None:
                    print("studio: the conversation is not saved yet, so it is kept; "
                          "/clear again to try once more.", file=sys.stderr)
                    continue
                kept = conversation.file.path if conversation.turns else None
                conversation.clear()
                print("(the conversation starts over"
                      + (f"; {kept.name} keeps the one before" if kept else "") + ")",
                      file=sys.stderr)
                continue
            if command == "/regen":
                request = conversation.regenerate(fixed_seed)
            else:
                request = conversation.request(line, fixed_seed)
            result = reply(runner, request, out, quiet)
        except Cancelled:
            out.write("\n")
            print("studio: reply stopped; the conversation so far is kept.", file=sys.stderr)
            continue
        except (RequestError, StudioError) as exc:
            print(f"studio: {exc}", file=sys.stderr, flush=True)
            continue
        conversation.add(request, result)
        if not quiet:
            print(summary(result), file=sys.stderr, flush=True)
        saver.save(conversation)


class Saver:
    """Saves a chat after every reply, each conversation as its one file.

    One conversation is one file (studio.core.chat.save): written under a new name the
    first time, then rewritten atomically and its history row updated; a resumed file
    outside the output folder (or gone) is left alone and the chat goes on in a new file
    (said on stderr). A failed save is one line and the chat goes on; the next reply (or
    the end) tries again, since every save writes the whole conversation."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.paths: list[Path] = []  # every file this chat saved, in order
        self.unsaved = False  # the last reply is not on disk yet (its save failed)
        self._history: Any = None
        self._opened = False

    def history(self) -> Any:
        """The history index, opened at the first save (None: files saved, not indexed)."""
        if not self._opened:
            from studio.core.history import History

            self._opened = True
            self._history = History.open_for_saving()
        return self._history

    def save(self, conversation: chat.Conversation,
             then: str = "The chat goes on; the next reply saves it again.") -> Path | None:
        """Write the conversation so far; None (and one line on stderr, ending with
        `then`) when that failed."""
        result = conversation.last_result()
        if result is None:
            return None
        before = conversation.file.path
        try:
            path = chat.save(result, conversation.file, self.out_dir, self.history())
        except StudioError as exc:
            self.unsaved = True
            print(f"studio: {exc} {then}", file=sys.stderr, flush=True)
            return None
        self.unsaved = False
        if before is not None and path != before:
            where = "is gone" if not before.is_file() else "is outside the output folder"
            print(f"studio: {before.name} {where}, so the chat goes on in a new file.",
                  file=sys.stderr, flush=True)
        if path not in self.paths:
            self.paths.append(path)
        return path

    def finish(self, conversation: chat.Conversation) -> int:
        """At the end: save what a failed save left and print every file of this chat,
        one a line, in order (the current conversation's last); EXIT_FAILED when the last
        reply could not be saved."""
        from studio.cli import EXIT_FAILED

        failed = self.unsaved and self.save(
            conversation, "The last reply is not saved.") is None
        current = conversation.file.path
        if (conversation.turns and current is not None and current not in self.paths
                and current.is_file()):  # resumed, and nothing new said: it is the file
            self.paths.append(current)
        for path in self.paths:
            print(path)
        if failed:
            return EXIT_FAILED
        if not self.paths:
            print("studio: nothing to save: the conversation has no reply.", file=sys.stderr)
        return 0

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None
