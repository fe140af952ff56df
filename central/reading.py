"""Reading what the agents send, liberally (MQTT.md, "Reading what the other side sends").

The central's half of hall_agent/link/reading.py, with its converters: identifiers
may come as JSON numbers, ``ts`` as epoch seconds, ticket numbers in lower case,
unknown fields anywhere, an event type this central does not know (stored and
acknowledged, not acted on). A message is rejected only when a field needed to act
is unusable: an event's ``msg_id`` (no ack is possible) and ``type``; a request's
``req_id``; a number request's ``ticket_id`` and ``service``; a state's ``online``.
Pure: no I/O, no logging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hall_agent.link.reading import (
    Rejected,
    _Bad,
    _Fields,
    _Need,
    _number,
    _object,
    as_bool,
    as_id,
    as_service,
    as_text,
    as_ticket,
    as_ts,
    as_window,
)

__all__ = ["Event", "NumberAsk", "Rejected", "StateMsg", "read_event", "read_request",
           "read_state", "ticket_fields"]

_HASH = re.compile(r"^[0-9a-f]{64}$")
_TYPE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def as_seq64(v: Any) -> int:
    f = _number(v)
    if f is None and isinstance(v, str) and v.strip().isdigit():
        f = float(v.strip())
    if f is None or not f.is_integer() or not 1 <= f < 2**63:
        raise _Bad(f"not a sequence number ({v!r:.40})")
    return int(f)


def as_hash(v: Any) -> str:
    if isinstance(v, str) and _HASH.match(s := v.strip().lower()):
        return s
    raise _Bad("not an HMAC-SHA256 in hex")


def as_type(v: Any) -> str:
    if isinstance(v, str) and _TYPE.match(s := v.strip().lower()):
        return s
    raise _Bad(f"not an event type ({v!r:.40})")


def epoch(ts: str | None) -> float | None:
    """An ISO 8601 time (as :func:`as_ts` gives it) as epoch seconds."""
    if ts is None:
        return None
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Event:
    msg_id: str
    seq: int | None
    type: str
    offline: bool
    ts: str | None
    data: dict[str, Any]
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NumberAsk:
    req_id: str
    ticket_id: str
    service: str
    priority: bool
    id_hash: str | None
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StateMsg:
    online: bool
    boot: int | None


def read_event(payload: bytes | bytearray) -> Event | Rejected:
    obj = _object(payload)
    if isinstance(obj, Rejected):
        return obj
    dropped: list[str] = []
    f = _Fields(obj, dropped)
    try:
        msg_id = f.need("msg_id", as_id)
        etype = f.need("type", as_type)
    except _Need as e:
        return Rejected(e.field, e.why)
    seq = f.opt("seq", as_seq64)
    data = f.sub("data") or {}
    return Event(msg_id, seq, etype, bool(f.opt("offline", as_bool, False)),
                 f.opt("ts", as_ts), data, tuple(dropped))


def ticket_fields(data: dict[str, Any]) -> dict[str, Any] | Rejected:
    """``ticket.issued`` data, for merging it into the queue: ``ticket_id``, ``number``
    and ``service`` are needed; ``priority``, ``issued_at``, ``channel``, ``id_hash``
    are used when readable."""
    dropped: list[str] = []
    f = _Fields(data, dropped, "data")
    try:
        out = {"ticket_id": f.need("ticket_id", as_id), "number": f.need("number", as_ticket),
               "service": f.need("service", as_service)}
    except _Need as e:
        return Rejected(e.field, e.why)
    out["priority"] = bool(f.opt("priority", as_bool, False))
    out["issued_at"] = epoch(f.opt("issued_at", as_ts))
    out["channel"] = str(f.opt("channel", as_text, "kiosk"))[:16] or "kiosk"
    out["id_hash"] = f.opt("id_hash", as_hash)
    out["dropped"] = dropped
    return out


def staff_key(data: dict[str, Any]) -> tuple[str, str, str | None] | Rejected:
    """``staff.key`` data (docs/mqtt-extensions.md): window, action, and the staff id
    when the evaluator knows it."""
    f = _Fields(data, [], "data")
    try:
        window = f.need("window", as_window)
        action = f.need("action", as_text).strip().lower()
    except _Need as e:
        return Rejected(e.field, e.why)
    staff = f.opt("staff", as_text)
    return window, action, (staff.strip()[:64] or None) if staff else None


def read_request(payload: bytes | bytearray) -> tuple[str, str | None, dict[str, Any]] | Rejected:
    """``(type, req_id, object)``: the type (default ``ticket.number``) and the req_id
    when readable, so even a request that cannot be used can be answered."""
    obj = _object(payload)
    if isinstance(obj, Rejected):
        return obj
    f = _Fields(obj, [])
    rtype = f.opt("type", as_type, "ticket.number")
    req_id = f.opt("req_id", as_id)
    return rtype, req_id, obj


def read_number_request(obj: dict[str, Any]) -> NumberAsk | Rejected:
    dropped: list[str] = []
    f = _Fields(obj, dropped)
    try:
        req_id = f.need("req_id", as_id)
        ticket_id = f.need("ticket_id", as_id)
        service = f.need("service", as_service)
    except _Need as e:
        return Rejected(e.field, e.why)
    return NumberAsk(req_id, ticket_id, service, bool(f.opt("priority", as_bool, False)),
                     f.opt("id_hash", as_hash), tuple(dropped))


def read_state(payload: bytes | bytearray) -> StateMsg | Rejected | None:
    """None for an empty payload (a retained state cleared: "nothing known")."""
    if not payload:
        return None
    obj = _object(payload)
    if isinstance(obj, Rejected):
        return obj
    f = _Fields(obj, [])
    try:
        online = f.need("online", as_bool)
    except _Need as e:
        return Rejected(e.field, e.why)
    boot = f.opt("boot", as_seq64)
    return StateMsg(online, boot)
