"""Guards against a Qt binding that leaks references to True/None (PySide6 6.12.0 did).

Such a binding aborts the app after minutes of use ("bool_dealloc"), far beyond any
single test, so the refcounts are checked directly.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(int)
    flag = Signal(bool)


def test_signals_and_slots_keep_refcounts_of_true_and_none(qapp):
    emitter = _Emitter()
    got: list[object] = []
    emitter.fired.connect(lambda v: got.append(None))
    emitter.flag.connect(got.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(500):
        emitter.fired.emit(i)
        emitter.flag.emit(True)
    got.clear()
    assert abs(sys.getrefcount(True) - true_before) < 50
    assert abs(sys.getrefcount(None) - none_before) < 50
