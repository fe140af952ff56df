"""The wait estimate and a ticket's place in its queue (a part of the queue engine).

Service times are measured on the monotonic clock while the agent that called a ticket
is the one that finishes it: an NTP step during a service (an hour back, 2.5 h forward)
changes nothing. A time measured across a restart falls back to the wall clock and is
bounded, like every measured time, to :data:`SERVICE_CAP` times the catalogue's guess:
one implausible service cannot make the estimate negative or many times too long.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from hall_agent.contract.catalog import Catalog, Service
from hall_agent.core.model import Ticket
from hall_agent.core.store import Store

# How many of the day's most recent service times feed the estimate: recent
# enough to follow the day's pace, enough to smooth out one long case.
ESTIMATE_WINDOW = 20
SERVICE_CAP = 4  # one service counts at most this many times the catalogue's avg_service_s


class Estimates:
    """Mixed into QueueEngine: what it needs is its store, catalogue and ``today``."""

    store: Store
    catalog: Catalog

    def today(self) -> str: raise NotImplementedError

    def _service(self, sid: str, field: str = "service") -> Service: raise NotImplementedError

    def _scalar(self, db: sqlite3.Connection | None, sql: str, args: tuple[Any, ...]) -> int:
        if db is not None:
            return int(db.execute(sql, args).fetchone()[0])
        row = self.store.one(sql, args)
        assert row is not None
        return int(row[0])

    def service_time(self, svc: Service, called_at: float, finished_at: float,
                     mono_s: float | None) -> float:
        """What one service took: ``mono_s`` (monotonic) if measured, else the wall
        clock's difference; never below 0 nor above the cap."""
        took = mono_s if mono_s is not None else finished_at - called_at
        return min(max(took, 0.0), SERVICE_CAP * float(svc.avg_service_s))

    def avg_service_s(self, sid: str, db: sqlite3.Connection | None = None) -> float:
        """Mean of the day's last measured service times, else the catalogue's guess."""
        sql = ("SELECT finished_at - called_at FROM tickets WHERE service = ? AND day = ? "
               "AND status = 'done' AND called_at IS NOT NULL ORDER BY finished_at DESC "
               f"LIMIT {ESTIMATE_WINDOW}")
        args = (sid, self.today())
        rows = db.execute(sql, args).fetchall() if db else self.store.query(sql, args)
        svc = self._service(sid)
        durations = [self.service_time(svc, 0.0, float(r[0]), None) for r in rows]
        if durations:
            return sum(durations) / len(durations)
        return float(svc.avg_service_s)

    def _open_windows_for(self, sid: str, db: sqlite3.Connection | None) -> int:
        ids = [w.id for w in self.catalog.windows if sid in w.services]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return self._scalar(db, f"SELECT COUNT(*) FROM windows WHERE paused = 0 AND id IN "
                                f"({marks})", tuple(ids))

    def estimate_wait(self, sid: str, ahead: int, db: sqlite3.Connection | None = None) -> int:
        """Seconds until a ticket with ``ahead`` people before it is likely called."""
        if ahead <= 0:
            return 0
        windows = max(1, self._open_windows_for(sid, db))
        return math.ceil(ahead * self.avg_service_s(sid, db) / windows)

    def waiting_ahead(self, t: Ticket, db: sqlite3.Connection | None = None) -> int:
        if t.status != "waiting":
            return 0
        sql = "SELECT queue_key FROM tickets WHERE ticket_id = ?"
        row = db.execute(sql, (t.ticket_id,)).fetchone() if db else self.store.one(
            sql, (t.ticket_id,))
        assert row is not None
        # Ahead: every waiting ticket of higher priority, and those of the same priority
        # queued in the same millisecond or before. Two counts, each a range of the
        # tickets_waiting index (an expression on queue_key made every issue scan the
        # day's whole queue: the central merging a day of offline tickets crawled).
        upto = (math.floor(float(row[0]) * 1000) + 1) / 1000
        higher = self._scalar(db, "SELECT COUNT(*) FROM tickets WHERE status = 'waiting' AND "
                                  "service = ? AND priority > ?", (t.service, int(t.priority)))
        same = self._scalar(db, "SELECT COUNT(*) FROM tickets WHERE status = 'waiting' AND "
                                "service = ? AND priority = ? AND queue_key < ? AND "
                                "ticket_id != ?", (t.service, int(t.priority), upto, t.ticket_id))
        return higher + same
