"""The store on a card that refuses writes: a StorageFault (503) naming the cause, the
watchdog's check fails on a write (a read still answers), and repeated log lines are
limited so a fault cannot push everything else out of the rotated logs."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import wait_until
from hall_agent.core.storage import READONLY, StorageFault
from hall_agent.core.store import Store
from hall_agent.logs import RepeatLimit
from hall_agent.main import liveness_checks


def test_a_store_refusing_writes_answers_a_storage_fault_and_clears_after(
        tmp_path: Path) -> None:
    store = Store(tmp_path)
    store._db.execute("PRAGMA query_only = 1")  # SQLite answers as a read-only card would
    with pytest.raises(StorageFault) as e:
        store.meta_set("k", "v")
    assert e.value.cause is READONLY and e.value.why == "unavailable"
    assert store.fault is READONLY
    store._db.execute("PRAGMA query_only = 0")
    store.meta_set("k", "v")
    assert store.fault is None


def test_the_watchdogs_store_check_writes_and_says_a_card_fault(tmp_path: Path) -> None:
    store = Store(tmp_path)
    check = liveness_checks(SimpleNamespace(store=store), "127.0.0.1:1", None)[0]
    assert check() is None and store.fault is None
    store._db.execute("PRAGMA query_only = 1")
    assert store.one("SELECT 1") is not None  # reads still answer
    # The write found the card's fault: said (health, STATUS), not a restart, which
    # could free no space and would fail to start.
    assert check() is None and store.fault is READONLY


def test_the_watchdog_says_a_card_fault_in_status_and_keeps_pinging() -> None:
    from hall_agent.sdnotify import Watchdog

    class Notifier:
        enabled, watchdog_s = True, 0.03

        def __init__(self) -> None:
            self.sent: list[str] = []

        def ready(self, status: str = "") -> bool:
            return True

        def watchdog(self) -> bool:
            self.sent.append("WATCHDOG=1")
            return True

        def status(self, text: str) -> bool:
            self.sent.append(f"STATUS={text}")
            return True

        def stopping(self, status: str = "") -> bool:
            return True

    n = Notifier()
    w = Watchdog(n, lambda: True, [lambda: None],  # type: ignore[arg-type]
                 notice=lambda: "disk full: the storage card has no space left")
    w.start()
    try:
        assert wait_until(lambda: n.sent.count("WATCHDOG=1") >= 3, 10)
    finally:
        w.stop()
    assert "STATUS=degraded: disk full: the storage card has no space left" in n.sent


def test_a_line_repeated_a_thousand_times_is_written_a_few_times() -> None:
    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RepeatLimit(per_minute=5, clock=lambda: now[0]))
    log = logging.getLogger("test.repeats")
    log.addHandler(handler)
    log.propagate = False
    try:
        for _ in range(1000):
            log.error("socket.accept() out of system resource")
        log.error("something else")
        now[0] = 61.0
        log.error("socket.accept() out of system resource")
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 + 1 + 1
    assert "995 more like this left out" in lines[-1]
