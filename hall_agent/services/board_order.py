"""The order of a call's frames on a shared bus: the hall board's first.

A call changes the hall board (where people look, and its chime) and the called
window's board. On one RS-485 bus their frames would interleave and both would
be late; instead a window board paints only what the hall boards on its bus
have already painted. Each hall board keeps a :class:`CallLedger`: calls
announced to it (``owed``) and calls it has been through a whole update for
(``done``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class CallLedger:
    def __init__(self) -> None:
        self.owed = 0
        self.shown = 0  # owed calls already in the boards' call list (``show_call``)
        self.done = 0
        self._cond = threading.Condition()

    def owe(self) -> None:
        """A call for this board; count it *before* the call is visible to any board."""
        with self._cond:
            self.owed += 1

    def show(self) -> None:
        """An owed call is now in the list the hall board paints from: an update that
        starts after this sees it (so only such an update may settle it)."""
        with self._cond:
            self.shown = min(self.owed, self.shown + 1)

    def settle(self, upto: int) -> None:
        """The board went through an update that saw the calls up to ``upto``."""
        with self._cond:
            self.done = max(self.done, upto)
            self._cond.notify_all()

    def wait(self, upto: int, deadline: float) -> None:
        with self._cond:
            came = self._cond.wait_for(lambda: self.done >= upto,
                                       max(0.0, deadline - time.monotonic()))
            # Owed but never shown: its transaction rolled back (a full card), so it
            # will never come. Drop it rather than hold every later update up.
            if not came and self.done >= self.shown:
                self.owed = self.shown


def after_halls(ledgers: Sequence[CallLedger], compute: Callable[[], T], timeout_s: float) -> T:
    """``compute()`` once every call it can see is done on the hall boards (or after
    ``timeout_s``: a stuck hall board does not hold the window boards up for long)."""
    deadline = time.monotonic() + timeout_s
    while True:
        owed = [led.owed for led in ledgers]
        for led, o in zip(ledgers, owed, strict=True):
            led.wait(o, deadline)
        out = compute()
        # A call that came while computing may be in ``out``: wait for it too.
        if [led.owed for led in ledgers] == owed or time.monotonic() >= deadline:
            return out
