"""Calls: one path and one event shape for local and central calls, events only after
the commit that records them, one de-duplication (the store's)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from hall_agent.agent import Agent
from hall_agent.contract.mqtt import CentralCall
from hall_agent.core.events import Event

ROOT = Path(__file__).resolve().parents[2]


def seen(agent: Agent) -> list[Event]:
    got: list[Event] = []
    agent.bus.listen(got.append)
    return got


def shown(agent: Agent) -> list[dict[str, object]]:
    return [json.loads(r["data"]) for r in agent.store.query(
        "SELECT data FROM outbox WHERE type = 'call.shown' ORDER BY seq")]


def test_a_call_that_rolls_back_is_never_shown_or_announced(agent: Agent) -> None:
    t = agent.tickets.issue("A")
    events = seen(agent)
    with pytest.raises(RuntimeError), agent.store.tx():
        agent.calls.call("5", "call")
        # Inside the transaction nobody may see it yet: it can still roll back.
        assert [e.kind for e in events] == []
        raise RuntimeError("the idempotency record could not be written")
    assert [e.kind for e in events] == []
    assert agent.queue.ticket(t.ticket_id).status == "waiting"
    assert shown(agent) == []


def test_a_call_is_published_once_its_transaction_commits(agent: Agent) -> None:
    agent.tickets.issue("A")
    events = seen(agent)
    with agent.store.tx():
        body = agent.calls.call("5", "call")
        assert events == []
    assert [e.kind for e in events] == ["call", "ticket"]
    assert body.pop("finished") is None  # the answer says whose visit ended; none here
    assert events[0].data == body and events[1].data["status"] == "called"


def test_the_next_call_and_a_pause_say_the_visit_ended(agent: Agent) -> None:
    for _ in range(2):
        agent.tickets.issue("A")
    agent.calls.call("5", "call")
    events = seen(agent)
    assert agent.calls.call("5", "call")["finished"] == "A001"
    done = [e.data for e in events if e.kind == "ticket" and e.data["status"] == "done"]
    assert [d["number"] for d in done] == ["A001"] and done[0]["window"] == "5"
    agent.queue.set_paused("5", True)
    done = [e.data for e in events if e.kind == "ticket" and e.data["status"] == "done"]
    assert [d["number"] for d in done] == ["A001", "A002"]


def test_a_ticket_event_waits_for_the_commit_too(agent: Agent) -> None:
    events = seen(agent)
    with pytest.raises(RuntimeError), agent.store.tx():
        agent.tickets.issue("A")
        raise RuntimeError("rolled back")
    # (the ticket's own commit is nested in the outer one: it rolled back with it)
    assert [e for e in events if e.kind == "ticket" and not e.data["printed"]] == []
    assert agent.queue.tickets(limit=10) == []


def test_central_and_local_calls_have_one_shape(agent: Agent) -> None:
    local = agent.tickets.issue("A")
    ours = agent.tickets.issue("A")
    events = seen(agent)
    agent.calls.call("5", "call")
    agent.calls.on_central_call(CentralCall(call_id="c-1", ticket=ours.number, window="6",
                                            service="A"))
    calls = [e.data for e in events if e.kind == "call"]
    tickets = [e.data for e in events if e.kind == "ticket"]
    assert len(calls) == 2 and calls[0].keys() == calls[1].keys()
    assert calls[0]["ticket_id"] == local.ticket_id
    assert calls[1]["ticket_id"] == ours.ticket_id and calls[1]["window"] == "6"
    assert [t["status"] for t in tickets] == ["called", "called"]
    outbox = shown(agent)
    assert len(outbox) == 2 and outbox[0].keys() == outbox[1].keys()
    assert agent.queue.ticket(ours.ticket_id).status == "called"


def test_a_central_call_repeated_is_recorded_and_announced_once(agent: Agent) -> None:
    events = seen(agent)
    call = CentralCall(call_id="c-7", ticket="B123", window="8", service="B")
    for _ in range(3):
        agent.calls.on_central_call(call)
    # A ticket of another kiosk: shown (boards, voice) once, no ticket event of ours.
    assert [e.kind for e in events] == ["call"]
    assert events[0].data["ticket"] == "B123" and events[0].data["ticket_id"] is None
    n = agent.store.one("SELECT COUNT(*) FROM calls WHERE call_id = 'c-7'")
    assert n is not None and n[0] == 1
    assert len(shown(agent)) == 1


def test_a_central_call_is_shown_once_across_a_restart(agent: Agent) -> None:
    call = CentralCall(call_id="c-9", ticket="A500", window="5")
    agent.calls.on_central_call(call)
    again = Agent(agent.cfg)  # the same store, as after a restart
    try:
        events = seen(again)
        again.calls.on_central_call(call)
        assert events == []
    finally:
        again.close()


def test_a_central_call_for_a7_marks_our_a007_called(agent: Agent) -> None:
    """MQTT.md lets a central write numbers without padding: A7 is the ticket A007."""
    for _ in range(7):
        t = agent.tickets.issue("A")
    assert t.number == "A007"
    agent.calls.on_central_call(CentralCall(call_id="c-a7", ticket="A7", window="5"))
    assert agent.queue.ticket(t.ticket_id).status == "called"


def test_a_window_named_5hao_is_said_once_on_the_board() -> None:
    from hall_agent.services.boards import call_text

    assert call_text("A023", "5号") == call_text("A023", "5") == "请 A023 号到 5 号窗口"


def _private_reaches(path: Path) -> list[str]:
    """``x._name`` where x is not self/cls: reaching into another object's privates."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            out.append(f"{path.name}:{node.lineno} .{node.attr}")
    return out


def test_services_never_touch_each_others_privates() -> None:
    found = [hit for p in sorted((ROOT / "hall_agent" / "services").rglob("*.py"))
             for hit in _private_reaches(p)]
    assert found == []
