"""The outbox of MQTT.md: every event an outside party must learn about, in ``seq`` order.

This class owns every SQL statement on the ``outbox`` table. An event is added in the
caller's transaction, next to the change it reports, so both commit or neither does;
the store tells its ``on_events`` listeners (the MQTT relay) after that commit. The
relay sends what is due, marks it sent, and forgets it only when the central
acknowledges it; the local API lists what is pending and the whole event log.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

ACKED_KEPT_S = 7 * 86400  # an acknowledged event is kept a week, then pruned


class _Db(Protocol):
    """What the outbox needs of the store (hall_agent/core/store.py's Store)."""

    def tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]: ...

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None: ...

    def events_added(self) -> None: ...


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): msg_ids sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One row of the outbox; ``sent_at`` is a monotonic time (the relay's resend clock,
    never the wall clock: ordering is ``seq``), ``acked_at`` unix seconds; or None."""

    seq: int
    msg_id: str
    ts: str
    type: str
    offline: bool
    data: dict[str, Any]
    sent_at: float | None
    acked_at: float | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> OutboxEntry:
        return cls(seq=r["seq"], msg_id=r["msg_id"], ts=r["ts"], type=r["type"],
                   offline=bool(r["offline"]), data=json.loads(r["data"]),
                   sent_at=r["sent_at"], acked_at=r["acked_at"])


@dataclass(frozen=True, slots=True)
class Pending:
    """What ``GET /v1/outbox`` shows: the oldest unacknowledged events, how many there
    are in all, and the ``ts`` of the oldest."""

    events: list[OutboxEntry]
    count: int
    oldest_ts: str | None


@dataclass(frozen=True, slots=True)
class EventLog:
    """What ``GET /v1/event-log`` shows: a page of events and the last ``seq`` there is."""

    events: list[OutboxEntry]
    last_seq: int


def _entries(rows: Iterable[sqlite3.Row]) -> list[OutboxEntry]:
    return [OutboxEntry.from_row(r) for r in rows]


class Outbox:
    """The ``outbox`` table of ``store``."""

    def __init__(self, store: _Db) -> None:
        self.store = store

    # ---------------------------------------------------------------- writing

    def add(self, db: sqlite3.Connection, type_: str, data: dict[str, Any], *,
            ts_iso: str, offline: bool = False) -> int:
        """Append one event in the caller's transaction ``db``; returns its seq. The
        store's ``on_events`` listeners are called once that transaction commits."""
        cur = db.execute(
            "INSERT INTO outbox (msg_id, ts, type, offline, data) VALUES (?, ?, ?, ?, ?)",
            (uuid7(), ts_iso, type_, int(offline), json.dumps(data, ensure_ascii=False)))
        assert cur.lastrowid is not None
        self.store.events_added()
        return cur.lastrowid

    def prune(self, db: sqlite3.Connection, now: float) -> int:
        """Delete events acknowledged over :data:`ACKED_KEPT_S` ago, in the caller's
        transaction; an unacknowledged event is never deleted. Returns how many went."""
        return db.execute("DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?",
                          (now - ACKED_KEPT_S,)).rowcount

    # ---------------------------------------------------------------- the relay

    def due(self, resend_before: float, limit: int) -> list[OutboxEntry]:
        """Unacknowledged events never sent or last sent before ``resend_before`` (unix
        seconds), in ``seq`` order."""
        return _entries(self.store.query(
            "SELECT * FROM outbox WHERE acked_at IS NULL AND (sent_at IS NULL OR "
            "sent_at < ?) ORDER BY seq LIMIT ?", (resend_before, limit)))

    def forget_sends(self) -> int:
        """At the relay's start: what an earlier process sent is due again (its
        ``sent_at`` is a monotonic time of that process's boot, meaningless now)."""
        with self.store.tx() as db:
            n: int = db.execute("UPDATE outbox SET sent_at = NULL WHERE acked_at IS NULL "
                                "AND sent_at IS NOT NULL").rowcount
        return n

    def mark_sent(self, seqs: Sequence[int], at: float) -> None:
        if not seqs:
            return
        with self.store.tx() as db:
            db.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?",
                           [(at, s) for s in seqs])

    def resend(self, sent_before: float) -> int:
        """Make every unacknowledged event sent at or before ``sent_before`` due again
        (a replay); returns how many."""
        with self.store.tx() as db:
            n: int = db.execute("UPDATE outbox SET sent_at = NULL WHERE acked_at IS NULL AND "
                                "sent_at IS NOT NULL AND sent_at <= ?", (sent_before,)).rowcount
        return n

    def ack(self, msg_ids: Iterable[str], at: float) -> None:
        """The central has stored these events; an unknown or repeated msg_id is a no-op."""
        with self.store.tx() as db:
            db.executemany("UPDATE outbox SET acked_at = ? WHERE msg_id = ? AND "
                           "acked_at IS NULL", [(at, m) for m in msg_ids])

    def pending_count(self) -> int:
        row = self.store.one("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")
        return int(row[0]) if row else 0

    # ---------------------------------------------------------------- the API

    def pending(self, limit: int) -> Pending:
        """The ``limit`` oldest unacknowledged events, their total count and oldest ts."""
        rows = self.store.query("SELECT * FROM outbox WHERE acked_at IS NULL ORDER BY seq "
                                "LIMIT ?", (limit,))
        n = self.store.one("SELECT COUNT(*), MIN(ts) FROM outbox WHERE acked_at IS NULL")
        return Pending(events=_entries(rows), count=int(n[0]) if n else 0,
                       oldest_ts=n[1] if n else None)

    def log(self, after_seq: int, limit: int) -> EventLog:
        """Up to ``limit`` events after ``after_seq``, oldest first; with ``after_seq=0``
        the last ``limit`` events (still oldest first)."""
        if after_seq:
            rows = self.store.query("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, limit))
        else:
            rows = self.store.query("SELECT * FROM outbox ORDER BY seq DESC LIMIT ?",
                                    (limit,))[::-1]
        last = self.store.one("SELECT MAX(seq) FROM outbox")
        return EventLog(events=_entries(rows), last_seq=int(last[0] or 0) if last else 0)

