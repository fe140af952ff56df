"""Reading what the central sends, liberally (MQTT.md, "Reading what the other side
sends").

The models of hall_agent/contract/mqtt.py say what is *sent* (and the JSON Schemas
describe that); a central written from the page alone may still send a ``ts`` as epoch
seconds, a count as ``537.5`` or ``"540"``, an identifier as a JSON number, ``kind`` in
capitals, or keys we do not know at any depth. This module turns such a payload into the
strict model, or into a :class:`Rejected` naming the one field the agent needed in
order to act and could not use. An unusable informational field is dropped and named in
:attr:`Read.dropped`, and the message is used. Pure: no I/O, no logging.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from hall_agent.contract.levels import LEVELS
from hall_agent.contract.mqtt import (
    TICKET_PATTERN,
    WINDOW_PATTERN,
    Ack,
    AppointmentInfo,
    CentralCall,
    CentralQueue,
    CentralState,
    Command,
    Lease,
    NumberReply,
    Satisfaction,
    SlotInfo,
)

M = TypeVar("M", bound=BaseModel)

EPOCH_MS_ABOVE = 1e11  # MQTT.md: a numeric ts above 10^11 is in milliseconds
TICKET = re.compile(TICKET_PATTERN)
WINDOW = re.compile(WINDOW_PATTERN)
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SERVICE = re.compile(r"^[A-Z]{1,2}$")
NUMERIC = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")
COMMANDS = frozenset({"reprint", "test_print", "rebirth", "sync", "set_mode", "reload"})


@dataclass(frozen=True, slots=True)
class Read(Generic[M]):
    """A message the agent can act on; ``dropped`` names each unusable informational
    field that was left out ("est_wait_s: not a count (-3)")."""

    msg: M
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the agent cannot act on: ``field`` is the needed field (dotted path,
    or ``payload``). ``cmd_id`` is set for a command that must still be answered."""

    field: str
    why: str
    cmd_id: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.why}"


class _Bad(ValueError):
    """A value that cannot be read as what the field needs."""


class _Need(Exception):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field, self.why = field, why


# ------------------------------------------------------------------ values

def _number(v: Any) -> float | None:
    """A JSON number (never a bool, which Python counts as an int)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise _Bad(f"not true or false ({v!r:.40})")


def as_id(v: Any) -> str:
    """Identifiers are strings; a JSON number is read as its decimal string."""
    if isinstance(v, str):
        if v:
            return v
        raise _Bad("empty")
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return str(int(v)) if v.is_integer() else repr(v)
    raise _Bad(f"not an identifier ({v!r:.40})")


def as_count(v: Any) -> int:
    """Counts and durations: any non-negative JSON number (rounded) or numeric string."""
    f = _number(v)
    if f is None and isinstance(v, str) and NUMERIC.match(v.strip()):
        f = float(v.strip())
    if f is None or not math.isfinite(f) or f < 0:
        raise _Bad(f"not a count ({v!r:.40})")
    return round(f)


def as_ts(v: Any) -> str:
    """An ISO 8601 time with its offset (kept as sent), or epoch seconds (milliseconds
    above 10^11) as a JSON number, given back in ISO 8601 UTC."""
    if isinstance(v, str):
        try:
            when = datetime.fromisoformat(v.strip())
        except ValueError:
            raise _Bad(f"not an ISO 8601 time ({v!r:.40})") from None
        if when.tzinfo is None:
            raise _Bad(f"no UTC offset ({v!r:.40})")
        return v.strip()
    f = _number(v)
    if f is None or not math.isfinite(f) or f < 0:
        raise _Bad(f"not a time ({v!r:.40})")
    try:
        when = datetime.fromtimestamp(f / 1000 if f > EPOCH_MS_ABOVE else f, UTC)
    except (OverflowError, OSError, ValueError):
        raise _Bad(f"out of range ({v!r:.40})") from None
    return when.isoformat(timespec="milliseconds")


def as_ticket(v: Any) -> str:
    if isinstance(v, str) and TICKET.fullmatch(s := v.strip().upper()):
        return s
    raise _Bad(f"not a ticket number like A023 ({v!r:.40})")


def as_window(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = str(int(v))
    if isinstance(v, str) and WINDOW.fullmatch(s := v.strip()):
        return s
    raise _Bad(f"not a window id of 1-8 characters ({v!r:.40})")


def as_kind(v: Any) -> str:
    if isinstance(v, str) and (s := v.strip().lower()) in ("call", "recall"):
        return s
    raise _Bad(f"not call or recall ({v!r:.40})")


def as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if _number(v) is not None:
        return json.dumps(v)
    raise _Bad(f"not text ({v!r:.40})")


def as_service(v: Any) -> str:
    if isinstance(v, str) and SERVICE.match(s := v.strip().upper()):
        return s
    raise _Bad(f"not a service id like A ({v!r:.40})")


def as_day(v: Any) -> str:
    if isinstance(v, str) and DAY.match(s := v.strip()):
        return s
    raise _Bad(f"not a day like 2026-11-30 ({v!r:.40})")


def as_seq(v: Any) -> int:
    """A lease bound: a whole number 1–9999 (never rounded: a misread bound could
    issue a number twice)."""
    f = _number(v)
    if f is None and isinstance(v, str) and v.strip().isdigit():
        f = float(v.strip())
    if f is None or not f.is_integer() or not 1 <= f <= 9999:
        raise _Bad(f"not a whole number 1-9999 ({v!r:.40})")
    return int(f)


# ------------------------------------------------------------------ fields

class _Fields:
    """One JSON object being read; collects what was dropped."""

    def __init__(self, obj: dict[str, Any], dropped: list[str], where: str = "") -> None:
        self.obj, self.dropped, self.where = obj, dropped, where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def need(self, key: str, conv: Callable[[Any], Any]) -> Any:
        if self.obj.get(key) is None:
            raise _Need(self.path(key), "missing")
        try:
            return conv(self.obj[key])
        except _Bad as e:
            raise _Need(self.path(key), str(e)) from None

    def opt(self, key: str, conv: Callable[[Any], Any], default: Any = None) -> Any:
        if self.obj.get(key) is None:
            return default
        try:
            return conv(self.obj[key])
        except _Bad as e:
            self.dropped.append(f"{self.path(key)}: {e}")
            return default

    def sub(self, key: str) -> dict[str, Any] | None:
        """A nested object; anything else there is dropped."""
        v = self.obj.get(key)
        if v is None:
            return None
        if isinstance(v, dict):
            return v
        self.dropped.append(f"{self.path(key)}: not an object")
        return None


# ------------------------------------------------------------------ messages

def _state(f: _Fields) -> dict[str, Any]:
    return {"online": f.need("online", as_bool), "ts": f.opt("ts", as_ts)}


def _call(f: _Fields) -> dict[str, Any]:
    return {"call_id": f.need("call_id", as_id), "ticket": f.need("ticket", as_ticket),
            "window": f.need("window", as_window), "service": f.opt("service", as_text),
            "kind": f.opt("kind", as_kind, "call"), "ts": f.opt("ts", as_ts)}


def _model(f: _Fields, key: str, model: type[BaseModel], v: Any) -> Any | None:
    try:
        return model.model_validate(v)
    except ValidationError as e:
        first = e.errors()[0]
        f.dropped.append(f"{f.path(key)}: {'.'.join(str(x) for x in first['loc'])} "
                         f"{first['msg']}")
        return None


def _reply(f: _Fields) -> dict[str, Any]:
    out: dict[str, Any] = {"req_id": f.need("req_id", as_id), "ok": f.need("ok", as_bool)}
    if out["ok"] and f.obj.get("number") is not None:
        # Needed to act on an ok number reply; an appointment reply carries none.
        out["number"] = f.need("number", as_ticket)
    out.update(waiting_ahead=f.opt("waiting_ahead", as_count),
               est_wait_s=f.opt("est_wait_s", as_count), error=f.opt("error", as_text),
               error_code=f.opt("error_code", as_text))
    if (a := f.sub("appointment")) is not None:
        out["appointment"] = _model(f, "appointment", AppointmentInfo, a)
    slots = f.obj.get("slots")
    if isinstance(slots, list):
        out["slots"] = [s for i, v in enumerate(slots)
                        if (s := _slot(_Fields(v, f.dropped, f.path(f"slots.{i}"))
                                       if isinstance(v, dict) else None)) is not None]
    elif slots is not None:
        f.dropped.append("slots: not a list")
    return out


def _slot(f: _Fields | None) -> SlotInfo | None:
    if f is None:
        return None
    try:
        return SlotInfo(start=f.need("start", as_text), end=f.need("end", as_text),
                        free=f.need("free", as_count))
    except _Need as e:
        f.dropped.append(f"{e.field}: {e.why} (slot left out)")
    except ValidationError as e:
        f.dropped.append(f"{f.where}: {e.errors()[0]['msg']} (slot left out)")
    return None


def _ack(f: _Fields) -> dict[str, Any]:
    acks = f.need("acks", _as_list)
    ids = []
    for i, v in enumerate(acks):
        try:
            ids.append(as_id(v))
        except _Bad as e:
            f.dropped.append(f"acks.{i}: {e}")
    return {"acks": ids}


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    raise _Bad(f"not a list ({v!r:.40})")


def _lease(f: _Fields) -> dict[str, Any]:
    day, blocks = f.need("day", as_day), f.need("blocks", _as_list)
    out = []
    for i, v in enumerate(blocks):
        b = _Fields(v if isinstance(v, dict) else {}, f.dropped, f"blocks.{i}")
        try:
            out.append({"service": b.need("service", as_service),
                        "from": b.need("from", as_seq), "to": b.need("to", as_seq)})
        except _Need as e:
            # Fewer leased numbers is safe; a misread block could duplicate numbers.
            f.dropped.append(f"{e.field}: {e.why} (block left out)")
    return {"day": day, "blocks": out}


def _queue(f: _Fields) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for sid, v in (f.sub("services") or {}).items():
        s = _Fields(v if isinstance(v, dict) else {}, f.dropped, f"services.{sid}")
        try:
            services[sid] = {"waiting": s.need("waiting", as_count),
                             "est_wait_s": s.opt("est_wait_s", as_count, 0)}
        except _Need as e:
            f.dropped.append(f"{e.field}: {e.why}")
    windows: dict[str, Any] = {}
    for wid, v in (f.sub("windows") or {}).items():
        w = _Fields(v if isinstance(v, dict) else {}, f.dropped, f"windows.{wid}")
        try:
            windows[as_window(wid)] = {"open": w.need("open", as_bool),
                                       "serving": w.opt("serving", as_ticket)}
        except (_Need, _Bad) as e:
            f.dropped.append(f"{e.field}: {e.why}" if isinstance(e, _Need)
                             else f"windows.{wid}: {e}")
    return {"ts": f.opt("ts", as_ts), "services": services, "windows": windows}


def _satisfaction(f: _Fields) -> dict[str, Any]:
    day = f.need("day", as_day)
    windows: dict[str, dict[str, int]] = {}
    for wid, v in (f.sub("windows") or {}).items():
        if not isinstance(v, dict):
            f.dropped.append(f"windows.{wid}: not an object")
            continue
        w = _Fields(v, f.dropped, f"windows.{wid}")
        counts = {lv: w.opt(lv, as_count) for lv in LEVELS}  # other keys are ignored
        windows[wid] = {lv: n for lv, n in counts.items() if n is not None}
    return {"day": day, "windows": windows}


_READERS: dict[str, tuple[type[BaseModel], Callable[[_Fields], dict[str, Any]]]] = {
    "central_state": (CentralState, _state), "call": (CentralCall, _call),
    "reply": (NumberReply, _reply), "ack": (Ack, _ack), "lease": (Lease, _lease),
    "queue": (CentralQueue, _queue), "satisfaction": (Satisfaction, _satisfaction),
}
KINDS = (*_READERS, "cmd")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _object(payload: bytes | bytearray) -> dict[str, Any] | Rejected:
    try:
        obj = json.loads(bytes(payload).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rejected("payload", "not UTF-8 JSON")
    if not isinstance(obj, dict):
        return Rejected("payload", "not a JSON object")
    return obj


def read(kind: str, payload: bytes | bytearray) -> Read[Any] | Rejected:
    """Read one message of ``kind`` (a key of the reading table, or ``cmd``)."""
    if kind == "cmd":
        return read_cmd(payload)
    obj = _object(payload)
    if isinstance(obj, Rejected):
        return obj
    model, reader = _READERS[kind]
    dropped: list[str] = []
    try:
        fields = reader(_Fields(obj, dropped))
    except _Need as e:
        return Rejected(e.field, e.why)
    return _build(model, fields, dropped)


def _build(model: type[M], fields: dict[str, Any], dropped: list[str]) -> Read[M] | Rejected:
    try:
        return Read(model.model_validate(fields), tuple(dropped))
    except ValidationError as e:  # a reader let through what the model refuses: a bug here
        first = e.errors()[0]
        return Rejected(".".join(str(x) for x in first["loc"]) or "payload", first["msg"])


def read_cmd(payload: bytes | bytearray) -> Read[Command] | Rejected:
    """``A/cmd``: every command with a usable ``cmd_id`` is answered, so a rejection
    names it (``Rejected.cmd_id``) when the name or the args are what is wrong."""
    obj = _object(payload)
    if isinstance(obj, Rejected):
        return obj
    f = _Fields(obj, [])
    try:
        cmd_id = f.need("cmd_id", as_id)
    except _Need as e:
        return Rejected(e.field, e.why)
    name = obj.get("name")
    if name is None:
        return Rejected("name", "missing", cmd_id)
    if not isinstance(name, str) or name not in COMMANDS:
        return Rejected("name", f"unknown command {name if isinstance(name, str) else repr(name)}",
                        cmd_id)
    args = obj.get("args")
    if args is not None and not isinstance(args, dict):
        return Rejected("args", f"not an object ({args!r:.40})", cmd_id)
    return _build(Command, {"cmd_id": cmd_id, "name": name, "args": args or {}}, f.dropped)
