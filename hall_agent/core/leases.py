"""Number leases (MQTT.md, Numbering): blocks of numbers the central hands an agent in
advance, so a kiosk keeps numbering when the central is unreachable.

Both sides keep the day's blocks in the ``leases`` table: the agent numbers from
its blocks (``next_leased``) when the central does not answer; the central's own
numbering skips every block it leased (``next_own_number``), so two kiosks can
never issue the same number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from hall_agent.core.store import Store

# Where the central stand-in starts the lease blocks it hands out. Numbering skips
# every leased block (Leases.next_own_number), so a busy service simply jumps over them.
LEASE_FLOOR = 500


class Leases:
    def __init__(self, store: Store, today: Callable[[], str]) -> None:
        self.store = store
        self._today = today

    def next_own_number(self, db: sqlite3.Connection, day: str, prefix: str) -> int:
        """The next number this engine may give: after its counter and after any number
        already issued today outside a lease block (an agent switched to standalone
        mid-day continues after the central's numbers), skipping every leased block
        (the central must never give a number it leased to an agent) and every
        number already taken."""
        row = db.execute("SELECT last FROM counters WHERE day = ? AND service = ?",
                         (day, prefix)).fetchone()
        used = db.execute(
            "SELECT MAX(seq) FROM tickets t WHERE day = ? AND prefix = ? AND NOT EXISTS "
            "(SELECT 1 FROM leases l WHERE l.day = t.day AND l.service = t.prefix AND "
            "t.seq BETWEEN l.from_n AND l.to_n)", (day, prefix)).fetchone()[0]
        seq = max(row[0] if row else 0, used or 0) + 1
        while True:
            block = db.execute("SELECT MAX(to_n) FROM leases WHERE day = ? AND service = ? "
                               "AND ? BETWEEN from_n AND to_n", (day, prefix, seq)).fetchone()[0]
            if block is not None:
                seq = block + 1
            elif db.execute("SELECT 1 FROM tickets WHERE day = ? AND prefix = ? AND seq = ?",
                            (day, prefix, seq)).fetchone():
                seq += 1
            else:
                return int(seq)



    def add_blocks(self, day: str, blocks: list[tuple[str, int, int]]) -> None:
        """Record blocks handed out (the central's side): its own numbering skips them."""
        with self.store.tx() as db:
            db.executemany("INSERT OR IGNORE INTO leases (day, service, from_n, to_n) "
                           "VALUES (?, ?, ?, ?)", [(day, *b) for b in blocks])

    def set(self, day: str, blocks: list[tuple[str, int, int]]) -> None:
        """Replace the day's leased number blocks (service, from, to)."""
        with self.store.tx() as db:
            db.execute("DELETE FROM leases WHERE day = ?", (day,))
            for service, lo, hi in blocks:
                db.execute("INSERT OR REPLACE INTO leases (day, service, from_n, to_n) "
                           "VALUES (?, ?, ?, ?)", (day, service, lo, hi))

    def next_leased(self, service: str, db: sqlite3.Connection) -> int | None:
        """The lowest number of today's lease for ``service`` above any used today."""
        day = self._today()
        for lo, hi in db.execute("SELECT from_n, to_n FROM leases WHERE day = ? AND "
                                 "service = ? ORDER BY from_n", (day, service)).fetchall():
            used = db.execute("SELECT MAX(seq) FROM tickets WHERE day = ? AND prefix = ? AND "
                              "seq BETWEEN ? AND ?", (day, service, lo, hi)).fetchone()[0]
            n = lo if used is None else used + 1
            if n <= hi:
                return int(n)
        return None

    def left(self) -> dict[str, int]:
        """Numbers left in today's lease, per service."""
        out: dict[str, int] = {}
        day = self._today()
        with self.store.tx() as db:
            for sid, lo, hi in db.execute("SELECT service, from_n, to_n FROM leases "
                                          "WHERE day = ?", (day,)).fetchall():
                used = db.execute("SELECT COUNT(*) FROM tickets WHERE day = ? AND prefix = ? "
                                  "AND seq BETWEEN ? AND ?", (day, sid, lo, hi)).fetchone()[0]
                out[sid] = out.get(sid, 0) + hi - lo + 1 - used
        return out
