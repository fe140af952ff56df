"""Bodies over the bound are refused before any route parses them."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from hall_agent.agent import Agent
from hall_agent.api.app import create_app
from hall_agent.api.limits import MAX_BODY_BYTES


def test_an_oversized_body_is_a_413_before_parsing(agent: Agent) -> None:
    api = TestClient(create_app(agent))
    body = b'{"csv": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    r = api.post("/v1/appointments/import", content=body,
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_an_oversized_chunked_body_is_a_413_too(agent: Agent) -> None:
    api = TestClient(create_app(agent))

    def chunks() -> Iterator[bytes]:
        yield b'{"csv": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = api.post("/v1/appointments/import", content=chunks(),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_a_normal_body_still_passes(agent: Agent) -> None:
    api = TestClient(create_app(agent))
    assert api.post("/v1/tickets", json={"service": "A"}).status_code == 201
