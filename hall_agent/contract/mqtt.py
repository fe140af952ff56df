"""★ MQTT payloads (docs/protocols/MQTT.md) as pydantic models, and the topic names.

Unknown fields are ignored (the contract says so, so a newer central can add
fields); a missing or ill-typed required field rejects the message. The JSON
Schemas in ``schemas/mqtt/`` are generated from these models
(``python -m hall_agent.contract.mqtt --write``) and a test keeps them in step.
Topic names are in hall_agent/contract/topics.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hall_agent.contract.levels import Level

DeviceStatus = Literal["ok", "degraded", "fault", "absent"]
EventType = Literal["ticket.issued", "ticket.printed", "ticket.print_failed", "ticket.reprinted",
                    "checkin.done", "evaluation.submitted", "call.shown", "door.opened",
                    "selfservice.used", "device.fault", "device.recovered",
                    # hall-edge extensions (docs/mqtt-extensions.md): a clerk's evaluator key
                    # in central mode; a number the central gave to a ticket never committed
                    "staff.key", "ticket.voided"]

ServiceId = Annotated[str, Field(pattern=r"^[A-Z]{1,2}$")]  # a catalogue id, the prefix
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]  # hall-local date
HhMm = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]  # hall-local time of day
# MQTT.md, "Reading what the other side sends": a ticket number is 1–2 capital letters
# and 1–4 digits (A7, A023, AB1234); a window id 1–8 characters, no control characters
# (5, 12-1, 5号).
TICKET_PATTERN = r"^[A-Z]{1,2}\d{1,4}$"
WINDOW_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,8}$"
IdHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # HMAC-SHA256 of an ID number, hex


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- agent → central

class AgentState(_Msg):
    online: bool
    boot: Annotated[int, Field(ge=0)]
    ts: str | None = None
    version: str | None = None
    mode: Literal["central", "offline", "standalone"] | None = None


class DeviceHealthMsg(_Msg):
    status: DeviceStatus
    detail: str = ""
    ts: str


class EventEnvelope(_Msg):
    v: Literal[1] = 1
    msg_id: str
    seq: Annotated[int, Field(ge=1, lt=2**63)]
    boot: int
    ts: str
    hall: str
    agent: str
    type: EventType
    offline: bool = False
    data: dict[str, Any]


class NumberRequest(_Msg):
    req_id: str
    type: Literal["ticket.number"] = "ticket.number"
    ticket_id: str
    service: ServiceId
    priority: bool = False
    ts: str
    # A real-name ticket (HMAC of the ID number, never the number): the central
    # enforces the per-person limit across every kiosk of the hall.
    id_hash: IdHash | None = None


class CheckinRequest(_Msg):
    """``A/request`` type ``appointment.checkin`` (docs/appointments.md): an appointment
    the agent does not know, checked in by its QR code or by the card holder's hash."""

    req_id: str
    type: Literal["appointment.checkin"] = "appointment.checkin"
    code: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{1,32}$")] = None
    id_hash: IdHash | None = None
    ts: str


class SlotsRequest(_Msg):
    """``A/request`` type ``appointment.slots`` (docs/appointments.md): the bookable slots
    of a service on a day, with what is still free across the whole hall."""

    req_id: str
    type: Literal["appointment.slots"] = "appointment.slots"
    service: ServiceId
    day: Day
    ts: str


class BookRequest(_Msg):
    """``A/request`` type ``appointment.book`` (docs/appointments.md): book a slot for the
    card holder; the central keeps the hall's one appointment list. ``appointment_id``
    (chosen by the agent) makes a repeated request answer the same booking."""

    req_id: str
    type: Literal["appointment.book"] = "appointment.book"
    appointment_id: str
    service: ServiceId
    day: Day
    start: HhMm
    id_hash: IdHash
    masked_name: str | None = None
    ts: str


AnyRequest = NumberRequest | CheckinRequest | SlotsRequest | BookRequest


class CmdResult(_Msg):
    cmd_id: str
    ok: bool
    detail: str = ""


# ---------------------------------------------------------------- central → agent

class NumberReply(_Msg):
    req_id: str
    ok: bool
    number: Annotated[str | None, Field(pattern=TICKET_PATTERN)] = None
    waiting_ahead: Annotated[int | None, Field(ge=0)] = None
    est_wait_s: Annotated[int | None, Field(ge=0)] = None
    error: str | None = None
    # appointment.* replies only
    error_code: str | None = None
    appointment: AppointmentInfo | None = None
    slots: list[SlotInfo] | None = None


class SlotInfo(_Msg):
    """A bookable slot in an ``appointment.slots`` reply."""

    start: HhMm
    end: HhMm
    free: Annotated[int, Field(ge=0)]


class AppointmentInfo(_Msg):
    """The appointment a check-in reply is about; only masked forms and the hash."""

    appointment_id: str
    code: str
    service: ServiceId
    day: Day
    slot_start: HhMm
    slot_end: HhMm
    masked_name: str | None = None
    id_hash: str | None = None


class Ack(_Msg):
    acks: list[str]


class LeaseBlock(_Msg):
    service: ServiceId
    from_: Annotated[int, Field(alias="from", ge=1, le=9999)]
    to: Annotated[int, Field(ge=1, le=9999)]

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Lease(_Msg):
    day: Day
    blocks: list[LeaseBlock]


class Command(_Msg):
    cmd_id: str
    name: Literal["reprint", "test_print", "rebirth", "sync", "set_mode", "reload"]
    args: dict[str, Any] = {}


class CentralState(_Msg):
    online: bool
    ts: str | None = None


class CentralCall(_Msg):
    call_id: str
    ticket: Annotated[str, Field(pattern=TICKET_PATTERN)]
    window: Annotated[str, Field(pattern=WINDOW_PATTERN)]
    service: str | None = None
    kind: Literal["call", "recall"] = "call"
    ts: str | None = None


class QueueService(_Msg):
    waiting: Annotated[int, Field(ge=0)]
    est_wait_s: Annotated[int, Field(ge=0)] = 0


class QueueWindow(_Msg):
    open: bool
    serving: str | None = None


class CentralQueue(_Msg):
    ts: str | None = None
    services: dict[str, QueueService] = {}
    windows: dict[str, QueueWindow] = {}


class Satisfaction(_Msg):
    day: str
    windows: dict[str, dict[Level, Annotated[int, Field(ge=0)]]]


SCHEMAS: dict[str, type[BaseModel]] = {
    "agent-state": AgentState, "agent-device": DeviceHealthMsg, "agent-event": EventEnvelope,
    "agent-request": NumberRequest, "agent-request-checkin": CheckinRequest,
    "agent-request-slots": SlotsRequest, "agent-request-book": BookRequest,
    "agent-cmd_result": CmdResult,
    "central-reply": NumberReply, "central-ack": Ack, "central-lease": Lease,
    "central-cmd": Command, "central-state": CentralState, "central-call": CentralCall,
    "central-queue": CentralQueue, "central-satisfaction": Satisfaction,
}
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "mqtt"


def schema_json(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(by_alias=True), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, model in SCHEMAS.items():
        p = directory / f"{name}.schema.json"
        p.write_text(schema_json(model), encoding="utf-8")
        out.append(p)
    return out


if __name__ == "__main__":
    if "--write" in sys.argv:
        for p in write_schemas():
            print(p)
