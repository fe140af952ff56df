"""Floods of local connections against a real agent: half-sent requests are dropped
after the header deadline, connections beyond the bound are refused at once, event
streams are bounded, and /v1/health answers again once the flood is gone."""

from __future__ import annotations

import contextlib
import select
import socket
from pathlib import Path

import httpx
import pytest

from conftest import HallUnderTest, wait_until
from hall_agent.api.limits import MAX_CONNECTIONS, MAX_EVENT_STREAMS

pytestmark = pytest.mark.slow

FLOOD = MAX_CONNECTIONS + 150


def closed_or_answered(socks: dict[socket.socket, bytes]) -> int:
    """Read what is there; how many the agent has closed."""
    open_ = [s for s, got in socks.items() if not got.endswith(b"<EOF>")]
    if open_:
        ready, _, _ = select.select(open_, [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            socks[s] += data if data else b"<EOF>"
    return sum(got.endswith(b"<EOF>") for got in socks.values())


def test_half_sent_requests_are_dropped_and_excess_refused(hall: HallUnderTest) -> None:
    host, port = hall.url.removeprefix("http://").rsplit(":", 1)
    socks: dict[socket.socket, bytes] = {}
    try:
        for _ in range(FLOOD):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: kiosk\r\n")  # never finished
            s.setblocking(False)
            socks[s] = b""
        assert wait_until(lambda: closed_or_answered(socks) == FLOOD, 60, 0.01), \
            f"{closed_or_answered(socks)} of {FLOOD} closed"
        refused = sum(b"too_many_connections" in got for got in socks.values())
        assert refused >= FLOOD - MAX_CONNECTIONS - 5, refused
        assert httpx.get(f"{hall.url}/v1/health", timeout=10).status_code == 200
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


def test_event_streams_are_bounded(hall: HallUnderTest, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        c = stack.enter_context(httpx.Client(base_url=hall.url, timeout=10))
        for _ in range(MAX_EVENT_STREAMS):
            r = stack.enter_context(c.stream("GET", "/v1/events"))
            assert r.status_code == 200
        over = c.get("/v1/events")
        assert over.status_code == 503 and over.json()["error"] == "too_many_streams"
    with httpx.Client(base_url=hall.url, timeout=10) as c2:  # closed streams free slots
        assert wait_until(lambda: _stream_opens(c2), 10)


def _stream_opens(c: httpx.Client) -> bool:
    with c.stream("GET", "/v1/events") as r:
        return r.status_code == 200
