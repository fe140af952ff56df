"""The clerks' desk: every action a window takes, on the central's queue (thread-safe).

This is the interface between hall-central's queue and its web side (central/web)
and the evaluators' staff keys (arriving as ``staff.key`` events over MQTT). The
console, the JSON API and the keys are the same actions, recorded the same way.

Usage (the web app gets the running desk from the service: ``create_app(desk)``)::

    me = Actor("clerk-007", "console")           # staff id + "console"|"evaluator"|"api"
    view = desk.call_next("5", me)                # -> WindowView
    desk.recall("5", me); desk.no_show("5", me); desk.finish("5", me)
    desk.call("5", me, "A023")                    # a chosen waiting ticket (number or id)
    desk.transfer("5", me, service="B")           # or window="6"; first=True|False|None
    desk.park("5", me); desk.call_back("5", me, "A023")
    desk.pause("5", me, "午休"); desk.resume("5", me)
    desk.view("5"); desk.hall(); desk.ticket_status(ticket_id)
    desk.audit(window="5", day="2026-11-30")      # who, when, what
    desk.set_notice("今天 16:00 停止取号", me)
    for change in desk.bus.subscribe(): ...        # or: async for text in desk.bus.stream()

Each action:
- acts on the ticket the window is serving (or the one named), in **one store
  transaction** that also writes its audit row (who, when, what): after a SIGKILL
  either both are there or neither;
- returns the window's resulting :class:`~central.views.WindowView`, or raises
  :class:`~hall_agent.core.refusal.Refused` (``code``, Chinese ``str(e)``,
  ``message_en``, ``field``, ``why``) before writing anything, for an unknown window
  or ticket or a forbidden move (paused window, recall too soon, nothing served…);
- takes an optional ``op_id`` (an ``Idempotency-Key``, a staff key's ``msg_id``): an
  action whose ``op_id`` was already done is not done again, it returns the view;
- after the commit, publishes its changes on :attr:`Desk.bus` (central/bus.py):
  ``call`` (each call and recall, which the service sends as ``P/central/call``),
  ``window``, ``queue``, ``ticket``.

Permissions (which staff may act on which window) are the web side's (central/auth.py);
the desk trusts its caller. The call order and the rules are central/rules.py.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from central.bus import Bus
from central.config import QueueRules
from central.rules import Rules
from central.views import (
    Actor,
    AuditEntry,
    HallCall,
    HallService,
    HallView,
    HallWindow,
    Parked,
    Serving,
    Tally,
    TicketStatus,
    Waiting,
    WindowView,
)
from hall_agent.contract.catalog import Catalog
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store

Db = sqlite3.Connection
Satisfaction = Callable[[], dict[str, dict[str, int]]]
NOTICE_MAX = 200


class Desk:
    def __init__(self, store: Store, engine: QueueEngine, catalog: Catalog,
                 rules: QueueRules, bus: Bus | None = None,
                 satisfaction: Satisfaction | None = None) -> None:
        self.store = store
        self.engine = engine
        self.catalog = catalog
        self.bus = bus or Bus()
        self.rules = Rules(store, engine, catalog, rules)
        self._satisfaction = satisfaction or (lambda: {})

    # ------------------------------------------------------------------ actions

    def call_next(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        """Finish the ticket in front of the window and call the next (priority first,
        the interleave of ``[central.queue]`` applied); nobody waiting is not an error."""
        return self._act(window, actor, "call_next", op_id, lambda db, now: self.rules
                         .call_next(db, window, now))

    def call(self, window: str, actor: Actor, ticket: str, *,
             op_id: str | None = None) -> WindowView:
        """Call a chosen waiting ticket (its number today, or its ticket_id) that this
        window serves."""
        return self._act(window, actor, "call", op_id, lambda db, now: self.rules
                         .call_chosen(db, window, ticket, now))

    def recall(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        """Call the ticket in front of the window again (at most ``recall_max`` times,
        ``recall_min_interval_s`` apart); past ``no_show_after_recalls`` it is marked
        no-show and the next ticket is called instead."""
        return self._act(window, actor, "recall", op_id, lambda db, now: self.rules
                         .recall(db, window, now))

    def no_show(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        return self._act(window, actor, "no_show", op_id, lambda db, now: self.rules
                         .end(db, window, "no_show", now))

    def finish(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        return self._act(window, actor, "finish", op_id, lambda db, now: self.rules
                         .end(db, window, "done", now))

    def transfer(self, window: str, actor: Actor, *, service: str | None = None,
                 to_window: str | None = None, first: bool | None = None,
                 op_id: str | None = None) -> WindowView:
        """Send the ticket in front of the window to another service's queue or to
        one window; it keeps its place by issue time, or goes to the front
        (``first``; None = ``[central.queue] transfer_first``)."""
        go_first = self.rules.cfg.transfer_first if first is None else first
        return self._act(window, actor, "transfer", op_id, lambda db, now: self.rules
                         .transfer(db, window, service, to_window, go_first, now))

    def park(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        """Set the ticket in front of the window aside (the citizen fetches a paper);
        it is not called again until the window calls it back."""
        return self._act(window, actor, "park", op_id, lambda db, now: self.rules
                         .park(db, window, now))

    def call_back(self, window: str, actor: Actor, ticket: str, *,
                  op_id: str | None = None) -> WindowView:
        """Call a ticket this window parked."""
        return self._act(window, actor, "call_back", op_id, lambda db, now: self.rules
                         .call_back(db, window, ticket, now))

    def pause(self, window: str, actor: Actor, reason: str, *,
              op_id: str | None = None) -> WindowView:
        """Stop calling (the ticket in front is finished first); ``reason`` is shown."""
        reason = (reason or "").strip()
        if not reason or len(reason) > 40:
            raise Refused("请填写暂停原因（1 至 40 个字）", code="bad_reason", field="reason",
                          why=Why.INVALID, en="give a reason for the pause (1 to 40 characters)")
        return self._act(window, actor, "pause", op_id, lambda db, now: self.rules
                         .pause(db, window, reason, now))

    def resume(self, window: str, actor: Actor, *, op_id: str | None = None) -> WindowView:
        return self._act(window, actor, "resume", op_id, lambda db, now: self.rules
                         .resume(db, window))

    def set_notice(self, text: str, actor: Actor, *, op_id: str | None = None) -> HallView:
        """The hall's notice on the TV ("" clears it)."""
        text = (text or "").strip()
        if len(text) > NOTICE_MAX:
            raise Refused(f"公告最多 {NOTICE_MAX} 个字", code="bad_notice", field="text",
                          why=Why.INVALID, en=f"the notice is at most {NOTICE_MAX} characters")
        now = self.engine.clock()
        with self.store.tx() as db:
            if op_id is None or not self._done_before(db, op_id):
                db.execute("INSERT INTO meta (key, value) VALUES ('central_notice', ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (text,))
                self._audit(db, now, None, actor, "notice", None, {"text": text}, op_id)
                self.store.after_commit(lambda: self.bus.publish("notice", {"text": text}))
        return self.hall()

    # ------------------------------------------------------------------ reading

    def view(self, window: str) -> WindowView:
        self.engine.window_state(window)  # an unknown window: Refused
        with self.store.tx() as db:
            return self._view(db, window)

    def hall(self) -> HallView:
        now = self.engine.clock()
        services, windows, _ = self.engine.snapshot()
        with self.store.tx() as db:
            rows = db.execute("SELECT call_id, number, window, service, kind, ts FROM calls "
                              "WHERE number IS NOT NULL ORDER BY ts DESC LIMIT 10").fetchall()
            reasons = dict(db.execute("SELECT window, pause_reason FROM window_rules"
                                      ).fetchall())
            notice = db.execute("SELECT value FROM meta WHERE key = 'central_notice'"
                                ).fetchone()
        calls = [HallCall(r["call_id"], r["number"], r["window"], r["service"], r["kind"],
                          r["kind"] == "recall", self.engine.iso(r["ts"])) for r in rows]
        hw = []
        for w in self.catalog.windows:
            st = windows[w.id]
            hw.append(HallWindow(w.id, w.name, st.paused,
                                 reasons.get(w.id) if st.paused else None,
                                 st.serving.number if st.serving else None,
                                 st.serving.service if st.serving else None))
        hs = [HallService(s.id, s.name, s.name_en, services[s.id].open_now,
                          services[s.id].waiting, services[s.id].est_wait_s)
              for s in self.catalog.services]
        return HallView(self.engine.iso(now), self.engine.today(), calls, hw, hs,
                        self._satisfaction(), notice[0] if notice else "")

    def ticket_status(self, ticket_id: str) -> TicketStatus:
        """One ticket as its citizen sees it (the ticket page ``/t/{token}``)."""
        with self.store.tx() as db:
            t = self.engine._ticket(db, ticket_id)  # Refused unknown_ticket
            ahead = self.rules.ahead(db, t.ticket_id) if t.status == "waiting" else 0
            est = self.engine.estimate_wait(t.service, ahead, db) if ahead else 0
        svc = self.catalog.service(t.service)
        return TicketStatus(
            t.ticket_id, t.number, t.service, svc.name if svc else t.service,
            svc.name_en if svc else t.service, t.status, ahead, est, t.window,
            self.engine.iso(t.called_at) if t.called_at else None,
            self.engine.iso(t.issued_at), t.day)

    def audit(self, window: str | None = None, day: str | None = None,
              limit: int = 5000) -> list[AuditEntry]:
        """The day's actions (of one window, or every one), oldest first."""
        sql, args = "SELECT * FROM audit WHERE day = ?", [day or self.engine.today()]
        if window is not None:
            sql += " AND window = ?"
            args.append(window)
        rows = self.store.query(sql + " ORDER BY id LIMIT ?", (*args, limit))
        return [AuditEntry(r["id"], self.engine.iso(r["ts"]), r["day"], r["window"],
                           r["staff"], r["channel"], r["action"], r["ticket_id"], r["number"],
                           json.loads(r["detail"])) for r in rows]

    # ------------------------------------------------------------------ plumbing

    def _act(self, window: str, actor: Actor, action: str, op_id: str | None,
             fn: Callable[[Db, float], Any]) -> WindowView:
        self.engine.window_state(window)  # an unknown window: Refused, nothing written
        now = self.engine.clock()
        with self.store.tx() as db:
            if op_id is not None and self._done_before(db, op_id):
                return self._view(db, window)
            outcome = fn(db, now)
            self._audit(db, now, window, actor, outcome.action or action,
                        outcome.ticket, outcome.detail, op_id)
            changes = [("call", c) for c in outcome.calls] + [
                ("window", {"window": window, "action": outcome.action or action,
                            "staff": actor.staff, "channel": actor.channel,
                            "ts": self.engine.iso(now)}),
                ("queue", {"ts": self.engine.iso(now)})]
            changes += [("ticket", {"ticket_id": tid, "status": st})
                        for tid, st in outcome.tickets]
            self.store.after_commit(lambda: self._publish(changes))
            return self._view(db, window)

    def _publish(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, data in changes:
            self.bus.publish(kind, data)

    def _done_before(self, db: Db, op_id: str) -> bool:
        return db.execute("SELECT 1 FROM audit WHERE op_id = ?", (op_id,)).fetchone() is not None

    def _audit(self, db: Db, now: float, window: str | None, actor: Actor, action: str,
               ticket: tuple[str, str] | None, detail: dict[str, Any],
               op_id: str | None) -> None:
        db.execute("INSERT INTO audit (ts, day, window, staff, channel, action, ticket_id, "
                   "number, detail, op_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (now, self.engine.local(now).date().isoformat(), window, actor.staff,
                    actor.channel, action, ticket[0] if ticket else None,
                    ticket[1] if ticket else None, json.dumps(detail, ensure_ascii=False),
                    op_id))

    def _view(self, db: Db, window: str) -> WindowView:
        now = self.engine.clock()
        w = self.catalog.window(window)
        assert w is not None
        st = self.engine.window_state(window, db)
        rule = db.execute("SELECT pause_reason FROM window_rules WHERE window = ?",
                          (window,)).fetchone()
        serving = None
        if st.serving is not None:
            t = st.serving
            r = db.execute("SELECT recalls, last_call_at FROM ticket_rules WHERE ticket_id = ?",
                           (t.ticket_id,)).fetchone()
            last = r["last_call_at"] if r and r["last_call_at"] else t.called_at or now
            serving = Serving(t.ticket_id, t.number, t.service, t.priority,
                              self.engine.iso(t.called_at or now), r["recalls"] if r else 0,
                              self.engine.iso(last))
        order = self.rules.order(db, window, limit=200)
        waiting = [Waiting(r["ticket_id"], r["number"], r["service"], bool(r["priority"]),
                           self.engine.iso(r["issued_at"]), max(0, round(now - r["issued_at"])),
                           bool(r["offline"]), bool(r["first"]), r["target_window"])
                   for r in order]
        nxt = self.rules.peek_next(db, window)
        parked = [Parked(r["ticket_id"], r["number"], r["service"],
                         self.engine.iso(r["parked_at"] or now)) for r in db.execute(
            "SELECT t.ticket_id, t.number, t.service, r.parked_at FROM tickets t JOIN "
            "ticket_rules r USING (ticket_id) WHERE t.status = 'parked' AND t.window = ? "
            "ORDER BY r.parked_at", (window,))]
        return WindowView(window, w.name, list(w.services), st.paused,
                          rule["pause_reason"] if rule and st.paused else None, serving,
                          nxt, waiting, self.rules.count_waiting(db, window), parked,
                          self._tally(db, window))

    def _tally(self, db: Db, window: str) -> Tally:
        day = self.engine.today()
        acts = dict(db.execute("SELECT action, COUNT(*) FROM audit WHERE window = ? AND day = ? "
                               "GROUP BY action", (window, day)).fetchall())
        called = db.execute("SELECT COUNT(*) FROM calls WHERE window = ? AND kind = 'call' "
                            "AND ticket_id IS NOT NULL AND ts >= ?",
                            (window, self.rules.day_start())).fetchone()[0]
        recalls = db.execute("SELECT COUNT(*) FROM calls WHERE window = ? AND kind = 'recall' "
                             "AND ts >= ?", (window, self.rules.day_start())).fetchone()[0]
        done, avg = db.execute(
            "SELECT COUNT(*), AVG(finished_at - called_at) FROM tickets WHERE window = ? AND "
            "status = 'done' AND finished_at >= ? AND called_at IS NOT NULL",
            (window, self.rules.day_start())).fetchone()
        no_show = db.execute("SELECT COUNT(*) FROM tickets WHERE window = ? AND status = "
                             "'no_show' AND finished_at >= ?",
                             (window, self.rules.day_start())).fetchone()[0]
        return Tally(int(called), int(done), int(no_show), int(acts.get("transfer", 0)),
                     int(acts.get("park", 0)), int(recalls),
                     None if avg is None else round(avg))


def new_op_id() -> str:
    return str(uuid.uuid4())
