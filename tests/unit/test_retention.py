"""Retention: old records go after [agent] retention_days; nothing waiting or unsent does."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from test_queue import catalog

from conftest import Clock
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store

TZ = ZoneInfo("Asia/Shanghai")


def test_prune_keeps_what_is_open_or_unsent_and_drops_the_old(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 6, 1, 9, 0, tzinfo=TZ))
    q = QueueEngine(Store(tmp_path), catalog(), TZ, clock=clock)
    done = q.issue("B").ticket
    q.call_next("6")
    q.no_show("6")
    still_waiting = q.issue("B").ticket
    with q.store.tx() as db:
        db.execute("UPDATE outbox SET acked_at = ? WHERE seq = 1", (clock(),))
    clock.set(datetime(2026, 6, 1, 9, 0, tzinfo=TZ) + timedelta(days=100))
    recent = q.issue("B").ticket

    gone = q.store.prune(clock(), retention_days=90)

    ids = {r[0] for r in q.store.query("SELECT ticket_id FROM tickets")}
    assert done.ticket_id not in ids
    assert still_waiting.ticket_id in ids and recent.ticket_id in ids
    assert gone["tickets"] == 1 and gone["outbox"] == 1
    unacked = q.store.query("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")[0][0]
    assert unacked >= 3  # never acknowledged: kept, whatever their age
    # Numbering of the new day is untouched by the pruning of old days.
    assert q.issue("B").ticket.number == "B002"
