"""The typed client of the ★ local API and its event stream: the kiosk's and hallctl's
only link to the agent.

Blocking and free of any GUI toolkit: the kiosk calls it from worker threads
(kiosk/workers.py), hallctl straight from the command line. Timeouts are short
by default: on loopback an answer that takes seconds means the agent is in trouble.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from drivers.errors import HallEdgeError
from hall_agent.contract.api import (
    BoardShowIn,
    BoardsOut,
    BoardTestIn,
    BookIn,
    BookOut,
    BusOut,
    CallIn,
    CallOut,
    CardWantIn,
    CheckinIn,
    CheckinOut,
    ErrorBody,
    EvaluationIn,
    EvaluationOut,
    EventLogOut,
    HealthOut,
    LoggingIn,
    LoggingOut,
    OutboxOut,
    PrinterStatusOut,
    PrintOut,
    QueueOut,
    ReasonsOut,
    SelfServiceOut,
    SelfServiceResultOut,
    SelfServiceRunIn,
    ServicesOut,
    SlotsOut,
    TicketIn,
    TicketOut,
    TicketsOut,
    WindowActionIn,
    WindowOut,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class AgentUnavailable(HallEdgeError, ConnectionError):
    """The agent did not answer, or answered with a 5xx or a body we cannot read."""


class AgentRefused(HallEdgeError, ValueError):
    """The agent answered 4xx (or 503 with its error body); ``body`` says why, in Chinese
    and English."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(body.message)
        self.status = status
        self.body = body


def _announce_open(lines: Iterator[str], on_open: Callable[[], None]) -> Iterator[str]:
    """Pass the stream's lines on, calling ``on_open`` at the agent's ``: connected``
    (sent once it has registered the stream; the HTTP headers come before that)."""
    opened = False
    for line in lines:
        if not opened and line.startswith(": connected"):
            opened = True
            on_open()
        yield line


class AgentClient:
    """Blocking client of the ★ local API; call it from a worker thread."""

    def __init__(self, base_url: str, *, timeout_s: float = 3.0,
                 ticket_timeout_s: float = 8.0, user_agent: str = "hall-kiosk") -> None:
        self.base_url = base_url.rstrip("/")
        # Issuing waits for the printer (status query + ~600 bytes at 9600 baud),
        # so it gets a longer read timeout than the look-ups.
        self._timeout = httpx.Timeout(timeout_s, connect=1.5)
        self._ticket_timeout = httpx.Timeout(ticket_timeout_s, connect=1.5)
        self._headers = {"User-Agent": user_agent}
        self._streams: set[socket.socket] = set()  # open event streams, for close_events
        self._streams_lock = threading.Lock()
        self._http = httpx.Client(base_url=self.base_url, timeout=self._timeout,
                                  headers=self._headers)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, model: type[M], *,
                 body: BaseModel | None = None, key: str | None = None,
                 timeout: httpx.Timeout | None = None,
                 params: dict[str, Any] | None = None) -> M:
        r = self._send(method, path, body=body, key=key, timeout=timeout, params=params)
        try:
            return model.model_validate(r.json())
        except (ValueError, ValidationError) as e:
            raise AgentUnavailable(f"agent at {self.base_url}: {method} {path}: "
                                   f"unreadable answer: {e}") from e

    def _send(self, method: str, path: str, *, body: BaseModel | None = None,
              key: str | None = None, timeout: httpx.Timeout | None = None,
              params: dict[str, Any] | None = None) -> httpx.Response:
        """The answer when it is a 2xx; else :class:`AgentRefused` or
        :class:`AgentUnavailable` (the httpx error, if any, is its ``__cause__``)."""
        headers = {"Idempotency-Key": key} if key else {}
        try:
            r = self._http.request(
                method, path, headers=headers, timeout=timeout or self._timeout,
                params=params,
                json=body.model_dump(mode="json", exclude_none=True) if body else None)
        except httpx.HTTPError as e:
            raise AgentUnavailable(f"agent at {self.base_url}: {type(e).__name__}: {e}") from e
        if 400 <= r.status_code < 500 or r.status_code == 503:
            try:
                err = ErrorBody.model_validate(r.json())
            except (ValueError, ValidationError):
                if r.status_code == 503:  # not the agent's own answer: a proxy, a restart
                    raise AgentUnavailable(f"agent at {self.base_url}: {method} {path} → "
                                           "HTTP 503") from None
                err = ErrorBody(error=f"http_{r.status_code}", message=r.text[:200])
            # A 503 with the agent's own error body is the agent, working, saying what it
            # cannot do now and what to do instead (no number without the central and
            # without a lease; the central booking system not answering).
            raise AgentRefused(r.status_code, err)
        if r.status_code >= 300:
            raise AgentUnavailable(f"agent at {self.base_url}: {method} {path} → "
                                   f"HTTP {r.status_code}")
        return r

    def health(self) -> HealthOut:
        return self._request("GET", "/v1/health", HealthOut)

    def services(self) -> ServicesOut:
        return self._request("GET", "/v1/services", ServicesOut)

    def queue(self) -> QueueOut:
        return self._request("GET", "/v1/queue", QueueOut)

    def take_ticket(self, req: TicketIn, key: str) -> TicketOut:
        return self._request("POST", "/v1/tickets", TicketOut, body=req, key=key,
                             timeout=self._ticket_timeout)

    def reprint(self, ticket_id: str, key: str) -> PrintOut:
        return self._request("POST", f"/v1/tickets/{ticket_id}/reprint", PrintOut, key=key,
                             timeout=self._ticket_timeout)

    def evaluate(self, req: EvaluationIn, key: str) -> EvaluationOut:
        """Rate one visit. :class:`AgentRefused` with ``body.error`` ``already_rated``
        (409: this visit has its rating; say 已评价, it is not counted again),
        ``reason_required`` (422: basic or worse, ask for a reason),
        ``unknown_reason``, ``unknown_ticket`` or ``no_ticket``."""
        return self._request("POST", "/v1/evaluations", EvaluationOut, body=req, key=key)

    def evaluation_reasons(self) -> ReasonsOut:
        """The reasons a citizen may give for basic or worse (``reason`` ids)."""
        return self._request("GET", "/v1/evaluations/reasons", ReasonsOut)

    # ------------------------------------------------------------ operations (hallctl)

    def tickets(self, *, day: str | None = None, status: str | None = None,
                limit: int = 200) -> TicketsOut:
        """The day's tickets, newest first (default today)."""
        params: dict[str, Any] = {"limit": limit}
        if day:
            params["day"] = day
        if status:
            params["status"] = status
        return self._request("GET", "/v1/tickets", TicketsOut, params=params)

    def call(self, req: CallIn, key: str | None = None) -> CallOut:
        return self._request("POST", "/v1/calls", CallOut, body=req, key=key)

    def window_action(self, window: str, req: WindowActionIn,
                      key: str | None = None) -> WindowOut:
        return self._request("POST", f"/v1/windows/{window}", WindowOut, body=req, key=key)

    def printer_status(self) -> PrinterStatusOut:
        return self._request("GET", "/v1/printer/status", PrinterStatusOut,
                             timeout=self._ticket_timeout)

    def printer_test(self) -> PrintOut:
        return self._request("POST", "/v1/printer/test", PrintOut,
                             timeout=self._ticket_timeout)

    def boards_test(self, req: BoardTestIn) -> BoardsOut:
        return self._request("POST", "/v1/boards/test", BoardsOut, body=req)

    def boards_show(self, req: BoardShowIn) -> BoardsOut:
        return self._request("POST", "/v1/boards/show", BoardsOut, body=req)

    def bus(self) -> BusOut:
        """Every board and evaluator on the RS-485 buses, with its state."""
        return self._request("GET", "/v1/bus", BusOut)

    def outbox(self, limit: int = 20) -> OutboxOut:
        return self._request("GET", "/v1/outbox", OutboxOut, params={"limit": limit})

    def event_log(self, limit: int = 50) -> EventLogOut:
        """The last ``limit`` events of the durable event log, oldest first."""
        return self._request("GET", "/v1/event-log", EventLogOut, params={"limit": limit})

    def logging(self) -> LoggingOut:
        return self._request("GET", "/v1/logging", LoggingOut)

    def set_logging(self, req: LoggingIn) -> LoggingOut:
        return self._request("POST", "/v1/logging", LoggingOut, body=req)

    def want_card(self, req: CardWantIn) -> None:
        """Tell the agent a flow waits for a card (it polls the reader fast)."""
        self._send("POST", "/v1/card-reader/wait", body=req)

    # ------------------------------------------------- cards, check-in, 24-hour area (kiosk)

    def forget_card(self, token: str) -> None:
        """The citizen went home: the agent drops what it read from the card."""
        self._send("DELETE", f"/v1/cards/{token}")

    def checkin(self, req: CheckinIn) -> CheckinOut:
        return self._request("POST", "/v1/checkins", CheckinOut, body=req,
                             timeout=self._ticket_timeout)

    def selfservice(self) -> SelfServiceOut:
        return self._request("GET", "/v1/selfservice", SelfServiceOut)

    def run_selfservice(self, plugin: str, req: SelfServiceRunIn,
                        key: str) -> SelfServiceResultOut:
        return self._request("POST", f"/v1/selfservice/{plugin}", SelfServiceResultOut,
                             body=req, key=key, timeout=self._ticket_timeout)

    def slots(self, service: str, day: str) -> SlotsOut:
        return self._request("GET", "/v1/appointments/slots", SlotsOut,
                             params={"service": service, "day": day})

    def book(self, req: BookIn, key: str) -> BookOut:
        return self._request("POST", "/v1/appointments", BookOut, body=req, key=key,
                             timeout=self._ticket_timeout)

    # ------------------------------------------------------------ the event stream

    def events(self, *, read_timeout_s: float | None = 40.0,
               on_open: Callable[[], None] | None = None,
               stop: Callable[[], bool] | None = None
               ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``GET /v1/events``: ``(name, data)`` per server-sent event until the stream
        ends, or until ``stop()`` says so (asked at every line, heartbeats included).
        ``on_open`` is called once the agent has registered this stream (its first
        line, ``: connected``): from then on no event is missed. Heartbeat
        comments (``:``) only keep the read alive; ``read_timeout_s=None`` waits
        forever. A broken or refused stream raises :class:`AgentUnavailable`."""
        timeout = httpx.Timeout(5.0, connect=1.5, read=read_timeout_s)
        try:
            with httpx.stream("GET", f"{self.base_url}/v1/events", timeout=timeout,
                              headers={**self._headers,
                                       "Accept": "text/event-stream"}) as r:
                r.raise_for_status()
                net = r.extensions.get("network_stream")
                sock = net.get_extra_info("socket") if net is not None else None
                if sock is not None:
                    with self._streams_lock:
                        self._streams.add(sock)
                try:
                    lines: Iterator[str] = r.iter_lines()
                    if on_open is not None:
                        lines = _announce_open(lines, on_open)
                    if stop is not None:
                        lines = itertools.takewhile(lambda _line: not stop(), lines)
                    yield from parse_sse(lines)
                finally:
                    with self._streams_lock:
                        self._streams.discard(sock)
        except httpx.HTTPError as e:
            raise AgentUnavailable(f"agent at {self.base_url}: event stream: "
                                   f"{type(e).__name__}: {e}") from e

    def close_events(self) -> None:
        """End this client's open event streams now, from any thread. A read blocked
        until the next heartbeat returns at once and the agent sees the client leave
        (an agent stopping waits for its open streams, up to its graceful timeout)."""
        with self._streams_lock:
            streams = list(self._streams)
        for sock in streams:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events from their lines: ``(name, data)``, data decoded from JSON (a
    value that is not an object comes as ``{"value": …}``; one that is not JSON is
    skipped)."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    pass
                else:
                    yield name, payload if isinstance(payload, dict) else {"value": payload}
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def wait_for_agent(client: AgentClient, timeout_s: float) -> HealthOut | None:
    """Health within ``timeout_s``, or None; used by ``--screenshot`` to pick live data."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.health()
        except AgentUnavailable:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
