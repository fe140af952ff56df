"""Evaluators over the simulated bus: the ACK rule, prompts, staff keys, restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_boards_pty import WIN5, AgentOnBus, wait

from drivers.rs485 import Key
from hall_agent.agent import Agent
from hall_agent.api.app import create_app

EVAL5 = 21


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[AgentOnBus]:
    h = AgentOnBus(tmp_path / "hall")
    try:
        yield h
    finally:
        h.close()


def ratings(a: Agent) -> list[tuple[str, str | None, str]]:
    rows = a.store.query("SELECT window, number, level FROM evaluations ORDER BY ts")
    return [(r[0], r[1], r[2]) for r in rows]


def outbox_ratings(a: Agent) -> list[dict[str, object]]:
    rows = a.store.query("SELECT data FROM outbox WHERE type = 'evaluation.submitted' "
                         "ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_rating_is_bound_to_window_ticket_and_flagged(hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A", "A")
    a.calls.call("5", "call")
    hall.bus.press("5", Key.BASIC)
    assert wait(lambda: len(ratings(a)) == 1, 3.0)
    assert ratings(a) == [("5", "A001", "basic")]
    ev = outbox_ratings(a)[0]
    assert ev["channel"] == "evaluator" and ev["follow_up"] is True
    assert ev["ticket"] == "A001" and ev["window"] == "5"


def test_calling_the_next_prompts_for_the_previous_ticket(hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A", "A")
    a.calls.call("5", "call")
    a.calls.call("5", "call")
    ev = hall.bus.evaluator(EVAL5)
    assert hall.bus.wait_for(lambda: ev.prompts and "A001" in ev.prompts[-1][1], 3.0)
    assert ev.prompt_open
    hall.bus.press("5", Key.VERY_SATISFIED)
    assert wait(lambda: ratings(a) == [("5", "A001", "very_satisfied")], 3.0)
    assert hall.bus.wait_for(lambda: ev.display == "5号窗口 办理 A002", 3.0)


def test_prompt_timeout_records_none(hall: AgentOnBus) -> None:
    a = hall.start(prompt_timeout_s=1)
    hall.issue("A", "A")
    a.calls.call("5", "call")
    a.calls.call("5", "call")
    assert wait(lambda: ratings(a) == [("5", "A001", "none")], 8.0)


def test_staff_keys_drive_the_queue(hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A", "A")
    hall.bus.press("5", Key.CALL_NEXT)
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text()[1] == "请 A001 号", 3.0)
    hall.bus.press("5", Key.NO_SHOW)
    assert wait(lambda: a.queue.ticket(a.queue.tickets()[-1].ticket_id).status == "no_show",
                3.0)
    hall.bus.press("5", Key.PAUSE)
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text()[1] == "暂停服务", 3.0)
    hall.bus.press("5", Key.PAUSE)
    assert wait(lambda: not a.queue.window_state("5").paused, 3.0)
    hall.bus.press("5", Key.CALL_NEXT)
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text()[1] == "请 A002 号", 3.0)
    hall.bus.press("5", Key.ASK_RATING)
    ev = hall.bus.evaluator(EVAL5)
    assert hall.bus.wait_for(lambda: any("A002" in t for _, t in ev.prompts), 3.0)


def test_no_rating_lost_or_doubled_across_restarts(hall: AgentOnBus) -> None:
    """Keys pressed while the agent is stopping, stopped and starting again, and while
    the evaluator itself is power-cycled: each visit keeps the first rating pressed for
    it, every key is acknowledged, none is stored twice (one rating per visit)."""
    a = hall.start()
    hall.issue("A", "A", "A")
    a.calls.call("5", "call")
    hall.bus.press("5", Key.VERY_SATISFIED)
    assert wait(lambda: len(ratings(a)) == 1, 5.0)
    a.calls.call("5", "call")  # A002
    assert wait(lambda: a.evaluators.describe()[0]["serving"] == "A002", 5.0)
    hall.bus.press("5", Key.BASIC)  # maybe stored, maybe not yet, when the agent stops
    hall.stop()
    for k in (Key.UNSATISFIED, Key.SATISFIED):
        hall.bus.press("5", k)  # pressed while the agent is down: A002 again
    a = hall.start()
    hall.bus.press("5", Key.VERY_UNSATISFIED)
    ev = hall.bus.evaluator(EVAL5)
    assert wait(lambda: len(ratings(a)) == 2 and not ev.events, 8.0)
    hall.bus.power(EVAL5, False)  # the evaluator loses power: its counter starts again
    hall.bus.power(EVAL5, True)
    a.calls.call("5", "call")  # A003
    assert wait(lambda: a.evaluators.describe()[0]["serving"] == "A003", 5.0)
    hall.bus.press("5", Key.SATISFIED)
    assert wait(lambda: len(ratings(a)) == 3 and not hall.bus.evaluator(EVAL5).events, 8.0)
    assert ratings(a) == [("5", "A001", "very_satisfied"), ("5", "A002", "basic"),
                          ("5", "A003", "satisfied")]
    assert len(outbox_ratings(a)) == 3


def test_ack_persists_so_a_restarted_agent_does_not_store_again(hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A")
    a.calls.call("5", "call")
    hall.bus.press("5", Key.SATISFIED)
    assert wait(lambda: len(ratings(a)) == 1, 3.0)
    hall.stop()
    # The device never saw the ACK for that event if the agent died right after storing
    # it: put it back in its buffer, as it would still be there.
    ev = hall.bus.evaluator(EVAL5)
    from drivers.rs485 import KeyEvent
    with hall.bus.lock:
        if not ev.events:
            ev.events.appendleft(KeyEvent(ev.last_event, Key.SATISFIED))
        assert [e.event for e in ev.events] == [ev.last_event]
    a = hall.start()
    assert hall.bus.wait_for(lambda: not ev.events, 3.0)
    time.sleep(0.3)
    assert len(ratings(a)) == 1


class _FullAtCommit:
    """The store's connection on a card that fills up: every COMMIT fails as SQLite
    fails on a full disk, until ``full`` is cleared."""

    def __init__(self, db: object) -> None:
        self.db = db
        self.full = True
        self.refused = 0

    def execute(self, sql: str, *args: object) -> object:
        if self.full and sql == "COMMIT":
            self.refused += 1
            import sqlite3
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_rating_refused_by_a_full_card_is_stored_once_there_is_room(
        hall: AgentOnBus) -> None:
    a = hall.start()
    card = _FullAtCommit(a.store._db)
    a.store._db = card  # type: ignore[assignment]
    hall.bus.press("5", Key.SATISFIED)
    assert wait(lambda: card.refused >= 1, 3.0)
    assert ratings(a) == []
    card.full = False  # space again: the evaluator still holds the key, sends it again
    assert wait(lambda: len(ratings(a)) == 1, 5.0), ratings(a)
    assert ratings(a)[0][2] == "satisfied"


def test_a_second_rating_on_the_evaluator_says_already_rated(hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A")
    a.calls.call("5", "call")
    hall.bus.press("5", Key.UNSATISFIED)  # no reason from an evaluator: accepted
    assert wait(lambda: ratings(a) == [("5", "A001", "unsatisfied")], 5.0)
    hall.bus.press("5", Key.VERY_SATISFIED)
    ev = hall.bus.evaluator(EVAL5)
    assert hall.bus.wait_for(lambda: ev.display.startswith("已评价"), 5.0)
    assert wait(lambda: not ev.events, 5.0)  # acknowledged all the same
    assert ratings(a) == [("5", "A001", "unsatisfied")]
    assert a.queue.satisfaction()["5"]["very_satisfied"] == 0


def test_kiosk_and_evaluator_share_one_rating_per_ticket(hall: AgentOnBus) -> None:
    a = hall.start()
    api = TestClient(create_app(a))
    hall.issue("A", "A")
    a.calls.call("5", "call")
    r = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied"})
    assert r.status_code == 201 and r.json()["ticket"] == "A001"
    hall.bus.press("5", Key.VERY_UNSATISFIED)  # the same visit, on the evaluator
    ev = hall.bus.evaluator(EVAL5)
    assert wait(lambda: not ev.events, 5.0)
    a.calls.call("5", "call")  # A002: no prompt for A001, it has its rating
    hall.bus.press("5", Key.VERY_SATISFIED)  # A002 rated on the evaluator first
    assert wait(lambda: len(ratings(a)) == 2, 5.0)
    again = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied",
                                              "ticket": "A002"})
    assert again.status_code == 409 and again.json()["error"] == "already_rated"
    assert ratings(a) == [("5", "A001", "satisfied"), ("5", "A002", "very_satisfied")]
    assert not any("A001" in t for _, t in ev.prompts)
    counts = a.queue.satisfaction()["5"]
    assert (counts["satisfied"], counts["very_satisfied"], counts["very_unsatisfied"]) == (
        1, 1, 0)


def test_a_rating_refused_by_a_full_card_keeps_the_visit_it_was_pressed_for(
        hall: AgentOnBus) -> None:
    a = hall.start()
    hall.issue("A", "A")
    a.calls.call("5", "call")
    a.calls.call("5", "call")  # the evaluator asks A001's citizen, A002 is served
    ev = hall.bus.evaluator(EVAL5)
    assert hall.bus.wait_for(lambda: ev.prompts and "A001" in ev.prompts[-1][1], 3.0)
    card = _FullAtCommit(a.store._db)
    a.store._db = card  # type: ignore[assignment]
    hall.bus.press("5", Key.SATISFIED)
    assert wait(lambda: card.refused >= 2, 5.0)  # sent again, refused again
    card.full = False
    assert wait(lambda: len(ratings(a)) == 1, 5.0), ratings(a)
    assert ratings(a) == [("5", "A001", "satisfied")]  # not A002, the window's last call
    assert wait(lambda: not ev.events, 5.0)
