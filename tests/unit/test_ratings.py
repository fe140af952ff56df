"""One rating per visit (一次一评): the kiosk's API, the store's rule, the board's figures."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_queue import catalog

from conftest import TZ, Clock
from hall_agent.agent import Agent
from hall_agent.api.app import create_app
from hall_agent.contract.levels import REASONS
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import MIGRATIONS, Store


@pytest.fixture
def api(agent: Agent) -> TestClient:
    return TestClient(create_app(agent))


def served(api: TestClient, window: str = "5") -> str:
    number: str = api.post("/v1/tickets", json={"service": "A"}).json()["number"]
    assert api.post("/v1/calls", json={"window": window}).json()["ticket"] == number
    return number


def stored(agent: Agent) -> list[tuple[str, str, str]]:
    return [(r[0], r[1], r[2]) for r in agent.store.query(
        "SELECT number, level, channel FROM evaluations ORDER BY ts")]


def test_a_second_rating_of_the_same_visit_is_refused_and_not_counted(
        api: TestClient, agent: Agent) -> None:
    served(api)
    first = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied"})
    assert first.status_code == 201 and first.json()["ticket"] == "A001"
    for _ in range(2):
        again = api.post("/v1/evaluations", json={"window": "5", "level": "very_satisfied"})
        assert again.status_code == 409
        body = again.json()
        assert body["error"] == "already_rated" and body["field"] == "ticket"
        assert body["message"] == "该次服务已评价，感谢您的反馈"
        assert body["message_en"].startswith("This visit has already been rated")
    assert stored(agent) == [("A001", "satisfied", "kiosk")]
    assert agent.queue.satisfaction()["5"]["satisfied"] == 1
    assert agent.queue.satisfaction()["5"]["very_satisfied"] == 0
    events = agent.store.query("SELECT COUNT(*) FROM outbox WHERE type = "
                               "'evaluation.submitted'")
    assert events[0][0] == 1


def test_the_next_visit_at_the_window_is_rated_on_its_own(api: TestClient,
                                                          agent: Agent) -> None:
    served(api)
    assert api.post("/v1/evaluations", json={"window": "5", "level": "satisfied"}
                    ).status_code == 201
    served(api)
    r = api.post("/v1/evaluations", json={"window": "5", "level": "very_satisfied"})
    assert r.status_code == 201 and r.json()["ticket"] == "A002"
    # A001 typed in by its holder: already rated, whichever window default there is.
    late = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied",
                                             "ticket": "A001"})
    assert late.status_code == 409 and late.json()["error"] == "already_rated"


def test_a_repeated_request_gets_the_first_answer_not_a_conflict(api: TestClient) -> None:
    served(api)
    body = {"window": "5", "level": "satisfied"}
    one = api.post("/v1/evaluations", json=body, headers={"Idempotency-Key": "k-1"})
    two = api.post("/v1/evaluations", json=body, headers={"Idempotency-Key": "k-1"})
    assert one.status_code == two.status_code == 201 and one.json() == two.json()


@pytest.mark.parametrize("level", ["basic", "unsatisfied", "very_unsatisfied"])
def test_basic_or_worse_from_the_kiosk_asks_for_a_reason(api: TestClient, agent: Agent,
                                                         level: str) -> None:
    served(api)
    r = api.post("/v1/evaluations", json={"window": "5", "level": level})
    assert r.status_code == 422
    assert r.json()["error"] == "reason_required" and r.json()["field"] == "reason"
    assert stored(agent) == []
    ok = api.post("/v1/evaluations", json={"window": "5", "level": level,
                                           "reason": "attitude"})
    assert ok.status_code == 201 and ok.json()["reason"] == "attitude"
    assert ok.json()["follow_up"] is True
    row = agent.store.one("SELECT reason FROM evaluations")
    assert row is not None and row[0] == "attitude"


@pytest.mark.parametrize(("body", "code"), [
    ({"level": "unsatisfied", "reason": "too_hot"}, "unknown_reason"),
    ({"level": "satisfied", "reason": "long_wait"}, "reason_not_needed"),
])
def test_a_reason_must_be_one_of_the_list_and_go_with_a_low_level(
        api: TestClient, agent: Agent, body: dict[str, str], code: str) -> None:
    served(api)
    r = api.post("/v1/evaluations", json={"window": "5", **body})
    assert r.status_code == 422 and r.json()["error"] == code
    assert r.json()["field"] == "reason"
    assert stored(agent) == []


def test_the_reasons_are_listed_in_both_languages(api: TestClient) -> None:
    r = api.get("/v1/evaluations/reasons")
    assert r.status_code == 200
    reasons = r.json()["reasons"]
    texts = [x["text"] for x in reasons]
    assert {"等候时间长", "办事效率低", "服务态度差", "材料要求不清楚"} <= set(texts)
    assert texts[-1] == "其他"
    assert all(x["id"] and x["text_en"] for x in reasons)
    assert [x["id"] for x in reasons] == [x.id for x in REASONS]


def test_a_ticket_is_rated_at_the_window_that_served_it(api: TestClient,
                                                        agent: Agent) -> None:
    served(api, "5")
    r = api.post("/v1/evaluations", json={"window": "6", "level": "satisfied",
                                          "ticket": "A001"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_ticket"
    assert "5 号窗口" in r.json()["message"]
    ok = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied",
                                           "ticket": "A001"})
    assert ok.status_code == 201
    assert stored(agent) == [("A001", "satisfied", "kiosk")]


def test_a_window_that_called_nobody_has_no_visit_to_rate(api: TestClient,
                                                          agent: Agent) -> None:
    r = api.post("/v1/evaluations", json={"window": "5", "level": "satisfied"})
    assert r.status_code == 409 and r.json()["error"] == "no_ticket"
    assert stored(agent) == []


# ---------------------------------------------------------------- the engine and the store

@pytest.fixture
def q(tmp_path: Path) -> QueueEngine:
    return QueueEngine(Store(tmp_path), catalog(),
                       TZ, clock=Clock(datetime(2026, 11, 30, 9, 0, tzinfo=TZ)))


def test_the_store_refuses_a_second_rating_even_past_the_check(q: QueueEngine) -> None:
    q.issue("A")
    q.call_next("5")
    q.evaluate("5", "satisfied")
    with q.store.tx() as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO evaluations (evaluation_id, window, level, channel, "
                   "follow_up, ts, rated_key) SELECT 'x', window, level, channel, "
                   "follow_up, ts, rated_key FROM evaluations")


def test_unanswered_prompts_count_once_and_yield_to_a_late_rating(q: QueueEngine) -> None:
    for _ in range(2):
        q.issue("A")
    q.call_next("5")
    q.evaluate("5", "none", channel="evaluator")
    q.evaluate("5", "none", channel="evaluator")  # asked again, again no answer
    assert q.satisfaction()["5"]["none"] == 1
    q.evaluate("5", "basic", channel="evaluator")  # no reason from an evaluator: kept
    counts = q.satisfaction()["5"]
    assert (counts["none"], counts["basic"]) == (0, 1)
    with pytest.raises(Refused) as e:
        q.evaluate("5", "none", channel="evaluator")
    assert e.value.code == "already_rated"


def test_central_calls_of_tickets_numbered_elsewhere_are_rated_once(q: QueueEngine) -> None:
    q.record_call("c-1", "B017", "5", "B", "call")  # another kiosk's ticket
    assert q.evaluate("5", "satisfied").ticket == "B017"
    with pytest.raises(Refused) as e:
        q.evaluate("5", "satisfied", number="B017", channel="evaluator")
    assert e.value.code == "already_rated"


def test_migration_keeps_old_duplicates_but_counts_the_first(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "hall-agent.sqlite3")
    for stmt in ";".join(MIGRATIONS[:5]).split(";"):
        if stmt.strip():
            db.execute(stmt)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO tickets (ticket_id, day, service, prefix, seq, number, channel, "
               "status, issued_at, queue_key) VALUES ('t3', '2026-11-30', 'A', 'A', 3, "
               "'A003', 'kiosk', 'done', 1, 1)")
    ts = datetime(2026, 11, 30, 10, 0, tzinfo=TZ).timestamp()
    for i, level in enumerate(["satisfied", "very_unsatisfied", "basic"]):
        db.execute("INSERT INTO evaluations (evaluation_id, window, ticket_id, number, level, "
                   "channel, follow_up, ts) VALUES (?, '5', 't3', 'A003', ?, 'kiosk', 0, ?)",
                   (f"e{i}", level, ts + i))
    db.commit()
    db.close()
    q = QueueEngine(Store(tmp_path), catalog(), TZ,
                    clock=Clock(datetime(2026, 11, 30, 11, 0, tzinfo=TZ)))
    assert q.store.schema_version >= 6
    rows = q.store.query("SELECT COUNT(*) FROM evaluations")
    assert rows[0][0] == 3
    counts = q.satisfaction()["5"]
    assert (counts["satisfied"], counts["very_unsatisfied"], counts["basic"]) == (1, 0, 0)


def test_last_called_names_the_central_calls_of_other_kiosks_tickets(q: QueueEngine) -> None:
    q.record_call("c-1", "B017", "5", "B", "call")
    q.record_call("c-2", "A003", "6", "A", "call")
    q.record_call("c-3", "B018", "5", "B", "call")
    q.record_call("c-4", "B018", "5", "B", "recall")
    assert q.last_called() == {"5": "B018", "6": "A003"}
