"""The serial line every simulator plugs in where a real device's port would be.

A :class:`PtyDevice` owns a pseudo-terminal: a host opens :attr:`PtyDevice.port`
(``/dev/pts/N``) as it would ``/dev/ttyUSB0``, and the simulator plays the device
on the master side. Subclasses get bytes from the host in :meth:`PtyDevice.on_bytes`
(on the reader thread), answer with :meth:`PtyDevice._send`, and stop their own
threads in :meth:`PtyDevice._on_close`. Raw traffic goes to its own log: ``<<<``
for bytes the device received, ``>>>`` for bytes it sent.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
import tty
from pathlib import Path
from types import TracebackType
from typing import IO, Self

log = logging.getLogger(__name__)


class PtyDevice:
    """One end of a pty, a traffic log, and (once started) a thread reading the host."""

    def __init__(self, *, name: str, traffic_log: Path | str | None = None) -> None:
        self._name = name
        self._log: IO[str] | None = (open(traffic_log, "a", encoding="utf-8")  # noqa: SIM115
                                     if traffic_log is not None else None)
        # The reader thread and callers of inject() both write to it.
        self._log_lock = threading.Lock()
        self._master, self._slave = os.openpty()
        # Raw: no echo, no CR/LF translation, no signals from 0x03 — bytes are bytes.
        tty.setraw(self._slave)
        # Keeping our own slave fd open means a host that closes and reopens the
        # port does not make the master read EIO in between.
        self.port = os.ttyname(self._slave)
        # select() cannot be interrupted by an Event: close() writes here to wake it.
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._closed = False

    def _start_reading(self) -> None:
        """Start feeding :meth:`on_bytes`; call it last in ``__init__``, once the
        state it touches exists."""
        self._reader = threading.Thread(target=self._read_loop, name=self._name, daemon=True)
        self._reader.start()

    def on_bytes(self, data: bytes) -> None:
        """Bytes the host wrote (already in the traffic log); runs on the reader thread."""

    def _on_close(self) -> None:
        """Stop the subclass's own threads: the reader has stopped, the pty is still open."""

    # -- the cable

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def unplug(self) -> None:
        """The USB cable is pulled: the port disappears under the host (its reads and
        writes fail), while the device keeps its state. :meth:`replug` brings it back."""
        if self._closed or not self.plugged:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._reader is not None:
            self._reader.join(timeout=2)
        master, slave = self._master, self._slave
        self._master = self._slave = -1
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        os.read(self._wake_r, 64)  # the wake-up byte, or the next reader spins on it

    def replug(self) -> None:
        """Plugged back in: a new pty, as a USB serial device comes back under a new
        ``/dev`` name (a stable udev-style link follows it: ``SimHall``)."""
        if self._closed or self.plugged:
            return
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop.clear()
        if self._reader is not None:  # a device that listens (not a scanner)
            self._start_reading()

    def close(self) -> None:
        """Stop the threads and close the pty: the port disappears, like a pulled cable."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._reader is not None:
            self._reader.join(timeout=2)
        self._on_close()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the line

    def _traffic(self, arrow: str, data: bytes, *, elide: bool = False) -> None:
        if self._log is None or not data:
            return
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        text = f"{data[:12].hex(' ')} … ({len(data)} bytes)" if elide else data.hex(" ")
        with self._log_lock:
            self._log.write(f"{stamp} {arrow} {text}\n")
            self._log.flush()

    def _send(self, data: bytes, *, elide: bool = False) -> None:
        """Bytes to the host; ``elide`` logs only their start (a card's text, say)."""
        self._traffic(">>>", data, elide=elide)
        if self._master < 0:
            return  # unplugged: the bytes go nowhere
        try:
            os.write(self._master, data)
        except OSError as e:
            # A device talking to a host that went away is not the simulator's fault.
            log.debug("%s on %s: write: %s", self._name, self.port, e)

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.5)
            except (OSError, ValueError):  # closed under us
                return
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError as e:
                if e.errno == errno.EIO:  # only with no slave fd open, and we hold one
                    time.sleep(0.05)
                    continue
                return
            if not data:
                continue
            self._traffic("<<<", data)
            self.on_bytes(data)
