"""The queue's records as the rest of the agent sees them: plain frozen values.

The queue engine (core/queue.py) makes them from the store's rows; services and
the API read them and never write them back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    day: str
    service: str
    number: str
    priority: bool
    priority_reason: str | None
    channel: str
    status: str
    issued_at: float
    called_at: float | None
    finished_at: float | None
    window: str | None
    calls: int
    offline: bool
    print_state: str
    print_detail: str
    id_hash: str | None
    masked_name: str | None = None  # "张*" on a real-name ticket, never the full name

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Ticket:
        return cls(ticket_id=r["ticket_id"], day=r["day"], service=r["service"],
                   number=r["number"], priority=bool(r["priority"]),
                   priority_reason=r["priority_reason"], channel=r["channel"],
                   status=r["status"], issued_at=r["issued_at"], called_at=r["called_at"],
                   finished_at=r["finished_at"], window=r["window"], calls=r["calls"],
                   offline=bool(r["offline"]), print_state=r["print_state"],
                   print_detail=r["print_detail"], id_hash=r["id_hash"],
                   masked_name=r["masked_name"])


@dataclass(frozen=True, slots=True)
class Issued:
    ticket: Ticket
    waiting_ahead: int
    est_wait_s: int


@dataclass(frozen=True, slots=True)
class Call:
    call_id: str
    window: str
    kind: str  # call | recall
    ts: float
    ticket: Ticket | None  # None: nobody was waiting, or (central) a ticket of another kiosk
    # The number and service called: the ticket's, or what the central said for a
    # ticket this agent does not hold.
    number: str | None = None
    service: str | None = None

    @property
    def called(self) -> str | None:
        return self.ticket.number if self.ticket is not None else self.number

    @property
    def called_service(self) -> str | None:
        return self.ticket.service if self.ticket is not None else self.service

    def body(self, iso: Callable[[float], str]) -> dict[str, Any]:
        """The one shape of a call, wherever it came from: the live ``call`` event,
        the ``call.shown`` outbox event and the API's ``CallOut``."""
        t = self.ticket
        return {"call_id": self.call_id, "ticket": self.called,
                "ticket_id": t.ticket_id if t else None, "window": self.window,
                "service": self.called_service, "kind": self.kind, "ts": iso(self.ts)}


@dataclass(frozen=True, slots=True)
class ServiceState:
    open_now: bool
    reason: str | None
    reason_en: str | None
    opens_at: datetime | None
    issued_today: int
    waiting: int
    est_wait_s: int


@dataclass(frozen=True, slots=True)
class WindowState:
    id: str
    paused: bool
    serving: Ticket | None
    services: list[str]


@dataclass(frozen=True, slots=True)
class Evaluation:
    evaluation_id: str
    window: str
    ticket: str | None
    level: str
    follow_up: bool
    reason: str | None = None


def format_number(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:03d}"
