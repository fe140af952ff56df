"""What the desk (central/desk.py) answers: plain frozen values, each with ``as_dict()``
(JSON-ready: times as ISO 8601 strings with the hall's offset, durations in seconds).

These are the web side's view models; they never hold an ID number or a name (a
ticket's ``masked_name`` is not carried at all).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Channel = Literal["console", "evaluator", "api"]
CHANNELS: tuple[str, ...] = ("console", "evaluator", "api")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a staff id (the console login, ``evaluator@5`` for a window's keys)
    and the channel the action came through."""

    staff: str
    channel: Channel

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel {self.channel!r}: one of {', '.join(CHANNELS)}")
        if not self.staff or len(self.staff) > 64:
            raise ValueError("staff: 1 to 64 characters")


@dataclass(frozen=True, slots=True)
class Serving:
    ticket_id: str
    number: str
    service: str
    priority: bool
    called_at: str          # ISO 8601
    recalls: int            # recalls of this call so far
    last_call_at: str       # the last call or recall, ISO 8601


@dataclass(frozen=True, slots=True)
class Waiting:
    ticket_id: str
    number: str
    service: str
    priority: bool
    issued_at: str
    waited_s: int           # seconds since it was issued
    offline: bool           # numbered from a kiosk's lease
    first: bool             # transferred "to the front"
    for_window: str | None  # transferred to one window (only it calls this ticket)


@dataclass(frozen=True, slots=True)
class Parked:
    ticket_id: str
    number: str
    service: str
    parked_at: str


@dataclass(frozen=True, slots=True)
class Tally:
    """Today's work of one window."""

    called: int
    done: int
    no_show: int
    transferred: int
    parked: int
    recalls: int
    avg_service_s: int | None  # mean of today's finished cases, None before the first


@dataclass(frozen=True, slots=True)
class WindowView:
    window: str
    name: str
    services: list[str]
    paused: bool
    pause_reason: str | None
    serving: Serving | None
    next: str | None             # the number call_next would call now (interleave applied)
    waiting: list[Waiting]       # in call order (front first); at most 200
    waiting_total: int
    parked: list[Parked]
    tally: Tally

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HallCall:
    call_id: str
    ticket: str
    window: str
    service: str | None
    kind: str               # call | recall
    recall: bool
    ts: str


@dataclass(frozen=True, slots=True)
class HallWindow:
    window: str
    name: str
    paused: bool
    pause_reason: str | None
    serving: str | None     # number
    service: str | None


@dataclass(frozen=True, slots=True)
class HallService:
    service: str
    name: str
    name_en: str
    open_now: bool
    waiting: int
    est_wait_s: int


@dataclass(frozen=True, slots=True)
class HallView:
    ts: str
    day: str
    calls: list[HallCall]                      # latest first, at most 10
    windows: list[HallWindow]
    services: list[HallService]
    satisfaction: dict[str, dict[str, int]]    # window -> level -> count, today
    notice: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TicketState = Literal["waiting", "called", "parked", "done", "no_show", "cancelled"]


@dataclass(frozen=True, slots=True)
class TicketStatus:
    ticket_id: str
    number: str
    service: str
    service_name: str
    service_name_en: str
    state: str                   # TicketState
    ahead: int                   # people before it in its queue (0 unless waiting)
    est_wait_s: int
    window: str | None           # the window that called it (called, parked, done)
    called_at: str | None
    issued_at: str
    day: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: str
    day: str
    window: str | None
    staff: str
    channel: str
    action: str
    ticket_id: str | None
    number: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
