"""What every text runtime does with each new token, written once.

Both text engines (transformers in `text_lm`, llama.cpp in `text_llama`) hand each new
token id to a `TokenStream`: it decodes the token into text without splitting a
character, holds back a possible partial stop string until it is resolved, reports
progress (which checks cancel, so a run stops within one token), streams the safe text
through `events.preview`, and keeps the timings that end up in `Result.info`. So the two
runtimes stream, stop, trim and time the same way, and what streams out is exactly the
final text.

Plain Python (no torch): the runtimes pass in how to turn token ids into text.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Container, Sequence
from typing import Any, Protocol

from studio.core.results import Preview
from studio.engines.base import Events

#: how many prompt tokens the incremental decoder keeps as context (spaces, merges)
DECODE_CONTEXT = 5

REPLACEMENT = "\ufffd"


class PieceDecoder(Protocol):
    def push(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


class IncrementalDecoder:
    """Turns token ids into text piece by piece, never splitting a character.

    It decodes a small window (a few tokens of context plus the new ones) and emits the
    difference, the way text-generation-inference does: context keeps leading spaces of
    sentencepiece tokens, and a window ending in U+FFFD (half a UTF-8 character) waits.
    """

    def __init__(self, decode: Callable[[list[int]], str], context: Sequence[int] = ()) -> None:
        self._decode = decode
        self.ids: list[int] = list(context)[-DECODE_CONTEXT:]
        self._prefix = 0
        self._read = len(self.ids)
        self._before: str | None = None  # decode(ids[prefix:read]), cached until they move

    def _window(self) -> tuple[str, str]:
        if self._before is None:
            self._before = self._decode(self.ids[self._prefix:self._read])
        return self._before, self._decode(self.ids[self._prefix:])

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes ("" while a character is unfinished)."""
        self.ids.append(int(token_id))
        before, now = self._window()
        if len(now) > len(before) and not now.endswith(REPLACEMENT):
            self._prefix, self._read = self._read, len(self.ids)
            self._before = None
            return now[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still pending at the end; half a character cut off by the end of
        the run (which would show as U+FFFD) is dropped."""
        before, now = self._window()
        self._prefix = self._read = len(self.ids)
        self._before = ""
        return now[len(before):].rstrip(REPLACEMENT) if len(now) > len(before) else ""


class ByteDecoder:
    """Token ids whose pieces are raw bytes (llama.cpp) → text, never splitting a character.

    A UTF-8 character spread over several byte tokens waits until it is complete; half a
    character left at the end of the run is dropped.
    """

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self._utf8.decode(self._piece(int(token_id)))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True).rstrip(REPLACEMENT)


class StopBuffer:
    """Finds stop strings in streamed text and says what is safe to show.

    Text that could be the start of a stop string is held back until the next pieces
    show whether it is one. A stop string ends the text (it and anything after it are
    dropped); at the very end, a held-back partial stop string is trimmed as well.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = tuple(s for s in stops if s)
        self.text = ""  # everything decoded so far (up to the stop, once stopped)
        self.emitted = 0  # how much of self.text has been handed out
        self.stopped = False
        self.stop_string: str | None = None

    def _held(self) -> int:
        """Length of the longest end of self.text that begins some stop string."""
        best = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:k]):
                    best = k
                    break
        return best

    def feed(self, piece: str) -> str:
        """Add decoded text; return the newly safe part (may be "")."""
        if self.stopped or not piece:
            return ""
        self.text += piece
        if self.stops:
            hits = [(i, s) for s in self.stops if (i := self.text.find(s, self.emitted)) >= 0]
            if hits:
                index, stop = min(hits)
                self.text = self.text[:index]
                self.stopped, self.stop_string = True, stop
                return self._take(index)
        return self._take(len(self.text) - self._held())

    def finish(self) -> str:
        """The end of the run: trim a partial stop string left at the end, return the rest."""
        if not self.stopped:
            held = self._held()
            if held:
                self.text = self.text[: len(self.text) - held]
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        piece = self.text[self.emitted:upto]
        self.emitted = upto
        return piece


class TokenStream:
    """One run's tokens: decode, stop strings, progress (cancel), previews and timings.

    `step(token)` is called with every new token id and returns True when the run must
    end (end-of-sequence, a stop string, the token budget); `finish()` flushes what is
    held back and returns the final text; `info()` the facts for `Result.info`.
    """

    def __init__(self, events: Events, decoder: PieceDecoder, stops: Sequence[str],
                 eos: Container[int], max_new: int) -> None:
        self.decoder = decoder
        self.stops = StopBuffer(stops)
        self.events = events
        self.eos = eos
        self.total = max_new
        self.previews = events.wants_previews()
        self.tokens = 0
        self.done: str | None = None  # why generation ended, once it has
        self.t0 = 0.0
        self.t_first: float | None = None
        self.t_end = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def rate(self, now: float | None = None) -> float:
        """New tokens per second since the run started (prompt reading included)."""
        elapsed = (now or time.perf_counter()) - self.t0
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def step(self, token: int) -> bool:
        """Take one new token; True when generation should end. Raises Cancelled."""
        if self.done is not None:
            return True
        now = time.perf_counter()
        if self.t_first is None:
            self.t_first = now
        if token in self.eos:
            self.done = "eos"
            return True
        self.tokens += 1
        piece = self.stops.feed(self.decoder.push(token))
        if self.stops.stopped:
            self.done = "stop"
        elif self.tokens >= self.total:
            self.done = "length"
        self.events.progress(self.tokens, self.total)  # raises Cancelled when asked
        if piece:
            self._show(piece)
        return self.done is not None

    def _show(self, piece: str) -> None:
        if self.previews:
            rate = self.rate()
            self.events.preview(Preview("text", piece, self.tokens, self.total,
                                        info={"tokens_per_s": rate, "tokens": self.tokens}))

    def finish(self) -> str:
        """After the run: flush the decoder and the stop buffer; the final text."""
        self.t_end = time.perf_counter()
        if self.done is None:
            self.done = "length"
        tail = ""
        if not self.stops.stopped:
            tail = self.stops.feed(self.decoder.flush())
            if self.stops.stopped:
                self.done = "stop"
        tail += self.stops.finish()
        if tail:
            self._show(tail)
        return self.stops.text

    def info(self) -> dict[str, Any]:
        first = (self.t_first - self.t0) if self.t_first is not None else 0.0
        return {
            "tokens": self.tokens,
            "tokens_per_s": round(self.rate(self.t_end), 3),
            "first_token_s": round(first, 4),
            "seconds": round(self.t_end - self.t0, 4),
            "stopped_by": self.done,
            "stop_string": self.stops.stop_string,
        }
