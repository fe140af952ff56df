"""hall-central's own tables, beside the queue engine's (hall_agent/core/store.py) in the
same SQLite file, so a ticket, its audit row and the event that caused it commit
together. Versioned in ``meta`` (``central_schema``); append-only like the agent's."""

from __future__ import annotations

from hall_agent.core.store import Store

CENTRAL_MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS received (
        msg_id TEXT PRIMARY KEY, agent TEXT NOT NULL, seq INTEGER NOT NULL,
        type TEXT NOT NULL, offline INTEGER NOT NULL, data TEXT NOT NULL,
        deliveries INTEGER NOT NULL DEFAULT 1, ts REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS agents (
        agent TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, max_seq INTEGER
    );
    CREATE TABLE IF NOT EXISTS agent_leases (
        agent TEXT NOT NULL, day TEXT NOT NULL, service TEXT NOT NULL,
        from_n INTEGER NOT NULL, to_n INTEGER NOT NULL, PRIMARY KEY (day, service, from_n)
    );
    CREATE TABLE IF NOT EXISTS voided (ticket_id TEXT PRIMARY KEY, ts REAL NOT NULL);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, window TEXT,
        staff TEXT NOT NULL, channel TEXT NOT NULL, action TEXT NOT NULL,
        ticket_id TEXT, number TEXT, detail TEXT NOT NULL DEFAULT '{}', op_id TEXT UNIQUE
    );
    CREATE INDEX audit_window_day ON audit (window, day);
    CREATE TABLE window_rules (
        window TEXT PRIMARY KEY, pause_reason TEXT,
        prio_streak INTEGER NOT NULL DEFAULT 0, normal_due INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE ticket_rules (
        ticket_id TEXT PRIMARY KEY, target_window TEXT, first INTEGER NOT NULL DEFAULT 0,
        recalls INTEGER NOT NULL DEFAULT 0, last_call_at REAL, parked_at REAL
    )
    """,
]


def migrate(store: Store) -> None:
    with store.tx() as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'central_schema'").fetchone()
        version = int(row[0]) if row else 0
        if version > len(CENTRAL_MIGRATIONS):
            raise RuntimeError(f"{store.path}: hall-central schema {version} is newer than "
                               "this hall-central knows; install the newer version")
        for i in range(version, len(CENTRAL_MIGRATIONS)):
            for stmt in CENTRAL_MIGRATIONS[i].split(";"):
                if stmt.strip():
                    db.execute(stmt)
        db.execute("INSERT INTO meta (key, value) VALUES ('central_schema', ?) ON CONFLICT "
                   "(key) DO UPDATE SET value = excluded.value",
                   (str(len(CENTRAL_MIGRATIONS)),))
