"""Saves a panel asks for (Text "Save", a chat's one file, Music "Save as…"), off the GUI
thread.

They go the way every generated output goes: the runner's writer (a temporary name,
then a rename; names never collide) and the history index, so the gallery knows each
file. The panel gets the written paths, or one sentence when the save failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core import chat
from studio.core.errors import StudioError
from studio.core.results import Result
from studio.runtime.tasks import run_in_pool

if TYPE_CHECKING:
    from studio.runtime.context import AppContext

log = logging.getLogger(__name__)


def save_output(ctx: AppContext, result: Result, on_done: Callable[[list[Path]], None],
                on_failed: Callable[[str], None]) -> None:
    """Write `result` as a new output in the output folder and index it (a pool task)."""
    settings, history = ctx.settings, ctx.history

    def save() -> list[Path]:
        from studio.engines.runner import Runner

        return Runner(settings).save(result, history)

    run_in_pool(save, on_done, on_failed=on_failed)


def save_conversation(ctx: AppContext, conversation: chat.Conversation,
                      on_done: Callable[[list[Path]], None],
                      on_failed: Callable[[str], None]) -> None:
    """Save a conversation as its one file (new the first time, then rewritten in place
    and its history row updated; see studio.core.chat.save), as a pool task. The turns
    are taken now, on the caller's thread; the file is the conversation's line as now;
    a save that runs after a later one's writes nothing."""
    result = conversation.to_result()
    file, out_dir, history = conversation.file, ctx.settings.output_path, ctx.history
    ticket = file.ticket()  # in the order the turns were taken, whatever order saves run
    run_in_pool(lambda: [chat.save(result, file, out_dir, history, ticket)], on_done,
                on_failed=on_failed)


def export_audio_copy(ctx: AppContext, result: Result, path: Path,
                      on_done: Callable[[Path], None],
                      on_failed: Callable[[str], None]) -> None:
    """Write a copy of a music result at a chosen path (.wav or .flac, recipe included)
    and index it, so the gallery knows the copy too (a pool task)."""
    history = ctx.history

    def export() -> Path:
        from studio.core.formats.audio import export_audio

        written = Path(export_audio(result, path))
        try:
            history.add_output(written, result)
        except StudioError:  # the copy is safe on disk; the index can be rebuilt
            log.exception("could not index %s in the history", written)
        return written

    run_in_pool(export, on_done, on_failed=on_failed)


def export_midi_copy(source: Path, path: Path, on_done: Callable[[Path], None],
                     on_failed: Callable[[str], None]) -> None:
    """Copy a piece's MIDI to a chosen path (written under a temporary name, then renamed,
    so a half-written file never appears), as a pool task."""

    def export() -> Path:
        from studio.core.atomic import atomic_write_bytes

        target = path if path.suffix.lower() in (".mid", ".midi") else path.with_suffix(".mid")
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise StudioError(f"Cannot read {source.name}: {exc.strerror or exc}.") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(target, data)

    run_in_pool(export, on_done, on_failed=on_failed)
