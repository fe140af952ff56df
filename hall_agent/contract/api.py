"""Request and response bodies of the ★ local API; FastAPI derives /openapi.json from them.

The kiosk and hallctl import these same models, so a field renamed here is
renamed for every client at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hall_agent.contract.levels import Level

HealthStatus = Literal["ok", "degraded", "fault", "absent"]
Mode = Literal["standalone", "central", "offline"]
Channel = Literal["kiosk", "button", "wechat", "appointment", "staff", "api"]
PriorityReason = Literal["elderly", "disabled", "pregnant", "military", "other"]

ServiceId = Annotated[str, Field(pattern=r"^[A-Z]{1,2}$", examples=["A"],
                                 description="service id = ticket prefix")]
WindowId = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,4}$", examples=["5"])]


CardToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                 description="token of a card read in this flow")]


class _Req(BaseModel):
    # strict: 0 is not false and "5" is not 5 — a client that sends the wrong type is
    # told so instead of being guessed at.
    model_config = ConfigDict(extra="forbid", strict=True)


class _Resp(BaseModel):
    model_config = ConfigDict(extra="ignore")


# The ``error`` codes of a 503 whose cause is the agent's own storage (a full, read-only
# or failing card): it answers, but can keep nothing, so the kiosk goes out of service.
STORAGE_FAULTS = frozenset({"storage_full", "storage_readonly", "storage_io"})


class ErrorBody(_Resp):
    """Every 4xx/5xx answer: what was wrong, with which field, and what to do."""

    error: str = Field(description="stable machine-readable code, e.g. service_closed")
    message: str = Field(description="for people, in Chinese, says what to do")
    message_en: str = ""
    field: str | None = Field(default=None, description="the request field at fault")


class DeviceState(_Resp):
    status: HealthStatus
    detail: str = ""


class HealthOut(_Resp):
    status: Literal["ok", "degraded", "fault"]
    mode: Mode
    devices: dict[str, DeviceState]
    hall: str = ""
    hall_name: str = ""
    agent: str = ""
    version: str = ""
    time: str = Field(default="", description="agent's local time, ISO 8601")


class ServiceOut(_Resp):
    id: str
    name: str
    name_en: str
    category: str
    category_en: str
    guide: str
    guide_en: str = ""
    hours: str
    promise: str = ""
    promise_en: str = ""
    open_now: bool
    closed_reason: str | None = Field(default=None, description="why no tickets now, Chinese")
    closed_reason_en: str | None = None
    opens_at: str | None = Field(default=None, description="next opening, ISO 8601, if closed")
    waiting: int = 0
    est_wait_s: int = 0
    daily_limit: int | None = None
    issued_today: int = 0
    requires_id: bool = Field(default=False, description="a ticket needs an ID card")


class ServicesOut(_Resp):
    hall: str
    hall_name: str
    hall_name_en: str = ""
    services: list[ServiceOut]


class TicketIn(_Req):
    service: ServiceId
    priority: bool = False
    priority_reason: PriorityReason | None = None
    channel: Channel = "kiosk"
    card: CardToken | None = Field(default=None, description=(
        "token of an ID card read in this flow (SSE card event): a real-name ticket"))
    lang: Literal["zh", "en"] = Field(default="zh", description=(
        "the language the citizen took it in: en prints the service and the key lines "
        "in English too"))


class TicketOut(_Resp):
    ticket_id: str
    number: str
    service: str
    waiting_ahead: int
    est_wait_s: int
    offline: bool
    printed: bool
    service_name: str = ""
    service_name_en: str = ""
    priority: bool = False
    issued_at: str = ""
    status_url: str = ""
    print_detail: str = Field(default="", description="why it was not printed, for people")
    masked_name: str | None = Field(default=None, description="张* on a real-name ticket")


class TicketInfo(_Resp):
    """A ticket as hallctl and the status page see it."""

    ticket_id: str
    number: str
    service: str
    status: Literal["waiting", "called", "done", "no_show", "cancelled"]
    priority: bool
    channel: str
    issued_at: str
    called_at: str | None = None
    finished_at: str | None = None
    window: str | None = None
    calls: int = 0
    printed: bool = False
    offline: bool = False
    waiting_ahead: int | None = None


class TicketsOut(_Resp):
    tickets: list[TicketInfo]


class ServiceQueue(_Resp):
    name: str
    name_en: str
    waiting: int
    est_wait_s: int


class WindowQueue(_Resp):
    open: bool
    paused: bool
    serving: str | None = None
    services: list[str] = []


class QueueOut(_Resp):
    ts: str
    services: dict[str, ServiceQueue]
    windows: dict[str, WindowQueue]
    recent_calls: list[CallOut] = []


class CallIn(_Req):
    window: WindowId
    kind: Literal["call", "recall"] = "call"


class CallOut(_Resp):
    call_id: str
    ticket: str | None = Field(description="ticket number called, null when none waiting")
    ticket_id: str | None = None
    window: str
    service: str | None = None
    kind: Literal["call", "recall"]
    ts: str
    finished: str | None = Field(default=None, description=(
        "POST /v1/calls: the ticket whose visit this call ended (it was being served)"))


class WindowActionIn(_Req):
    action: Literal["pause", "resume", "no_show", "finish"]


class WindowOut(_Resp):
    window: str
    paused: bool
    serving: str | None = None
    ended: str | None = Field(default=None, description=(
        "the ticket whose visit this action ended (pause and finish: done; no_show)"))


class TransferIn(_Req):
    service: ServiceId


class EvaluationIn(_Req):
    window: WindowId
    level: Level
    ticket: str | None = Field(default=None, pattern=r"^[A-Z]{1,2}\d{3,4}$",
                               description="the rated ticket; default: the window's last one")
    reason: Annotated[str | None, Field(max_length=40, description=(
        "why basic or worse: an id of GET /v1/evaluations/reasons; required from the "
        "kiosk for basic and the levels below"))] = None


class EvaluationOut(_Resp):
    """One rating per visit: a second one of the same ticket is refused with 409
    ``already_rated``."""

    evaluation_id: str
    window: str
    ticket: str | None
    level: Level
    follow_up: bool
    reason: str | None = None


class ReasonOut(_Resp):
    id: str
    text: str
    text_en: str


class ReasonsOut(_Resp):
    reasons: list[ReasonOut]


class PrinterStatusOut(_Resp):
    status: HealthStatus
    detail: str
    flags: dict[str, bool] = {}


class BoardTestIn(_Req):
    seconds: Annotated[int, Field(ge=1, le=600, description="how long, in seconds")] = 15


class BoardShowIn(_Req):
    text: Annotated[str, Field(min_length=1, max_length=200,
                               description="text for the boards; `|` separates lines")]
    seconds: Annotated[int, Field(ge=1, le=3600, description="how long, in seconds")] = 15
    board: str | None = Field(default=None, description="one board (e.g. board-hall); "
                                                        "default every board")


class BoardsOut(_Resp):
    boards: dict[str, str] = {}


class BusOut(_Resp):
    boards: list[dict[str, Any]]
    evaluators: list[dict[str, Any]]


class PrintOut(_Resp):
    printed: bool
    detail: str


# --------------------------------------------------------------------------- ID cards,
# scans, appointments, the 24-hour area (personal data: masked forms and hashes only)


class CardWantIn(_Req):
    seconds: Annotated[float, Field(ge=1, le=300, description="poll fast this long, in s")] = 60


class CheckinIn(_Req):
    code: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9]{1,32}$",
                                      description="appointment code (its QR)")] = None
    card: CardToken | None = None


class AppointmentOut(_Resp):
    appointment_id: str
    code: str
    service: str
    day: str
    slot_start: str
    slot_end: str
    masked_name: str | None = None
    status: str


class CheckinOut(_Resp):
    appointment: AppointmentOut
    ticket: TicketOut


class ScanIn(_Req):
    text: Annotated[str, Field(max_length=4096, description="what the scanner read")]


class ScanOut(_Resp):
    kind: Literal["refused", "appointment", "ticket", "unknown"]
    ok: bool
    reason: str | None = None
    error: str | None = None
    message: str = ""
    message_en: str = ""
    appointment: AppointmentOut | None = None
    ticket: dict[str, Any] | None = None


class ImportIn(_Req):
    appointments: list[dict[str, Any]] | None = Field(default=None, description=(
        "records: code, service, date, start, end (or slot), id_number or id_hash, name"))
    csv: str | None = Field(default=None, description="the same as CSV with a header line")


class ImportOut(_Resp):
    added: int
    updated: int
    errors: list[str]


class SlotOut(_Resp):
    start: str
    end: str
    free: int


class SlotsOut(_Resp):
    service: str
    day: str
    slots: list[SlotOut]


class BookIn(_Req):
    card: CardToken
    service: ServiceId
    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    start: Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]


class BookOut(_Resp):
    appointment: AppointmentOut
    printed: bool
    print_detail: str = ""
    service_name: str = ""


class SelfServiceItem(_Resp):
    id: str
    name: str
    name_en: str
    kind: Literal["query", "print"]


class SelfServiceOut(_Resp):
    mode: Literal["staffed", "selfservice"]
    configured: bool
    staffed_hours: str = ""
    next_change: str | None = None
    door: bool = False
    bookable: list[str] = []
    services: list[SelfServiceItem] = []


class SelfServiceRunIn(_Req):
    card: CardToken
    print: bool = True


class SelfServiceResultOut(_Resp):
    service: str
    title: str
    title_en: str = ""
    lines: list[list[str]]
    note: str = ""
    printed: bool
    print_detail: str = ""
    masked_name: str = ""
    masked_id: str = ""


QueueOut.model_rebuild()



# ---------------------------------------------------------------------------- operations

class OutboxEvent(_Resp):
    seq: int
    msg_id: str
    ts: str
    type: str
    offline: bool
    sent: bool = Field(description="sent to the broker at least once")
    acked: bool = Field(description="acknowledged by the central (safe to forget)")
    data: dict[str, Any]


class OutboxOut(_Resp):
    """The MQTT outbox (MQTT.md): events the central has not acknowledged yet."""

    mqtt: bool = Field(description="false in standalone mode: nothing is relayed")
    pending: int
    oldest_ts: str | None = None
    events: list[OutboxEvent]


class EventLogOut(_Resp):
    """The durable event log, oldest first, after ``after_seq``."""

    events: list[OutboxEvent]
    last_seq: int


class TrafficState(_Resp):
    enabled: bool
    path: str


class LoggingIn(_Req):
    level: Literal["debug", "info", "warning", "error"] | None = None
    traffic: dict[str, bool] = Field(
        default={}, description="raw-traffic log per device, e.g. {\"printer\": true}")


class LoggingOut(_Resp):
    level: str
    traffic: dict[str, TrafficState]
