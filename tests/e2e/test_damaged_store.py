"""A store that comes back damaged (a lost WAL after SIGKILL, truncated to nothing or
to half) under a real agent: it starts, never issues A001 again, keeps the damaged file
aside, continues the outbox's seq, and says so in health until a technician has dealt
with it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import HallUnderTest

pytestmark = pytest.mark.slow

DB = "hall-agent.sqlite3"


def take(c: httpx.Client) -> str:
    r = c.post("/v1/tickets", json={"service": "A"},
               headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


def lose_wal(data: Path) -> None:
    (data / f"{DB}-wal").unlink()
    (data / f"{DB}-shm").unlink(missing_ok=True)


def truncate_to_zero(data: Path) -> None:
    lose_wal(data)
    (data / DB).write_bytes(b"")


def truncate_to_half(data: Path) -> None:
    db = data / DB
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


@pytest.mark.parametrize(("damage", "kill"), [
    (lose_wal, True), (truncate_to_zero, True), (truncate_to_half, False)])
def test_a_damaged_store_never_starts_over_at_a001(
        tmp_path: Path, damage: Callable[[Path], None], kill: bool) -> None:
    h = HallUnderTest(tmp_path / "hall")
    data = tmp_path / "hall" / "data"
    try:
        h.start()
        with h.client() as c:
            before = [take(c) for _ in range(40)]
            seq = c.get("/v1/event-log").json()["last_seq"]
        if kill:
            h.kill()  # the WAL still holds the commits
        else:
            h.stop()  # a clean stop checkpoints: the damage hits the main file
        damage(data)
        h.start()
        with h.client() as c:
            after = [take(c) for _ in range(3)]
            health = c.get("/v1/health").json()
            seq_after = c.get("/v1/event-log").json()["last_seq"]
        assert not set(before) & set(after), (before[-3:], after)
        storage = health["devices"].get("storage", {})
        assert storage.get("status") == "degraded", health
        assert "damaged" in storage["detail"]
        kept = [p for p in data.iterdir() if p.name.startswith("damaged-")]
        assert kept and (kept[0] / "WHAT-HAPPENED.txt").exists()
        assert seq_after > seq  # the outbox's seq goes on, never back to 1
    finally:
        h.close()
