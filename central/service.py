"""hall-central's MQTT side: the central of ``docs/protocols/MQTT.md``, for N agents at once.

- numbering keyed by ``ticket_id`` (a repeated request gets the same number);
- events stored once per ``msg_id`` and acknowledged after the commit (a duplicate is
  acknowledged again); a ``seq`` gap is answered by ``cmd sync``;
- offline tickets merged into the queue by their ``issued_at``; a late answer settled
  by the ``ticket.issued`` event; voided tickets (docs/mqtt-extensions.md) never called;
- leases per agent, topped up when half used, the next day's published
  ``midnight_lease_min`` minutes before local midnight;
- the retained ``P/central/state`` (and its will), ``P/central/queue``,
  ``P/central/satisfaction`` kept true; every call and recall on ``P/central/call``;
- staff keys (``staff.key`` events) are desk actions (central/desk.py), stored in the
  same transaction as the event, so a SIGKILL loses neither or both.

Fault knobs for tests live in sim/central.py, a subclass overriding the ``fault_*``
hooks below; the service itself never misbehaves.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import ssl
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.bus import Bus, Change
from central.config import CentralConfig
from central.desk import Desk
from central.inbox import EventInbox
from central.ledger import Ledger
from central.reading import Event, Rejected, read_event, read_state, staff_key, ticket_fields
from central.requests import Requests
from central.schema import migrate
from central.views import Actor
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.mqtt import CentralCall
from hall_agent.contract.session import no_delay
from hall_agent.contract.topics import HallTopics, parse_agent_topic
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import Store

log = logging.getLogger("central")

SYNC_EVERY_S = 10.0   # at most one ``cmd sync`` per agent in this time
TICK_S = 15.0          # the midnight-lease and housekeeping check
STAFF_ACTIONS = ("call_next", "recall", "pause", "no_show", "finish")


class HallCentral:
    def __init__(self, cfg: CentralConfig, catalog: Catalog, *, password: str | None = None,
                 secret: bytes | None = None, clock: Any = time.time) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.tz = cfg.hall.tz
        self.store = Store(cfg.data_dir)
        migrate(self.store)
        self.engine = QueueEngine(self.store, catalog, self.tz, clock)
        self.ledger = Ledger(self.store, self.engine, catalog, cfg.central.lease_size)
        self.bus = Bus()
        self.desk = Desk(self.store, self.engine, catalog, cfg.central.queue, self.bus,
                         satisfaction=self.satisfaction)
        self.t = HallTopics(cfg.hall.id)
        self.secret = secret or _secret(cfg)
        self.requests = Requests(self, self.secret)
        self.book = self.requests.book
        self.requests_received = self.requests_answered = self.requests_ignored = 0
        self.malformed = 0
        self.client = self._client(password)
        self.connected = threading.Event()
        self._inbox = EventInbox()
        self._storer: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._synced: dict[str, float] = {}
        self._next_day_sent: set[tuple[str, str]] = set()
        self.bus.listen(self._on_change)

    def _client(self, password: str | None) -> mqtt.Client:
        m = self.cfg.mqtt
        cid = f"hall-central-{self.cfg.hall.id}"
        if m.protocol == 311:
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid,
                            protocol=mqtt.MQTTv311, clean_session=False)
        else:
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid,
                            protocol=mqtt.MQTTv5)
        c.will_set(self.t.central_state, json.dumps({"online": False}), qos=1, retain=True)
        if m.username:
            if password is None and m.password_file:
                password = Path(m.password_file).read_text().strip()
            c.username_pw_set(m.username, password)
        if m.tls_ca:
            c.tls_set(ca_certs=m.tls_ca, certfile=m.tls_cert, keyfile=m.tls_key,
                      cert_reqs=ssl.CERT_REQUIRED)
        c.reconnect_delay_set(1, 30)
        c.on_socket_open = no_delay
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        return c

    # ------------------------------------------------------------------ fault hooks

    def fault_request(self, rtype: str) -> str:
        """``answer`` | ``ignore`` (say nothing) | ``unsupported`` (say so)."""
        return "answer"

    def fault_delay_s(self) -> float:
        return 0.0

    def fault_store_events(self) -> bool:
        return True

    def fault_send_acks(self) -> bool:
        return True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._storer = threading.Thread(target=self._store_events, name="central-events",
                                        daemon=True)
        self._storer.start()
        self._ticker = threading.Thread(target=self._tick, name="central-tick", daemon=True)
        self._ticker.start()
        m = self.cfg.mqtt
        # A persistent session: what agents sent while hall-central was down (a SIGKILL,
        # an upgrade) is delivered when it is back (MQTT.md Session: at least a day).
        if m.protocol == 311:
            self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 86400
            self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s,
                                      clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self, *, clean: bool = True) -> None:
        self._stopping.set()
        self.requests.cancel_timers()
        if self._storer is not None:  # what was received is stored and acknowledged
            self._inbox.close()
            self._storer.join(30)
            self._storer = None
        if clean:
            self.client.publish(self.t.central_state, json.dumps({"online": False}),
                                qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        self.bus.close()
        self.store.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker refused hall-central: %s", rc)
            return
        client.subscribe([(self.t.every_agent(kind), 1)
                          for kind in ("request", "event", "state")])
        client.publish(self.t.central_state,
                       json.dumps({"online": True, "ts": self.now_iso()}), qos=1, retain=True)
        self.publish_queue()
        self.publish_satisfaction()
        self.connected.set()
        log.info("hall-central online at %s:%d", self.cfg.mqtt.host, self.cfg.mqtt.port)

    def now_iso(self) -> str:
        return self.engine.iso(self.engine.clock())

    # ------------------------------------------------------------------ inbound

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_agent_topic(msg.topic)
        if parsed is None:
            return
        _, agent, kind = parsed
        try:
            if kind == "request":
                self.requests_received += 1
                self.requests.dispatch(agent, msg.payload)
            elif kind == "event":
                ev = read_event(msg.payload)
                if isinstance(ev, Rejected):
                    self._malformed(msg.topic, ev)
                else:
                    if ev.dropped:
                        log.warning("%s: %s dropped: %s", msg.topic, ev.msg_id,
                                    "; ".join(ev.dropped))
                    self._inbox.put(agent, ev)
            elif kind == "state":
                st = read_state(msg.payload)
                if isinstance(st, Rejected):
                    self._malformed(msg.topic, st)
                elif st is not None and st.online:
                    self.publish_lease(agent)
        except Exception:
            log.exception("failed on a message on %s; it is dropped", msg.topic)

    def _malformed(self, topic: str, why: Rejected) -> None:
        self.malformed += 1
        log.warning("rejected a message on %s: %s", topic, why)

    def _store_events(self) -> None:
        for batch in self._inbox.batches():
            try:
                self._events(batch)
            except Exception:
                log.exception("handling %d event(s) failed; their agents send them again",
                              len(batch))

    def _events(self, batch: list[tuple[str, Event]]) -> None:
        """Store a batch in one transaction (staff keys acted on inside it), then
        acknowledge it, one ``A/ack`` per agent: nothing is acknowledged before it is
        committed."""
        if not self.fault_store_events():
            return
        gaps: set[str] = set()
        try:
            with self.store.tx() as db:
                firsts = [self._event(db, agent, ev, gaps) for agent, ev in batch]
        except Exception:
            if len(batch) == 1:
                log.exception("storing an event failed; its agent sends it again")
                return
            log.warning("storing %d events failed; one at a time", len(batch))
            for item in batch:
                self._events([item])
            return
        if self.fault_send_acks():
            acks: dict[str, list[str]] = {}
            for agent, ev in batch:  # a duplicate is acknowledged again
                acks.setdefault(agent, []).append(ev.msg_id)
            for agent, ids in acks.items():
                self.client.publish(self.t.of_agent(agent).ack, json.dumps({"acks": ids}),
                                    qos=1)
        new = [(a, ev) for (a, ev), first in zip(batch, firsts, strict=True) if first]
        tops = {(a, self._day_of(ev), str(ev.data.get("service", ""))) for a, ev in new
                if ev.type == "ticket.issued" and ev.offline}
        for agent, day in {(a, d) for a, d, s in tops if self.ledger.top_up(a, d, s)}:
            self.publish_lease(agent, day)
        if any(ev.type == "evaluation.submitted" for _, ev in new):
            self.publish_satisfaction()
            self.bus.publish("satisfaction", {"ts": self.now_iso()})
        if any(ev.type in ("ticket.issued", "ticket.voided") for _, ev in new):
            self.bus.publish("queue", {"ts": self.now_iso()})
        now = time.monotonic()
        for agent in gaps:
            if now - self._synced.get(agent, -1e9) >= SYNC_EVERY_S:
                self._synced[agent] = now
                log.info("%s: events missing before seq %s; asking it to sync", agent,
                         "its latest")
                self.command(agent, "sync")

    def _day_of(self, ev: Event) -> str:
        f = ticket_fields(ev.data)
        if isinstance(f, Rejected) or f["issued_at"] is None:
            return self.engine.today()
        return self.engine.local(f["issued_at"]).date().isoformat()

    def _event(self, db: sqlite3.Connection, agent: str, ev: Event, gaps: set[str]) -> bool:
        first = self.ledger.receive(db, agent, ev)
        if not first:
            return False
        if ev.seq is not None and self.ledger.note_seq(db, agent, ev.seq):
            gaps.add(agent)
        if ev.type == "ticket.issued":
            self._merge_ticket(db, agent, ev)
        elif ev.type == "ticket.voided":
            tid = ev.data.get("ticket_id")
            if tid is not None:
                self.ledger.void(db, str(tid))
        elif ev.type == "staff.key":
            self._staff_key(agent, ev)
        return True

    def _staff_key(self, agent: str, ev: Event) -> None:
        key = staff_key(ev.data)
        if isinstance(key, Rejected):
            log.warning("%s: staff.key %s unusable (%s)", agent, ev.msg_id, key)
            return
        window, action, staff = key
        actor = Actor(staff or f"evaluator@{window}", "evaluator")
        try:
            if action == "call_next":
                self.desk.call_next(window, actor, op_id=ev.msg_id)
            elif action == "recall":
                self.desk.recall(window, actor, op_id=ev.msg_id)
            elif action == "no_show":
                self.desk.no_show(window, actor, op_id=ev.msg_id)
            elif action == "finish":
                self.desk.finish(window, actor, op_id=ev.msg_id)
            elif action == "pause":  # the key toggles (docs/mqtt-extensions.md)
                if self.engine.window_state(window).paused:
                    self.desk.resume(window, actor, op_id=ev.msg_id)
                else:
                    self.desk.pause(window, actor, "窗口暂停", op_id=ev.msg_id)
            else:
                log.warning("%s: staff key %r at window %s is not an action (known: %s)",
                            agent, action, window, ", ".join(STAFF_ACTIONS))
        except Refused as e:
            log.info("staff key %s at window %s refused: %s", action, window, e.message_en)

    def _merge_ticket(self, db: sqlite3.Connection, agent: str, ev: Event) -> None:
        """A kiosk's ticket joins the queue at its ``issued_at``; for a ticket numbered
        here, the event settles its number (our answer may have come too late)."""
        f = ticket_fields(ev.data)
        if isinstance(f, Rejected):
            log.warning("%s: ticket.issued %s not merged: %s", agent, ev.msg_id, f)
            return
        tid, number, service = f["ticket_id"], f["number"], f["service"]
        prefix = number.rstrip("0123456789")
        seq = int(number[len(prefix):])
        row = db.execute("SELECT number, day FROM tickets WHERE ticket_id = ?",
                         (tid,)).fetchone()
        if row is not None:
            if row[0] != number:
                log.info("ticket %s is %s, not %s (our answer came late)", tid, number, row[0])
                try:
                    db.execute("UPDATE tickets SET number = ?, seq = ?, prefix = ?, offline = ? "
                               "WHERE ticket_id = ?", (number, seq, prefix, int(ev.offline), tid))
                except sqlite3.IntegrityError:
                    log.error("ticket %s: number %s is already another ticket's; kept %s",
                              tid, number, row[0])
            return
        if self.ledger.is_voided(tid):
            return
        issued = f["issued_at"] if f["issued_at"] is not None else self.engine.clock()
        day = self.engine.local(issued).date().isoformat()
        if self.catalog.service(service) is None:
            log.error("%s: ticket %s of unknown service %s kept out of the queue", agent,
                      number, service)
            return
        try:
            db.execute(
                "INSERT INTO tickets (ticket_id, day, service, prefix, seq, number, priority, "
                "channel, status, issued_at, queue_key, offline, id_hash) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
                (tid, day, service, prefix, seq, number, int(f["priority"]), f["channel"],
                 issued, issued, int(ev.offline), f["id_hash"]))
        except sqlite3.IntegrityError:
            log.error("%s: ticket %s (%s) has a number already issued on %s; not merged",
                      agent, number, tid, day)

    # ------------------------------------------------------------------ outbound

    def _on_change(self, ch: Change) -> None:
        if ch.kind == "call":
            d = ch.data
            call = CentralCall(call_id=d["call_id"], ticket=d["ticket"], window=d["window"],
                               service=d["service"], kind=d["kind"], ts=d["ts"])
            self.client.publish(self.t.central_call, call.model_dump_json(), qos=1)
        elif ch.kind == "queue":
            self.publish_queue()

    def publish_lease(self, agent: str, day: str | None = None) -> None:
        """The agent's blocks of ``day`` (retained). Once the next day's lease is out,
        today's top-ups are followed by the next day's again, so the retained lease an
        agent finds at reconnect before midnight is tomorrow's (it keeps today's)."""
        today = self.engine.today()
        day = day or today
        self.client.publish(self.t.of_agent(agent).lease,
                            json.dumps(self.ledger.lease(agent, day)), qos=1, retain=True)
        nxt = self._tomorrow()
        if day == today and ((agent, nxt) in self._next_day_sent or self._before_midnight()):
            self._next_day_sent.add((agent, nxt))
            self.client.publish(self.t.of_agent(agent).lease,
                                json.dumps(self.ledger.lease(agent, nxt)), qos=1, retain=True)

    def _tomorrow(self) -> str:
        return (self.engine.local().date() + timedelta(days=1)).isoformat()

    def _before_midnight(self) -> bool:
        now = self.engine.local()
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(),
                                    self.tz)
        return (midnight - now).total_seconds() <= self.cfg.central.midnight_lease_min * 60

    def _tick(self) -> None:
        day = self.engine.today()
        while not self._stopping.wait(TICK_S):
            try:
                self.tick()
                if self.engine.today() != day:  # a new day: counts start again at zero
                    day = self.engine.today()
                    self.publish_satisfaction()
                    self.publish_queue()
            except Exception:
                log.exception("housekeeping failed; trying again in %.0f s", TICK_S)

    def tick(self) -> None:
        """The next day's leases before local midnight; the engine's outbox (hall-central
        sends no events of its own) emptied."""
        if self._before_midnight():
            nxt = self._tomorrow()
            for agent in self.ledger.agents():
                if (agent, nxt) not in self._next_day_sent:
                    self._next_day_sent.add((agent, nxt))
                    log.info("publishing %s's lease for %s before midnight", agent, nxt)
                    self.client.publish(self.t.of_agent(agent).lease, json.dumps(
                        self.ledger.lease(agent, nxt)), qos=1, retain=True)
        with self.store.tx() as db:
            db.execute("DELETE FROM outbox")

    def queue_body(self) -> dict[str, Any]:
        services, windows, _ = self.engine.snapshot()
        return {"ts": self.now_iso(),
                "services": {k: {"waiting": v.waiting, "est_wait_s": v.est_wait_s}
                             for k, v in services.items()},
                "windows": {k: {"open": not w.paused,
                                "serving": w.serving.number if w.serving else None}
                            for k, w in windows.items()}}

    def publish_queue(self) -> None:
        self.client.publish(self.t.central_queue, json.dumps(self.queue_body()), qos=1,
                            retain=True)

    def satisfaction(self) -> dict[str, dict[str, int]]:
        return self.ledger.satisfaction(self.desk.rules.day_start())

    def publish_satisfaction(self) -> None:
        self.client.publish(self.t.central_satisfaction, json.dumps(
            {"day": self.engine.today(), "windows": self.satisfaction()}), qos=1, retain=True)

    def command(self, agent: str, name: str, args: dict[str, Any] | None = None) -> str:
        cmd_id = str(uuid.uuid4())
        self.client.publish(self.t.of_agent(agent).cmd, json.dumps(
            {"cmd_id": cmd_id, "name": name, "args": args or {}}), qos=1)
        return cmd_id

    def reply(self, agent: str, body: dict[str, Any]) -> None:
        self.client.publish(self.t.of_agent(agent).reply,
                            json.dumps(body, ensure_ascii=False), qos=1)

    # ------------------------------------------------------------------ inspection

    def stats(self) -> dict[str, Any]:
        return self.ledger.stats() | {
            "requests_answered": self.requests_answered,
            "requests_ignored": self.requests_ignored, "malformed": self.malformed}

    def received(self, agent: str | None = None) -> list[dict[str, Any]]:
        return self.ledger.received(agent)


def _secret(cfg: CentralConfig) -> bytes:
    """The hall's HMAC secret (for appointments imported with ID numbers): the agents'
    file, or one of hall-central's own, created 0600."""
    path = Path(cfg.central.secret_file) if cfg.central.secret_file else (
        cfg.data_dir / "hall.secret")
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()
