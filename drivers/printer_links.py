"""The ticket printer's links: transports that only move bytes (drivers/printer.py).

Serial (pyserial), network (a TCP socket) and file links are a few lines each;
USB goes through python-escpos' ``Usb`` (pyusb), imported only when a USB
printer is configured: python-escpos pulls in Pillow, qrcode, python-barcode and
PyYAML (~8 MB in the agent), none of which the byte-moving needs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

import serial

from drivers.errors import DeviceError
from drivers.printer_config import PrinterConfig

# How often a read loop wakes to check its deadline, in seconds.
_POLL_S = 0.02


class PrinterNotFound(DeviceError):
    """The printer's port or address could not be opened (the message says why)."""


def _escpos_errors() -> tuple[type[BaseException], ...]:
    """python-escpos' own errors, where its USB link is in use."""
    from escpos.exceptions import Error

    return (Error,)


class Link(Protocol):
    """A printer connection: bytes out, status bytes in."""

    has_status: bool

    def write(self, data: bytes, timeout_s: float) -> None: ...

    def read(self, timeout_s: float) -> bytes:
        """Whatever arrives within ``timeout_s`` (b"" if nothing)."""
        ...

    def flush_input(self) -> None: ...

    def close(self) -> None: ...


class _SerialLink:
    has_status = True

    def __init__(self, cfg: PrinterConfig, write_timeout_s: float) -> None:
        port = cfg.port or ""
        try:
            # pyserial URL handlers (socket://, spy://) for tests and printer servers.
            # 8N1 with DSR/DTR flow control, as python-escpos opened it before.
            self._dev: serial.Serial = serial.serial_for_url(
                port, baudrate=cfg.baudrate, timeout=_POLL_S, dsrdtr="://" not in port,
                write_timeout=write_timeout_s)
        except (ValueError, serial.SerialException) as e:
            raise PrinterNotFound(f"Unable to open serial printer on {port}:\n{e}") from e

    def write(self, data: bytes, timeout_s: float) -> None:
        self._dev.write_timeout = timeout_s
        self._dev.write(data)
        self._dev.flush()

    def read(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        while True:
            # Never wait past the caller's deadline: the quiet gap after an answer
            # is shorter than the poll.
            self._dev.timeout = max(0.001, min(_POLL_S, deadline - time.monotonic()))
            got: bytes = self._dev.read(max(1, self._dev.in_waiting))
            if got or time.monotonic() >= deadline:
                return got

    def flush_input(self) -> None:
        self._dev.reset_input_buffer()

    def close(self) -> None:
        self._dev.close()


class _NetworkLink:
    has_status = True

    def __init__(self, cfg: PrinterConfig, write_timeout_s: float) -> None:
        try:
            self._sock = socket.create_connection((cfg.host or "", cfg.tcp_port),
                                                  timeout=write_timeout_s)
        except OSError as e:
            raise PrinterNotFound(f"Could not open socket for {cfg.host}:\n{e}") from e

    def write(self, data: bytes, timeout_s: float) -> None:
        self._sock.settimeout(timeout_s)
        self._sock.sendall(data)

    def read(self, timeout_s: float) -> bytes:
        self._sock.settimeout(max(timeout_s, 0.001))
        try:
            got = self._sock.recv(16)
        except TimeoutError:
            return b""
        if not got:
            raise ConnectionResetError("the printer closed the connection")
        return got

    def flush_input(self) -> None:
        self._sock.setblocking(False)
        try:
            while self._sock.recv(256):
                pass
            raise ConnectionResetError("the printer closed the connection")
        except BlockingIOError:
            pass
        finally:
            self._sock.setblocking(True)

    def close(self) -> None:
        self._sock.close()


class _UsbLink:
    has_status = True

    def __init__(self, cfg: PrinterConfig, write_timeout_s: float) -> None:
        from escpos.printer import Usb

        if not Usb.is_usable():
            # Checked first: a half-built Usb object complains again from __del__.
            raise ImportError("pyusb is not installed")
        self._errors = _escpos_errors()
        self._p: Any = Usb(idVendor=cfg.usb_vendor, idProduct=cfg.usb_product,
                           timeout=int(write_timeout_s * 1000))
        try:
            self._p.open(raise_not_found=True)
        except self._errors as e:
            raise PrinterNotFound(str(e)) from e

    def write(self, data: bytes, timeout_s: float) -> None:
        self._p.timeout = max(1, int(timeout_s * 1000))
        try:
            self._p._raw(data)
        except self._errors as e:
            raise DeviceError(str(e)) from e

    def read(self, timeout_s: float) -> bytes:
        import usb.core

        try:
            return bytes(self._p.device.read(self._p.in_ep, 16, max(1, int(timeout_s * 1000))))
        except usb.core.USBTimeoutError:
            return b""

    def flush_input(self) -> None:
        while self.read(0.001):
            pass

    def close(self) -> None:
        self._p.close()


class _FileLink:
    """A spool or debug file: write-only, so there is no status to ask."""

    has_status = False

    def __init__(self, cfg: PrinterConfig, write_timeout_s: float) -> None:
        # Appended, never truncated: the driver reopens it after every fault.
        self._f = open(cfg.port or "", "ab")  # noqa: SIM115 - closed in close()

    def write(self, data: bytes, timeout_s: float) -> None:
        self._f.write(data)
        self._f.flush()

    def read(self, timeout_s: float) -> bytes:
        return b""

    def flush_input(self) -> None:
        pass

    def close(self) -> None:
        self._f.close()


LinkFactory = Callable[[PrinterConfig, float], Link]

_LINKS: dict[str, LinkFactory] = {
    "serial": _SerialLink, "network": _NetworkLink, "usb": _UsbLink, "file": _FileLink,
}
