"""``A/request`` answered on ``A/reply``: ``ticket.number`` (MQTT.md, Numbering) and the
appointment extensions (docs/appointments.md). Another type gets
``{"ok": false, "error": "unsupported"}``, as MQTT.md allows."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from central.bus import Bus
from central.config import CentralConfig
from central.desk import Desk
from central.ledger import Ledger
from central.reading import NumberAsk, Rejected, read_number_request, read_request
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import AppointmentsConfig
from hall_agent.contract.mqtt import AppointmentInfo, BookRequest, CheckinRequest, SlotsRequest
from hall_agent.core.personal import Person
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import Store
from hall_agent.services.appointments import Appointment, AppointmentBook


class Host(Protocol):
    """What the requests need of the service (central/service.py ``HallCentral``)."""

    cfg: CentralConfig
    catalog: Catalog
    tz: ZoneInfo
    store: Store
    engine: QueueEngine
    ledger: Ledger
    desk: Desk
    bus: Bus
    requests_answered: int
    requests_ignored: int

    def fault_request(self, rtype: str) -> str: ...
    def fault_delay_s(self) -> float: ...
    def reply(self, agent: str, body: dict[str, Any]) -> None: ...
    def now_iso(self) -> str: ...
    def _malformed(self, topic: str, why: Rejected) -> None: ...

log = logging.getLogger("central.requests")

KNOWN = ("ticket.number", "appointment.checkin", "appointment.slots", "appointment.book")


def _info(a: Appointment) -> dict[str, Any]:
    """An appointment as a reply carries it (masked forms and the hash only)."""
    return AppointmentInfo(appointment_id=a.appointment_id, code=a.code, service=a.service,
                           day=a.day, slot_start=a.slot_start, slot_end=a.slot_end,
                           masked_name=a.masked_name, id_hash=a.id_hash).model_dump()


class Requests:
    def __init__(self, central: Host, secret: bytes) -> None:
        self.c = central
        rules = central.cfg.appointments or AppointmentsConfig(
            bookable=[s.id for s in central.catalog.services])
        self.book = AppointmentBook(central.store, central.catalog, rules, central.tz, secret)
        self._timers: list[threading.Timer] = []

    def cancel_timers(self) -> None:
        for t in self._timers:
            t.cancel()

    def dispatch(self, agent: str, payload: bytes | bytearray) -> None:
        head = read_request(payload)
        if isinstance(head, Rejected):
            self.c._malformed(f"agent/{agent}/request", head)
            return
        rtype, req_id, obj = head
        gate = self.c.fault_request(rtype)
        if gate == "ignore":
            self.c.requests_ignored += 1
            return
        if gate == "unsupported" or rtype not in KNOWN:
            if req_id is not None:
                self.c.reply(agent, {"req_id": req_id, "ok": False, "error": "unsupported"})
            return
        try:
            if rtype == "ticket.number":
                ask = read_number_request(obj)
                if isinstance(ask, Rejected):
                    self.c._malformed(f"agent/{agent}/request", ask)
                    if req_id is not None:  # say what is wrong: the agent stops waiting
                        self.c.reply(agent, {"req_id": req_id, "ok": False,
                                             "error": f"unusable request: {ask}"})
                    return
                delay = self.c.fault_delay_s()
                if delay > 0:
                    timer = threading.Timer(delay, self.number, (agent, ask))
                    timer.daemon = True
                    self._timers.append(timer)
                    timer.start()
                else:
                    self.number(agent, ask)
            elif rtype == "appointment.checkin":
                self._checkin(agent, CheckinRequest.model_validate(obj))
            elif rtype == "appointment.slots":
                self._slots(agent, SlotsRequest.model_validate(obj))
            else:
                self._book(agent, BookRequest.model_validate(obj))
        except ValidationError as e:
            self.c._malformed(f"agent/{agent}/request",
                              Rejected(".".join(map(str, e.errors()[0]["loc"])) or "payload",
                                       e.errors()[0]["msg"]))

    def number(self, agent: str, ask: NumberAsk) -> None:
        """Numbering keyed by ``ticket_id``: a repeat gets the number it got before."""
        c = self.c
        with c.store.tx() as db:
            known = db.execute("SELECT number, status FROM tickets WHERE ticket_id = ?",
                               (ask.ticket_id,)).fetchone()
            try:
                if c.ledger.is_voided(ask.ticket_id):  # the void came first
                    raise Refused("ticket voided by the agent", code="voided")
                if known is not None:
                    number = known["number"]
                    ahead = c.desk.rules.ahead(db, ask.ticket_id) if known["status"] == \
                        "waiting" else 0
                    est = c.engine.estimate_wait(ask.service, ahead, db)
                else:
                    issued = c.engine.issue(ask.service, priority=ask.priority,
                                            ticket_id=ask.ticket_id, channel="kiosk",
                                            id_hash=ask.id_hash)
                    number = issued.ticket.number
                    ahead, est = issued.waiting_ahead, issued.est_wait_s
                body: dict[str, Any] = {"req_id": ask.req_id, "ok": True, "number": number,
                                        "waiting_ahead": ahead, "est_wait_s": est}
            except Refused as e:
                body = {"req_id": ask.req_id, "ok": False, "error": str(e)}
            c.requests_answered += 1
        c.reply(agent, body)
        if body["ok"] and known is None:
            c.bus.publish("queue", {"ts": c.now_iso()})

    def _slots(self, agent: str, req: SlotsRequest) -> None:
        body: dict[str, Any] = {"req_id": req.req_id, "ok": True,
                                "slots": self.book.slots(req.service, req.day)}
        if req.service not in self.book.cfg.bookable:
            body = {"req_id": req.req_id, "ok": False, "error_code": "not_bookable",
                    "error": f"{req.service} 不接受预约"}
        self.c.requests_answered += 1
        self.c.reply(agent, body)

    def _book(self, agent: str, req: BookRequest) -> None:
        """One appointment list for the hall: capacity per slot and one booking per
        person, service and day hold across every kiosk; a repeated ``appointment_id``
        answers the booking already made."""
        holder = Person(id_hash=req.id_hash, masked_id="", masked_name=req.masked_name or "",
                        card_type="", expired=False, id_number="", name="")
        try:
            a = self.book.book(holder, req.service, req.day, req.start,
                               appointment_id=req.appointment_id)
        except Refused as e:
            body: dict[str, Any] = {"req_id": req.req_id, "ok": False, "error": str(e),
                                    "error_code": e.code}
        else:
            body = {"req_id": req.req_id, "ok": True, "appointment": _info(a)}
        self.c.requests_answered += 1
        self.c.reply(agent, body)

    def _checkin(self, agent: str, req: CheckinRequest) -> None:
        """The appointment, if it may be checked in now; the agent then numbers the
        ticket with an ordinary ``ticket.number`` request."""
        body: dict[str, Any] = {"req_id": req.req_id, "ok": False}
        with self.c.store.tx() as db:
            a = (self.book.by_code(req.code) if req.code else
                 self.book.pick_for_person(req.id_hash) if req.id_hash else None)
            if a is None:
                body.update(error="没有找到该预约", error_code="no_appointment")
            else:
                try:
                    if a.status == "booked":
                        self.book.check_window(a)
                except Refused as e:
                    body.update(error=str(e), error_code=e.code)
                else:
                    db.execute("UPDATE appointments SET status = 'checked_in', "
                               "checked_in_at = ? WHERE appointment_id = ?",
                               (time.time(), a.appointment_id))
                    body.update(ok=True, appointment=_info(a))
            self.c.requests_answered += 1
        self.c.reply(agent, body)
