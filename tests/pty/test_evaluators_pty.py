"""Evaluators over the simulated bus: the ACK rule, prompts, staff keys, restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_boards_pty import WIN5, AgentOnBus, wait

from drivers.rs485 import Key
from hall_agent.agent import Agent

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
    the evaluator itself is power-cycled, are each stored exactly once."""
    a = hall.start()
    hall.issue("A", "A", "A")
    a.calls.call("5", "call")
    keys = [Key.VERY_SATISFIED, Key.SATISFIED, Key.BASIC, Key.UNSATISFIED, Key.SATISFIED,
            Key.VERY_SATISFIED, Key.SATISFIED, Key.VERY_UNSATISFIED, Key.SATISFIED,
            Key.VERY_SATISFIED]
    pressed = 0
    for k in keys[:3]:
        hall.bus.press("5", k)
        pressed += 1
    time.sleep(0.15)  # some stored, maybe not yet acknowledged
    hall.stop()  # the agent goes away mid-flow
    for k in keys[3:6]:
        hall.bus.press("5", k)  # pressed while the agent is down
        pressed += 1
    a = hall.start()
    for k in keys[6:8]:
        hall.bus.press("5", k)
        pressed += 1
    assert wait(lambda: len(ratings(a)) >= pressed, 5.0)
    hall.bus.power(EVAL5, False)  # the evaluator loses power: counter starts again
    hall.bus.power(EVAL5, True)
    for k in keys[8:]:
        hall.bus.press("5", k)
        pressed += 1
    assert wait(lambda: len(ratings(a)) >= pressed, 8.0)
    time.sleep(0.5)  # anything doubled would have arrived by now
    got = [lvl for _, _, lvl in ratings(a)]
    want = [{1: "very_satisfied", 2: "satisfied", 3: "basic", 4: "unsatisfied",
             5: "very_unsatisfied"}[int(k)] for k in keys]
    assert got == want
    assert len(outbox_ratings(a)) == len(keys)
    assert hall.bus.evaluator(EVAL5).events == type(hall.bus.evaluator(EVAL5).events)()


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
