"""The agent's core, independent of HTTP: store + queue engine + devices + live events.

The API (api.py) is a thin layer over :class:`Agent`; tests and the central
stand-in can drive the same object directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from drivers.errors import HallEdgeError
from drivers.escpos_codec import Receipt
from drivers.printer_config import PrinterConfig
from drivers.traffic import RawTraffic, TrafficLink, TrafficLogs
from drivers.types import DeviceHealth, Health, PrintResult, TicketPrint
from hall_agent import __version__
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import Config, load_catalog
from hall_agent.contract.mqtt import (
    CentralCall,
    CentralQueue,
    Command,
    Lease,
    NumberReply,
    NumberRequest,
    Satisfaction,
)
from hall_agent.core.events import EventBus
from hall_agent.core.personal import Person, load_secret, secret_path
from hall_agent.core.queue import Call, Issued, QueueEngine, Ticket
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store
from hall_agent.core.supervisor import DeviceSupervisor, DeviceTimeout, node_identity
from hall_agent.link.mqtt import LinkHandlers, MqttLink
from hall_agent.services.appointments import AppointmentBook, CheckinService
from hall_agent.services.cards import CardService
from hall_agent.services.gpio import GpioService
from hall_agent.services.scans import ScanRouter
from hall_agent.services.selfservice import SelfService

log = logging.getLogger("hall_agent")

# How long a repeated request (same Idempotency-Key) waits for the first one's
# print to finish before answering with what is known.
REPLAY_PRINT_WAIT_S = 15.0


class Printer(Protocol):
    """What the agent needs of a ticket printer (drivers.printer.TicketPrinter)."""

    @property
    def health(self) -> DeviceHealth: ...
    def print_ticket(self, t: TicketPrint) -> PrintResult: ...
    def test_print(self) -> PrintResult: ...
    def print_receipt(self, r: Receipt) -> PrintResult: ...
    def refresh(self) -> DeviceHealth: ...
    def close(self) -> None: ...


def make_printer(cfg: PrinterConfig, traffic: RawTraffic | None = None) -> Printer:
    from drivers.printer import _LINKS, TicketPrinter

    if traffic is None:
        return TicketPrinter(cfg)
    base = _LINKS[cfg.transport]
    # The raw-traffic log (switched at run time) sees every byte of every link.
    return TicketPrinter(cfg, link_factory=lambda c, t: TrafficLink(base(c, t), traffic))


def print_deadline_s(cfg: PrinterConfig) -> float:
    """How long a ticket may take before it is answered ``printed: false``.

    The status queries take at most twice the answer timeout (drivers.printer),
    the ticket (< 600 bytes) twice its time on the wire; a health check may be
    holding the printer when the ticket comes, hence twice the status; plus a
    second of slack.
    """
    status = 2 * cfg.status_timeout_ms / 1000
    wire = 2 * 600 * 10 / cfg.baudrate if cfg.transport == "serial" else 0.0
    return 2 * status + max(status / 2, wire) + 1.0


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


class Agent:
    def __init__(self, cfg: Config, *, catalog: Catalog | None = None,
                 printer: Printer | None = None, clock: Any = time.time) -> None:
        self.cfg = cfg
        self.catalog = catalog or load_catalog(cfg.catalog_path)
        self.store = Store(Path(cfg.agent.data_dir))
        self.boot = self.store.next_boot()
        self.queue = QueueEngine(self.store, self.catalog, cfg.hall.tz, clock=clock)
        self.bus = EventBus()
        self.traffic = TrafficLogs(Path(cfg.agent.data_dir))
        self.printer = printer if printer is not None else (
            make_printer(cfg.printer, self.traffic.get("printer")) if cfg.printer else None)
        self._health: dict[str, DeviceHealth] = {}
        self._health_lock = threading.Lock()
        self._printing: dict[str, threading.Event] = {}
        self._printing_lock = threading.Lock()
        self._stop = threading.Event()
        # Health checks, reopening lost devices, and a deadline on every device call.
        self.supervisor = DeviceSupervisor(
            self.set_health, healthy_interval_s=cfg.agent.health_interval_ms / 1000)
        if self.printer is not None and cfg.printer is not None:
            self._supervise_printer(self.printer, cfg.printer)
        self.central_queue: CentralQueue | None = None
        self._last_lease: tuple[str, list[tuple[str, int, int]]] | None = None
        self.central_satisfaction: Satisfaction | None = None
        self.link: MqttLink | None = None
        if cfg.mqtt is not None:
            handlers = LinkHandlers()
            handlers.on_call = self.on_central_call
            handlers.on_lease = self.on_lease
            handlers.on_queue = self.on_central_queue
            handlers.on_satisfaction = self.on_central_satisfaction
            handlers.on_command = self.on_command
            handlers.on_mode = self.on_mode
            self.link = MqttLink(cfg, self.store, self.boot, __version__, handlers,
                                 lambda: self.mode)
            self.store.on_events.append(self.link.wake)
        # RS-485 bus (one master per port, shared by boards and evaluators) and voice.
        from drivers.bus import BusPool
        from hall_agent.services.boards import BoardService
        from hall_agent.services.evaluators import EvaluatorService
        from hall_agent.services.voice import make_announcer
        self.buses = BusPool(self.traffic)
        self.boards = BoardService(self, self.buses, call_hold_s=cfg.bus.call_hold_s,
                                   page_s=cfg.bus.page_s)
        self.evaluators = EvaluatorService(self, self.buses,
                                           prompt_timeout_s=cfg.bus.prompt_timeout_s)
        self.evaluators.on_staff_key = self.on_staff_key
        self.voice = make_announcer(
            self, engine=cfg.voice.engine,
            output=None if cfg.voice.output == "auto" else cfg.voice.output,
            english=cfg.voice.english) if cfg.voice.enabled else None
        # ID cards, the scanner, GPIO, appointments and the 24-hour area. The hall
        # secret keys the HMAC of ID numbers (personal.py): nothing else is kept.
        self.secret = load_secret(secret_path(cfg.hall.secret_file, cfg.agent.data_dir))
        self.book = AppointmentBook(self.store, self.catalog, cfg.appointments, cfg.hall.tz,
                                    self.secret, clock=clock)
        self.checkins = CheckinService(self, self.book)
        self.cards = (CardService(self, cfg.id_reader, self.secret, clock=clock)
                      if cfg.id_reader is not None else None)
        self.scans = ScanRouter(self, cfg.scanner) if cfg.scanner is not None else None
        self.gpio = GpioService(self, cfg.gpio) if cfg.gpio is not None else None
        self.selfservice = SelfService(self)
        if self.cards is not None:
            self.cards.handlers.append(self.selfservice.on_card)
        pending = self.store.one("SELECT COUNT(*) FROM tickets WHERE print_state = 'pending'")
        if pending and pending[0]:
            log.warning("%d ticket(s) were issued but not printed before the last stop; they "
                        "stay in the queue and print if the kiosk asks again", pending[0])

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.supervisor.start()
        self.boards.start()
        self.evaluators.start()
        if self.voice is not None:
            self.voice.start()
        if self.link is not None:
            self.link.start()
        self.book.import_dir(Path(self.cfg.agent.data_dir))
        for dev in (self.cards, self.scans, self.gpio):
            if dev is not None:
                dev.start()
        threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True).start()

    def _housekeeping(self) -> None:
        """Retention (``[agent] retention_days``): at start, then every six hours."""
        while True:
            try:
                gone = self.store.prune(time.time(), self.cfg.agent.retention_days)
                if gone:
                    log.info("retention: deleted %s", ", ".join(
                        f"{n} {table}" for table, n in gone.items()))
            except Exception:
                log.exception("retention: pruning the store failed; will retry")
            if self._stop.wait(6 * 3600):
                return

    def close(self) -> None:
        self._stop.set()
        for dev in (self.cards, self.scans, self.gpio):
            if dev is not None:
                dev.close()
        if self.link is not None:
            self.link.stop()
        self.supervisor.close()
        if self.printer is not None:
            try:  # a printer stuck in a write must not hold up the stop
                self.supervisor.close_device("printer", self.printer.close)
            except DeviceTimeout as e:
                log.warning("%s; stopping without closing it", e)
        self.traffic.close()
        self.evaluators.close()
        self.boards.close()
        if self.voice is not None:
            self.voice.close()
        self.buses.close()
        self.store.close()

    @property
    def numbering(self) -> str:
        """Who numbers tickets: ``central`` (with [mqtt]) unless the central itself
        switched this agent to ``standalone`` (``set_mode``); persisted."""
        if self.cfg.mqtt is None:
            return "standalone"
        return self.store.meta_get("numbering") or "central"

    @property
    def mode(self) -> str:
        if self.numbering == "standalone" or self.link is None:
            return "standalone"
        return "central" if self.link.central_available else "offline"

    @property
    def version(self) -> str:
        return __version__

    # ------------------------------------------------------------------ devices

    def set_health(self, device: str, h: DeviceHealth) -> None:
        """Record a device's health; a change is logged and published once."""
        with self._health_lock:
            old = self._health.get(device)
            self._health[device] = h
        if old != h:
            # Reported once per change, not at every poll.
            level = logging.INFO if h.status in (Health.OK, Health.ABSENT) else logging.WARNING
            log.log(level, "device %s: %s%s", device, h.status.value,
                    f" — {h.detail}" if h.detail else "")
            self.bus.publish("device", {"device": device, "status": h.status.value,
                                        "detail": h.detail})
            if self.link is not None:
                self.link.set_device(device, h)

    def devices(self) -> dict[str, DeviceHealth]:
        with self._health_lock:
            out = dict(self._health)
        if self.printer is not None and "printer" not in out:
            out["printer"] = self.printer.health
        if self.link is not None:
            out["mqtt"] = self.link.describe()
        return out

    def overall(self) -> Health:
        return DeviceHealth.worst(list(self.devices().values()))

    def _supervise_printer(self, printer: Printer, pc: PrinterConfig) -> None:
        from drivers.printer import describe

        path = pc.port if pc.transport == "serial" and pc.port and "://" not in pc.port else None
        self.supervisor.add(
            "printer", printer.refresh, deadline_s=print_deadline_s(pc), where=describe(pc),
            identity=(lambda: node_identity(path)) if path else None,
            reset=printer.close)

    def _printer_call(self, fn: Callable[[], PrintResult]) -> PrintResult:
        """A print through the supervisor: answered within the deadline, whatever the
        printer does."""
        try:
            return self.supervisor.call("printer", fn)
        except DeviceTimeout as e:
            return PrintResult(False, str(e), DeviceHealth(Health.FAULT, str(e)))

    # ------------------------------------------------------------------ idempotency

    def replay(self, key: str | None, route: str, req_hash: str) -> Replay | None:
        if not key:
            return None
        row = self.store.one("SELECT request_hash, status, body FROM idempotency "
                             "WHERE key = ? AND route = ?", (key, route))
        if row is None:
            return None
        if row["request_hash"] != req_hash:
            raise Refused("Idempotency-Key 已用于另一项不同的请求；请为新操作生成新的键",
                             code="idempotency_key_reused", field="Idempotency-Key",
                             why=Why.CONFLICT)
        return Replay(int(row["status"]), json.loads(row["body"]))

    def remember(self, key: str | None, route: str, req_hash: str, status: int,
                 body: dict[str, Any]) -> None:
        if not key:
            return
        with self.store.tx() as db:
            db.execute("INSERT INTO idempotency (key, route, request_hash, status, body, ts) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, route) DO UPDATE SET "
                       "body = excluded.body",
                       (key, route, req_hash, status, json.dumps(body, ensure_ascii=False),
                        time.time()))

    # ------------------------------------------------------------------ tickets

    def status_url(self, t: Ticket) -> str:
        return (self.cfg.hall.status_url.replace("{hall}", self.cfg.hall.id)
                .replace("{ticket_id}", t.ticket_id).replace("{number}", t.number))

    def ticket_body(self, issued: Issued, printed: bool, detail: str) -> dict[str, Any]:
        t = issued.ticket
        svc = self.catalog.service(t.service)
        assert svc is not None
        return {"ticket_id": t.ticket_id, "number": t.number, "service": t.service,
                "waiting_ahead": issued.waiting_ahead, "est_wait_s": issued.est_wait_s,
                "offline": t.offline, "printed": printed, "service_name": svc.name,
                "service_name_en": svc.name_en, "priority": t.priority,
                "issued_at": self.queue.iso(t.issued_at), "status_url": self.status_url(t),
                "print_detail": detail, "masked_name": t.masked_name}

    def person_for(self, service: str, card: str | None) -> Person | None:
        """The card holder of a real-name ticket (``card`` is a token of idcard.py)."""
        svc = self.queue.service(service)
        if card is None:
            if svc.requires_id:
                raise Refused(f"{svc.name} 为实名取号业务，请先在读卡区放置身份证",
                                 code="card_required", field="card", why=Why.INVALID,
                                 en=f"{svc.name_en} needs your ID card: place it on the "
                                    "reader first")
            return None
        if self.cards is None:
            raise Refused("本机未配置读卡器", code="no_reader", field="card", why=Why.CONFLICT,
                             en="this kiosk has no ID-card reader")
        p = self.cards.take(card, keep=True)
        if p.expired:
            raise Refused("证件已过期，请到咨询台办理", code="card_expired_date", field="card",
                             why=Why.CONFLICT, en="This card has expired; please ask at the desk")
        return p

    def issue_ticket(self, service: str, *, priority: bool = False,
                     priority_reason: str | None = None, channel: str = "kiosk",
                     key: str | None = None, card: str | None = None,
                     extra: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Number, commit, then print. Returns (HTTP status, body).

        In central mode the number comes from the central; with no answer in time,
        from the lease, marked offline (MQTT.md, Numbering). ``card`` is the token of
        an ID card read in this flow (a real-name ticket); ``extra`` goes to
        ``QueueEngine.issue`` (id_hash, masked_name, queue_key, check_limit)."""
        route = "POST /v1/tickets"
        rh = request_hash({"service": service, "priority": priority,
                           "priority_reason": priority_reason, "channel": channel,
                           **({"card": card} if card else {})})
        prior = self.replay(key, route, rh)
        if prior is not None:
            return prior.status, self._settle_replayed_ticket(key, route, rh, prior)
        svc = self.queue.service(service)  # an unknown service is a 422 before anything
        extra = dict(extra or {})
        who = self.person_for(service, card) if "id_hash" not in extra else None
        if who is not None:
            extra.update(id_hash=who.id_hash, masked_name=who.masked_name)
            self.queue.check_person_limit(svc, who.id_hash)
        tid = str(uuid.uuid4())
        reply: NumberReply | None = None
        if self.mode == "central":
            assert self.link is not None and self.cfg.mqtt is not None
            reply = self.link.request_number(
                NumberRequest(req_id=str(uuid.uuid4()), ticket_id=tid, service=svc.id,
                              priority=priority, ts=self.queue.iso(time.time()),
                              id_hash=extra.get("id_hash") if extra.get(
                                  "check_limit", True) else None),
                self.cfg.mqtt.request_timeout_ms / 1000)
            if reply is not None and not reply.ok:
                msg = reply.error or "中心系统暂不受理该业务"
                raise Refused(f"{svc.name}：{msg}", code="central_refused",
                                 field="service", why=Why.CONFLICT, en=msg)
        with self.store.tx() as db:
            prior = self.replay(key, route, rh)  # a double tap that raced this one
            if prior is None:
                issued = self._number(db, svc.id, tid, reply, priority, priority_reason,
                                      channel, extra)
                body = self.ticket_body(issued, False, "")
                self.remember(key, route, rh, 201, body)
                ev = threading.Event()
                with self._printing_lock:
                    self._printing[issued.ticket.ticket_id] = ev
        if prior is not None:
            return prior.status, self._settle_replayed_ticket(key, route, rh, prior)
        # Committed: from here a crash loses no ticket and reuses no number.
        self.bus.publish("ticket", {"ticket_id": issued.ticket.ticket_id,
                                    "number": issued.ticket.number, "service": service,
                                    "status": "waiting", "printed": False})
        return 201, self._print_and_settle(issued, body, key, route, rh, ev)

    def _number(self, db: sqlite3.Connection, service: str, tid: str,
                reply: NumberReply | None, priority: bool, priority_reason: str | None,
                channel: str, extra: dict[str, Any] | None = None) -> Issued:
        kw: dict[str, Any] = {"priority": priority, "priority_reason": priority_reason,
                              "channel": channel, "ticket_id": tid, **(extra or {})}
        if self.numbering == "standalone":
            return self.queue.issue(service, **kw)
        if reply is not None and reply.number:
            prefix, digits = reply.number.rstrip("0123456789"), reply.number.lstrip(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if prefix == service:
                try:
                    issued = self.queue.issue(service, seq=int(digits), check_open=False, **kw)
                except sqlite3.IntegrityError:
                    log.error("central gave %s for %s, but that number was already issued "
                              "here today; using the lease instead", reply.number, service)
                else:
                    return Issued(issued.ticket,
                                  issued.waiting_ahead if reply.waiting_ahead is None
                                  else reply.waiting_ahead,
                                  issued.est_wait_s if reply.est_wait_s is None
                                  else reply.est_wait_s)
            else:
                log.error("central answered %s for a %s ticket; using the lease instead",
                          reply.number, service)
        seq = self.queue.next_leased(service, db)
        if seq is None:
            raise Refused(
                "暂时无法取号：与中心排队系统的连接中断，本机也没有可用的备用号段。"
                "请到咨询台人工取号；办事指南等其他功能可以照常使用。",
                code="no_number", field="service", why=Why.UNAVAILABLE,
                en="No number can be issued right now: the central queue is unreachable and "
                   "this kiosk has no leased numbers left. Please ask at the information desk.")
        return self.queue.issue(service, seq=seq, offline=True, **kw)

    def _print_and_settle(self, issued: Issued, body: dict[str, Any], key: str | None,
                          route: str, rh: str, ev: threading.Event) -> dict[str, Any]:
        t = issued.ticket
        try:
            result = self._print(issued)
            body = {**body, "printed": result.printed, "print_detail": result.detail}
            with self.store.tx() as db:
                self.queue.set_print_state(t.ticket_id, result.printed, result.detail, db)
                self.remember(key, route, rh, 201, body)
        finally:
            with self._printing_lock:
                self._printing.pop(t.ticket_id, None)
            ev.set()
        if result.printed:
            self.bus.publish("ticket", {"ticket_id": t.ticket_id, "number": t.number,
                                        "service": t.service, "status": "waiting",
                                        "printed": True})
        return body

    def _settle_replayed_ticket(self, key: str | None, route: str, rh: str,
                                prior: Replay) -> dict[str, Any]:
        tid = str(prior.body["ticket_id"])
        with self._printing_lock:
            ev = self._printing.get(tid)
        if ev is not None:  # the first request is still printing: answer as it will
            ev.wait(REPLAY_PRINT_WAIT_S)
            again = self.replay(key, route, rh)
            return again.body if again else prior.body
        t = self.queue.ticket(tid)
        if t.print_state != "pending":
            return prior.body
        # The agent stopped between the commit and the print: print it now.
        ev = threading.Event()
        with self._printing_lock:
            if tid in self._printing:
                ev = self._printing[tid]
                ev.wait(REPLAY_PRINT_WAIT_S)
                again = self.replay(key, route, rh)
                return again.body if again else prior.body
            self._printing[tid] = ev
        issued = Issued(t, int(prior.body["waiting_ahead"]), int(prior.body["est_wait_s"]))
        return self._print_and_settle(issued, prior.body, key, route, rh, ev)

    def _print(self, issued: Issued) -> PrintResult:
        t = issued.ticket
        if self.printer is None:
            return PrintResult(False, "本机未配置打印机 (no printer configured)",
                               DeviceHealth(Health.ABSENT, "not configured"))
        svc = self.catalog.service(t.service)
        assert svc is not None
        tp = TicketPrint(hall_name=self.cfg.hall.name, service_name=svc.name, number=t.number,
                         waiting_ahead=issued.waiting_ahead, est_wait_s=issued.est_wait_s,
                         issued_at=self.queue.local(t.issued_at), qr_url=self.status_url(t),
                         notice=self.cfg.hall.notice, offline=t.offline, priority=t.priority,
                         masked_name=t.masked_name)
        printer = self.printer
        try:
            result = self._printer_call(lambda: printer.print_ticket(tp))
        except Exception as e:  # the ticket exists: a driver bug must not lose it
            log.exception("printer driver failed on ticket %s", t.number)
            result = PrintResult(False, f"printer driver error: {e}",
                                 DeviceHealth(Health.FAULT, f"driver error: {e}"))
        self.set_health("printer", result.health)
        if not result.printed:
            log.warning("ticket %s issued but not printed: %s — it is shown on screen",
                        t.number, result.detail)
        return result

    def reprint(self, ticket_id: str) -> PrintResult:
        t = self.queue.ticket(ticket_id)
        if t.status not in ("waiting", "called"):
            raise Refused(f"{t.number} 已结束，不再补打", code="ticket_closed",
                             field="ticket_id", why=Why.CONFLICT)
        ahead = self.queue.waiting_ahead(t)
        issued = Issued(t, ahead, self.queue.estimate_wait(t.service, ahead))
        result = self._print(issued)
        with self.store.tx() as db:
            self.queue.set_print_state(ticket_id, result.printed, result.detail, db)
            self.store.add_event(db, "ticket.reprinted",
                                 {"ticket_id": ticket_id, "number": t.number,
                                  "printed": result.printed},
                                 ts_iso=self.queue.iso(time.time()), offline=t.offline)
        return result

    def test_print(self) -> PrintResult:
        if self.printer is None:
            return PrintResult(False, "本机未配置打印机 (no printer configured)",
                               DeviceHealth(Health.ABSENT, "not configured"))
        result = self._printer_call(self.printer.test_print)
        self.set_health("printer", result.health)
        return result

    def print_receipt(self, r: Receipt) -> PrintResult:
        """A self-service result or a booking slip on the ticket printer."""
        if self.printer is None:
            return PrintResult(False, "本机未配置打印机 (no printer configured)",
                               DeviceHealth(Health.ABSENT, "not configured"))
        printer = self.printer
        try:
            result = self._printer_call(lambda: printer.print_receipt(r))
        except Exception as e:  # a driver bug must not fail the flow that asked
            log.exception("printer driver failed on a receipt")
            result = PrintResult(False, f"printer driver error: {e}",
                                 DeviceHealth(Health.FAULT, f"driver error: {e}"))
        self.set_health("printer", result.health)
        return result

    def printer_status(self) -> DeviceHealth:
        if self.printer is None:
            return DeviceHealth(Health.ABSENT, "not configured")
        try:
            h = self.supervisor.call("printer", self.printer.refresh)
        except DeviceTimeout as e:
            h = DeviceHealth(Health.FAULT, str(e))
        self.set_health("printer", h)
        return h

    # ------------------------------------------------------------------ calls

    def call_body(self, c: Call) -> dict[str, Any]:
        t = c.ticket
        return {"call_id": c.call_id, "ticket": t.number if t else None,
                "ticket_id": t.ticket_id if t else None, "window": c.window,
                "service": t.service if t else None, "kind": c.kind,
                "ts": self.queue.iso(c.ts)}

    def call(self, window: str, kind: str) -> dict[str, Any]:
        c = self.queue.recall(window) if kind == "recall" else self.queue.call_next(window)
        body = self.call_body(c)
        if c.ticket is not None:
            self.bus.publish("call", body)
            self.bus.publish("ticket", {"ticket_id": c.ticket.ticket_id,
                                        "number": c.ticket.number, "service": c.ticket.service,
                                        "status": "called", "printed":
                                        c.ticket.print_state == "printed"})
        return body

    # ------------------------------------------------------------------ central (MQTT)

    def on_central_call(self, c: CentralCall) -> None:
        """A call from the central: shown once per call_id, even across restarts."""
        now = time.time()
        with self.store.tx() as db:
            t = db.execute("SELECT ticket_id FROM tickets WHERE number = ? AND status IN "
                           "('waiting', 'called') ORDER BY issued_at DESC LIMIT 1",
                           (c.ticket,)).fetchone()
            tid = t[0] if t else None
            cur = db.execute("INSERT OR IGNORE INTO calls (call_id, ticket_id, number, window, "
                             "service, kind, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (c.call_id, tid, c.ticket, c.window, c.service, c.kind, now))
            if cur.rowcount == 0:
                log.info("central call %s (%s → window %s) already shown; ignored",
                         c.call_id, c.ticket, c.window)
                return
            if tid is not None:  # one of ours: keep the local view in step
                db.execute("UPDATE tickets SET status = 'called', window = ?, called_at = "
                           "COALESCE(called_at, ?), calls = calls + 1 WHERE ticket_id = ?",
                           (c.window, now, tid))
            self.store.add_event(db, "call.shown", {
                "call_id": c.call_id, "ticket": c.ticket, "window": c.window,
                "service": c.service, "kind": c.kind}, ts_iso=self.queue.iso(now))
        self.bus.publish("call", {"call_id": c.call_id, "ticket": c.ticket, "ticket_id": tid,
                                  "window": c.window, "service": c.service, "kind": c.kind,
                                  "ts": self.queue.iso(now)})

    STAFF_KEYS: ClassVar[dict[int, str]] = {0x11: "call_next", 0x12: "recall", 0x13: "pause",
                                            0x15: "no_show"}

    def on_staff_key(self, window: str, key: int) -> bool:
        """Central mode: a clerk's key on the evaluator goes to the central as a
        ``staff.key`` event (docs/mqtt-extensions.md); the central decides and calls."""
        action = self.STAFF_KEYS.get(key)
        if action is None:
            return False
        with self.store.tx() as db:
            self.store.add_event(db, "staff.key", {"window": window, "action": action},
                                 ts_iso=self.queue.iso(time.time()))
        log.info("window %s: staff key %s sent to the central queue", window, action)
        return True

    def on_lease(self, lease: Lease) -> None:
        blocks = [(b.service, b.from_, b.to) for b in lease.blocks]
        self.queue.set_lease(lease.day, blocks)
        if (lease.day, blocks) != self._last_lease:  # the retained lease returns at reconnect
            self._last_lease = (lease.day, blocks)
            log.info("lease for %s: %s", lease.day,
                     ", ".join(f"{s}{lo}-{hi}" for s, lo, hi in blocks) or "none")

    def on_central_queue(self, q: CentralQueue) -> None:
        self.central_queue = q

    def on_central_satisfaction(self, s: Satisfaction) -> None:
        self.central_satisfaction = s

    def satisfaction(self) -> dict[str, dict[str, int]]:
        """Today's ratings per window for the live board: the central's hall-wide figures
        in central mode (every window's evaluators, not only ours), else our own."""
        s = self.central_satisfaction
        if self.numbering == "central" and s is not None and s.day == self.queue.today():
            return {w: {str(k): v for k, v in levels.items()} for w, levels in s.windows.items()}
        return self.queue.satisfaction()

    def on_mode(self, mode: str) -> None:
        self.bus.publish("device", {"device": "mqtt", "status": self.link.describe().status.value
                                    if self.link else "absent", "detail": f"mode {mode}"})

    def on_command(self, cmd: Command) -> tuple[bool, str]:
        """Remote commands (A/cmd), each at most once per cmd_id."""
        route = "mqtt A/cmd"
        rh = request_hash(cmd.model_dump())
        prior = self.replay(cmd.cmd_id, route, rh)
        if prior is not None:
            return bool(prior.body["ok"]), str(prior.body["detail"])
        ok, detail = self._run_command(cmd)
        self.remember(cmd.cmd_id, route, rh, 200, {"ok": ok, "detail": detail})
        return ok, detail

    def _run_command(self, cmd: Command) -> tuple[bool, str]:
        if cmd.name == "reprint":
            tid = str(cmd.args.get("ticket_id", ""))
            try:
                r = self.reprint(tid)
            except Refused as e:
                return False, str(e)
            return r.printed, r.detail or "reprinted"
        if cmd.name == "test_print":
            r = self.test_print()
            return r.printed, r.detail or "test page printed"
        if cmd.name == "set_mode":
            mode = cmd.args.get("mode")
            if mode not in ("central", "standalone"):
                return False, "args.mode must be \"central\" or \"standalone\""
            self.store.meta_set("numbering", str(mode))
            if self.link is not None:
                self.link.publish_birth()
            return True, f"numbering is now {mode}"
        if cmd.name == "reload":
            try:
                catalog = load_catalog(self.cfg.catalog_path)
            except HallEdgeError as e:
                return False, str(e)
            self.catalog = catalog
            self.queue.catalog = catalog
            return True, f"catalogue reloaded: {len(catalog.services)} services"
        return False, f"unknown command {cmd.name}"
