"""The ticket desk: number, commit, then print — with nothing lost on the way.

A ticket is committed before it is printed, so a SIGKILL after the commit loses
no ticket and reuses no number; a repeated request (a double tap, a retry after
the agent restarted) gets the first answer, and a ticket the agent never got to
print is printed then. In central mode the number comes from the central; with no
answer in time, from the lease, marked offline (MQTT.md, Numbering). The request is
written down before the central is asked and crossed off in the ticket's commit: a
number the central gave to a ticket that was never committed (a SIGKILL while the kiosk
waited, a ticket refused after the answer) is reported void (``ticket.voided``,
docs/mqtt-extensions.md), so the central never calls a number no citizen holds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from drivers.types import PrintResult, TicketPrint
from hall_agent.contract.api import TicketOut
from hall_agent.contract.config import Config
from hall_agent.contract.mqtt import AnyRequest, NumberReply, NumberRequest
from hall_agent.contract.ticket_token import ticket_token
from hall_agent.core.idempotency import Idempotency, Replay, request_hash
from hall_agent.core.model import Issued, Ticket
from hall_agent.core.personal import Person
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store
from hall_agent.services.ports import CardHolder, Events, ModeView
from hall_agent.services.printing import PrintDesk

log = logging.getLogger("hall_agent")

ROUTE = "POST /v1/tickets"
# How long a repeated request (same Idempotency-Key) waits for the first one's
# print to finish before answering with what is known.
REPLAY_PRINT_WAIT_S = 15.0
VOIDED = "ticket.voided"  # docs/mqtt-extensions.md


class NumberSource(Protocol):
    """The central, asked for a number (hall_agent.link.mqtt.MqttLink)."""

    def request_number(self, req: AnyRequest, timeout_s: float) -> NumberReply | None: ...


@dataclass(frozen=True)
class TicketNeeds:
    cfg: Config
    store: Store
    queue: QueueEngine
    idem: Idempotency
    events: Events
    mode: ModeView
    printing: PrintDesk
    central: NumberSource | None
    cards: CardHolder | None
    secret: bytes = b""  # the hall secret: the {token} of status_url (contract/ticket_token.py)


class TicketDesk:
    def __init__(self, needs: TicketNeeds) -> None:
        self.n = needs
        self._printing: dict[str, threading.Event] = {}
        self._printing_lock = threading.Lock()
        self.void_orphans()

    # ------------------------------------------------------------------ views

    def status_url(self, t: Ticket) -> str:
        h = self.n.cfg.hall
        url = (h.status_url.replace("{hall}", h.id)
               .replace("{ticket_id}", t.ticket_id).replace("{number}", t.number))
        if "{token}" in url:
            url = url.replace("{token}", ticket_token(self.n.secret, t.ticket_id, t.day))
        return url

    def answer(self, issued: Issued, printed: bool, detail: str) -> TicketOut:
        t = issued.ticket
        svc = self.n.queue.service(t.service)
        return TicketOut(
            ticket_id=t.ticket_id, number=t.number, service=t.service,
            waiting_ahead=issued.waiting_ahead, est_wait_s=issued.est_wait_s,
            offline=t.offline, printed=printed, service_name=svc.name,
            service_name_en=svc.name_en, priority=t.priority,
            issued_at=self.n.queue.iso(t.issued_at), status_url=self.status_url(t),
            print_detail=detail, masked_name=t.masked_name)

    def _published(self, t: Ticket, status: str, printed: bool) -> None:
        self.n.store.after_commit(lambda: self.n.events.publish("ticket", {
            "ticket_id": t.ticket_id, "number": t.number, "service": t.service,
            "status": status, "printed": printed}))

    # ------------------------------------------------------------------ issue

    def person_for(self, service: str, card: str | None) -> Person | None:
        """The card holder of a real-name ticket (``card`` is a token of services/cards)."""
        svc = self.n.queue.service(service)
        if card is None:
            if svc.requires_id:
                raise Refused(f"{svc.name} 为实名取号业务，请先在读卡区放置身份证",
                              code="card_required", field="card", why=Why.INVALID,
                              en=f"{svc.name_en} needs your ID card: place it on the "
                                 "reader first")
            return None
        if self.n.cards is None:
            raise Refused("本机未配置读卡器", code="no_reader", field="card", why=Why.CONFLICT,
                          en="this kiosk has no ID-card reader")
        p = self.n.cards.take(card, keep=True)
        if p.expired:
            raise Refused("证件已过期，请到咨询台办理", code="card_expired_date", field="card",
                          why=Why.CONFLICT, en="This card has expired; please ask at the desk")
        return p

    def issue(self, service: str, *, priority: bool = False,
              priority_reason: str | None = None, channel: str = "kiosk",
              key: str | None = None, card: str | None = None,
              extra: dict[str, Any] | None = None, lang: str = "zh") -> TicketOut:
        """Number, commit, then print. ``card`` is the token of an ID card read in this
        flow (a real-name ticket); ``extra`` goes to ``QueueEngine.issue`` (id_hash,
        masked_name, queue_key, check_limit). ``lang`` "en": the paper ticket carries
        English lines too (TicketPrint.lang)."""
        n = self.n
        rh = request_hash({"service": service, "priority": priority,
                           "priority_reason": priority_reason, "channel": channel,
                           **({"card": card} if card else {})})
        prior = n.idem.replay(key, ROUTE, rh)
        if prior is not None:
            return self._settle_replayed(key, rh, prior)
        svc = n.queue.service(service)  # an unknown service is refused before anything
        extra = dict(extra or {})
        who = self.person_for(service, card) if "id_hash" not in extra else None
        if who is not None:
            extra.update(id_hash=who.id_hash, masked_name=who.masked_name)
            n.queue.check_person_limit(svc, who.id_hash)
        tid = str(uuid.uuid4())
        reply: NumberReply | None = None
        asked: NumberRequest | None = None
        if n.mode.mode == "central":
            assert n.central is not None and n.cfg.mqtt is not None
            asked = NumberRequest(req_id=str(uuid.uuid4()), ticket_id=tid, service=svc.id,
                                  priority=priority, ts=n.queue.iso(time.time()),
                                  id_hash=extra.get("id_hash") if extra.get(
                                      "check_limit", True) else None)
            self._asking(asked)
            try:
                reply = n.central.request_number(asked, n.cfg.mqtt.request_timeout_ms / 1000)
            except BaseException:
                self._void(asked, None, "asking the central failed")
                raise
            if reply is not None and not reply.ok:
                self._void(asked, None, None)  # refused: the central gave no number
                msg = reply.error or "中心系统暂不受理该业务"
                raise Refused(f"{svc.name}：{msg}", code="central_refused",
                              field="service", why=Why.CONFLICT, en=msg)
        try:
            with n.store.tx() as db:
                prior = n.idem.replay(key, ROUTE, rh)  # a double tap that raced this one
                if prior is None:
                    issued = self._number(db, svc.id, tid, reply, priority, priority_reason,
                                          channel, extra)
                    db.execute("DELETE FROM number_requests WHERE ticket_id = ?", (tid,))
                    body = self.answer(issued, False, "")
                    n.idem.remember(key, ROUTE, rh, 201, body.model_dump())
                    ev = threading.Event()
                    with self._printing_lock:
                        self._printing[issued.ticket.ticket_id] = ev
                    self._published(issued.ticket, "waiting", False)
        except BaseException:
            if asked is not None:
                self._void(asked, reply, "the ticket was not issued")
            raise
        if prior is not None:
            if asked is not None:
                self._void(asked, reply, "a repeated request got the first ticket")
            return self._settle_replayed(key, rh, prior)
        # Committed: from here a crash loses no ticket and reuses no number.
        return self._print_and_settle(issued, body, key, rh, ev, lang)

    def _number(self, db: sqlite3.Connection, service: str, tid: str,
                reply: NumberReply | None, priority: bool, priority_reason: str | None,
                channel: str, extra: dict[str, Any]) -> Issued:
        q = self.n.queue
        kw: dict[str, Any] = {"priority": priority, "priority_reason": priority_reason,
                              "channel": channel, "ticket_id": tid, **extra}
        if self.n.mode.numbering == "standalone":
            return q.issue(service, **kw)
        if reply is not None and reply.number:
            prefix = reply.number.rstrip("0123456789")
            digits = reply.number.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if prefix == service:
                try:
                    issued = q.issue(service, seq=int(digits), check_open=False, **kw)
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
        seq = q.leases.next_leased(service, db)
        if seq is None:
            raise Refused(
                "暂时无法取号：与中心排队系统的连接中断，本机也没有可用的备用号段。"
                "请到咨询台人工取号；办事指南等其他功能可以照常使用。",
                code="no_number", field="service", why=Why.UNAVAILABLE,
                en="No number can be issued right now: the central queue is unreachable and "
                   "this kiosk has no leased numbers left. Please ask at the information desk.")
        return q.issue(service, seq=seq, offline=True, **kw)

    # ------------------------------------------------------------------ void numbers

    def _asking(self, req: NumberRequest) -> None:
        """Written (and synced) before the central is asked: a crash from here to the
        ticket's commit leaves a row that the next start voids."""
        with self.n.store.tx() as db:
            db.execute("INSERT OR REPLACE INTO number_requests (ticket_id, req_id, service, "
                       "ts) VALUES (?, ?, ?, ?)",
                       (req.ticket_id, req.req_id, req.service, time.time()))

    def _void(self, req: NumberRequest, reply: NumberReply | None, why: str | None) -> None:
        """Cross the request off; unless ``why`` is None (the central refused: it gave
        no number), tell the central its number for the ticket is void, once (the
        event and the crossing-off are one transaction)."""
        with self.n.store.tx() as db:
            gone = db.execute("DELETE FROM number_requests WHERE ticket_id = ?",
                              (req.ticket_id,)).rowcount
            committed = db.execute("SELECT 1 FROM tickets WHERE ticket_id = ?",
                                   (req.ticket_id,)).fetchone()
            if not gone or committed or why is None:
                return
            data = {"ticket_id": req.ticket_id, "req_id": req.req_id,
                    "service": req.service, "reason": why}
            if reply is not None and reply.number:
                data["number"] = reply.number
            self.n.store.outbox.add(db, VOIDED, data, ts_iso=self.n.queue.iso(time.time()))
        log.warning("ticket %s (%s): the central's number is void: %s", req.ticket_id,
                    req.service, why)

    def void_orphans(self) -> int:
        """At start: number requests of the last run whose ticket was never committed
        (the agent stopped while the kiosk waited for the central) are voided."""
        rows = self.n.store.query("SELECT ticket_id, req_id, service, ts FROM "
                                  "number_requests")
        for r in rows:
            self._void(NumberRequest(req_id=r["req_id"], ticket_id=r["ticket_id"],
                                     service=r["service"], ts=self.n.queue.iso(r["ts"])),
                       None, "the agent stopped before the ticket was committed")
        return len(rows)

    # ------------------------------------------------------------------ print

    def _print_and_settle(self, issued: Issued, body: TicketOut, key: str | None, rh: str,
                          ev: threading.Event, lang: str = "zh") -> TicketOut:
        t = issued.ticket
        try:
            result = self.print(issued, lang)
            body = body.model_copy(update={"printed": result.printed,
                                           "print_detail": result.detail})
            with self.n.store.tx() as db:
                self.n.queue.set_print_state(t.ticket_id, result.printed, result.detail, db)
                self.n.idem.remember(key, ROUTE, rh, 201, body.model_dump())
                if result.printed:
                    self._published(t, "waiting", True)
        finally:
            with self._printing_lock:
                self._printing.pop(t.ticket_id, None)
            ev.set()
        return body

    def _settle_replayed(self, key: str | None, rh: str, prior: Replay) -> TicketOut:
        first = TicketOut(**prior.body)
        tid = first.ticket_id
        # Never the store's lock inside the printing lock: issue() nests them the other way.
        with self._printing_lock:
            ev = self._printing.get(tid)
        mine = False
        if ev is None:
            if self.n.queue.ticket(tid).print_state != "pending":
                return first
            # The agent stopped between the commit and the print: print it now.
            with self._printing_lock:
                ev = self._printing.get(tid)
                if ev is None:
                    ev = self._printing[tid] = threading.Event()
                    mine = True
        if not mine:  # the first request is still printing: answer as it will
            ev.wait(REPLAY_PRINT_WAIT_S)
            again = self.n.idem.replay(key, ROUTE, rh)
            return TicketOut(**again.body) if again else first
        t = self.n.queue.ticket(tid)
        issued = Issued(t, first.waiting_ahead, first.est_wait_s)
        return self._print_and_settle(issued, first, key, rh, ev)

    def print(self, issued: Issued, lang: str = "zh") -> PrintResult:
        t = issued.ticket
        svc = self.n.queue.service(t.service)
        h = self.n.cfg.hall
        return self.n.printing.print_ticket(TicketPrint(
            hall_name=h.name, service_name=svc.name, number=t.number,
            waiting_ahead=issued.waiting_ahead, est_wait_s=issued.est_wait_s,
            issued_at=self.n.queue.local(t.issued_at), qr_url=self.status_url(t),
            notice=h.notice, offline=t.offline, priority=t.priority,
            masked_name=t.masked_name, lang="en" if lang == "en" else "zh",
            service_name_en=svc.name_en))

    def reprint(self, ticket_id: str) -> PrintResult:
        q = self.n.queue
        t = q.ticket(ticket_id)
        if t.status not in ("waiting", "called"):
            raise Refused(f"{t.number} 已结束，不再补打", code="ticket_closed",
                          field="ticket_id", why=Why.CONFLICT,
                          en=f"{t.number} is finished; it is not printed again")
        ahead = q.waiting_ahead(t)
        result = self.print(Issued(t, ahead, q.estimate_wait(t.service, ahead)))
        with self.n.store.tx() as db:
            q.set_print_state(ticket_id, result.printed, result.detail, db)
            self.n.store.outbox.add(db, "ticket.reprinted",
                                   {"ticket_id": ticket_id, "number": t.number,
                                    "printed": result.printed},
                                   ts_iso=q.iso(time.time()), offline=t.offline)
        return result
