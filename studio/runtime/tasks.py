"""Small background tasks (folder scans, file reads) on Qt's thread pool.

For work that is not a generation job: it never blocks the GUI and reports
back with a queued signal to an object living in the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay

    def run(self) -> None:
        try:
            value = self.fn()
        except Exception as exc:  # reported, never raised into Qt
            log.exception("background task failed")
            self.relay.failed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        else:
            self.relay.done.emit(value)


_live: set[_Relay] = set()


def run_in_pool(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    pool: QThreadPool | None = None,
    on_failed: Callable[[str], None] | None = None,
) -> None:
    """Run fn() on a pool thread; on_done(value) is called in the calling (GUI) thread."""
    relay = _Relay()
    _live.add(relay)
    relay.done.connect(on_done)
    if on_failed is not None:
        relay.failed.connect(on_failed)
    relay.done.connect(lambda _v: _live.discard(relay))
    relay.failed.connect(lambda _m: _live.discard(relay))
    (pool or QThreadPool.globalInstance()).start(_Task(fn, relay))
