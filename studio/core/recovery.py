"""Recovery after a crash, a kill or a full disk: nothing lost, nothing left half-written.

A process killed while saving leaves hidden temporary files (`.NAME.XXXX.part`) and may
have written complete outputs it never indexed. `recover` removes the temporary files
whose writers are gone (a save running in another process keeps its own: see
`studio.core.atomic.is_stale_temp`) and indexes every complete output that carries a
Studio recipe but is missing from the history. The CLI runs it before each command that
saves, the GUI after its window is shown, and the Models tab's Rescan may run it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.atomic import remove_stale_temps
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.history import History
    from studio.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Recovered:
    """What one recovery pass did."""

    removed: list[Path] = field(default_factory=list)  # stale temporary files deleted
    indexed: int = 0  # complete outputs added to the history
    problems: list[str] = field(default_factory=list)  # one sentence each, never fatal

    def __bool__(self) -> bool:
        return bool(self.removed or self.indexed)


def recover(history: History | None, folders: Iterable[str | Path]) -> Recovered:
    """Clean up and index the output folders; never raises for a folder it cannot read."""
    done = Recovered()
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder).expanduser()
        try:
            folder = folder.resolve()
            if folder in seen or not folder.is_dir():
                continue
        except OSError:
            continue
        seen.add(folder)
        try:
            done.removed += remove_stale_temps(folder)
        except OSError as exc:
            done.problems.append(f"Could not clean {folder}: {exc.strerror or exc}.")
        if history is None:
            continue
        try:
            done.indexed += history.rescan(folder, sources={"studio"})
        except (StudioError, OSError) as exc:
            done.problems.append(f"Could not index the outputs in {folder}: {exc}")
    if done:
        log.info("recovery: removed %d temporary files, indexed %d outputs",
                 len(done.removed), done.indexed)
    for problem in done.problems:
        log.info("recovery: %s", problem)
    return done


def output_folders(settings: Settings, *extra: str | Path | None) -> list[Path]:
    """The folders outputs go to: the settings' one and any given (e.g. a CLI --out)."""
    folders = [settings.output_path]
    folders += [Path(e).expanduser() for e in extra if e]
    return folders


def recover_default(settings: Settings, *extra: str | Path | None) -> Recovered:
    """`recover` with the default history index (skipped quietly when it cannot open).

    An index that does not exist yet is not created here (a command that then fails on
    bad input leaves nothing behind); the first save creates it and the next start
    indexes anything older.
    """
    from studio.core import paths
    from studio.core.history import History

    history: History | None = None
    if paths.history_path().is_file():
        try:
            history = History.open_default()
        except StudioError as exc:
            log.info("recovery: the history index cannot be opened (%s); only cleaning up", exc)
    try:
        return recover(history, output_folders(settings, *extra))
    finally:
        if history is not None:
            history.close()
