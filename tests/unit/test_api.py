"""The local API: bad input gets a clear 4xx and writes nothing; repeats are idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hall_agent.agent import Agent
from hall_agent.api.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(agent: Agent) -> TestClient:
    return TestClient(create_app(agent))


def rows(agent: Agent, table: str) -> int:
    r = agent.store.one(f"SELECT COUNT(*) FROM {table}")
    assert r is not None
    return int(r[0])


def test_ticket_answer_has_every_contract_field(api: TestClient) -> None:
    r = api.post("/v1/tickets", json={"service": "A"})
    assert r.status_code == 201
    body = r.json()
    for key in ("ticket_id", "number", "service", "waiting_ahead", "est_wait_s", "offline",
                "printed"):
        assert key in body
    assert body["number"] == "A001" and body["offline"] is False
    # No printer configured here: issued, not printed, and it says why.
    assert body["printed"] is False and "打印机" in body["print_detail"]


@pytest.mark.parametrize(("payload", "field", "code"), [
    ({"service": "Z"}, "service", "unknown_service"),
    ({"service": "a"}, "service", "invalid_request"),
    ({}, "service", "invalid_request"),
    ({"servce": "A"}, "service", "invalid_request"),
    ({"service": "A", "colour": "red"}, "colour", "invalid_request"),
    ({"service": "A", "priority": "yes please"}, "priority", "invalid_request"),
    ({"service": "A", "channel": "fax"}, "channel", "invalid_request"),
    ([1, 2], "body", "invalid_request"),
])
def test_bad_ticket_request_names_the_field_and_writes_nothing(
        api: TestClient, agent: Agent, payload: Any, field: str, code: str) -> None:
    r = api.post("/v1/tickets", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == field and body["error"] == code
    assert body["message"]
    assert rows(agent, "tickets") == 0 and rows(agent, "outbox") == 0


def test_malformed_json_is_a_422_not_a_crash(api: TestClient, agent: Agent) -> None:
    r = api.post("/v1/tickets", content=b'{"service": ', headers={
        "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert "JSON" in r.json()["message"]
    assert rows(agent, "tickets") == 0


def test_repeated_key_returns_the_first_ticket(api: TestClient, agent: Agent) -> None:
    h = {"Idempotency-Key": "flow-1"}
    first = api.post("/v1/tickets", json={"service": "A"}, headers=h)
    again = api.post("/v1/tickets", json={"service": "A"}, headers=h)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert rows(agent, "tickets") == 1


def test_key_reused_for_a_different_request_is_refused(api: TestClient, agent: Agent) -> None:
    h = {"Idempotency-Key": "flow-2"}
    api.post("/v1/tickets", json={"service": "A"}, headers=h)
    r = api.post("/v1/tickets", json={"service": "B"}, headers=h)
    assert r.status_code == 409 and r.json()["error"] == "idempotency_key_reused"
    assert rows(agent, "tickets") == 1


def test_bad_idempotency_key_is_refused(api: TestClient, agent: Agent) -> None:
    r = api.post("/v1/tickets", json={"service": "A"}, headers={"Idempotency-Key": "a b"})
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
    assert rows(agent, "tickets") == 0


def test_call_is_idempotent_too(api: TestClient) -> None:
    api.post("/v1/tickets", json={"service": "A"})
    api.post("/v1/tickets", json={"service": "A"})
    h = {"Idempotency-Key": "press-1"}
    c1 = api.post("/v1/calls", json={"window": "5"}, headers=h).json()
    c2 = api.post("/v1/calls", json={"window": "5"}, headers=h).json()
    assert c1 == c2 and c1["ticket"] == "A001"
    assert api.get("/v1/queue").json()["services"]["A"]["waiting"] == 1


def test_closed_service_is_a_409_that_says_why(api: TestClient) -> None:
    for _ in range(3):
        assert api.post("/v1/tickets", json={"service": "C"}).status_code == 201
    r = api.post("/v1/tickets", json={"service": "C"})
    assert r.status_code == 409
    assert r.json()["error"] == "service_closed" and "取完" in r.json()["message"]
    svc = next(s for s in api.get("/v1/services").json()["services"] if s["id"] == "C")
    assert svc["open_now"] is False and svc["opens_at"] is None  # a 24h service: no reopening


def test_unknown_window_and_bad_call_kind(api: TestClient) -> None:
    r = api.post("/v1/calls", json={"window": "99"})
    assert r.status_code == 422 and r.json()["field"] == "window"
    r = api.post("/v1/calls", json={"window": "5", "kind": "shout"})
    assert r.status_code == 422 and r.json()["field"] == "kind"


def test_recall_with_nobody_served_is_a_409(api: TestClient) -> None:
    r = api.post("/v1/calls", json={"window": "5", "kind": "recall"})
    assert r.status_code == 409 and r.json()["error"] == "nothing_to_recall"


def test_queue_shows_waiting_and_serving(api: TestClient) -> None:
    api.post("/v1/tickets", json={"service": "A"})
    api.post("/v1/tickets", json={"service": "B"})
    api.post("/v1/calls", json={"window": "6"})
    q = api.get("/v1/queue").json()
    assert q["services"]["A"]["waiting"] == 1 and q["services"]["B"]["waiting"] == 0
    assert q["windows"]["6"]["serving"] == "B001"
    assert q["recent_calls"][0]["ticket"] == "B001"


def test_evaluation_from_the_kiosk(api: TestClient, agent: Agent) -> None:
    api.post("/v1/tickets", json={"service": "A"})
    api.post("/v1/calls", json={"window": "5"})
    r = api.post("/v1/evaluations", json={"window": "5", "level": "basic",
                                          "reason": "long_wait"})
    assert r.status_code == 201
    assert r.json()["ticket"] == "A001" and r.json()["follow_up"] is True
    bad = api.post("/v1/evaluations", json={"window": "5", "level": "meh"})
    assert bad.status_code == 422 and bad.json()["field"] == "level"
    assert rows(agent, "evaluations") == 1


def test_window_pause_resume_and_no_show(api: TestClient) -> None:
    api.post("/v1/tickets", json={"service": "B"})
    api.post("/v1/calls", json={"window": "6"})
    r = api.post("/v1/windows/6", json={"action": "no_show"})
    assert r.status_code == 200 and r.json()["serving"] is None
    assert api.post("/v1/windows/6", json={"action": "pause"}).json()["paused"] is True
    assert api.post("/v1/calls", json={"window": "6"}).status_code == 409
    assert api.get("/v1/queue").json()["windows"]["6"]["open"] is False


def test_transfer_moves_a_ticket_between_queues(api: TestClient) -> None:
    t = api.post("/v1/tickets", json={"service": "A"}).json()
    r = api.post(f"/v1/tickets/{t['ticket_id']}/transfer", json={"service": "B"})
    assert r.status_code == 200 and r.json()["service"] == "B" and r.json()["number"] == "A001"
    assert api.post("/v1/calls", json={"window": "6"}).json()["ticket"] == "A001"


def test_unknown_ticket_is_a_404_with_a_body(api: TestClient) -> None:
    r = api.post("/v1/tickets/nope/reprint")
    assert r.status_code == 404 and r.json()["error"] == "unknown_ticket"
    r = api.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_openapi_lists_every_contract_route(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for route, method in [("/v1/health", "get"), ("/v1/services", "get"),
                          ("/v1/tickets", "post"), ("/v1/tickets/{ticket_id}/reprint", "post"),
                          ("/v1/queue", "get"), ("/v1/calls", "post"),
                          ("/v1/evaluations", "post"), ("/v1/events", "get")]:
        assert method in paths[route], route


def test_health_reports_mode_and_devices(api: TestClient) -> None:
    h = api.get("/v1/health").json()
    assert h["status"] == "ok" and h["mode"] == "standalone" and h["devices"] == {}


def test_method_not_allowed_lists_every_method_of_the_path(api: TestClient) -> None:
    # Found by schemathesis: the Allow header named only the first matching route.
    r = api.request("PUT", "/v1/tickets")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(api: TestClient,
                                                          agent: Agent) -> None:
    # Found by schemathesis: FastAPI answered 400, undocumented, without our error body.
    r = api.post("/v1/calls", content=b"\xff\xfe", headers={
        "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert rows(agent, "calls") == 0


def test_zero_is_not_false_for_a_boolean_field(api: TestClient, agent: Agent) -> None:
    # Found by schemathesis: "priority": 0 was coerced to false and accepted.
    r = api.post("/v1/tickets", json={"service": "A", "priority": 0})
    assert r.status_code == 422 and r.json()["field"] == "priority"
    assert rows(agent, "tickets") == 0
