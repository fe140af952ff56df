"""The clerks' desk of hall-central (central/desk.py): the queue rules clerks and managers
expect, each action one audited event, refusals that write nothing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from central.config import QueueRules
from central.desk import Desk
from central.schema import migrate
from central.views import Actor
from conftest import TEST_CATALOG, TZ, Clock
from hall_agent.contract.config import load_catalog
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import Store

CLERK = Actor("clerk-007", "console")
KEYS = Actor("evaluator@5", "evaluator")


class Hall:
    def __init__(self, root: Path, **rules: Any) -> None:
        self.clock = Clock(datetime(2026, 11, 30, 9, 0, tzinfo=TZ))
        self.store = Store(root)
        migrate(self.store)
        self.catalog = load_catalog(TEST_CATALOG)
        self.engine = QueueEngine(self.store, self.catalog, TZ, clock=self.clock)
        self.desk = Desk(self.store, self.engine, self.catalog, QueueRules(**rules))

    def issue(self, service: str = "A", priority: bool = False) -> str:
        self.clock.advance(1)
        return self.engine.issue(service, priority=priority).ticket.number

    def audit_rows(self) -> int:
        row = self.store.one("SELECT COUNT(*) FROM audit")
        assert row is not None
        return int(row[0])


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[Hall]:
    h = Hall(tmp_path)
    yield h
    h.store.close()


def make(tmp_path: Path, **rules: Any) -> Hall:
    return Hall(tmp_path / "h", **rules)


def served(v: Any) -> str | None:
    return None if v.serving is None else str(v.serving.number)


def test_priority_tickets_are_called_first_by_default(hall: Hall) -> None:
    a1, a2 = hall.issue(), hall.issue()
    p1 = hall.issue(priority=True)
    assert [served(hall.desk.call_next("5", CLERK)) for _ in range(3)] == [p1, a1, a2]


def test_interleave_calls_normal_tickets_after_a_run_of_priority_ones(tmp_path: Path) -> None:
    h = make(tmp_path, priority_run=2, normal_after=1)
    normals = [h.issue() for _ in range(2)]
    prio = [h.issue(priority=True) for _ in range(4)]
    got = [served(h.desk.call_next("5", CLERK)) for _ in range(6)]
    assert got == [prio[0], prio[1], normals[0], prio[2], prio[3], normals[1]]


def test_the_view_says_which_ticket_call_next_will_call(tmp_path: Path) -> None:
    h = make(tmp_path, priority_run=1, normal_after=1)
    n = h.issue()
    p1, p2 = h.issue(priority=True), h.issue(priority=True)
    v = h.desk.view("5")
    assert [w.number for w in v.waiting] == [p1, p2, n] and v.next == p1
    v = h.desk.call_next("5", CLERK)
    assert v.next == n  # the interleave owes a normal ticket now
    assert served(h.desk.call_next("5", CLERK)) == n


def test_window_calls_its_services_in_order_of_preference(hall: Hall) -> None:
    b = hall.issue("B")
    a = hall.issue("A")
    assert served(hall.desk.call_next("5", CLERK)) == a  # window 5 serves A before B
    assert served(hall.desk.call_next("6", CLERK)) == b


def test_recall_respects_its_minimum_interval_and_maximum(tmp_path: Path) -> None:
    h = make(tmp_path, recall_min_interval_s=10, recall_max=2)
    h.issue()
    h.desk.call_next("5", CLERK)
    with pytest.raises(Refused) as e:
        h.desk.recall("5", CLERK)
    assert e.value.code == "recall_too_soon" and "请 10 秒后再重呼" in str(e.value)
    for n in (1, 2):
        h.clock.advance(10)
        assert h.desk.recall("5", CLERK).serving.recalls == n  # type: ignore[union-attr]
    h.clock.advance(10)
    with pytest.raises(Refused) as e:
        h.desk.recall("5", CLERK)
    assert e.value.code == "recall_limit" and "no-show" in e.value.message_en


def test_a_recall_past_k_recalls_marks_no_show_and_calls_the_next(tmp_path: Path) -> None:
    h = make(tmp_path, recall_min_interval_s=0, recall_max=3, no_show_after_recalls=2)
    first, second = h.issue(), h.issue()
    h.desk.call_next("5", CLERK)
    h.desk.recall("5", KEYS)
    h.desk.recall("5", KEYS)
    v = h.desk.recall("5", KEYS)  # the third press: nobody came
    assert served(v) == second
    t = h.store.one("SELECT status FROM tickets WHERE number = ?", (first,))
    assert t is not None and t["status"] == "no_show"
    last = h.desk.audit(window="5")[-1]
    assert last.action == "no_show" and last.detail["auto"] is True and last.number == first


def test_no_show_by_hand_ends_the_ticket(hall: Hall) -> None:
    n = hall.issue()
    hall.desk.call_next("5", CLERK)
    v = hall.desk.no_show("5", CLERK)
    assert v.serving is None and v.tally.no_show == 1
    assert hall.desk.ticket_status(hall.desk.audit()[-1].ticket_id or "").state == "no_show"
    assert hall.desk.audit()[-1].number == n


def test_transfer_to_a_service_keeps_its_place_by_issue_time(hall: Hall) -> None:
    early = hall.issue("A")
    b1 = hall.issue("B")
    hall.desk.call_next("5", CLERK)  # A first at window 5
    hall.desk.transfer("5", CLERK, service="B", first=False)
    assert [w.number for w in hall.desk.view("6").waiting] == [early, b1]


def test_transfer_first_goes_to_the_front(hall: Hall) -> None:
    b1, b2 = hall.issue("B"), hall.issue("B")
    late = hall.issue("A")
    hall.desk.call_next("5", CLERK)
    assert served(hall.desk.view("5")) == late
    hall.desk.transfer("5", CLERK, service="B", first=True)
    assert [w.number for w in hall.desk.view("6").waiting] == [late, b1, b2]


def test_transfer_to_a_window_is_called_only_there(hall: Hall) -> None:
    a = hall.issue("A")
    hall.desk.call_next("5", CLERK)
    hall.desk.transfer("5", CLERK, to_window="8")
    assert hall.desk.view("8").next == a  # window 8 serves C only, but this one is its
    assert hall.desk.view("5").next is None
    assert served(hall.desk.call_next("8", CLERK)) == a


def test_transfer_needs_exactly_one_target_and_writes_nothing_when_refused(hall: Hall) -> None:
    hall.issue()
    hall.desk.call_next("5", CLERK)
    before = hall.audit_rows()
    for kw in ({}, {"service": "B", "to_window": "6"}, {"service": "Z"}, {"to_window": "5"},
               {"service": "A"}):
        with pytest.raises(Refused):
            hall.desk.transfer("5", CLERK, **kw)
    assert hall.audit_rows() == before and hall.desk.view("5").serving is not None


def test_park_and_call_back(hall: Hall) -> None:
    a, b = hall.issue(), hall.issue()
    hall.desk.call_next("5", CLERK)
    v = hall.desk.park("5", CLERK)
    assert v.serving is None and [p.number for p in v.parked] == [a]
    assert served(hall.desk.call_next("5", CLERK)) == b  # a parked ticket is not called
    with pytest.raises(Refused) as e:
        hall.desk.call_back("6", CLERK, a)  # another window's
    assert e.value.code == "not_parked"
    v = hall.desk.call_back("5", CLERK, a)
    assert served(v) == a and v.parked == []


def test_pause_with_a_reason_then_resume(hall: Hall) -> None:
    hall.issue()
    with pytest.raises(Refused) as e:
        hall.desk.pause("5", CLERK, "  ")
    assert e.value.code == "bad_reason"
    v = hall.desk.pause("5", CLERK, "系统维护")
    assert v.paused and v.pause_reason == "系统维护"
    with pytest.raises(Refused) as e:
        hall.desk.call_next("5", CLERK)
    assert e.value.code == "window_paused"
    hall_view = hall.desk.hall()
    w5 = next(w for w in hall_view.windows if w.window == "5")
    assert w5.paused and w5.pause_reason == "系统维护"
    assert not hall.desk.resume("5", CLERK).paused
    assert hall.desk.call_next("5", CLERK).serving is not None


def test_call_a_chosen_ticket_only_of_this_window(hall: Hall) -> None:
    hall.issue("A")
    a2 = hall.issue("A")
    c = hall.issue("C")
    assert served(hall.desk.call("5", CLERK, a2.lower())) == a2
    with pytest.raises(Refused) as e:
        hall.desk.call("5", CLERK, c)
    assert e.value.code == "not_this_window"
    with pytest.raises(Refused) as e:
        hall.desk.call("5", CLERK, a2)  # already called
    assert e.value.code == "not_waiting"


def test_finish_and_nothing_to_finish(hall: Hall) -> None:
    with pytest.raises(Refused) as e:
        hall.desk.finish("5", CLERK)
    assert e.value.code == "nothing_serving" and "window 5" in e.value.message_en
    hall.issue()
    hall.desk.call_next("5", CLERK)
    hall.clock.advance(120)
    v = hall.desk.finish("5", CLERK)
    assert v.serving is None and v.tally.done == 1 and v.tally.avg_service_s == 120


def test_unknown_window_is_refused_and_names_the_field(hall: Hall) -> None:
    with pytest.raises(Refused) as e:
        hall.desk.call_next("99", CLERK)
    assert e.value.code == "unknown_window" and e.value.field == "window"
    assert hall.audit_rows() == 0


def test_every_action_is_one_audit_row_with_who_when_what(hall: Hall) -> None:
    hall.issue()
    hall.desk.call_next("5", CLERK, op_id="k1")
    hall.desk.call_next("5", CLERK, op_id="k1")  # a repeated key: done once
    hall.clock.advance(10)
    hall.desk.recall("5", KEYS)
    hall.desk.pause("5", CLERK, "午休")
    rows = hall.desk.audit(window="5", day="2026-11-30")
    assert [(r.action, r.staff, r.channel) for r in rows] == [
        ("call_next", "clerk-007", "console"), ("recall", "evaluator@5", "evaluator"),
        ("pause", "clerk-007", "console")]
    assert rows[0].ts.startswith("2026-11-30T09:00") and rows[0].ts.endswith("+08:00")
    assert rows[2].detail["reason"] == "午休"
    assert hall.desk.audit(window="6") == [] and hall.desk.audit(day="2026-11-29") == []


def test_ticket_status_counts_the_people_ahead(hall: Hall) -> None:
    ids = [hall.engine.issue("A").ticket.ticket_id for _ in range(3)]
    hall.clock.advance(1)
    st = hall.desk.ticket_status(ids[2])
    assert (st.state, st.ahead) == ("waiting", 2) and st.est_wait_s > 0
    hall.desk.call_next("5", CLERK)
    assert hall.desk.ticket_status(ids[2]).ahead == 1
    called = hall.desk.ticket_status(ids[0])
    assert called.state == "called" and called.window == "5" and called.called_at
    with pytest.raises(Refused):
        hall.desk.ticket_status("no-such-ticket")


def test_changes_are_published_after_the_commit(hall: Hall) -> None:
    sub = hall.desk.bus.subscribe(timeout=0.5)
    hall.issue()
    hall.desk.call_next("5", CLERK)
    kinds = [c.kind for c in sub]
    assert kinds[:2] == ["call", "window"] and "queue" in kinds and "ticket" in kinds


def test_parallel_clerks_never_call_one_ticket_twice(hall: Hall) -> None:
    for _ in range(60):
        hall.issue("B")
    got: list[str] = []
    lock = threading.Lock()

    def clerk(window: str) -> None:
        for _ in range(40):
            n = served(hall.desk.call_next(window, Actor(f"c{window}", "api")))
            if n:
                with lock:
                    got.append(n)

    threads = [threading.Thread(target=clerk, args=(w,)) for w in ("5", "6", "5", "6")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 60 and not [n for n, c in Counter(got).items() if c > 1]


def test_the_hall_notice(hall: Hall) -> None:
    assert hall.desk.hall().notice == ""
    assert hall.desk.set_notice("16:00 停止取号", CLERK).notice == "16:00 停止取号"
    with pytest.raises(Refused):
        hall.desk.set_notice("长" * 201, CLERK)
    assert hall.desk.audit()[-1].action == "notice"
