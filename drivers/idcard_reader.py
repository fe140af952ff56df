"""The ID-card reader's transport: frames of drivers/idcard.py over a serial port.

:class:`IdCardReader` moves frames over a serial port (or any pyserial URL) and
turns them into find/select/read. Device problems raise :class:`CardReaderError`,
whose text names the port and says what to do. Its bytes are personal data: it
has no raw-traffic log (drivers/traffic.py, ``NO_RAW_TRAFFIC``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import serial

from drivers.errors import DeviceError
from drivers.idcard import (
    COMMANDS,
    FIND_CARD,
    READ_TEXT_PHOTO,
    RESET_SAM,
    SAM_ID,
    SELECT_CARD,
    SW3_FOUND,
    SW3_NO_CARD,
    SW3_OK,
    TEXT_LEN,
    BadFrame,
    CardText,
    Frame,
    FrameParser,
    encode_command,
    parse_text,
    sw3_words,
)
from drivers.types import SERIAL_ERRORS

log = logging.getLogger(__name__)


class CardReaderError(DeviceError):
    """The reader did not answer, answered garbage, or refused with an SW3 code."""

    def __init__(self, message: str, *, sw3: int | None = None) -> None:
        super().__init__(message)
        self.sw3 = sw3


class Port(Protocol):
    """What the reader needs of a serial port (pyserial's ``Serial``)."""

    timeout: float | None

    def write(self, data: bytes, /) -> int | None: ...
    def read(self, size: int = 1, /) -> bytes: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...
    @property
    def in_waiting(self) -> int: ...


def open_serial(port: str, baudrate: int) -> Port:
    p: Port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.02)
    return p


@dataclass(frozen=True, slots=True)
class RawRead:
    """The read reply: text and the (WLT-compressed) photo. Both are personal data."""

    text: bytes = field(repr=False)
    photo: bytes = field(repr=False)


class IdCardReader:
    """One reader on a serial port. Thread-safe; opens lazily, reopens after a loss."""

    def __init__(self, port: str, baudrate: int = 115200, *, timeout_s: float = 2.0,
                 opener: Callable[[str, int], Port] = open_serial) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self._opener = opener
        self._dev: Port | None = None
        self._lock = threading.Lock()
        self.retries = 0  # frames re-asked after a bad LEN/CHK (IDCARD.md)

    @property
    def where(self) -> str:
        return f"ID-card reader on {self.port}"

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                dev.close()

    def _open(self) -> Port:
        if self._dev is None:
            try:
                self._dev = self._opener(self.port, self.baudrate)
            except (OSError, serial.SerialException, ValueError) as e:
                msg = str(e).splitlines()[-1] if str(e) else type(e).__name__
                hint = ("add the agent's user to the dialout group" if "ermission" in msg
                        else "check the USB cable and [id_reader] port")
                raise CardReaderError(f"{self.where}: cannot open ({msg}) — {hint}") from None
        return self._dev

    def transact(self, command: tuple[int, int], data: bytes = b"",
                 timeout_s: float | None = None) -> Frame:
        """Send one command, return its reply frame; a bad frame is asked again once."""
        name = COMMANDS.get(command, f"{command[0]:02X} {command[1]:02X}")
        with self._lock:
            dev = self._open()
            last = ""
            for attempt in range(2):
                try:
                    reply = self._exchange(dev, encode_command(*command, data),
                                           timeout_s or self.timeout_s)
                except SERIAL_ERRORS as e:
                    self._drop()
                    raise CardReaderError(f"{self.where}: connection lost ({e}) — check the "
                                          "USB cable") from None
                if isinstance(reply, Frame):
                    return reply
                last = reply.reason if reply is not None else "no answer"
                if reply is None:
                    break  # silence is not retried: the reader is slow or gone
                self.retries += 1
                log.info("%s: %s: bad reply (%s)%s", self.where, name, last,
                         ", asking again" if attempt == 0 else "")
            raise CardReaderError(f"{self.where}: {name}: {last} — check the cable; if it "
                                  "persists, power-cycle the reader")

    def _exchange(self, dev: Port, data: bytes, timeout_s: float) -> Frame | BadFrame | None:
        dev.reset_input_buffer()  # a late answer to an earlier command is not this one's
        dev.write(data)
        parser = FrameParser()
        deadline = time.monotonic() + timeout_s
        bad: BadFrame | None = None
        while time.monotonic() < deadline:
            chunk = dev.read(max(1, dev.in_waiting))
            if not chunk:
                continue
            for item in parser.feed(chunk):
                if isinstance(item, Frame):
                    return item
                bad = item
            if bad is not None and not parser.buf:
                return bad
        return bad

    def _check(self, f: Frame, ok: set[int], what: str) -> Frame:
        if f.sw3 not in ok:
            raise CardReaderError(f"{self.where}: {what}: {sw3_words(f.sw3)} "
                                  f"(SW3 {f.sw3:02X})", sw3=f.sw3)
        return f

    # -- the protocol's operations

    def reset_sam(self) -> None:
        self._check(self.transact(RESET_SAM), {SW3_OK}, "reset SAM")

    def sam_id(self) -> str:
        f = self._check(self.transact(SAM_ID), {SW3_OK}, "SAM id")
        return f.data.hex()

    def find(self) -> bool:
        """True when a card is on the reader (SW3 9F), False for none (80)."""
        f = self._check(self.transact(FIND_CARD), {SW3_FOUND, SW3_NO_CARD}, "find card")
        return f.sw3 == SW3_FOUND

    def select(self) -> None:
        self._check(self.transact(SELECT_CARD), {SW3_OK}, "select card")

    def read_raw(self) -> RawRead:
        f = self._check(self.transact(READ_TEXT_PHOTO), {SW3_OK}, "read card")
        d = f.data
        if len(d) < 4:
            raise CardReaderError(f"{self.where}: read card: reply too short")
        tl, pl = int.from_bytes(d[0:2], "big"), int.from_bytes(d[2:4], "big")
        head = 4
        if len(d) >= 6:
            # Readers with a fingerprint module add its length and 1024 bytes of
            # fingerprint after the photo (LEN 09 0A). The fingerprint is dropped
            # here: it is never needed and never kept.
            fl = int.from_bytes(d[4:6], "big")
            if 6 + tl + pl + fl == len(d) and 4 + tl + pl != len(d):
                head = 6
        if tl != TEXT_LEN or len(d) < head + tl + pl:
            raise CardReaderError(f"{self.where}: read card: lengths {tl}/{pl} do not match "
                                  "the reply — a bad read, place the card again")
        return RawRead(d[head:head + tl], d[head + tl:head + tl + pl])

    def read_card(self) -> CardText:
        """Select and read the card found; raises CardDataError for a card not usable."""
        self.select()
        raw = self.read_raw()
        return parse_text(raw.text)  # the photo stays here and is dropped
