"""The queue engine: numbering, calling and the hall's rules, on top of the store.

One engine serves the standalone agent and the central stand-in (sim/central).
Every operation is one store transaction: it reads, decides and writes under the
store's lock, and writes the event that reports it in the same commit.

Rules (DOMAIN.md, "当日取号、当日受理"):
- numbers are per service prefix and per hall-local day (``A001``…), reset at
  local midnight; a number is never issued twice on a day (UNIQUE in the store);
- a window calls priority tickets first, then by its own service order, then
  the oldest; tickets of an earlier day still waiting are served, never dropped;
- a service takes tickets only within its hours and below its daily limit;
- the wait estimate comes from the day's measured service times, and falls back
  to the catalogue's ``avg_service_s`` until the day has measured some.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hall_agent.contract.catalog import Catalog, Service
from hall_agent.core.clock import ClockGuard
from hall_agent.core.estimate import Estimates
from hall_agent.core.leases import Leases
from hall_agent.core.model import (
    Call,
    Evaluation,
    Issued,
    ServiceState,
    Ticket,
    WindowState,
    format_number,
)
from hall_agent.core.ratings import Ratings
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store


class QueueEngine(Estimates):
    """``guard`` judges the wall clock (core/clock.py): without one it is always believed
    (the central stand-in). ``mono`` (steady, never stepped) measures service times
    (core/estimate.py)."""

    def __init__(self, store: Store, catalog: Catalog, tz: ZoneInfo,
                 clock: Callable[[], float] = time.time, *, guard: ClockGuard | None = None,
                 mono: Callable[[], float] | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.tz = tz
        self.clock = clock
        self.guard = guard
        # An injected wall clock (a test's) is also the steady one unless told otherwise.
        self.mono = mono or (time.monotonic if clock is time.time else clock)
        self._called_mono: dict[str, float] = {}  # ticket_id -> monotonic time of its call
        self.leases = Leases(store, self.today)
        self.ratings = Ratings(store, tz, lambda: self.clock(), self._window)
        # Told of every ticket whose visit ended (done or no-show), after the commit.
        self.on_finished: Callable[[Ticket], None] = lambda t: None
        # Told of a new call inside its transaction, before anything can see it (the
        # boards count it owed to the hall board: services/board_order.py).
        self.on_calling: Callable[[], None] = lambda: None
        with store.tx() as db:
            for w in catalog.windows:
                db.execute("INSERT OR IGNORE INTO windows (id) VALUES (?)", (w.id,))

    # ------------------------------------------------------------------ time

    def local(self, ts: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.clock() if ts is None else ts, self.tz)

    def iso(self, ts: float) -> str:
        return self.local(ts).isoformat(timespec="milliseconds")

    def today(self) -> str:
        return self.local().date().isoformat()

    # ------------------------------------------------------------------ services

    def service(self, sid: str) -> Service:
        """The catalogue entry; an unknown id is a Refused naming the field."""
        return self._service(sid)

    def _service(self, sid: str, field: str = "service") -> Service:
        svc = self.catalog.service(sid)
        if svc is None:
            known = ", ".join(s.id for s in self.catalog.services)
            raise Refused(f"没有编号为 {sid} 的业务（可选：{known}）",
                             code="unknown_service", field=field, why=Why.INVALID,
                             en=f"no service {sid!r} (known: {known})")
        return svc

    def _next_opening(self, svc: Service, now: datetime, *, from_tomorrow: bool) -> datetime:
        spans = svc.spans
        assert spans is not None
        day = now.date()
        if not from_tomorrow:
            for start, _ in spans:
                at = datetime.combine(day, start, self.tz)
                if at > now:
                    return at
        return datetime.combine(day + timedelta(days=1), spans[0][0], self.tz)

    def service_state(self, sid: str, db: sqlite3.Connection | None = None) -> ServiceState:
        svc = self._service(sid)
        now = self.local()
        issued = self._scalar(db, "SELECT COUNT(*) FROM tickets WHERE day = ? AND prefix = ?",
                              (now.date().isoformat(), sid))
        waiting = self._scalar(db, "SELECT COUNT(*) FROM tickets WHERE status = 'waiting' "
                                   "AND service = ?", (sid,))
        est = self.estimate_wait(sid, waiting, db)
        spans = svc.spans
        if svc.daily_limit is not None and issued >= svc.daily_limit:
            opens = None if spans is None else self._next_opening(svc, now, from_tomorrow=True)
            return ServiceState(False, "今日号源已取完，请明天再来或通过微信预约",
                                "All of today's tickets are taken; please come back tomorrow "
                                "or book an appointment", opens, issued, waiting, est)
        if spans is not None and not any(s <= now.time() < e for s, e in spans):
            opens = self._next_opening(svc, now, from_tomorrow=False)
            when = (f"{opens:%H:%M}" if opens.date() == now.date()
                    else f"明天 {opens:%H:%M}")
            when_en = (f"{opens:%H:%M}" if opens.date() == now.date()
                       else f"tomorrow at {opens:%H:%M}")
            return ServiceState(False, f"现在不在办理时间（{svc.hours}），{when} 开始取号",
                                f"Closed now (hours {svc.hours}); tickets from {when_en}",
                                opens, issued, waiting, est)
        return ServiceState(True, None, None, None, issued, waiting, est)

    # ------------------------------------------------------------------ issue

    def issue(self, service: str, *, priority: bool = False, priority_reason: str | None = None,
              channel: str = "kiosk", ticket_id: str | None = None, offline: bool = False,
              id_hash: str | None = None, seq: int | None = None,
              check_open: bool = True, masked_name: str | None = None,
              queue_key: float | None = None, check_limit: bool = True,
              answer: bool = True) -> Issued:
        """Number and store a ticket, with its ``ticket.issued`` event, in one commit.

        ``seq`` is a number decided elsewhere (the central's answer, or the next
        number of a lease); the store's UNIQUE (day, prefix, seq) still refuses a
        number already taken today, so a duplicate can never be issued.
        ``id_hash`` links the ticket to a person (personal.py); such tickets count
        against the service's ``max_open_per_person``. ``queue_key`` places the
        ticket in its queue at another time than now (an appointment's slot).
        ``answer=False`` skips the place and wait estimate nobody will read (a
        central merging a kiosk's offline tickets).
        """
        svc = self._service(service)
        with self.store.tx() as db:
            if check_open:
                state = self.service_state(service, db)
                if not state.open_now:
                    raise Refused(state.reason or "closed", code="service_closed",
                                     field="service", why=Why.CONFLICT, en=state.reason_en or "")
            if id_hash and check_limit:
                self.check_person_limit(svc, id_hash, db)
            now = self.clock()
            day = self.local(now).date().isoformat()
            if seq is None:
                day, seq = self._own_number(db, day, svc.id, now)
            if queue_key is None:
                queue_key = self._walk_in_key(db, now)
            tid = ticket_id or str(uuid.uuid4())
            number = format_number(svc.id, seq)
            db.execute(
                "INSERT INTO tickets (ticket_id, day, service, prefix, seq, number, priority, "
                "priority_reason, channel, status, issued_at, queue_key, offline, id_hash, "
                "masked_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?, ?)",
                (tid, day, svc.id, svc.id, seq, number, int(priority),
                 priority_reason if priority else None, channel, now, queue_key,
                 int(offline), id_hash, masked_name))
            t = self._ticket(db, tid)
            ahead = self.waiting_ahead(t, db) if answer else 0
            issued = Issued(t, ahead, self.estimate_wait(svc.id, ahead, db) if answer else 0)
            data: dict[str, Any] = {"ticket_id": tid, "number": number, "service": svc.id,
                                    "channel": channel, "priority": priority,
                                    "issued_at": self.iso(now)}
            if id_hash:
                data["id_hash"] = id_hash
            self.store.outbox.add(db, "ticket.issued", data, ts_iso=self.iso(now),
                                 offline=offline)
            return issued

    def _own_number(self, db: sqlite3.Connection, day: str, prefix: str,
                    now: float) -> tuple[str, int]:
        """The day and number this engine gives next. With a clock in doubt no new day
        is opened (core/clock.py): the newest day goes on, and what it gave is carried
        into the next day opened with a good clock."""
        g = self.guard
        trusted = g is None or g.state(now).trusted
        if g is not None:
            day, carried = g.numbering_day(db, day, prefix, trusted)
            if carried:
                db.execute("INSERT INTO counters (day, service, last) VALUES (?, ?, ?) ON "
                           "CONFLICT (day, service) DO UPDATE SET last = MAX(last, "
                           "excluded.last)", (day, prefix, carried))
        seq = self.leases.next_own_number(db, day, prefix)
        db.execute("INSERT INTO counters (day, service, last) VALUES (?, ?, ?) "
                   "ON CONFLICT (day, service) DO UPDATE SET last = excluded.last",
                   (day, prefix, seq))
        if g is not None:
            if trusted:
                g.saw_ticket(db, now)
            else:
                g.carry(db, day, prefix, seq)
        return day, seq

    def _walk_in_key(self, db: sqlite3.Connection, now: float) -> float:
        """A walk-in's place: after every walk-in before it, whatever the clock did (an
        hour's step back must not put the next ticket at the head of the queue)."""
        row = db.execute("SELECT value FROM meta WHERE key = 'queue_high'").fetchone()
        key = max(now, float(row[0]) + 0.001) if row is not None else now
        db.execute("INSERT INTO meta (key, value) VALUES ('queue_high', ?) ON CONFLICT (key) "
                   "DO UPDATE SET value = excluded.value", (repr(key),))
        return key

    def check_person_limit(self, svc: Service, id_hash: str,
                           db: sqlite3.Connection | None = None) -> None:
        """At most ``max_open_per_person`` open tickets per person, service and day:
        a real-name queue must not be hoarded (numbers resold to people in line)."""
        limit = svc.max_open_per_person
        if limit is None:
            return
        held = self._scalar(db, "SELECT COUNT(*) FROM tickets WHERE id_hash = ? AND day = ? "
                                "AND service = ? AND status IN ('waiting', 'called')",
                            (id_hash, self.today(), svc.id))
        if held >= limit:
            raise Refused(
                f"{svc.name}：您今天已有 {held} 张未办结的号，每人限 {limit} 张；"
                "请先办理已取的号", code="person_limit", field="card", why=Why.CONFLICT,
                en=f"{svc.name_en}: you already hold {held} open ticket(s) today; the limit "
                   f"is {limit} per person")

    def _ticket(self, db: sqlite3.Connection | None, ticket_id: str) -> Ticket:
        sql, args = "SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,)
        row = db.execute(sql, args).fetchone() if db else self.store.one(sql, args)
        if row is None:
            raise Refused(f"没有这张票（{ticket_id}）", code="unknown_ticket",
                             field="ticket_id", why=Why.NOT_FOUND)
        return Ticket.from_row(row)

    def ticket(self, ticket_id: str) -> Ticket:
        return self._ticket(None, ticket_id)

    def set_print_state(self, ticket_id: str, printed: bool, detail: str,
                        db: sqlite3.Connection | None = None) -> None:
        with self.store.tx() as conn:
            conn = db or conn
            t = self._ticket(conn, ticket_id)
            conn.execute("UPDATE tickets SET print_state = ?, print_detail = ? "
                         "WHERE ticket_id = ?",
                         ("printed" if printed else "failed", detail, ticket_id))
            kind = "ticket.printed" if printed else "ticket.print_failed"
            data: dict[str, Any] = {"ticket_id": ticket_id, "number": t.number}
            if not printed:
                data["reason"] = detail
            self.store.outbox.add(conn, kind, data, ts_iso=self.iso(self.clock()),
                                 offline=t.offline)

    def tickets(self, *, day: str | None = None, status: str | None = None,
                limit: int = 200) -> list[Ticket]:
        where, args = ["day = ?"], [day or self.today()]
        if status:
            where.append("status = ?")
            args.append(status)
        rows = self.store.query(f"SELECT * FROM tickets WHERE {' AND '.join(where)} "
                                "ORDER BY issued_at DESC LIMIT ?", (*args, limit))
        return [Ticket.from_row(r) for r in rows]

    # ------------------------------------------------------------------ windows

    def _window(self, wid: str) -> list[str]:
        w = self.catalog.window(wid)
        if w is None:
            known = ", ".join(x.id for x in self.catalog.windows) or "无"
            raise Refused(f"没有 {wid} 号窗口（已配置：{known}）", code="unknown_window",
                             field="window", why=Why.INVALID,
                             en=f"no window {wid!r} (configured: {known})")
        return w.services

    def window_state(self, wid: str, db: sqlite3.Connection | None = None) -> WindowState:
        services = self._window(wid)
        sql = "SELECT paused, serving FROM windows WHERE id = ?"
        row = db.execute(sql, (wid,)).fetchone() if db else self.store.one(sql, (wid,))
        assert row is not None
        serving = self._ticket(db, row["serving"]) if row["serving"] else None
        return WindowState(wid, bool(row["paused"]), serving, services)

    def _finish_serving(self, db: sqlite3.Connection, wid: str, status: str, now: float) -> None:
        row = db.execute("SELECT serving FROM windows WHERE id = ?", (wid,)).fetchone()
        if row and row["serving"]:
            # Measured on the monotonic clock when this engine made the call: the stored
            # finish is the call's time plus what the service really took.
            called = self._called_mono.pop(row["serving"], None)
            finished: Any = now if called is None else db.execute(
                "SELECT called_at + ? FROM tickets WHERE ticket_id = ?",
                (max(self.mono() - called, 0.0), row["serving"])).fetchone()[0]
            db.execute("UPDATE tickets SET status = ?, finished_at = COALESCE(?, ?) WHERE "
                       "ticket_id = ? AND status = 'called'",
                       (status, finished, now, row["serving"]))
            db.execute("UPDATE windows SET serving = NULL WHERE id = ?", (wid,))
            t = self._ticket(db, row["serving"])
            # A pause or the next call ends the visit too: say so, once it is committed.
            self.store.after_commit(lambda: self.on_finished(t))

    def _record_call(self, db: sqlite3.Connection, wid: str, kind: str, now: float,
                     t: Ticket | None) -> Call:
        c = Call(str(uuid.uuid4()), wid, kind, now, t)
        self._store_call(db, c)
        return c

    def _store_call(self, db: sqlite3.Connection, c: Call) -> bool:
        """Record a call and its ``call.shown`` event; False if this ``call_id`` was
        recorded before (the one place calls are de-duplicated)."""
        cur = db.execute("INSERT OR IGNORE INTO calls (call_id, ticket_id, number, window, "
                         "service, kind, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (c.call_id, c.ticket and c.ticket.ticket_id, c.called, c.window,
                          c.called_service, c.kind, c.ts))
        if cur.rowcount == 0:
            return False
        if c.called is not None:
            self.on_calling()
            body = c.body(self.iso)
            del body["ts"]
            self.store.outbox.add(db, "call.shown", body, ts_iso=self.iso(c.ts))
        return True

    def record_call(self, call_id: str, number: str, window: str, service: str | None,
                    kind: str) -> Call | None:
        """A call made elsewhere (the central, MQTT.md ``P/central/call``): recorded
        once per ``call_id``, even across restarts (None for a repeat); a ticket of
        ours is marked called at that window, as a local call would."""
        prefix, digits = number.rstrip("0123456789"), number[len(number.rstrip("0123456789")):]
        with self.store.tx() as db:
            # By prefix and sequence: a central's "A7" is our "A007" (MQTT.md allows both).
            row = db.execute("SELECT ticket_id FROM tickets WHERE prefix = ? AND seq = ? AND "
                             "status IN ('waiting', 'called') ORDER BY issued_at DESC LIMIT 1",
                             (prefix, int(digits))).fetchone() if digits else None
            now = self.clock()
            t = self._ticket(db, row[0]) if row else None
            if not self._store_call(db, Call(call_id, window, kind, now, t, number, service)):
                return None
            if t is not None:
                db.execute("UPDATE tickets SET status = 'called', window = ?, called_at = "
                           "COALESCE(called_at, ?), calls = calls + 1 WHERE ticket_id = ?",
                           (window, now, t.ticket_id))
                t = self._ticket(db, t.ticket_id)
            return Call(call_id, window, kind, now, t, number, service)

    def call_next(self, wid: str) -> Call:
        services = self._window(wid)
        with self.store.tx() as db:
            if self.window_state(wid, db).paused:
                raise Refused(f"{wid} 号窗口已暂停服务，请先恢复", code="window_paused",
                                 field="window", why=Why.CONFLICT,
                                 en=f"window {wid} is paused; resume it first")
            now = self.clock()
            self._finish_serving(db, wid, "done", now)
            rank = " ".join(f"WHEN ? THEN {i}" for i in range(len(services)))
            marks = ",".join("?" * len(services))
            row = db.execute(
                f"SELECT ticket_id FROM tickets WHERE status = 'waiting' AND service IN "
                f"({marks}) ORDER BY priority DESC, CASE service {rank} END, queue_key "
                "LIMIT 1", (*services, *services)).fetchone()
            if row is None:
                return self._record_call(db, wid, "call", now, None)
            tid = row[0]
            db.execute("UPDATE tickets SET status = 'called', called_at = ?, window = ?, "
                       "calls = calls + 1 WHERE ticket_id = ?", (now, wid, tid))
            mono = self.mono()
            self.store.after_commit(lambda: self._called_mono.__setitem__(tid, mono))
            db.execute("UPDATE windows SET serving = ?, last_ticket = ? WHERE id = ?",
                       (tid, tid, wid))
            return self._record_call(db, wid, "call", now, self._ticket(db, tid))

    def recall(self, wid: str) -> Call:
        self._window(wid)
        with self.store.tx() as db:
            serving = self.window_state(wid, db).serving
            if serving is None:
                raise Refused(f"{wid} 号窗口当前没有在办理的号，无法重呼",
                                 code="nothing_to_recall", field="window", why=Why.CONFLICT,
                                 en=f"window {wid} is serving nobody: nothing to recall")
            now = self.clock()
            db.execute("UPDATE tickets SET calls = calls + 1 WHERE ticket_id = ?",
                       (serving.ticket_id,))
            return self._record_call(db, wid, "recall", now,
                                     self._ticket(db, serving.ticket_id))

    def no_show(self, wid: str) -> Ticket:
        """The called citizen did not come: the ticket ends as ``no_show``."""
        self._window(wid)
        with self.store.tx() as db:
            serving = self.window_state(wid, db).serving
            if serving is None:
                raise Refused(f"{wid} 号窗口当前没有在办理的号", code="nothing_serving",
                                 field="window", why=Why.CONFLICT)
            self._finish_serving(db, wid, "no_show", self.clock())
            return self._ticket(db, serving.ticket_id)

    def finish(self, wid: str) -> Ticket | None:
        self._window(wid)
        with self.store.tx() as db:
            serving = self.window_state(wid, db).serving
            self._finish_serving(db, wid, "done", self.clock())
            return None if serving is None else self._ticket(db, serving.ticket_id)

    def set_paused(self, wid: str, paused: bool) -> WindowState:
        self._window(wid)
        with self.store.tx() as db:
            if paused:
                # A window pausing finishes the citizen in front of it first.
                self._finish_serving(db, wid, "done", self.clock())
            db.execute("UPDATE windows SET paused = ? WHERE id = ?", (int(paused), wid))
            return self.window_state(wid, db)

    def transfer(self, ticket_id: str, service: str) -> Ticket:
        """Move a ticket to another service's queue; it keeps its number and its place
        in time (the citizen already waited), and any window serving it is freed."""
        self._service(service)
        with self.store.tx() as db:
            t = self._ticket(db, ticket_id)
            if t.status not in ("waiting", "called"):
                raise Refused(f"{t.number} 已{_STATUS_ZH[t.status]}，不能转移",
                                 code="ticket_closed", field="ticket_id", why=Why.CONFLICT)
            if t.service == service:
                raise Refused(f"{t.number} 已经在该业务队列中", code="same_service",
                                 field="service", why=Why.CONFLICT)
            db.execute("UPDATE windows SET serving = NULL WHERE serving = ?", (ticket_id,))
            db.execute("UPDATE tickets SET service = ?, status = 'waiting', window = NULL, "
                       "called_at = NULL, transferred_from = ? WHERE ticket_id = ?",
                       (service, t.service, ticket_id))
            return self._ticket(db, ticket_id)

    # ------------------------------------------------------------------ evaluations

    def evaluate(self, wid: str, level: str, **kw: Any) -> Evaluation:
        """One rating per visit: :meth:`hall_agent.core.ratings.Ratings.evaluate`."""
        return self.ratings.evaluate(wid, level, **kw)

    def satisfaction(self, day: date | None = None) -> dict[str, dict[str, int]]:
        return self.ratings.satisfaction(day or self.local().date())

    def last_called(self) -> dict[str, str]:
        """The number last called at each window, from any source: in central mode the
        ticket a window serves (the central calls tickets this agent may not hold)."""
        rows = self.store.query("SELECT window, number FROM calls c WHERE rowid = (SELECT "
                                "MAX(rowid) FROM calls d WHERE d.window = c.window AND "
                                "d.number IS NOT NULL)")
        return {str(w): str(n) for w, n in rows}

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> tuple[dict[str, ServiceState], dict[str, WindowState], list[Call]]:
        with self.store.tx() as db:
            services = {s.id: self.service_state(s.id, db) for s in self.catalog.services}
            windows = {w.id: self.window_state(w.id, db) for w in self.catalog.windows}
            rows = db.execute("SELECT * FROM calls WHERE ticket_id IS NOT NULL "
                              "ORDER BY ts DESC LIMIT 10").fetchall()
            calls = [Call(r["call_id"], r["window"], r["kind"], r["ts"],
                          self._ticket(db, r["ticket_id"]), r["number"], r["service"])
                     for r in rows]
        return services, windows, calls


_STATUS_ZH = {"waiting": "在等候", "called": "被叫号", "done": "办结", "no_show": "过号",
              "cancelled": "取消"}
