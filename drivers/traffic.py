"""Raw device traffic: ``>>>`` sent, ``<<<`` received, one rotated file per device.

As OctoPrint's serial log: ``HH:MM:SS.mmm >>> 1b 40  (note)`` (hall time), in
``<data_dir>/logs/traffic-<device>.log``, rotated (3 × 1 MB). Every log is off
until a technician switches it on at run time (``hallctl log traffic printer on``,
``POST /v1/logging``): a busy RS-485 bus writes ~10 KB/s, too much for an SD card
all day. The printer's link and each RS-485 bus port (``bus_device(port)``) have
one. The ID-card reader has none at all: its bytes are a citizen's identity
(DESIGN.md, Personal data).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import re
import threading
import time
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

log = logging.getLogger("drivers.traffic")

LOG_DIR = "logs"
TRAFFIC_LOG_BYTES, TRAFFIC_LOG_BACKUPS = 1_000_000, 3

# The hall's clock ([hall] timezone, set by hall-agent at start): a technician reads the
# stamps against the hall's day, whatever the machine's own zone (None: the machine's).
_TZ: tzinfo | None = None


def set_timezone(tz: tzinfo | None) -> None:
    global _TZ
    _TZ = tz


#: Devices whose raw bytes must never be written anywhere (DESIGN.md, Personal data).
NO_RAW_TRAFFIC = frozenset({"id_reader", "idcard"})


def bus_device(port: str) -> str:
    """The raw-traffic device name of an RS-485 bus port: ``/dev/ttyUSB1`` → ``bus-ttyUSB1``."""
    tail = port.split("://", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return "bus-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "port")


class RawTraffic:
    """One device's raw byte log, switchable at run time; rotated; never raises."""

    def __init__(self, device: str, path: Path, *, max_bytes: int = TRAFFIC_LOG_BYTES,
                 backups: int = TRAFFIC_LOG_BACKUPS) -> None:
        self.device = device
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._enabled = False
        self._lock = threading.Lock()
        self._handler: logging.handlers.RotatingFileHandler | None = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set(self, on: bool) -> None:
        with self._lock:
            if on and self._handler is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handler = logging.handlers.RotatingFileHandler(
                    self.path, maxBytes=self.max_bytes, backupCount=self.backups,
                    encoding="ascii")
                self._handler.setFormatter(logging.Formatter("%(message)s"))
            elif not on and self._handler is not None:
                self._handler.close()
                self._handler = None
            self._enabled = on
        log.info(
            "raw traffic log of %s %s (%s)", self.device, "on" if on else "off", self.path)

    def write(self, arrow: str, data: bytes, note: str = "") -> None:
        if not self._enabled or not data:
            return
        now = time.time()
        stamp = datetime.fromtimestamp(now, _TZ).strftime("%H:%M:%S") + \
            f".{int(now * 1000) % 1000:03d}"
        text = f"{stamp} {arrow} {data.hex(' ')}{f'  ({note})' if note else ''}"
        with self._lock:
            h = self._handler
            if h is None:
                return
            # The traffic log is a help, never a reason to fail a print or stop a bus.
            with contextlib.suppress(Exception):
                h.emit(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))

    def close(self) -> None:
        with self._lock:
            if self._handler is not None:
                self._handler.close()
                self._handler = None
            self._enabled = False


class TrafficLogs:
    """Every switchable raw-traffic log of one agent, by device name."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / LOG_DIR
        self._logs: dict[str, RawTraffic] = {}
        self._lock = threading.Lock()

    def get(self, device: str) -> RawTraffic:
        if device in NO_RAW_TRAFFIC:
            raise ValueError(f"{device}: raw traffic is never logged (it carries personal data)")
        with self._lock:
            if device not in self._logs:
                self._logs[device] = RawTraffic(device, self.dir / f"traffic-{device}.log")
            return self._logs[device]

    def known(self) -> dict[str, RawTraffic]:
        with self._lock:
            return dict(self._logs)

    def close(self) -> None:
        for t in self.known().values():
            t.close()


class TrafficLink:
    """Wraps a printer link (:class:`drivers.printer.Link`) and logs what crosses it."""

    def __init__(self, inner: Any, traffic: RawTraffic) -> None:
        self._inner = inner
        self._traffic = traffic
        self.has_status: bool = inner.has_status

    def write(self, data: bytes, timeout_s: float) -> None:
        self._traffic.write(">>>", data)
        self._inner.write(data, timeout_s)

    def read(self, timeout_s: float) -> bytes:
        got: bytes = self._inner.read(timeout_s)
        self._traffic.write("<<<", got)
        return got

    def flush_input(self) -> None:
        self._inner.flush_input()

    def close(self) -> None:
        self._inner.close()
