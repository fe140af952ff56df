"""A virtual serial QR scanner on a pseudo-terminal (SCANNER.md, "Serial").

:meth:`SimScanner.scan` sends a code the way a serial scanner does: its bytes, then
CR LF (``ending`` changes that). For keyboard-wedge scanners the tests feed
``evdev.InputEvent`` objects through a fake device instead (no /dev/uinput here);
:func:`key_events` turns text into the events a wedge would send.
"""

from __future__ import annotations

import contextlib
import os
import tty

from drivers.scanner import EV_KEY, KEY_DOWN, KEY_ENTER, KEY_UP, KEYMAP

LEFTSHIFT = 42


class SimScanner:
    def __init__(self, *, ending: bytes = b"\r\n") -> None:
        self.ending = ending
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.sent = 0

    def scan(self, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        os.write(self._master, data + self.ending)
        self.sent += 1

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


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
