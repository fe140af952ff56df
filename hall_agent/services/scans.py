"""Scan routing (SCANNER.md): what a scanned code means, and what the agent does with it.

In order: refused (longer than 512 characters, or with control characters) →
an appointment code (``[scanner] appointment_pattern``: check-in) → a ticket's
own QR (``ticket_pattern``: its status) → not recognised. The outcome goes to the
kiosk as an SSE ``scan`` event. A scan is never logged in full (it may be anyone's
code); the log says its kind and length.
"""

from __future__ import annotations

import hmac
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.scanner_config import ScannerConfig
from drivers.types import DeviceHealth
from hall_agent.contract.ticket_token import ticket_token
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.services.ports import Events, HealthSink

log = logging.getLogger("hall_agent.services.scans")


@dataclass(frozen=True)
class ScanNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    bus: Events
    queue: QueueEngine
    health: HealthSink
    checkin: Callable[..., dict[str, Any]]
    secret: bytes = b""  # the hall secret: a QR's {token} (contract/ticket_token.py)

MAX_SCAN = 512
DEVICE = "scanner"


def refusal(text: str) -> str | None:
    """Why a scan is refused, or None when it may be matched."""
    if len(text) > MAX_SCAN:
        return "too_long"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") or c == "\ufffd" for c in text):
        return "control_chars"
    if not text:
        return "empty"
    return None


class ScanRouter:
    def __init__(self, needs: ScanNeeds, cfg: ScannerConfig) -> None:
        self.n = needs
        self.cfg = cfg
        self.appointment = re.compile(cfg.appointment_pattern)
        self.ticket = re.compile(cfg.ticket_pattern)
        self.device: Any = None

    def classify(self, text: str) -> tuple[str, str | None]:
        """(kind, key): refused/appointment/ticket/unknown, with the code or ticket id."""
        why = refusal(text)
        if why is not None:
            return "refused", why
        m = self.appointment.search(text)
        if m:
            return "appointment", m["code"].upper()
        m = self.ticket.search(text)
        if m:
            found = m.groupdict()
            if found.get("ticket_id"):
                return "ticket", found["ticket_id"]
            if found.get("token"):
                return "ticket", self._by_token(found["token"]) or "unknown"
        return "unknown", None

    def _by_token(self, token: str) -> str | None:
        """Today's ticket whose page token this is (a kiosk issues a few hundred a day)."""
        day = self.n.queue.today()
        for (tid,) in self.n.queue.store.query("SELECT ticket_id FROM tickets WHERE day = ?",
                                               (day,)):
            if hmac.compare_digest(ticket_token(self.n.secret, tid, day), token):
                return str(tid)
        return None

    def route(self, text: str) -> dict[str, Any]:
        """Act on one scan and publish its outcome; returns the ``scan`` event data."""
        kind, key = self.classify(text)
        log.info("scan: %s (%d characters)", kind, len(text))
        ev: dict[str, Any] = {"kind": kind, "ok": kind in ("appointment", "ticket")}
        if kind == "refused":
            ev.update(reason=key, message="无法识别该二维码", message_en="This code cannot be read")
        elif kind == "unknown":
            ev.update(message="不是本大厅的预约码或号票二维码",
                      message_en="Not a booking code or ticket of this hall")
        elif kind == "appointment":
            assert key is not None
            try:
                ev.update(self.n.checkin(code=key, channel="scan"))
            except Refused as e:
                ev.update(ok=False, error=e.code, message=str(e), message_en=e.message_en)
        else:
            assert key is not None
            try:
                t = self.n.queue.ticket(key)
            except Refused:
                ev.update(ok=False, error="unknown_ticket", message="没有找到这张号票",
                          message_en="No such ticket here")
            else:
                ev["ticket"] = {"ticket_id": t.ticket_id, "number": t.number,
                                "service": t.service, "status": t.status, "window": t.window,
                                "waiting_ahead": self.n.queue.waiting_ahead(t),
                                "day": t.day}
        self.n.bus.publish("scan", ev)
        return ev

    # ------------------------------------------------------------------ the device

    def start(self) -> None:
        from drivers.scanner import EvdevScanner, SerialScanner

        def health(h: DeviceHealth) -> None:
            self.n.health.set_health(DEVICE, h)

        def on_scan(text: str) -> None:
            try:
                self.route(text)
            except Exception:
                log.exception("scan routing failed")

        if self.cfg.device:
            self.device = EvdevScanner(self.cfg.device, on_scan, grab=self.cfg.grab,
                                       on_health=health)
        else:
            assert self.cfg.port
            self.device = SerialScanner(self.cfg.port, self.cfg.baudrate, on_scan,
                                        on_health=health)
        self.device.start()

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
