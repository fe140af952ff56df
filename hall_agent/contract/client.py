"""The kiosk's only link to the world: the agent's local API and its event stream.

HTTP calls run on worker threads and report back on the Qt thread through
:class:`Runner`, so a slow or dead agent never freezes the screen. Timeouts are
short: on loopback an answer that takes seconds means the agent is in trouble.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from PyQt6.QtCore import QObject, pyqtSignal

from drivers.errors import HallEdgeError
from hall_agent.contract.api import (
    ErrorBody,
    EvaluationIn,
    EvaluationOut,
    HealthOut,
    PrintOut,
    QueueOut,
    ServicesOut,
    TicketIn,
    TicketOut,
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


class AgentClient:
    """Blocking client of the ★ local API; call it from a worker thread."""

    def __init__(self, base_url: str, *, timeout_s: float = 3.0,
                 ticket_timeout_s: float = 8.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Issuing waits for the printer (status query + ~600 bytes at 9600 baud),
        # so it gets a longer read timeout than the look-ups.
        self._timeout = httpx.Timeout(timeout_s, connect=1.5)
        self._ticket_timeout = httpx.Timeout(ticket_timeout_s, connect=1.5)
        self._http = httpx.Client(base_url=self.base_url, timeout=self._timeout,
                                  headers={"User-Agent": "hall-kiosk"})

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, model: type[M], *,
                 body: BaseModel | None = None, key: str | None = None,
                 timeout: httpx.Timeout | None = None) -> M:
        headers = {"Idempotency-Key": key} if key else {}
        try:
            r = self._http.request(
                method, path, headers=headers, timeout=timeout or self._timeout,
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
        try:
            return model.model_validate(r.json())
        except (ValueError, ValidationError) as e:
            raise AgentUnavailable(f"agent at {self.base_url}: {method} {path}: "
                                   f"unreadable answer: {e}") from e

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
        return self._request("POST", "/v1/evaluations", EvaluationOut, body=req, key=key)


class Runner(QObject):
    """Runs a blocking call on a daemon thread and delivers the outcome on the Qt thread.

    Daemon threads, not a QThreadPool: a call stuck in a dead socket must not
    keep the kiosk from quitting or a test from finishing.
    """

    _done = pyqtSignal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._done.connect(self._deliver)
        self.in_flight = 0

    def run(self, fn: Callable[[], T], on_ok: Callable[[T], None],
            on_err: Callable[[Exception], None]) -> None:
        self.in_flight += 1

        def work() -> None:
            try:
                value: Any = fn()
            except Exception as e:  # delivered to on_err on the Qt thread
                self._done.emit(on_err, e)
            else:
                self._done.emit(on_ok, value)

        threading.Thread(target=work, name="kiosk-http", daemon=True).start()

    def _deliver(self, callback: Callable[[Any], None], value: object) -> None:
        self.in_flight -= 1
        callback(value)


class EventStream(QObject):
    """``GET /v1/events`` on a daemon thread, re-connected with back-off.

    Emits ``received(name, data)`` for each event and ``connected(bool)`` when the
    link comes or goes. Heartbeat comments (``:``) only keep the read alive.
    """

    received = pyqtSignal(str, dict)
    connected = pyqtSignal(bool)

    def __init__(self, base_url: str, parent: QObject | None = None, *,
                 read_timeout_s: float = 40.0) -> None:
        super().__init__(parent)
        self.base_url = base_url.rstrip("/")
        self._read_timeout_s = read_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="kiosk-sse", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._read_once()
                backoff = 0.5
            except (httpx.HTTPError, OSError, ValueError):
                pass
            if self._stop.is_set():
                return
            self.connected.emit(False)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _read_once(self) -> None:
        timeout = httpx.Timeout(5.0, connect=1.5, read=self._read_timeout_s)
        with httpx.stream("GET", f"{self.base_url}/v1/events", timeout=timeout,
                          headers={"Accept": "text/event-stream"}) as r:
            r.raise_for_status()
            self.connected.emit(True)
            name, data = "message", list[str]()
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if data:
                        self._dispatch(name, "\n".join(data))
                    name, data = "message", list[str]()
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))

    def _dispatch(self, name: str, raw: str) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            return
        self.received.emit(name, payload if isinstance(payload, dict) else {"value": payload})


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
