"""The ticket printer: our ESC/POS bytes over a transport that only moves bytes.

Every byte comes from :mod:`drivers.escpos_codec`; the links that move them are
in :mod:`drivers.printer_links`. We do not use python-escpos' ``paper_status()``:
3.1 says "paper OK" when nothing answers (PRINTER.md, "Status").

Device problems never raise: every call returns a health. A port that vanished
(USB cable pulled, printer switched off) turns into a FAULT with a sentence for
people, and the next call tries to open it again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Literal

from drivers.escpos_codec import (
    Receipt,
    build_receipt,
    build_test_page,
    build_ticket,
    status_query,
)
from drivers.escpos_status import PrinterStatus, is_status_reply
from drivers.printer_config import PrinterConfig
from drivers.printer_links import _LINKS as _LINKS  # hall_agent.agent wraps them
from drivers.printer_links import Link, LinkFactory
from drivers.printer_links import PrinterNotFound as PrinterNotFound
from drivers.types import SERIAL_ERRORS, DeviceHealth, Health, PrintResult, TicketPrint

log = logging.getLogger(__name__)

#: PRINTER.md "Status (DLE EOT)": the agent asks 04 (paper sensors) and 02
#: (cover, paper end, error) before each ticket; 03 tells a cutter jam and an
#: unrecoverable error from the generic error bit; 01 adds "offline", which
#: printers report when a button or the firmware took them offline (and, as a
#: consequence, while the cover is open or the paper is out).
STATUS_QUERIES: tuple[int, ...] = (4, 2, 3, 1)

#: Each query is asked until two answers in a row agree, at most this often: one
#: stray byte shaped like an answer (1 in 16 random bytes is) must not decide
#: whether a ticket counts as printed (issue 16). Disagreement is a fault.
MAX_ASKS = 4


def status_budget_s(cfg: PrinterConfig) -> float:
    """The most all status queries of one check may take, in seconds.

    Every query is asked at least twice (:data:`MAX_ASKS`); a printer that
    answers slowly gets this long in all, then it is a fault.
    """
    return len(STATUS_QUERIES) * cfg.status_timeout_ms / 1000


def _quiet_gap_s(cfg: PrinterConfig) -> float:
    """How long the line must stay silent before an answer counts as complete.

    An answer is one byte; noise around it arrives within a few character times.
    """
    char_s = 10 / cfg.baudrate if cfg.transport == "serial" else 0.0
    return max(0.015, 8 * char_s)

# Everything a transport throws when the device misbehaves or goes away.
# termios.error is not an OSError; pyserial lets it out of tcflush on a dead tty.
_DEVICE_ERRORS: tuple[type[BaseException], ...] = (*SERIAL_ERRORS, EOFError)


def describe(cfg: PrinterConfig) -> str:
    """Where the printer is, as people say it: ``printer on /dev/ttyUSB0``."""
    if cfg.transport == "network":
        return f"printer at {cfg.host}:{cfg.tcp_port}"
    if cfg.transport == "usb":
        return f"printer on USB {cfg.usb_vendor or 0:04x}:{cfg.usb_product or 0:04x}"
    if cfg.transport == "file":
        return f"printer file {cfg.port}"
    return f"printer on {cfg.port}"


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and isinstance(e.errno, int) and e.errno > 0:
        return os.strerror(e.errno).lower()
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


class TicketPrinter:
    """One ticket printer. Thread-safe; never raises for device problems.

    ``link_factory`` swaps the transport (tests, other backends), in the way
    gpiozero swaps pin factories.
    """

    def __init__(self, cfg: PrinterConfig, *, link_factory: LinkFactory | None = None) -> None:
        self.cfg = cfg
        self.where = describe(cfg)
        self._factory = link_factory or _LINKS[cfg.transport]
        self._link: Link | None = None
        self._lock = threading.Lock()
        self._health = DeviceHealth(Health.FAULT, f"{self.where}: not checked yet")

    # -- public

    @property
    def health(self) -> DeviceHealth:
        """The last known health; does not touch the device."""
        return self._health

    @property
    def is_open(self) -> bool:
        return self._link is not None

    def open(self) -> DeviceHealth:
        """Open the port and ask for the status; returns the health it found."""
        return self.status().health(timeout_ms=self.cfg.status_timeout_ms)

    def refresh(self) -> DeviceHealth:
        """Ask the printer now (the agent's health poll); reopens a lost port."""
        return self.status().health(timeout_ms=self.cfg.status_timeout_ms)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def status(self) -> PrinterStatus:
        """Ask the printer (PRINTER.md "Status"); opens the port first if needed."""
        with self._lock:
            st = self._status_locked()
            self._health = st.health(timeout_ms=self.cfg.status_timeout_ms)
            return st

    def print_ticket(self, t: TicketPrint) -> PrintResult:
        """Print one ticket unless the printer reports a fault (then it is not sent)."""
        c = self.cfg
        data = build_ticket(t, qr_module=c.qr_module, feed_dots=c.feed_dots, model=c.model,
                            charset=c.charset)
        return self._print(data, f"ticket {t.number}")

    def test_print(self) -> PrintResult:
        c = self.cfg
        data = build_test_page(where=self.where, qr_module=c.qr_module, feed_dots=c.feed_dots,
                               model=c.model, charset=c.charset)
        return self._print(data, "test page")

    def print_receipt(self, r: Receipt) -> PrintResult:
        """A self-service result or booking slip (escpos_codec.build_receipt)."""
        c = self.cfg
        data = build_receipt(r, qr_module=c.qr_module, feed_dots=c.feed_dots, model=c.model,
                             charset=c.charset)
        return self._print(data, f"receipt {r.title}")

    # -- inside the lock

    def _open_locked(self) -> Link | str:
        """The open link, or a sentence saying why the port cannot be opened."""
        if self._link is not None:
            return self._link
        cfg = self.cfg
        if cfg.transport in ("serial", "file") and cfg.port and "://" not in cfg.port:
            path = cfg.port
            if cfg.transport == "serial" and not os.path.exists(path):
                return f"{self.where}: not found — check the USB cable"
            if cfg.transport == "file" and not os.path.isdir(os.path.dirname(path) or "."):
                return f"{self.where}: its directory does not exist — check printer.port"
        try:
            self._link = self._factory(cfg, self._write_timeout(600))
        except Exception as e:  # any failure to open is a device problem, not a crash
            return self._open_failure(e)
        log.info("%s: opened", self.where)
        return self._link

    def _open_failure(self, e: BaseException) -> str:
        cause = e.__cause__ or e.__context__ or e
        if isinstance(cause, PermissionError) or "ermission denied" in str(e):
            if self.cfg.transport == "usb":
                return f"{self.where}: permission denied — install the udev rule for the printer"
            return (f"{self.where}: permission denied — add the agent's user to the "
                    "dialout group")
        if self.cfg.transport == "network":
            return (f"{self.where}: cannot connect ({_reason(cause)}) — check the network "
                    "cable and the printer's address")
        if self.cfg.transport == "usb":
            if isinstance(e, RuntimeError | ImportError):
                return f"{self.where}: USB support (pyusb) is not installed"
            return f"{self.where}: not found — check the USB cable"
        if self.cfg.transport == "file":
            return f"{self.where}: cannot open ({_reason(cause)})"
        if not os.path.exists(self.cfg.port or ""):
            return f"{self.where}: not found — check the USB cable"
        return f"{self.where}: cannot open ({_reason(e)}) — check the USB cable"

    def _lost(self, e: BaseException) -> str:
        """Close a link that failed in use; the next call reopens it."""
        self._drop()
        msg = f"{self.where}: connection lost ({_reason(e)}) — check the USB cable"
        if self.cfg.transport == "network":
            msg = (f"{self.where}: connection lost ({_reason(e)}) — check the network cable "
                   "and the printer's power")
        log.warning("%s", msg)
        return msg

    def _drop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            try:
                link.close()
            except _DEVICE_ERRORS as e:
                log.debug("%s: closing: %s", self.where, e)

    def _write_timeout(self, nbytes: int) -> float:
        # Twice the time the bytes take on the wire (10 bits a byte), at least
        # the status timeout: a printer holding flow control forever is a fault.
        wire = nbytes * 10 / self.cfg.baudrate if self.cfg.transport == "serial" else 0.0
        return max(self.cfg.status_timeout_ms / 1000, 2 * wire)

    def _status_locked(self) -> PrinterStatus:
        link = self._open_locked()
        if isinstance(link, str):
            return PrinterStatus(problem=link)
        if not link.has_status:
            return PrinterStatus(no_status_channel=True)
        timeout = self.cfg.status_timeout_ms / 1000
        # A printer that answers slowly cannot hold the kiosk for long.
        deadline = time.monotonic() + status_budget_s(self.cfg)
        replies: dict[int, int | None] = {}
        unconfirmed = False
        try:
            if not self._drain(link, timeout):
                return PrinterStatus(unconfirmed=True)
            for n in STATUS_QUERIES:
                answer = self._confirmed(link, n, timeout, deadline)
                if answer == "unsure":
                    unconfirmed = True
                    continue
                replies[n] = answer
                if answer is None:
                    break
        except _DEVICE_ERRORS as e:
            return PrinterStatus(problem=self._lost(e))
        return PrinterStatus.from_replies(replies, unconfirmed=unconfirmed)

    def _drain(self, link: Link, timeout_s: float) -> bool:
        """Throw away what is on the line until it is quiet; False if it never is.

        A late answer to an earlier query or a burst of noise would otherwise be
        read as the next answer. (pyserial also flushes once when it opens a port.)
        """
        link.flush_input()
        gap = _quiet_gap_s(self.cfg)
        deadline = time.monotonic() + timeout_s
        dropped = 0
        while time.monotonic() < deadline:
            got = link.read(gap)
            if not got:
                if dropped:
                    log.debug("%s: drained %d stray byte(s)", self.where, dropped)
                return True
            dropped += len(got)
        log.warning("%s: the line never went quiet (%d stray bytes) — check the cable",
                    self.where, dropped)
        return False

    def _confirmed(self, link: Link, n: int, timeout_s: float,
                   deadline: float) -> int | Literal["unsure"] | None:
        """Ask ``10 04 n`` until two answers in a row agree.

        None: the printer did not answer at all (one timeout is enough: a silent
        printer is not asked again). "unsure": the answers kept disagreeing, or
        time ran out before two agreed.
        """
        last: int | None = None
        heard = False
        for _ in range(MAX_ASKS):
            wait = min(timeout_s, deadline - time.monotonic())
            if wait <= 0:
                break
            got = self._ask(link, n, wait)
            if got is None:
                if not heard:
                    log.info("%s: no answer to DLE EOT %d within %.0f ms", self.where, n,
                             wait * 1000)
                    return None
                continue
            heard = True
            if got == last:
                return got
            last = got
        log.warning("%s: answers to DLE EOT %d did not agree — line noise?", self.where, n)
        return "unsure"

    def _ask(self, link: Link, n: int, timeout_s: float) -> int | None:
        """Send ``10 04 n`` once; the answer, or None if nothing shaped like one came.

        The answer is the last byte shaped like one (``0xx1xx10``) before the line
        goes quiet: a printer sends exactly one, after whatever noise preceded it.
        """
        link.flush_input()
        link.write(status_query(n), self._write_timeout(3))
        deadline = time.monotonic() + timeout_s
        gap = _quiet_gap_s(self.cfg)
        answer: int | None = None
        seen = 0
        quiet_until: float | None = None
        while True:
            now = time.monotonic()
            end = deadline if quiet_until is None else min(deadline, quiet_until)
            if now >= end:
                break
            got = link.read(min(end - now, 0.1))
            if not got:
                continue
            seen += len(got)
            for byte in got:
                if is_status_reply(byte):  # PRINTER.md: an answer always matches 0xx1xx10
                    answer = byte
            if answer is not None:
                # Noise alone does not close the window: a slow printer's answer
                # may come well after a stray byte.
                quiet_until = time.monotonic() + gap
        if seen > 1:
            log.debug("%s: %d byte(s) on the line for one answer to DLE EOT %d", self.where,
                      seen, n)
        return answer

    def _print(self, data: bytes, what: str) -> PrintResult:
        with self._lock:
            st = self._status_locked()
            health = st.health(timeout_ms=self.cfg.status_timeout_ms)
            self._health = health
            link = self._link
            if health.status is Health.FAULT or link is None:
                log.warning("%s: %s not printed: %s", self.where, what, health.detail)
                return PrintResult(False, health.detail, health)
            try:
                link.write(data, self._write_timeout(len(data)))
            except _DEVICE_ERRORS as e:
                health = DeviceHealth(Health.FAULT, self._lost(e))
                self._health = health
                return PrintResult(False, health.detail, health)
            detail = health.detail if health.status is not Health.OK else ""
            return PrintResult(True, detail, health, wire_bytes=len(data))
