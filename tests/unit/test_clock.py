"""A wall clock that steps (fake-hwclock at boot, NTP later, an RTC in local time): no
number twice on a real day, no history wiped, the queue's order and estimates intact."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from conftest import TZ, Clock
from hall_agent.contract.catalog import Catalog
from hall_agent.core.clock import ClockGuard
from hall_agent.core.idempotency import Idempotency
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store
from hall_agent.services.retention import Retention

CATALOG = Catalog.model_validate({"services": [
    {"id": "A", "name": "社保医保", "name_en": "Social insurance", "hours": "24h",
     "avg_service_s": 300}],
    "windows": [{"id": "4", "services": ["A"]}]})
SATURDAY = datetime(2026, 11, 28, 16, 0, tzinfo=TZ)
SUNDAY = datetime(2026, 11, 29, 18, 0, tzinfo=TZ)  # what fake-hwclock saved at shutdown
MONDAY = datetime(2026, 11, 30, 8, 40, tzinfo=TZ)  # the real time, once NTP steps it


class Ntp:
    def __init__(self) -> None:
        self.synced = True

    def __call__(self) -> bool:
        return self.synced


def engine(path: Path, clock: Clock, ntp: Ntp, mono: Clock | None = None) -> QueueEngine:
    store = Store(path)
    return QueueEngine(store, CATALOG, TZ, clock=clock,
                       guard=ClockGuard(store, clock, synced=ntp), mono=mono)


def test_fake_hwclock_boot_then_ntp_step_never_repeats_a_number(tmp_path: Path) -> None:
    clock, ntp = Clock(SATURDAY), Ntp()
    q = engine(tmp_path, clock, ntp)
    assert [q.issue("A").ticket.number for _ in range(2)] == ["A001", "A002"]
    # Monday's boot: the clock says Sunday evening and NTP has not answered yet.
    clock.set(SUNDAY)
    ntp.synced = False
    q = engine(tmp_path, clock, ntp)
    early = [q.issue("A").ticket.number for _ in range(3)]
    guard = getattr(q, "guard", None)  # (the engine before clock guards had none)
    doubt = guard.state().code if guard is not None else ""
    # NTP steps the clock to Monday morning: the three given in doubt are not repeated.
    clock.set(MONDAY)
    ntp.synced = True
    later = [q.issue("A").ticket.number for _ in range(3)]
    printed = early + later
    assert len(set(printed)) == len(printed), printed
    assert early == ["A003", "A004", "A005"]  # the newest day went on, none opened
    assert doubt == "clock.unsynced"


def test_clock_behind_the_newest_ticket_opens_no_earlier_day(tmp_path: Path) -> None:
    clock, ntp = Clock(MONDAY), Ntp()
    q = engine(tmp_path, clock, ntp)
    first = [q.issue("A").ticket.number for _ in range(3)]
    clock.advance(-10 * 3600)  # an RTC in local time read as UTC, then corrected: 8 h+
    again = [q.issue("A").ticket.number for _ in range(3)]
    assert again == ["A004", "A005", "A006"] and not set(first) & set(again)
    assert q.guard is not None and q.guard.state().code == "clock.behind"


def test_a_new_day_opens_with_a_good_clock(tmp_path: Path) -> None:
    clock, ntp = Clock(SATURDAY), Ntp()
    q = engine(tmp_path, clock, ntp)
    q.issue("A")
    clock.set(MONDAY)
    assert q.issue("A").ticket.number == "A001"


def test_retention_never_acts_on_a_clock_in_doubt(tmp_path: Path) -> None:
    clock, ntp = Clock(MONDAY), Ntp()
    q = engine(tmp_path, clock, ntp)
    idem = Idempotency(q.store)
    issued = q.issue("A")
    idem.remember("kiosk-key-1", "POST /v1/tickets", "h", 201, {"number": issued.ticket.number})
    q.call_next("4")
    q.finish("4")
    clock.advance(100 * 86400)  # a restart 100 days ahead, NTP not yet synchronised
    ntp.synced = False
    Retention(q.store, 90, getattr(q, "guard", None), clock).run_once()
    clock.advance(-100 * 86400)
    ntp.synced = True
    assert idem.replay("kiosk-key-1", "POST /v1/tickets", "h") is not None
    assert q.store.one("SELECT COUNT(*) FROM tickets")[0] == 1  # type: ignore[index]
    assert q.issue("A").ticket.number == "A002"


def test_retention_keeps_the_newest_days_counters_whatever_the_clock(tmp_path: Path) -> None:
    clock = Clock(MONDAY)
    store = Store(tmp_path)
    q = QueueEngine(store, CATALOG, TZ, clock=clock)
    for _ in range(3):
        q.issue("A")
        q.call_next("4")
    q.finish("4")
    store.prune(clock() + 100 * 86400, 90)  # a clock 100 days ahead, believed
    assert q.issue("A").ticket.number == "A004"  # back on the real day: no A001 again


def test_a_ticket_after_a_step_back_does_not_jump_the_queue(tmp_path: Path) -> None:
    clock, ntp = Clock(MONDAY), Ntp()
    q = engine(tmp_path, clock, ntp)
    q.issue("A")
    q.issue("A")
    clock.advance(-3600)
    q.issue("A")  # A003, issued after the step
    called = [q.call_next("4").called for _ in range(3)]
    assert called == ["A001", "A002", "A003"]


def test_a_step_during_a_service_does_not_change_its_measured_time(tmp_path: Path) -> None:
    clock, mono, ntp = Clock(MONDAY), Clock(MONDAY), Ntp()
    q = engine(tmp_path, clock, ntp, mono)
    for _ in range(4):
        q.issue("A")
    q.call_next("4")
    clock.advance(-5400)  # NTP steps 1.5 h back while the citizen is served
    clock.advance(240)
    mono.advance(240)
    q.call_next("4")
    assert q.avg_service_s("A") == pytest.approx(240)
    assert q.estimate_wait("A", 2) >= 0


def test_one_implausible_service_time_is_bounded(tmp_path: Path) -> None:
    clock = Clock(MONDAY)
    store = Store(tmp_path)
    q = QueueEngine(store, CATALOG, TZ, clock=clock)
    for _ in range(3):
        q.issue("A")
    q.call_next("4")
    # Called by an agent that restarted meanwhile (no steady measure): the wall clock
    # jumped 2.5 h forward during the service.
    with store.tx() as db:
        db.execute("UPDATE tickets SET called_at = called_at - 9000 WHERE status = 'called'")
    getattr(q, "_called_mono", {}).clear()
    q.call_next("4")
    assert q.avg_service_s("A") <= 4 * 300
