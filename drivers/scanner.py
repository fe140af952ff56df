"""QR / barcode scanners (docs/protocols/SCANNER.md): a USB keyboard wedge or a serial scanner.

Codec (pure): :class:`WedgeDecoder` turns evdev key events into text, Shift and
Caps Lock honoured, Enter ending a scan; :class:`LineDecoder` splits serial bytes
at CR or LF. Neither judges what was scanned (length, control characters): the
agent's router does, with the reasons a person reads.

Transports: :class:`EvdevScanner` reads an input device with an exclusive grab,
so scanned text never types into the kiosk; :class:`SerialScanner` reads a port.
Both run a thread, reopen a lost device with back-off, and report health.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import serial

from drivers.backoff import Backoff
from drivers.types import SERIAL_ERRORS, DeviceHealth, Health

log = logging.getLogger(__name__)

EV_KEY: Final = 0x01
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
# A scanner sends a few hundred characters at most; a buffer beyond this is a
# stuck key or a device that is not a scanner, and is cut (the router refuses it).
MAX_BUFFER: Final = 4096
REPLACEMENT: Final = "\ufffd"

# Linux input key codes (linux/input-event-codes.h) of a US layout, which scanners
# emulate: code → (plain, shifted).
_ROW = {2: "1!", 3: "2@", 4: "3#", 5: "4$", 6: "5%", 7: "6^", 8: "7&", 9: "8*", 10: "9(",
        11: "0)", 12: "-_", 13: "=+", 26: "[{", 27: "]}", 39: ";:", 40: "'\"", 41: "`~",
        43: "\\|", 51: ",<", 52: ".>", 53: "/?", 57: "  "}
_LETTERS = {16: "q", 17: "w", 18: "e", 19: "r", 20: "t", 21: "y", 22: "u", 23: "i", 24: "o",
            25: "p", 30: "a", 31: "s", 32: "d", 33: "f", 34: "g", 35: "h", 36: "j", 37: "k",
            38: "l", 44: "z", 45: "x", 46: "c", 47: "v", 48: "b", 49: "n", 50: "m"}
_KEYPAD = {71: "7", 72: "8", 73: "9", 74: "-", 75: "4", 76: "5", 77: "6", 78: "+", 79: "1",
           80: "2", 81: "3", 82: "0", 83: ".", 98: "/", 55: "*"}
KEYMAP: Final[dict[int, tuple[str, str]]] = {
    **{c: (s[0], s[1]) for c, s in _ROW.items()},
    **{c: (ch, ch.upper()) for c, ch in _LETTERS.items()},
    **{c: (ch, ch) for c, ch in _KEYPAD.items()},
}
KEY_ENTER, KEY_KPENTER = 28, 96
SHIFTS: Final = frozenset({42, 54})  # KEY_LEFTSHIFT, KEY_RIGHTSHIFT
KEY_CAPSLOCK: Final = 58
KEY_TAB: Final = 15


class KeyEvent(Protocol):
    """What we read of an ``evdev.InputEvent``."""

    type: int
    code: int
    value: int


class WedgeDecoder:
    """Key events in, finished scans out. Unknown keys become U+FFFD (then refused)."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.shift: set[int] = set()
        self.caps = False
        self.overflow = False

    def feed(self, ev: KeyEvent) -> str | None:
        if ev.type != EV_KEY:
            return None
        if ev.code in SHIFTS:
            if ev.value == KEY_UP:
                self.shift.discard(ev.code)
            else:
                self.shift.add(ev.code)
            return None
        if ev.value != KEY_DOWN:
            return None  # releases, and auto-repeat of a key held down
        if ev.code in (KEY_ENTER, KEY_KPENTER):
            text = "".join(self.buf) + (REPLACEMENT * 513 if self.overflow else "")
            self.buf.clear()
            self.overflow = False
            return text
        if ev.code == KEY_CAPSLOCK:
            self.caps = not self.caps
            return None
        if ev.code == KEY_TAB:
            ch = "\t"
        elif ev.code in KEYMAP:
            plain, shifted = KEYMAP[ev.code]
            upper = bool(self.shift)
            if plain.isalpha() and self.caps:
                upper = not upper
            ch = shifted if upper else plain
        else:
            ch = REPLACEMENT
        if len(self.buf) >= MAX_BUFFER:
            self.overflow = True
        else:
            self.buf.append(ch)
        return None


class LineDecoder:
    """Serial bytes in, scans out: a scan ends at CR or LF (CRLF counts once)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.overflow = False

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        for b in data:
            if b in (0x0D, 0x0A):
                if self.buf or self.overflow:
                    text = self.buf.decode("utf-8", errors="replace")
                    out.append(text + (REPLACEMENT * 513 if self.overflow else ""))
                self.buf.clear()
                self.overflow = False
            elif len(self.buf) >= MAX_BUFFER:
                self.overflow = True
            else:
                self.buf.append(b)
        return out


# --------------------------------------------------------------------------- transports

ScanHandler = Callable[[str], None]
HealthHandler = Callable[[DeviceHealth], None]


class InputDevice(Protocol):
    """What we use of ``evdev.InputDevice`` (tests pass a fake one)."""

    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def read_loop(self) -> Iterable[Any]: ...
    def close(self) -> None: ...


def _reopen() -> Backoff:
    """A lost scanner: 2, 4, 8 … 30 s while its port is there but fails; 0.5 s unplugged."""
    return Backoff(1.0, ceiling=30.0)


def _open_evdev(path: str) -> InputDevice:
    import evdev

    dev: InputDevice = evdev.InputDevice(path)
    return dev


class EvdevScanner:
    """A keyboard-wedge scanner read with evdev, grabbed so it never types into the UI."""

    def __init__(self, path: str, on_scan: ScanHandler, *, grab: bool = True,
                 on_health: HealthHandler = lambda h: None,
                 opener: Callable[[str], InputDevice] = _open_evdev) -> None:
        self.path = path
        self.on_scan = on_scan
        self.on_health = on_health
        self.grab = grab
        self._opener = opener
        self._dev: InputDevice | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"scanner {self.path}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scanner-evdev", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        dev, self._dev = self._dev, None
        if dev is not None:
            try:
                if self.grab:
                    dev.ungrab()
                dev.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(2)

    def run_once(self) -> None:
        """Open, grab, and read until the device goes away (raises OSError then)."""
        dev = self._opener(self.path)
        self._dev = dev
        if self.grab:
            dev.grab()  # EVIOCGRAB: the scan reaches us only, never the focused widget
        self.on_health(DeviceHealth(Health.OK, self.where))
        dec = WedgeDecoder()
        for ev in dev.read_loop():
            if self._stop.is_set():
                return
            text = dec.feed(ev)
            if text is not None:
                self._deliver(text)

    def _deliver(self, text: str) -> None:
        try:
            self.on_scan(text)
        except Exception:  # a handler bug must not stop the scanner
            log.exception("%s: scan handler failed", self.where)

    def _loop(self) -> None:
        back = _reopen()
        while not self._stop.is_set():
            try:
                self.run_once()
                back.reset()
            except OSError as e:
                back.failed()
                why = e.strerror or str(e)
                hint = ("add the agent's user to the input group" if isinstance(
                    e, PermissionError) else "check the USB cable")
                self.on_health(DeviceHealth(Health.FAULT, f"{self.where}: {why} — {hint}"))
            self._dev = None
            self._stop.wait(back.for_port(self.path))


class SerialPort(Protocol):
    def read(self, size: int = 1, /) -> bytes: ...
    def close(self) -> None: ...
    @property
    def in_waiting(self) -> int: ...


def _open_serial(port: str, baudrate: int) -> SerialPort:
    p: SerialPort = serial.serial_for_url(port, baudrate=baudrate, timeout=0.2)
    return p


class SerialScanner:
    """A serial scanner: ASCII lines ending in CR or LF."""

    def __init__(self, port: str, baudrate: int, on_scan: ScanHandler, *,
                 on_health: HealthHandler = lambda h: None,
                 opener: Callable[[str, int], SerialPort] = _open_serial) -> None:
        self.port = port
        self.baudrate = baudrate
        self.on_scan = on_scan
        self.on_health = on_health
        self._opener = opener
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dev: SerialPort | None = None

    @property
    def where(self) -> str:
        return f"scanner on {self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scanner-serial", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _loop(self) -> None:
        back = _reopen()
        while not self._stop.is_set():
            try:
                self._dev = self._opener(self.port, self.baudrate)
                self.on_health(DeviceHealth(Health.OK, self.where))
                back.reset()
                dec = LineDecoder()
                while not self._stop.is_set():
                    data = self._dev.read(max(1, self._dev.in_waiting))
                    for text in dec.feed(data):
                        try:
                            self.on_scan(text)
                        except Exception:
                            log.exception("%s: scan handler failed", self.where)
            except SERIAL_ERRORS as e:
                back.failed()
                self.on_health(DeviceHealth(Health.FAULT, f"{self.where}: {e} — check the "
                                                          "USB cable"))
            finally:
                dev, self._dev = self._dev, None
                if dev is not None:
                    with contextlib.suppress(OSError, serial.SerialException):
                        dev.close()
            self._stop.wait(back.for_port(self.port))
