"""The queue rules of hall-central's windows, inside the desk's transaction.

On the queue engine's tables (hall_agent/core/store.py ``tickets``, ``windows``,
``calls``) plus two of hall-central's own (central/schema.py): ``ticket_rules`` (a
transfer's target window or "to the front", the recalls of the current call, when it
was parked) and ``window_rules`` (the pause reason, the priority interleave's run).

Call order of a window (DESIGN.md's catalogue: ``services`` "in order of preference"):
1. tickets transferred "to the front" (``first``), oldest first;
2. priority tickets before normal ones — unless ``priority_run`` priority tickets were
   called in a row, then ``normal_after`` normal tickets (if any wait) so normal
   tickets do not starve;
3. tickets transferred to this very window, then the window's services in their order;
4. by ``queue_key`` (the issue time; an offline ticket merged by its ``issued_at``).

Every method here checks first and writes after: a Refused leaves nothing written, so
the desk may run it inside a larger transaction (a batch of staff-key events).
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from central.config import QueueRules
from hall_agent.contract.catalog import Catalog
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store

Db = sqlite3.Connection


@dataclass
class Outcome:
    """What one action did: the audit row's ticket and detail, the calls it made (each
    becomes a ``P/central/call``), the tickets whose state changed."""

    action: str | None = None  # when it differs from the asked one (an automatic no-show)
    ticket: tuple[str, str] | None = None  # (ticket_id, number)
    detail: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[tuple[str, str]] = field(default_factory=list)


def _refuse(zh: str, en: str, code: str, fld: str = "window",
            why: Why = Why.CONFLICT) -> Refused:
    return Refused(zh, code=code, field=fld, why=why, en=en)


class Rules:
    def __init__(self, store: Store, engine: QueueEngine, catalog: Catalog,
                 cfg: QueueRules) -> None:
        self.store = store
        self.engine = engine
        self.catalog = catalog
        self.cfg = cfg

    def day_start(self) -> float:
        d = self.engine.local().date()
        return datetime.combine(d, datetime.min.time(), self.engine.tz).timestamp()

    # ------------------------------------------------------------------ order

    def _services(self, window: str) -> list[str]:
        w = self.catalog.window(window)
        assert w is not None
        return list(w.services)

    def _candidates(self, window: str, *, normal_only: bool = False,
                    limit: int = 1) -> tuple[str, tuple[Any, ...]]:
        svcs = self._services(window)
        marks = ",".join("?" * len(svcs))
        rank = " ".join(f"WHEN ? THEN {i}" for i in range(len(svcs)))
        sql = (
            "SELECT t.ticket_id, t.number, t.service, t.priority, t.issued_at, t.offline, "
            "COALESCE(r.first, 0) AS first, r.target_window FROM tickets t "
            "LEFT JOIN ticket_rules r USING (ticket_id) WHERE t.status = 'waiting' AND "
            f"((t.service IN ({marks}) AND r.target_window IS NULL) OR r.target_window = ?)"
            + (" AND t.priority = 0" if normal_only else "") +
            " ORDER BY COALESCE(r.first, 0) DESC, t.priority DESC, "
            f"CASE WHEN r.target_window = ? THEN -1 ELSE CASE t.service {rank} END END, "
            "t.queue_key LIMIT ?")
        return sql, (*svcs, window, window, *svcs, limit)

    def order(self, db: Db, window: str, limit: int = 200) -> list[sqlite3.Row]:
        """The window's waiting tickets in call order (without the interleave)."""
        sql, args = self._candidates(window, limit=limit)
        return db.execute(sql, args).fetchall()

    def count_waiting(self, db: Db, window: str) -> int:
        svcs = self._services(window)
        marks = ",".join("?" * len(svcs))
        return int(db.execute(
            "SELECT COUNT(*) FROM tickets t LEFT JOIN ticket_rules r USING (ticket_id) WHERE "
            f"t.status = 'waiting' AND ((t.service IN ({marks}) AND r.target_window IS NULL) "
            "OR r.target_window = ?)", (*svcs, window)).fetchone()[0])

    def _pick(self, db: Db, window: str) -> tuple[sqlite3.Row | None, bool]:
        """The next ticket and whether it was a normal one owed by the interleave."""
        due = db.execute("SELECT normal_due FROM window_rules WHERE window = ?",
                         (window,)).fetchone()
        if due and due[0] > 0:
            sql, args = self._candidates(window, normal_only=True)
            row = db.execute(sql, args).fetchone()
            if row is not None:
                return row, True
        sql, args = self._candidates(window)
        return db.execute(sql, args).fetchone(), False

    def peek_next(self, db: Db, window: str) -> str | None:
        row, _ = self._pick(db, window)
        return None if row is None else str(row["number"])

    def ahead(self, db: Db, ticket_id: str) -> int:
        """People before a waiting ticket in its service's queue (or its window's)."""
        r = db.execute("SELECT t.service, t.priority, t.queue_key, COALESCE(x.first, 0), "
                       "x.target_window FROM tickets t LEFT JOIN ticket_rules x USING "
                       "(ticket_id) WHERE t.ticket_id = ?", (ticket_id,)).fetchone()
        service, prio, key, first, target = r
        scope = ("x.target_window = ?", target) if target else (
            "t.service = ? AND x.target_window IS NULL", service)
        return int(db.execute(
            "SELECT COUNT(*) FROM tickets t LEFT JOIN ticket_rules x USING (ticket_id) WHERE "
            f"t.status = 'waiting' AND {scope[0]} AND t.ticket_id != ? AND ("
            "COALESCE(x.first, 0) > ? OR (COALESCE(x.first, 0) = ? AND (t.priority > ? OR "
            "(t.priority = ? AND t.queue_key <= ?))))",
            (scope[1], ticket_id, first, first, prio, prio, key)).fetchone()[0])

    # ------------------------------------------------------------------ helpers

    def _window_row(self, db: Db, window: str) -> sqlite3.Row:
        db.execute("INSERT OR IGNORE INTO window_rules (window) VALUES (?)", (window,))
        row: sqlite3.Row = db.execute("SELECT w.paused, w.serving, r.* FROM windows w JOIN "
                                      "window_rules r ON r.window = w.id WHERE w.id = ?",
                                      (window,)).fetchone()
        return row

    def _serving(self, db: Db, window: str, what_zh: str, what_en: str) -> sqlite3.Row:
        row = db.execute("SELECT t.ticket_id, t.number, t.service, t.called_at, "
                         "COALESCE(r.recalls, 0) AS recalls, r.last_call_at FROM windows w "
                         "JOIN tickets t ON t.ticket_id = w.serving LEFT JOIN ticket_rules r "
                         "ON r.ticket_id = t.ticket_id WHERE w.id = ?", (window,)).fetchone()
        if row is None:
            raise _refuse(f"{window} 号窗口当前没有在办理的号，无法{what_zh}",
                          f"window {window} is serving nobody: nothing to {what_en}",
                          "nothing_serving")
        out: sqlite3.Row = row
        return out

    def _not_paused(self, db: Db, window: str) -> None:
        if self._window_row(db, window)["paused"]:
            raise _refuse(f"{window} 号窗口已暂停服务，请先恢复",
                          f"window {window} is paused; resume it first", "window_paused")

    def _close(self, db: Db, window: str, status: str, now: float, out: Outcome) -> None:
        """End the ticket in front of the window (``done`` | ``no_show``), if any."""
        row = db.execute("SELECT w.serving, t.number FROM windows w JOIN tickets t ON "
                         "t.ticket_id = w.serving WHERE w.id = ?", (window,)).fetchone()
        if row is None:
            return
        db.execute("UPDATE tickets SET status = ?, finished_at = ? WHERE ticket_id = ? AND "
                   "status = 'called'", (status, now, row[0]))
        db.execute("UPDATE windows SET serving = NULL WHERE id = ?", (window,))
        out.tickets.append((row[0], status))
        out.detail.setdefault("finished", {"ticket": row[1], "as": status})

    def _call(self, db: Db, window: str, ticket_id: str, kind: str, now: float,
              out: Outcome) -> None:
        t = db.execute("SELECT number, service FROM tickets WHERE ticket_id = ?",
                       (ticket_id,)).fetchone()
        if kind == "call":
            db.execute("UPDATE tickets SET status = 'called', called_at = ?, window = ?, "
                       "calls = calls + 1 WHERE ticket_id = ?", (now, window, ticket_id))
            db.execute("UPDATE windows SET serving = ?, last_ticket = ? WHERE id = ?",
                       (ticket_id, ticket_id, window))
            db.execute("INSERT INTO ticket_rules (ticket_id, recalls, last_call_at) VALUES "
                       "(?, 0, ?) ON CONFLICT (ticket_id) DO UPDATE SET recalls = 0, "
                       "last_call_at = excluded.last_call_at, first = 0, target_window = NULL, "
                       "parked_at = NULL", (ticket_id, now))
        else:
            db.execute("UPDATE tickets SET calls = calls + 1 WHERE ticket_id = ?", (ticket_id,))
            db.execute("UPDATE ticket_rules SET recalls = recalls + 1, last_call_at = ? "
                       "WHERE ticket_id = ?", (now, ticket_id))
        call_id = str(uuid.uuid4())
        db.execute("INSERT INTO calls (call_id, ticket_id, number, window, service, kind, ts) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (call_id, ticket_id, t["number"], window, t["service"], kind, now))
        out.calls.append({"call_id": call_id, "ticket": t["number"], "ticket_id": ticket_id,
                          "window": window, "service": t["service"], "kind": kind,
                          "ts": self.engine.iso(now)})
        out.tickets.append((ticket_id, "called"))
        out.ticket = (ticket_id, t["number"])
        out.detail["called" if kind == "call" else "recalled"] = t["number"]

    def _find(self, db: Db, ticket: str, status: str) -> sqlite3.Row | None:
        """A ticket by id, or by number (the most recent of that number in ``status``)."""
        row = db.execute("SELECT * FROM tickets WHERE ticket_id = ?", (ticket,)).fetchone()
        if row is None:
            row = db.execute("SELECT * FROM tickets WHERE number = ? AND status = ? ORDER BY "
                             "issued_at DESC LIMIT 1", (ticket.strip().upper(), status)
                             ).fetchone()
        return row  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ actions

    def call_next(self, db: Db, window: str, now: float) -> Outcome:
        self._not_paused(db, window)
        out = Outcome()
        self._close(db, window, "done", now, out)
        row, owed = self._pick(db, window)
        if row is None:
            out.detail["called"] = None
            return out
        st = self._window_row(db, window)
        streak, due = st["prio_streak"], st["normal_due"]
        if row["priority"]:
            streak += 1
            if self.cfg.priority_run and streak >= self.cfg.priority_run:
                streak, due = 0, self.cfg.normal_after
        else:
            streak = 0
            due = max(0, due - 1) if owed else due
        db.execute("UPDATE window_rules SET prio_streak = ?, normal_due = ? WHERE window = ?",
                   (streak, due, window))
        self._call(db, window, row["ticket_id"], "call", now, out)
        return out

    def call_chosen(self, db: Db, window: str, ticket: str, now: float) -> Outcome:
        self._not_paused(db, window)
        row = self._find(db, ticket, "waiting")
        if row is None or row["status"] != "waiting":
            raise _refuse(f"{ticket} 不在等候中，不能叫号", f"{ticket} is not waiting",
                          "not_waiting", "ticket")
        allowed = {r["ticket_id"] for r in self.order(db, window, limit=100_000)}
        if row["ticket_id"] not in allowed:
            raise _refuse(f"{row['number']} 不属于 {window} 号窗口办理的业务",
                          f"window {window} does not serve {row['number']}", "not_this_window",
                          "ticket")
        out = Outcome()
        self._close(db, window, "done", now, out)
        self._call(db, window, row["ticket_id"], "call", now, out)
        return out

    def recall(self, db: Db, window: str, now: float) -> Outcome:
        s = self._serving(db, window, "重呼", "recall")
        k = self.cfg.no_show_after_recalls
        if k and s["recalls"] >= k:
            if self._window_row(db, window)["paused"]:  # cannot call the next: refuse first
                self._not_paused(db, window)
            out = Outcome(action="no_show", detail={"auto": True, "after_recalls": s["recalls"]})
            self._close(db, window, "no_show", now, out)
            out.ticket = (s["ticket_id"], s["number"])
            nxt = self.call_next(db, window, now)
            out.calls, out.tickets = nxt.calls, out.tickets + nxt.tickets
            out.detail["next"] = nxt.detail.get("called")
            return out
        if s["recalls"] >= self.cfg.recall_max:
            raise _refuse(f"{s['number']} 已重呼 {s['recalls']} 次（上限），请标记过号或办结",
                          f"{s['number']} was recalled {s['recalls']} times (the limit); mark "
                          "it no-show or finish it", "recall_limit")
        since = now - (s["last_call_at"] or s["called_at"] or 0)
        if since < self.cfg.recall_min_interval_s:
            wait = math.ceil(self.cfg.recall_min_interval_s - since)
            raise _refuse(f"刚刚叫过 {s['number']}，请 {wait} 秒后再重呼",
                          f"{s['number']} was just called; recall it in {wait} s",
                          "recall_too_soon")
        out = Outcome(detail={"recall": s["recalls"] + 1})
        self._call(db, window, s["ticket_id"], "recall", now, out)
        return out

    def end(self, db: Db, window: str, status: str, now: float) -> Outcome:
        s = self._serving(db, window, *(("标记过号", "mark no-show") if status == "no_show"
                                        else ("办结", "finish")))
        out = Outcome(ticket=(s["ticket_id"], s["number"]))
        self._close(db, window, status, now, out)
        return out

    def transfer(self, db: Db, window: str, service: str | None, to_window: str | None,
                 first: bool, now: float) -> Outcome:
        if (service is None) == (to_window is None):
            raise _refuse("请选择转到哪个业务或哪个窗口（二选一）",
                          "give either a service or a window to transfer to", "bad_transfer",
                          "service", Why.INVALID)
        s = self._serving(db, window, "转移", "transfer")
        if service is not None:
            self.engine.service(service)  # Refused unknown_service
            if service == s["service"]:
                raise _refuse(f"{s['number']} 已经在该业务队列中",
                              f"{s['number']} is already in that service's queue",
                              "same_service", "service")
        else:
            assert to_window is not None
            if self.catalog.window(to_window) is None:
                known = ", ".join(w.id for w in self.catalog.windows)
                raise _refuse(f"没有 {to_window} 号窗口（已配置：{known}）",
                              f"no window {to_window!r} (configured: {known})",
                              "unknown_window", "to_window", Why.INVALID)
            if to_window == window:
                raise _refuse("不能转给本窗口", "that is this window", "same_window",
                              "to_window")
        tid = s["ticket_id"]
        db.execute("UPDATE windows SET serving = NULL WHERE id = ?", (window,))
        db.execute("UPDATE tickets SET status = 'waiting', window = NULL, called_at = NULL, "
                   "service = ?, transferred_from = ? WHERE ticket_id = ?",
                   (service or s["service"], s["service"], tid))
        db.execute("INSERT INTO ticket_rules (ticket_id, target_window, first) VALUES "
                   "(?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET target_window = "
                   "excluded.target_window, first = excluded.first, recalls = 0",
                   (tid, to_window, int(first)))
        return Outcome(ticket=(tid, s["number"]), tickets=[(tid, "waiting")],
                       detail={"to_service": service, "to_window": to_window, "first": first})

    def park(self, db: Db, window: str, now: float) -> Outcome:
        s = self._serving(db, window, "挂起", "park")
        db.execute("UPDATE windows SET serving = NULL WHERE id = ?", (window,))
        db.execute("UPDATE tickets SET status = 'parked' WHERE ticket_id = ?", (s["ticket_id"],))
        db.execute("UPDATE ticket_rules SET parked_at = ? WHERE ticket_id = ?",
                   (now, s["ticket_id"]))
        return Outcome(ticket=(s["ticket_id"], s["number"]),
                       tickets=[(s["ticket_id"], "parked")])

    def call_back(self, db: Db, window: str, ticket: str, now: float) -> Outcome:
        self._not_paused(db, window)
        row = self._find(db, ticket, "parked")
        if row is None or row["status"] != "parked" or row["window"] != window:
            raise _refuse(f"{ticket} 不是本窗口挂起的号", f"{ticket} is not parked at window "
                          f"{window}", "not_parked", "ticket")
        out = Outcome()
        self._close(db, window, "done", now, out)
        self._call(db, window, row["ticket_id"], "call", now, out)
        return out

    def pause(self, db: Db, window: str, reason: str, now: float) -> Outcome:
        if self._window_row(db, window)["paused"]:
            raise _refuse(f"{window} 号窗口已经暂停", f"window {window} is already paused",
                          "already_paused")
        out = Outcome(detail={"reason": reason})
        self._close(db, window, "done", now, out)
        db.execute("UPDATE windows SET paused = 1 WHERE id = ?", (window,))
        db.execute("UPDATE window_rules SET pause_reason = ? WHERE window = ?", (reason, window))
        return out

    def resume(self, db: Db, window: str) -> Outcome:
        if not self._window_row(db, window)["paused"]:
            raise _refuse(f"{window} 号窗口没有暂停", f"window {window} is not paused",
                          "not_paused")
        db.execute("UPDATE windows SET paused = 0 WHERE id = ?", (window,))
        db.execute("UPDATE window_rules SET pause_reason = NULL WHERE window = ?", (window,))
        return Outcome()
