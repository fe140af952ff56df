"""The queue engine's rules, with a clock the tests move."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from conftest import TZ, Clock
from hall_agent.contract.catalog import Catalog
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store


def catalog(**overrides: object) -> Catalog:
    services = [
        {"id": "A", "name": "社保医保", "name_en": "Social insurance",
         "hours": "08:30-12:00,13:30-17:30", "avg_service_s": 300},
        {"id": "B", "name": "公积金", "name_en": "Housing fund", "hours": "24h",
         "avg_service_s": 600},
        {"id": "C", "name": "不动产", "name_en": "Property", "hours": "24h", "daily_limit": 2},
    ]
    for s in services:
        s.update(overrides.get(str(s["id"]), {}))  # type: ignore[arg-type]
    return Catalog.model_validate({"services": services, "windows": [
        {"id": "5", "services": ["A", "B"]},
        {"id": "6", "services": ["B", "A"]},
        {"id": "8", "services": ["C"]},
    ]})


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 30, 9, 0, tzinfo=TZ))


@pytest.fixture
def q(tmp_path: Path, clock: Clock) -> QueueEngine:
    return QueueEngine(Store(tmp_path), catalog(), TZ, clock=clock)


def test_numbers_run_per_service_prefix(q: QueueEngine) -> None:
    numbers = [q.issue(s).ticket.number for s in "AABAB"]
    assert numbers == ["A001", "A002", "B001", "A003", "B002"]


def test_numbering_resets_at_local_midnight_not_utc(q: QueueEngine, clock: Clock) -> None:
    clock.set(datetime(2026, 11, 30, 23, 58, tzinfo=TZ))
    assert q.issue("B").ticket.number == "B001"
    # 16:30 UTC is 00:30 in Shanghai: a new hall day.
    clock.set(datetime(2026, 12, 1, 0, 30, tzinfo=TZ))
    t = q.issue("B").ticket
    assert (t.number, t.day) == ("B001", "2026-12-01")


def test_yesterdays_waiting_ticket_is_still_served_first(q: QueueEngine, clock: Clock) -> None:
    clock.set(datetime(2026, 11, 30, 23, 50, tzinfo=TZ))
    late = q.issue("B").ticket
    clock.set(datetime(2026, 12, 1, 0, 5, tzinfo=TZ))
    q.issue("B")
    call = q.call_next("6")
    assert call.ticket is not None and call.ticket.ticket_id == late.ticket_id


def test_number_is_never_reused_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    q1 = QueueEngine(Store(tmp_path), catalog(), TZ, clock=clock)
    assert q1.issue("B").ticket.number == "B001"
    q1.store.close()
    q2 = QueueEngine(Store(tmp_path), catalog(), TZ, clock=clock)
    assert q2.issue("B").ticket.number == "B002"


def test_store_refuses_a_duplicate_number(q: QueueEngine) -> None:
    t = q.issue("B").ticket
    with pytest.raises(sqlite3.IntegrityError), q.store.tx() as db:
        db.execute("INSERT INTO tickets (ticket_id, day, service, prefix, seq, number, channel,"
                   " status, issued_at, queue_key) VALUES ('x', ?, 'B', 'B', 1, 'B001', 'kiosk',"
                   " 'waiting', 0, 0)", (t.day,))


def test_priority_ticket_is_called_before_older_ordinary_ones(q: QueueEngine,
                                                              clock: Clock) -> None:
    q.issue("A")
    clock.advance(60)
    q.issue("A")
    clock.advance(60)
    prio = q.issue("A", priority=True, priority_reason="elderly")
    assert prio.waiting_ahead == 0
    call = q.call_next("5")
    assert call.ticket is not None and call.ticket.number == "A003"


def test_window_calls_by_its_service_order_then_oldest(q: QueueEngine, clock: Clock) -> None:
    q.issue("B")  # B001, oldest
    clock.advance(10)
    q.issue("A")  # A001
    clock.advance(10)
    q.issue("A")  # A002
    # Window 5 prefers A, window 6 prefers B.
    c5 = q.call_next("5")
    c6 = q.call_next("6")
    assert c5.ticket is not None and c5.ticket.number == "A001"
    assert c6.ticket is not None and c6.ticket.number == "B001"


def test_call_with_nobody_waiting_returns_an_empty_call(q: QueueEngine) -> None:
    call = q.call_next("5")
    assert call.ticket is None


def test_calling_next_finishes_the_current_ticket(q: QueueEngine, clock: Clock) -> None:
    q.issue("A")
    q.issue("A")
    first = q.call_next("5").ticket
    assert first is not None
    clock.advance(240)
    q.call_next("5")
    assert q.ticket(first.ticket_id).status == "done"
    assert q.ticket(first.ticket_id).finished_at == pytest.approx(first.called_at + 240)


def test_recall_calls_the_same_ticket_again(q: QueueEngine) -> None:
    q.issue("A")
    first = q.call_next("5")
    again = q.recall("5")
    assert again.kind == "recall" and again.ticket is not None
    assert first.ticket is not None and again.ticket.ticket_id == first.ticket.ticket_id
    assert again.ticket.calls == 2


def test_recall_with_nobody_served_is_refused(q: QueueEngine) -> None:
    with pytest.raises(Refused) as e:
        q.recall("5")
    assert e.value.code == "nothing_to_recall"


def test_no_show_ends_the_ticket_without_counting_a_service_time(q: QueueEngine,
                                                                 clock: Clock) -> None:
    q.issue("B")
    t = q.call_next("6").ticket
    assert t is not None
    clock.advance(3000)
    q.no_show("6")
    assert q.ticket(t.ticket_id).status == "no_show"
    assert q.avg_service_s("B") == 600  # still the catalogue's guess


def test_paused_window_cannot_call_and_resumes(q: QueueEngine) -> None:
    q.issue("A")
    q.set_paused("5", True)
    with pytest.raises(Refused) as e:
        q.call_next("5")
    assert e.value.code == "window_paused"
    q.set_paused("5", False)
    assert q.call_next("5").ticket is not None


def test_paused_window_is_left_out_of_the_wait_estimate(q: QueueEngine) -> None:
    for _ in range(4):
        q.issue("B")
    # B is served by windows 5 and 6: 4 ahead × 600 s / 2 windows.
    assert q.estimate_wait("B", 4) == 1200
    q.set_paused("6", True)
    assert q.estimate_wait("B", 4) == 2400


def test_estimate_follows_the_days_measured_service_times(q: QueueEngine,
                                                          clock: Clock) -> None:
    for _ in range(4):
        q.issue("B")
    q.set_paused("5", True)
    for _ in range(3):
        q.call_next("6")
        clock.advance(120)  # each citizen takes 2 minutes, not the guessed 10
    q.call_next("6")
    assert q.avg_service_s("B") == pytest.approx(120)
    assert q.estimate_wait("B", 5) == 600


def test_transfer_keeps_the_number_and_the_place_in_time(q: QueueEngine,
                                                         clock: Clock) -> None:
    early = q.issue("A").ticket
    clock.advance(60)
    q.issue("B")
    t = q.call_next("5").ticket
    assert t is not None and t.ticket_id == early.ticket_id
    moved = q.transfer(early.ticket_id, "B")
    assert (moved.number, moved.service, moved.status) == ("A001", "B", "waiting")
    assert q.window_state("5").serving is None
    # It joined B's queue by its original time, ahead of B001.
    nxt = q.call_next("6").ticket
    assert nxt is not None and nxt.ticket_id == early.ticket_id


def test_transfer_of_a_finished_ticket_is_refused(q: QueueEngine) -> None:
    t = q.issue("B").ticket
    q.call_next("6")
    q.no_show("6")
    with pytest.raises(Refused) as e:
        q.transfer(t.ticket_id, "A")
    assert e.value.code == "ticket_closed"


def test_daily_limit_closes_the_service_and_says_when_it_opens(q: QueueEngine) -> None:
    q.issue("C")
    q.issue("C")
    state = q.service_state("C")
    assert not state.open_now and state.reason and "取完" in state.reason
    with pytest.raises(Refused) as e:
        q.issue("C")
    assert e.value.code == "service_closed"


def test_service_hours_close_at_lunch_and_name_the_reopening(q: QueueEngine,
                                                             clock: Clock) -> None:
    clock.set(datetime(2026, 11, 30, 12, 30, tzinfo=TZ))
    state = q.service_state("A")
    assert not state.open_now
    assert state.opens_at == datetime(2026, 11, 30, 13, 30, tzinfo=TZ)
    assert state.reason is not None and "13:30" in state.reason
    with pytest.raises(Refused):
        q.issue("A")
    clock.set(datetime(2026, 11, 30, 13, 30, tzinfo=TZ))
    assert q.issue("A").ticket.number == "A001"


def test_after_closing_the_next_opening_is_tomorrow_morning(q: QueueEngine,
                                                            clock: Clock) -> None:
    clock.set(datetime(2026, 11, 30, 18, 0, tzinfo=TZ))
    state = q.service_state("A")
    assert state.opens_at == datetime(2026, 12, 1, 8, 30, tzinfo=TZ)
    assert state.reason is not None and "明天" in state.reason


def test_waiting_ahead_counts_only_those_called_before(q: QueueEngine, clock: Clock) -> None:
    for _ in range(3):
        q.issue("A")
        clock.advance(1)
    q.issue("B")
    issued = q.issue("A")
    assert issued.waiting_ahead == 3
    assert issued.est_wait_s == 3 * 300 // 2


def test_rating_binds_to_the_windows_last_ticket_and_flags_follow_up(q: QueueEngine) -> None:
    q.issue("A")
    q.call_next("5")
    e = q.evaluate("5", "unsatisfied", channel="evaluator")
    assert e.ticket == "A001" and e.follow_up
    q.issue("A")
    q.call_next("5")
    ok = q.evaluate("5", "very_satisfied")
    assert ok.ticket == "A002" and not ok.follow_up
    assert q.satisfaction()["5"]["unsatisfied"] == 1


def test_every_change_writes_its_event_in_the_same_transaction(q: QueueEngine) -> None:
    q.issue("A")
    q.call_next("5")
    q.evaluate("5", "satisfied")
    types = [r["type"] for r in q.store.query("SELECT type FROM outbox ORDER BY seq")]
    assert types == ["ticket.issued", "call.shown", "evaluation.submitted"]


def test_unknown_service_and_window_name_the_field(q: QueueEngine) -> None:
    with pytest.raises(Refused) as e:
        q.issue("Z")
    assert (e.value.field, e.value.why) == ("service", Why.INVALID)
    with pytest.raises(Refused) as e:
        q.call_next("99")
    assert (e.value.field, e.value.why) == ("window", Why.INVALID)


def test_own_numbering_skips_blocks_leased_to_agents(q: QueueEngine) -> None:
    q.leases.add_blocks(q.today(), [("B", 3, 5)])
    numbers = [q.issue("B").ticket.number for _ in range(4)]
    assert numbers == ["B001", "B002", "B006", "B007"]


def test_lease_numbers_and_own_numbers_never_meet(q: QueueEngine) -> None:
    # An agent's offline ticket numbered from its lease, merged at the central …
    q.leases.add_blocks(q.today(), [("B", 2, 2)])
    q.issue("B", seq=2, offline=True, check_open=False)
    # … and the central's own numbering continues around it, never reaching it.
    assert [q.issue("B").ticket.number for _ in range(2)] == ["B001", "B003"]
