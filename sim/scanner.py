"""A virtual serial QR scanner on a pseudo-terminal (SCANNER.md, "Serial").

:meth:`SimScanner.scan` sends a code the way a serial scanner does: its bytes, then
CR LF (``ending`` changes that). For keyboard-wedge scanners the tests feed
``evdev.InputEvent`` objects through a fake device instead (no /dev/uinput here);
:func:`key_events` turns text into the events a wedge would send.
"""

from __future__ import annotations

import os

from drivers.scanner import EV_KEY, KEY_DOWN, KEY_ENTER, KEY_UP, KEYMAP
from sim.ptydevice import PtyDevice

LEFTSHIFT = 42


class SimScanner(PtyDevice):
    # A scanner only talks: it never starts the reader, and what a host writes to it
    # stays unread, as a real one ignores it.
    def __init__(self, *, ending: bytes = b"\r\n") -> None:
        super().__init__(name="sim-scanner")
        self.ending = ending
        self.sent = 0

    def scan(self, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        # Not _send: a scan into a closed scanner is the test's mistake and should raise.
        os.write(self._master, data + self.ending)
        self.sent += 1


_REVERSE: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in KEYMAP.items():
    _REVERSE.setdefault(_plain, (_code, False))
    _REVERSE.setdefault(_shifted, (_code, True))


def key_events(text: str, *, enter: bool = True) -> list[tuple[int, int, int]]:
    """(type, code, value) triples a US-layout wedge sends for ``text``."""
    out: list[tuple[int, int, int]] = []
    for ch in text:
        code, shift = _REVERSE[ch]
        if shift:
            out.append((EV_KEY, LEFTSHIFT, KEY_DOWN))
        out += [(EV_KEY, code, KEY_DOWN), (EV_KEY, code, KEY_UP)]
        if shift:
            out.append((EV_KEY, LEFTSHIFT, KEY_UP))
    if enter:
        out += [(EV_KEY, KEY_ENTER, KEY_DOWN), (EV_KEY, KEY_ENTER, KEY_UP)]
    return out
