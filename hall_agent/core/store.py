"""The agent's durable state: SQLite in WAL mode with ``synchronous=FULL``.

A ticket is committed here before it is printed or announced, so a power cut
or a SIGKILL after the commit loses nothing and reuses no number. Every change
that an outside party must learn about (the central, a technician) writes its
event row in the same transaction (the outbox of MQTT.md).

One connection, guarded by a lock: the load of a hall (~8,000 tickets a day,
a few writes a second at peak) is far below what one SQLite writer does, and a
single writer makes every "read, decide, write" step atomic without retries.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivers.errors import StoreError
from hall_agent.core.outbox import Outbox
from hall_agent.core.storage import Cause, StorageFault, cause_of, refine, still_full

log = logging.getLogger("hall_agent.store")

DB_NAME = "hall-agent.sqlite3"

# Each entry moves the schema from version i to i+1; never edit a released entry,
# append a new one.
MIGRATIONS: list[str] = [
    # 1: tickets, numbering, windows, calls, idempotency, outbox
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE counters (
        day TEXT NOT NULL, service TEXT NOT NULL, last INTEGER NOT NULL,
        PRIMARY KEY (day, service)
    );

    CREATE TABLE tickets (
        ticket_id    TEXT PRIMARY KEY,
        day          TEXT NOT NULL,            -- hall-local date it was numbered on
        service      TEXT NOT NULL,            -- current service (changes on transfer)
        prefix       TEXT NOT NULL,            -- service it was numbered under
        seq          INTEGER NOT NULL,
        number       TEXT NOT NULL,
        priority     INTEGER NOT NULL DEFAULT 0,
        priority_reason TEXT,
        channel      TEXT NOT NULL,
        status       TEXT NOT NULL,            -- waiting | called | done | no_show | cancelled
        issued_at    REAL NOT NULL,            -- unix seconds
        queue_key    REAL NOT NULL,            -- order within a queue (issue time)
        called_at    REAL,
        finished_at  REAL,
        window       TEXT,
        calls        INTEGER NOT NULL DEFAULT 0,
        offline      INTEGER NOT NULL DEFAULT 0,
        print_state  TEXT NOT NULL DEFAULT 'pending',  -- pending | printed | failed
        print_detail TEXT NOT NULL DEFAULT '',
        transferred_from TEXT,
        id_hash      TEXT,
        UNIQUE (day, prefix, seq)
    );
    CREATE INDEX tickets_waiting ON tickets (status, service, priority, queue_key);
    CREATE INDEX tickets_day ON tickets (day, service);

    CREATE TABLE windows (
        id TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        serving TEXT REFERENCES tickets (ticket_id),
        last_ticket TEXT REFERENCES tickets (ticket_id)
    );

    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY, ticket_id TEXT, number TEXT, window TEXT NOT NULL,
        service TEXT, kind TEXT NOT NULL, ts REAL NOT NULL
    );
    CREATE INDEX calls_ts ON calls (ts);

    CREATE TABLE evaluations (
        evaluation_id TEXT PRIMARY KEY, window TEXT NOT NULL, ticket_id TEXT, number TEXT,
        level TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL,
        follow_up INTEGER NOT NULL, ts REAL NOT NULL
    );

    CREATE TABLE idempotency (
        key TEXT NOT NULL, route TEXT NOT NULL, request_hash TEXT NOT NULL,
        status INTEGER NOT NULL, body TEXT NOT NULL, ts REAL NOT NULL,
        PRIMARY KEY (key, route)
    );

    CREATE TABLE outbox (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, even after deletes
        msg_id  TEXT NOT NULL UNIQUE,
        ts      TEXT NOT NULL,
        type    TEXT NOT NULL,
        offline INTEGER NOT NULL DEFAULT 0,
        data    TEXT NOT NULL,
        sent_at REAL
    );
    """,
    # 2: central mode: number leases and the central's last word on things
    """
    CREATE TABLE leases (
        day TEXT NOT NULL, service TEXT NOT NULL, from_n INTEGER NOT NULL,
        to_n INTEGER NOT NULL, PRIMARY KEY (day, service, from_n)
    );
    CREATE TABLE central (key TEXT PRIMARY KEY, body TEXT NOT NULL, ts REAL NOT NULL);
    ALTER TABLE outbox ADD COLUMN acked_at REAL;
    CREATE INDEX outbox_unacked ON outbox (acked_at, seq);
    """,
    # 3: real-name tickets and appointments. Personal data only as an HMAC of the ID
    # number and masked forms (hall_agent/personal.py), never in clear.
    """
    ALTER TABLE tickets ADD COLUMN masked_name TEXT;
    CREATE INDEX tickets_person ON tickets (id_hash, day, service, status);
    CREATE TABLE appointments (
        appointment_id TEXT PRIMARY KEY,
        code         TEXT NOT NULL UNIQUE,     -- what the appointment QR carries
        service      TEXT NOT NULL,
        day          TEXT NOT NULL,            -- hall-local date
        slot_start   TEXT NOT NULL,            -- HH:MM
        slot_end     TEXT NOT NULL,
        id_hash      TEXT,
        masked_name  TEXT,
        masked_id    TEXT,
        source       TEXT NOT NULL,            -- import | kiosk | central
        status       TEXT NOT NULL DEFAULT 'booked',  -- booked | checked_in | cancelled
        ticket_id    TEXT,
        checked_in_at REAL,
        created_at   REAL NOT NULL
    );
    CREATE INDEX appointments_person ON appointments (id_hash, day);
    CREATE INDEX appointments_slot ON appointments (service, day, slot_start);
    """,
    # 4: a number request in flight (services/tickets.py): written before the central is
    # asked and deleted with the ticket's commit, so a number the central gave to a ticket
    # that was never committed is voided at the next start (docs/mqtt-extensions.md,
    # ticket.voided).
    """
    CREATE TABLE number_requests (
        ticket_id TEXT PRIMARY KEY, req_id TEXT NOT NULL, service TEXT NOT NULL,
        ts REAL NOT NULL
    );
    """,
    # 5: the day's last service times (the wait estimate) read from an index, not by
    # sorting the day's tickets at every issue (a central merging a day crawled).
    """
    CREATE INDEX tickets_done ON tickets (service, day, status, finished_at);
    """,
    # 6: one rating per visit (core/ratings.py). ticket_key names the visit (its
    # ticket_id, or day/number for a ticket numbered elsewhere), rated_key is set on the
    # one rating that counts. Of earlier duplicates the first keeps it, the rest stay
    # stored and are no longer counted.
    """
    ALTER TABLE evaluations ADD COLUMN ticket_key TEXT;
    ALTER TABLE evaluations ADD COLUMN rated_key TEXT;
    UPDATE evaluations SET ticket_key = ticket_id;
    UPDATE evaluations SET rated_key = ticket_id WHERE ticket_id IS NOT NULL
        AND level != 'none' AND evaluation_id = (
            SELECT e.evaluation_id FROM evaluations e WHERE e.ticket_id = evaluations.ticket_id
            AND e.level != 'none' ORDER BY e.ts, e.evaluation_id LIMIT 1);
    CREATE UNIQUE INDEX evaluations_once ON evaluations (rated_key);
    CREATE INDEX calls_window ON calls (window, ts);
    """,
]


def _open_error(data_dir: Path, e: BaseException) -> StoreError:
    """Why the store cannot start, in words that say what to do."""
    cause = e.cause if isinstance(e, StorageFault) else cause_of(e)
    if cause is not None:
        return StoreError(f"data_dir {data_dir}: {cause.en} ({e.__class__.__name__}: "
                          f"{getattr(e, 'detail', '') or e}) — {cause.zh}")
    return StoreError(f"data_dir {data_dir}: cannot open the store ({e}); check that "
                      "the directory exists and the agent's user may write it")


class Store:
    """The SQLite database under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None, timeout=10)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed ticket survives a power cut, not only a crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as e:
            raise _open_error(data_dir, e) from None
        self._lock = threading.RLock()
        self.fault: Cause | None = None  # the card's condition while writes fail
        self._depth = 0
        self._new_events = False
        self._after: list[Callable[[], None]] = []
        # Called (outside the lock) after a commit that added outbox events: the MQTT
        # relay listens here, so an event leaves as soon as it is durable.
        self.on_events: list[Callable[[], None]] = []
        try:
            self._migrate()
        except (OSError, sqlite3.Error, StorageFault) as e:
            self._db.close()
            raise _open_error(data_dir, e) from None
        self.outbox = Outbox(self)

    # ---------------------------------------------------------------- transactions

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nests (inner blocks join the outer transaction)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._storage(self._db.execute, "BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._db
                if outer:
                    self._storage(self._db.execute, "COMMIT")
            except BaseException as e:
                self._depth -= 1
                if outer:
                    self._new_events = False
                    self._after.clear()  # what rolled back never happened
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    cause = cause_of(e)
                    if cause is not None and not isinstance(e, StorageFault):
                        cause = refine(cause, str(self.path.parent))
                        self._set_fault(cause, str(e))
                        raise StorageFault(cause, str(e)) from e
                raise
            else:
                self._depth -= 1
                if outer:
                    if self.fault is not None and not still_full(self.fault,
                                                                 str(self.path.parent)):
                        self._set_fault(None, "")
                    after, self._after = self._after, []
        if not outer:
            return
        if self._new_events:
            self._new_events = False
            for fn in self.on_events:
                fn()
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("after-commit action %r failed", fn)

    def _storage(self, fn: Callable[[str], Any], sql: str) -> None:
        try:
            fn(sql)
        except sqlite3.Error as e:
            cause = cause_of(e)
            if cause is None:
                raise
            cause = refine(cause, str(self.path.parent))
            self._set_fault(cause, str(e))
            raise StorageFault(cause, str(e)) from e

    def _set_fault(self, cause: Cause | None, detail: str) -> None:
        """Said once when it starts and once when it ends, never at every write."""
        old, self.fault = self.fault, cause
        if cause is not None and old != cause:
            log.error("store %s: %s (%s)", self.path, cause.en, detail)
        elif cause is None and old is not None:
            log.warning("store %s: writable again (%s cleared)", self.path, old.code)

    def probe_write(self) -> str | None:
        """A real write (the watchdog's check): None if the store takes writes."""
        try:
            self.meta_set("alive", "1")
        except StorageFault as e:
            return f"the store cannot be written: {e.message_en}"
        return None

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction in progress has committed (at once when
        none is open); dropped if it rolls back. Live events (the kiosk's stream, the
        boards, the voice) go out this way, so nobody sees a change that may still
        be undone."""
        with self._lock:
            if self._depth:
                self._after.append(fn)
                return
        fn()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- schema

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path}: schema version {version} is newer than this "
                                 f"agent knows ({len(MIGRATIONS)}); install the newer agent")
            for i in range(version, len(MIGRATIONS)):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in MIGRATIONS[i].split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute(f"PRAGMA user_version = {i + 1}")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        row = self.one("PRAGMA user_version")
        assert row is not None
        return int(row[0])

    # ---------------------------------------------------------------- meta

    def meta_get(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def meta_set(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def next_boot(self) -> int:
        """The persisted boot counter (MQTT.md birth/will), incremented once per start."""
        try:
            with self.tx():
                boot = int(self.meta_get("boot") or 0) + 1
                self.meta_set("boot", str(boot))
        except StorageFault as e:
            raise _open_error(self.path.parent, e) from None
        return boot

    # ---------------------------------------------------------------- retention

    def prune(self, now: float, retention_days: int) -> dict[str, int]:
        """Delete what is past its time: the day's records after ``retention_days``,
        acknowledged events after a week, idempotency answers after two days. Nothing
        still waiting or not yet acknowledged, and nothing of the newest numbering day,
        is ever deleted (services/retention.py asks only with a clock known good)."""
        old = now - retention_days * 86400
        deleted: dict[str, int] = {}
        with self.tx() as db:
            # The newest numbering day is never deleted, whatever the clock says: its
            # counters are what keeps A001 from being issued twice.
            newest = db.execute("SELECT MAX(day) FROM counters").fetchone()[0] or ""
            closed = "issued_at < ? AND status NOT IN ('waiting', 'called') AND day != ?"
            keep = "AND day != ?"
            # A window's "last ticket" (for a late rating) may be one of those going.
            db.execute(f"UPDATE windows SET last_ticket = NULL WHERE last_ticket IN "
                       f"(SELECT ticket_id FROM tickets WHERE {closed})", (old, newest))
            for table, sql, args in (
                ("tickets", f"DELETE FROM tickets WHERE {closed}", (old, newest)),
                ("calls", "DELETE FROM calls WHERE ts < ?", (old,)),
                ("evaluations", "DELETE FROM evaluations WHERE ts < ?", (old,)),
                ("counters", f"DELETE FROM counters WHERE day < date(?, 'unixepoch') {keep}",
                 (old, newest)),
                ("leases", f"DELETE FROM leases WHERE day < date(?, 'unixepoch') {keep}",
                 (old, newest)),
                ("appointments", "DELETE FROM appointments WHERE day < date(?, 'unixepoch')",
                 (old,)),
            ):
                deleted[table] = db.execute(sql, args).rowcount
            deleted["outbox"] = self.outbox.prune(db, now)
            deleted["idempotency"] = db.execute("DELETE FROM idempotency WHERE ts < ?",
                                                (now - 2 * 86400,)).rowcount
        return {k: v for k, v in deleted.items() if v}

    # ---------------------------------------------------------------- outbox

    def events_added(self) -> None:
        """The transaction in progress added outbox events: ``on_events`` is called once
        it commits (hall_agent/core/outbox.py)."""
        self._new_events = True
