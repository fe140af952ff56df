"""A stand-in for the hall's central queue server, speaking the ★ MQTT contract.

It numbers tickets with the same queue engine as the standalone agent, leases
number blocks to each agent, acknowledges events idempotently (a duplicate
``msg_id`` is acknowledged again and stored once), publishes calls, queue
snapshots and satisfaction figures, and can be told to misbehave — go silent,
answer slowly, drop acks — so the agent's hard paths can be exercised.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import AppointmentsConfig
from hall_agent.contract.mqtt import (
    AgentState,
    AppointmentInfo,
    BookRequest,
    CentralCall,
    CheckinRequest,
    EventEnvelope,
    NumberRequest,
    SlotsRequest,
)
from hall_agent.contract.session import no_delay
from hall_agent.contract.topics import HallTopics, parse_agent_topic
from hall_agent.core.personal import Person
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import Store
from hall_agent.services.appointments import Appointment, AppointmentBook
from sim.central_inbox import EventInbox, Received
from sim.central_ledger import Ledger

log = logging.getLogger("sim.central")

KNOWN_REQUESTS = {"ticket.number", "appointment.checkin", "appointment.slots",
                  "appointment.book"}
CENTRAL_HELP = """central commands:
  silent on|off        stop/resume answering number requests and acknowledging events
  slow MS              answer number requests after MS milliseconds
  drop_acks on|off     receive events but send no acknowledgements
  call WINDOW          call the next ticket to a window
  recall WINDOW        call the window's ticket again
  stats                events received, unique, duplicates; tickets; requests answered
  lease AGENT          publish the agent's lease again
"""


def _info(a: Appointment) -> dict[str, Any]:
    """An appointment as a reply carries it (AppointmentInfo: masked forms and the hash)."""
    return AppointmentInfo(appointment_id=a.appointment_id, code=a.code, service=a.service,
                           day=a.day, slot_start=a.slot_start, slot_end=a.slot_end,
                           masked_name=a.masked_name, id_hash=a.id_hash).model_dump()


@dataclass
class Faults:
    silent: bool = False
    delay_ms: int = 0
    drop_acks: bool = False
    # Request types this central does not answer (an older central that does not know
    # an extension, MQTT.md "Requests and their extensions"), or answers "unsupported".
    ignore: set[str] = field(default_factory=set)
    unsupported: set[str] = field(default_factory=set)


@dataclass
class Central:
    host: str
    port: int
    hall: str
    catalog: Catalog
    data_dir: Path
    tz: Any
    # Numbers per service in each leased block: enough for a busy service through the
    # better part of an hour without the central. A block is topped up (a new one added)
    # once fewer than half of an agent's leased numbers of a service are left.
    lease_size: int = 200
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    faults: Faults = field(default_factory=Faults)
    # The hall's HMAC secret (personal.py), for appointments imported with ID numbers.
    secret: bytes = b"central-stand-in-secret-0123456789abcdef"
    # Appointment rules; default: every service bookable, the agent's default slots.
    appointments: AppointmentsConfig | None = None
    requests_received: int = 0
    requests_answered: int = 0
    requests_ignored: int = 0
    malformed: int = 0

    def __post_init__(self) -> None:
        self.store = Store(self.data_dir)
        self.engine = QueueEngine(self.store, self.catalog, self.tz)
        self.ledger = Ledger(self.store, self.engine, self.catalog, self.lease_size)
        rules = self.appointments or AppointmentsConfig(
            bookable=[s.id for s in self.catalog.services])
        self.book = AppointmentBook(self.store, self.catalog, rules, self.tz, self.secret)
        self.t = HallTopics(self.hall)
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"central-{self.hall}", protocol=mqtt.MQTTv5)
        self.client.will_set(self.t.central_state, json.dumps({"online": False}), qos=1,
                             retain=True)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.tls_ca:
            self.client.tls_set(ca_certs=self.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_socket_open = no_delay
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._inbox = EventInbox()  # events received, stored by the _storer thread
        self._storer: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._storer = threading.Thread(target=self._store_events, name="central-events",
                                        daemon=True)
        self._storer.start()
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def stop(self, *, clean: bool = True) -> None:
        for timer in self._timers:  # slow answers still due: never sent
            timer.cancel()
        if self._storer is not None:  # what was received before is stored and acknowledged
            self._inbox.close()
            self._storer.join(30)
            self._storer = None
        if clean:
            self.client.publish(self.t.central_state, json.dumps({"online": False}),
                                qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("central: broker refused: %s", rc)
            return
        client.subscribe([(self.t.every_agent(kind), 1)
                          for kind in ("request", "event", "state")])
        client.publish(self.t.central_state,
                       json.dumps({"online": True, "ts": self._now()}), qos=1, retain=True)
        self.connected.set()

    def _now(self) -> str:
        return datetime.now(self.tz).isoformat(timespec="milliseconds")

    # ------------------------------------------------------------------ inbound

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_agent_topic(msg.topic)
        if parsed is None:
            return
        _, agent, kind = parsed
        try:
            if kind == "request":
                self._dispatch_request(agent, msg.payload)
            elif kind == "event":
                self._inbox.put(agent, EventEnvelope.model_validate_json(msg.payload))
            elif kind == "state" and msg.payload:
                st = AgentState.model_validate_json(msg.payload)
                if st.online:
                    self.publish_lease(agent)
        except ValidationError as e:
            self.malformed += 1
            log.warning("central: malformed %s from %s: %s", kind, agent,
                        e.errors()[0]["msg"])
        except Exception:
            log.exception("central: failed on %s", msg.topic)

    def _dispatch_request(self, agent: str, payload: bytes | bytearray) -> None:
        """By ``type``: ``ticket.number`` (MQTT.md; the default) or one of the
        ``appointment.*`` requests of docs/appointments.md."""
        self.requests_received += 1
        try:
            doc = json.loads(payload)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            rtype = doc.get("type", "ticket.number")
        except ValueError:
            doc, rtype = {}, "ticket.number"  # its validation says what is wrong
        if rtype in self.faults.ignore:
            self.requests_ignored += 1
            return
        if rtype in self.faults.unsupported or rtype not in KNOWN_REQUESTS:
            self._reply(agent, {"req_id": str(doc.get("req_id")), "ok": False,
                                "error": "unsupported"})
            return
        if rtype == "appointment.checkin":
            self._checkin(agent, CheckinRequest.model_validate_json(payload))
        elif rtype == "appointment.slots":
            self._slots(agent, SlotsRequest.model_validate_json(payload))
        elif rtype == "appointment.book":
            self._book(agent, BookRequest.model_validate_json(payload))
        else:
            self._request(agent, NumberRequest.model_validate_json(payload))

    def _reply(self, agent: str, body: dict[str, Any]) -> None:
        self.client.publish(self.t.of_agent(agent).reply,
                            json.dumps(body, ensure_ascii=False), qos=1)

    def _slots(self, agent: str, req: SlotsRequest) -> None:
        if self.faults.silent:
            self.requests_ignored += 1
            return
        with self._lock:
            body: dict[str, Any] = {"req_id": req.req_id, "ok": True,
                                    "slots": self.book.slots(req.service, req.day)}
            if req.service not in self.book.cfg.bookable:
                body = {"req_id": req.req_id, "ok": False, "error_code": "not_bookable",
                        "error": f"{req.service} 不接受预约"}
            self.requests_answered += 1
        self._reply(agent, body)

    def _book(self, agent: str, req: BookRequest) -> None:
        """One appointment list for the hall: capacity per slot and one booking per person,
        service and day hold across every kiosk; a repeated ``appointment_id`` answers
        the booking already made."""
        if self.faults.silent:
            self.requests_ignored += 1
            return
        holder = Person(id_hash=req.id_hash, masked_id="", masked_name=req.masked_name or "",
                        card_type="", expired=False, id_number="", name="")
        with self._lock:
            try:
                a = self.book.book(holder, req.service, req.day, req.start,
                                   appointment_id=req.appointment_id)
            except Refused as e:
                body: dict[str, Any] = {"req_id": req.req_id, "ok": False, "error": str(e),
                                        "error_code": e.code}
            else:
                body = {"req_id": req.req_id, "ok": True, "appointment": _info(a)}
            self.requests_answered += 1
        self._reply(agent, body)

    def _request(self, agent: str, req: NumberRequest) -> None:
        if self.faults.silent:
            self.requests_ignored += 1
            return
        if self.faults.delay_ms:
            timer = threading.Timer(self.faults.delay_ms / 1000, self._answer, (agent, req))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            self._answer(agent, req)

    def _answer(self, agent: str, req: NumberRequest) -> None:
        with self._lock:
            known = self.store.one("SELECT number, service FROM tickets WHERE ticket_id = ?",
                                   (req.ticket_id,))
            try:
                if self.ledger.is_voided(req.ticket_id):  # the void came first
                    raise Refused("ticket voided by the agent", code="voided")
                if known is not None:  # numbering is keyed by ticket_id: a repeat
                    number, ahead, est = known["number"], 0, 0
                else:
                    issued = self.engine.issue(req.service, priority=req.priority,
                                               ticket_id=req.ticket_id, channel="kiosk",
                                               id_hash=req.id_hash)
                    number = issued.ticket.number
                    ahead, est = issued.waiting_ahead, issued.est_wait_s
                body: dict[str, Any] = {"req_id": req.req_id, "ok": True, "number": number,
                                        "waiting_ahead": ahead, "est_wait_s": est}
            except Refused as e:
                body = {"req_id": req.req_id, "ok": False, "error": str(e)}
            self.requests_answered += 1
        self._reply(agent, body)
        self.publish_queue()

    def _checkin(self, agent: str, req: CheckinRequest) -> None:
        """``appointment.checkin``: the appointment, if it may be checked in now; the
        agent then numbers the ticket with an ordinary ``ticket.number`` request."""
        if self.faults.silent:
            self.requests_ignored += 1
            return
        body: dict[str, Any] = {"req_id": req.req_id, "ok": False}
        with self._lock:
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
                    with self.store.tx() as db:
                        db.execute("UPDATE appointments SET status = 'checked_in', "
                                   "checked_in_at = ? WHERE appointment_id = ?",
                                   (time.time(), a.appointment_id))
                    body.update(ok=True, appointment=_info(a))
            self.requests_answered += 1
        self._reply(agent, body)

    def _store_events(self) -> None:
        for batch in self._inbox.batches():
            try:
                self._events(batch)
            except Exception:
                log.exception("central: handling %d event(s) failed", len(batch))

    def _events(self, batch: list[Received]) -> None:
        """Store a batch in one transaction, then acknowledge it, one ``A/ack`` per agent:
        nothing is acknowledged before it is committed."""
        if self.faults.silent:
            return
        try:
            with self._lock, self.store.tx() as db:
                firsts = [self._event(db, agent, env) for agent, env in batch]
        except Exception:
            if len(batch) == 1:
                log.exception("central: storing an event failed; its agent resends it")
                return
            # One event that cannot be stored must not hold back the others.
            log.warning("central: storing %d events failed; one at a time", len(batch))
            for item in batch:
                self._events([item])
            return
        if not self.faults.drop_acks:
            acks: dict[str, list[str]] = {}
            for agent, env in batch:
                # A duplicate is acknowledged again (its first ack may have been lost).
                acks.setdefault(agent, []).append(env.msg_id)
            for agent, ids in acks.items():
                self.client.publish(self.t.of_agent(agent).ack, json.dumps({"acks": ids}),
                                    qos=1)
        new = [(agent, env) for (agent, env), first in zip(batch, firsts, strict=True)
               if first]
        leases = {(agent, str(env.data.get("issued_at", ""))[:10] or self.engine.today(),
                   str(env.data.get("service", ""))) for agent, env in new
                  if env.type == "ticket.issued" and env.offline}
        for agent in {agent for agent, day, service in leases
                      if self.ledger.top_up(agent, day, service)}:
            self.publish_lease(agent)
        if any(env.type == "evaluation.submitted" for _, env in new):
            self.publish_satisfaction()
        for _, env in new:
            if env.type == "staff.key":
                self._staff_key(str(env.data.get("window")), str(env.data.get("action")))

    def _event(self, db: sqlite3.Connection, agent: str, env: EventEnvelope) -> bool:
        """Store one event in the batch's transaction; True at its first delivery."""
        first = self.ledger.receive(db, agent, env)
        if first and env.type == "ticket.issued":
            self._merge_ticket(db, env)
        if first and env.type == "ticket.voided":  # docs/mqtt-extensions.md: never called
            self.ledger.void(db, str(env.data.get("ticket_id")))
        return first

    def _staff_key(self, window: str, action: str) -> None:
        try:
            if action in ("call_next", "recall"):
                self.call(window, "recall" if action == "recall" else "call")
            elif action == "pause":
                paused = self.engine.window_state(window).paused
                self.engine.set_paused(window, not paused)
                self.publish_queue()
            elif action == "no_show":
                self.engine.no_show(window)
                self.publish_queue()
        except Refused as e:
            log.info("central: staff key %s at window %s refused: %s", action, window, e)

    def _merge_ticket(self, db: sqlite3.Connection, env: EventEnvelope) -> None:
        """An offline ticket joins the central queue (ordered by its issue time)."""
        d = env.data
        tid = str(d.get("ticket_id"))
        number = str(d.get("number", ""))
        service = str(d.get("service", ""))
        seq = int(number[len(service):]) if number[len(service):].isdigit() else None
        if seq is None:
            return
        row = db.execute("SELECT number FROM tickets WHERE ticket_id = ?", (tid,)).fetchone()
        if row is not None:
            if row[0] != number:
                # MQTT.md, Numbering: our answer came too late and the agent used its
                # lease; the event settles the number. Ours becomes a gap.
                log.info("central: ticket %s is %s, not %s (late answer)", tid, number, row[0])
                db.execute("UPDATE tickets SET number = ?, seq = ?, offline = ? WHERE "
                           "ticket_id = ?", (number, seq, int(env.offline), tid))
            return
        try:
            self.engine.issue(service, ticket_id=tid, seq=seq, offline=True,
                              check_open=False, priority=bool(d.get("priority")),
                              channel=str(d.get("channel", "kiosk")), answer=False)
        except (Refused, sqlite3.IntegrityError) as e:
            log.error("central: could not merge offline ticket %s: %s", number, e)

    # ------------------------------------------------------------------ outbound

    def publish_lease(self, agent: str) -> None:
        """The agent's blocks of today (retained; the agent replaces its lease with it):
        one per service at the first lease of the day, plus any top-ups since."""
        self.client.publish(self.t.of_agent(agent).lease, json.dumps(self.ledger.lease(agent)),
                            qos=1, retain=True)

    def call(self, window: str, kind: str = "call") -> CentralCall | None:
        with self._lock:
            c = self.engine.recall(window) if kind == "recall" else self.engine.call_next(window)
        if c.ticket is None:
            return None
        call = CentralCall(call_id=c.call_id, ticket=c.ticket.number, window=window,
                           service=c.ticket.service, kind=kind,  # type: ignore[arg-type]
                           ts=self._now())
        self.client.publish(self.t.central_call, call.model_dump_json(), qos=1)
        self.publish_queue()
        return call

    def publish_queue(self) -> None:
        services, windows, _ = self.engine.snapshot()
        body = {"ts": self._now(),
                "services": {k: {"waiting": v.waiting, "est_wait_s": v.est_wait_s}
                             for k, v in services.items()},
                "windows": {k: {"open": not w.paused,
                                "serving": w.serving.number if w.serving else None}
                            for k, w in windows.items()}}
        self.client.publish(self.t.central_queue, json.dumps(body), qos=1, retain=True)

    def publish_satisfaction(self) -> None:
        self.client.publish(self.t.central_satisfaction, json.dumps(
            {"day": self.engine.today(), "windows": self.ledger.satisfaction()}), qos=1,
            retain=True)

    def command(self, agent: str, name: str, args: dict[str, Any] | None = None) -> str:
        cmd_id = str(uuid.uuid4())
        self.client.publish(self.t.of_agent(agent).cmd, json.dumps(
            {"cmd_id": cmd_id, "name": name, "args": args or {}}), qos=1)
        return cmd_id

    # ------------------------------------------------------------------ inspection

    def stats(self) -> dict[str, Any]:
        return self.ledger.stats() | {
            "requests_answered": self.requests_answered,
            "requests_ignored": self.requests_ignored, "malformed": self.malformed}

    def received(self, agent: str | None = None) -> list[dict[str, Any]]:
        return self.ledger.received(agent)

    def control(self, line: str) -> str:
        w = line.split()
        if not w or w[0] == "help":
            return CENTRAL_HELP
        on = {"on": True, "off": False}
        try:
            if w[0] == "silent":
                self.faults.silent = on[w[1]]
            elif w[0] == "slow":
                self.faults.delay_ms = int(w[1])
            elif w[0] == "drop_acks":
                self.faults.drop_acks = on[w[1]]
            elif w[0] in ("call", "recall"):
                c = self.call(w[1], w[0])
                return json.dumps(c.model_dump() if c else {"ticket": None})
            elif w[0] == "stats":
                return json.dumps(self.stats(), ensure_ascii=False)
            elif w[0] == "lease":
                self.publish_lease(w[1])
            else:
                return f"error: unknown command {line.strip()!r}; try help"
        except (IndexError, KeyError, ValueError) as e:
            return f"error: {e}"
        except Refused as e:
            return f"error: {e}"
        return "ok " + json.dumps(vars(self.faults))
