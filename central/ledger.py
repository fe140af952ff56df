"""hall-central's own books: every event it received, each ``msg_id`` stored once with
its deliveries counted (MQTT.md: a duplicate is acknowledged again and stored once),
each agent's highest ``seq`` (gaps are answered by ``cmd sync``), the ``ticket_id``s an
agent voided, and the number blocks leased to each agent. Its tickets are the queue
engine's, in the same store (tables: central/schema.py)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

from central.reading import Event
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.levels import LEVELS
from hall_agent.core.leases import LEASE_FLOOR
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store

log = logging.getLogger("central.ledger")

class Ledger:
    """The received events and the leases, in ``store`` next to ``engine``'s tickets."""

    def __init__(self, store: Store, engine: QueueEngine, catalog: Catalog,
                 lease_size: int) -> None:
        self.store = store
        self.engine = engine
        self.catalog = catalog
        self.lease_size = lease_size

    # ------------------------------------------------------------------ events

    def receive(self, db: sqlite3.Connection, agent: str, env: Event) -> bool:
        """Store ``env`` once (in the caller's transaction); a duplicate only counts
        another delivery. True at its first delivery."""
        cur = db.execute(
            "INSERT OR IGNORE INTO received (msg_id, agent, seq, type, offline, data, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (env.msg_id, agent, env.seq or 0, env.type, int(env.offline),
             json.dumps(env.data, ensure_ascii=False), time.time()))
        if cur.rowcount == 1:
            return True
        db.execute("UPDATE received SET deliveries = deliveries + 1 WHERE msg_id = ?",
                   (env.msg_id,))
        return False

    def note_seq(self, db: sqlite3.Connection, agent: str, seq: int) -> bool:
        """Remember the agent's highest ``seq``; True when this one skips past it (events
        in between never arrived: MQTT.md, Event envelope: the central sends ``sync``)."""
        self.agent_index(agent)
        top = db.execute("SELECT max_seq FROM agents WHERE agent = ?", (agent,)).fetchone()[0]
        if top is None or seq > top:
            db.execute("UPDATE agents SET max_seq = ? WHERE agent = ?", (seq, agent))
        if top is None or seq <= top + 1:
            return False
        # A gap only if one of the seqs in between was never received.
        missing = db.execute("SELECT ? - COUNT(*) FROM received WHERE agent = ? AND seq > ? "
                             "AND seq < ?", (seq - top - 1, agent, top, seq)).fetchone()[0]
        return bool(missing)

    def void(self, db: sqlite3.Connection, ticket_id: str) -> None:
        """``ticket.voided`` (docs/mqtt-extensions.md): the agent never committed the
        ticket, so its number is never called; remembered, so an answer still due for
        it gives no number."""
        db.execute("INSERT OR IGNORE INTO voided (ticket_id, ts) VALUES (?, ?)",
                   (ticket_id, time.time()))
        n = db.execute("UPDATE tickets SET status = 'cancelled', finished_at = ? WHERE "
                       "ticket_id = ? AND status = 'waiting'", (time.time(), ticket_id)).rowcount
        log.info("central: ticket %s voided by its agent (%s)", ticket_id,
                 "its number is not called" if n else "it had no number here")

    def is_voided(self, ticket_id: str) -> bool:
        return self.store.one("SELECT 1 FROM voided WHERE ticket_id = ?",
                              (ticket_id,)) is not None

    def received(self, agent: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT msg_id, agent, seq, type, offline, data, deliveries FROM received"
        args: tuple[Any, ...] = ()
        if agent:
            sql += " WHERE agent = ?"
            args = (agent,)
        return [dict(r) | {"data": json.loads(r["data"])}
                for r in self.store.query(sql + " ORDER BY agent, seq", args)]

    def stats(self) -> dict[str, Any]:
        """Events received (unique, deliveries, duplicates, by type) and tickets."""
        row = self.store.one("SELECT COUNT(*), COALESCE(SUM(deliveries), 0) FROM received")
        assert row is not None
        by_type = {t: n for t, n in self.store.query(
            "SELECT type, COUNT(*) FROM received GROUP BY type")}
        tickets = self.store.one("SELECT COUNT(*) FROM tickets")
        return {"unique_events": row[0], "deliveries": row[1],
                "duplicates": row[1] - row[0], "by_type": by_type,
                "tickets": tickets[0] if tickets else 0}

    def satisfaction(self, since: float = 0.0) -> dict[str, dict[str, int]]:
        """Ratings received per window and level since ``since`` (the hall's midnight:
        ``P/central/satisfaction``'s windows); a rating with an unknown level or no
        window is stored but not counted."""
        counts: dict[str, dict[str, int]] = {}
        for (data,) in self.store.query("SELECT data FROM received WHERE type = "
                                        "'evaluation.submitted' AND ts >= ?", (since,)):
            d = json.loads(data)
            level, window = d.get("level"), d.get("window")
            if level not in LEVELS or not isinstance(window, str | int) or window == "":
                continue
            w = counts.setdefault(str(window), dict.fromkeys(LEVELS, 0))
            w[level] += 1
        return counts

    def agents(self) -> list[str]:
        return [r[0] for r in self.store.query("SELECT agent FROM agents ORDER BY idx")]

    # ------------------------------------------------------------------ leases

    def agent_index(self, agent: str) -> int:
        with self.store.tx() as db:
            row = db.execute("SELECT idx FROM agents WHERE agent = ?", (agent,)).fetchone()
            if row:
                return int(row[0])
            idx = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM agents").fetchone()[0]
            db.execute("INSERT INTO agents (agent, idx) VALUES (?, ?)", (agent, idx))
            return int(idx)

    def lease(self, agent: str, day: str | None = None) -> dict[str, Any]:
        """The agent's lease of ``day`` (default today; ``A/lease``): one block per
        service at the first lease of the day, plus any top-ups since."""
        day = day or self.engine.today()
        with self.store.tx() as db:
            have = {r[0] for r in db.execute(
                "SELECT DISTINCT service FROM agent_leases WHERE agent = ? AND day = ?",
                (agent, day))}
            for svc in self.catalog.services:
                if svc.id not in have:
                    self._new_block(db, agent, day, svc.id)
            blocks = [{"service": r[0], "from": r[1], "to": r[2]} for r in db.execute(
                "SELECT service, from_n, to_n FROM agent_leases WHERE agent = ? AND day = ? "
                "ORDER BY service, from_n", (agent, day))]
        return {"day": day, "blocks": blocks}

    def _new_block(self, db: sqlite3.Connection, agent: str, day: str, service: str) -> None:
        """A block no one has: above every block leased today and every number issued.
        Remembered before it is sent, so our own numbering never uses a leased number."""
        top = db.execute(
            "SELECT MAX(n) FROM (SELECT MAX(to_n) AS n FROM leases WHERE day = ? AND "
            "service = ? UNION ALL SELECT MAX(seq) FROM tickets WHERE day = ? AND prefix = ?)",
            (day, service, day, service)).fetchone()[0]
        # The first agent of an empty day gets 500…, the next 700…: readable at a glance.
        lo = max(LEASE_FLOOR + self.agent_index(agent) * self.lease_size, (top or 0) + 1)
        hi = lo + self.lease_size - 1
        db.execute("INSERT INTO agent_leases (agent, day, service, from_n, to_n) "
                   "VALUES (?, ?, ?, ?, ?)", (agent, day, service, lo, hi))
        self.engine.leases.add_blocks(day, [(service, lo, hi)])

    def top_up(self, agent: str, day: str, service: str) -> bool:
        """Add a block when fewer than half of the agent's leased numbers are left."""
        with self.store.tx() as db:
            blocks = db.execute("SELECT from_n, to_n FROM agent_leases WHERE agent = ? AND "
                                "day = ? AND service = ?", (agent, day, service)).fetchall()
            if not blocks:
                return False
            left = 0
            for lo, hi in blocks:
                used = db.execute("SELECT MAX(seq) FROM tickets WHERE day = ? AND prefix = ? "
                                  "AND seq BETWEEN ? AND ?", (day, service, lo, hi)).fetchone()[0]
                left += hi - (lo - 1 if used is None else used)
            if left >= self.lease_size // 2:
                return False
            self._new_block(db, agent, day, service)
        log.info("central: topped up %s's lease of %s (%d numbers were left)", agent, service,
                 left)
        return True
