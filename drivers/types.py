"""Types shared by the drivers and the agent: device health, what a ticket says."""

from __future__ import annotations

import os
import termios
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

import serial

# What a serial line raises when its device misbehaves or goes away. termios.error is
# not an OSError: pyserial lets it out of tcflush/tcdrain on a tty whose USB device
# was pulled, and a handler that misses it never reopens the port.
SERIAL_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error,
                                                  serial.SerialException)

# A device whose port name is gone (unplugged) is looked for this often: looking costs
# nothing, and it is back in use within a second of the replug. A port that is there
# but fails (busy, no permission, no answer) backs off instead.
PORT_ABSENT_RETRY_S = 0.5


def port_absent(port: str) -> bool:
    """True when ``port`` names nothing (a pulled USB device); a pyserial URL never is."""
    return "://" not in port and not os.path.exists(port)


class Health(StrEnum):
    """Health of one device, as the local API and ``A/device/{device}`` report it."""

    OK = "ok"
    DEGRADED = "degraded"  # works, but staff should act (paper near end)
    FAULT = "fault"  # does not work (paper end, cover open, no reply, unplugged)
    ABSENT = "absent"  # not configured, or not present at all

    @property
    def rank(self) -> int:
        return {"ok": 0, "absent": 0, "degraded": 1, "fault": 2}[self.value]


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    status: Health
    detail: str = ""

    @staticmethod
    def worst(items: list[DeviceHealth]) -> Health:
        ranked = [h.status for h in items if h.status is not Health.ABSENT]
        if not ranked:
            return Health.OK
        return max(ranked, key=lambda h: h.rank)


@dataclass(frozen=True, slots=True)
class TicketPrint:
    """Everything printed on one queue ticket (PRINTER.md, "A ticket")."""

    hall_name: str
    service_name: str
    number: str  # "A023"
    waiting_ahead: int
    est_wait_s: int
    issued_at: datetime  # aware, in the hall's time zone
    qr_url: str
    notice: str
    offline: bool = False  # numbered from a lease: say so in small print
    priority: bool = False
    masked_name: str | None = None  # "张*" on real-name tickets, never the full name
    # "en": taken on the kiosk in English; the service and the key lines are printed in
    # English too (the Chinese stays: it is what the staff and the boards read)
    lang: Literal["zh", "en"] = "zh"
    service_name_en: str = ""


@dataclass(frozen=True, slots=True)
class PrintResult:
    printed: bool
    detail: str  # for people: "paper end — load a roll" / "" when fine
    health: DeviceHealth
    wire_bytes: int = 0
