"""Bounds on what a local client may hold: connections, half-sent requests, bodies,
event streams.

The API is on loopback only, but a runaway script or a stuck kiosk can still open a
thousand connections or send a 200 MB body: without bounds the agent held every
half-sent request for ever (200 of 200 still open after 90 s), stopped answering
``/v1/health`` at about a thousand connections, and parsed a 200 MB body (670 MB of
memory) before refusing it. So:

- at most :data:`MAX_CONNECTIONS` connections; one more is answered ``503`` and closed;
- a request's line and headers must arrive within :data:`HEADER_TIMEOUT_S`, its body
  within :data:`BODY_TIMEOUT_S` (``408``);
- a body over :data:`MAX_BODY_BYTES` is refused (``413``) before it is read, by its
  ``Content-Length``, or as soon as a chunked one passes the bound;
- at most :data:`MAX_EVENT_STREAMS` event streams (the kiosk holds one; ``503``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_CONNECTIONS = 200
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 2 * 1024 * 1024  # a day's appointment list is a few hundred KB
MAX_EVENT_STREAMS = 16

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
         b"connection: close\r\ncontent-length: %d\r\n\r\n")


def error_body(code: str, zh: str, en: str) -> bytes:
    return json.dumps({"error": code, "message": zh, "message_en": en, "field": None},
                      ensure_ascii=False).encode()


class GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection bound and a header deadline."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            body = error_body("too_many_connections", "本机接口连接过多，请稍后重试",
                              f"more than {MAX_CONNECTIONS} connections to the local API; "
                              "try again shortly")
            transport.write(_BUSY % len(body) + body)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm()  # the next request on a kept-alive connection: headers due again
        super().data_received(data)

    def _arm(self) -> None:
        if self._header_timer is None:
            waiting_for = self.cycle
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_late,
                                                      waiting_for)

    def _headers_late(self, waiting_for: Any) -> None:
        self._header_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if self.cycle is waiting_for and idle and not self.transport.is_closing():
            self.transport.close()  # no complete request line and headers in time

    def connection_lost(self, exc: Exception | None) -> None:
        timer = self._header_timer
        if timer is not None:
            timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` or slower than ``timeout_s`` is
    refused before the route (and its JSON parser) sees it."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES,
                 timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, 413)
            return
        seen, done, started, refused = 0, False, False, False

        async def refuse(status: int) -> Any:
            # Answered here, and the route told the client has gone: FastAPI turns any
            # error raised while it reads the body into its own 400.
            nonlocal refused
            if not started and not refused:
                refused = True
                await self._refuse(send, status)
            return {"type": "http.disconnect"}

        async def limited() -> Any:
            nonlocal seen, done
            if done or refused:
                return await receive()  # after the body: the disconnect, unbounded
            try:
                msg = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                return await refuse(408)
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    return await refuse(413)
                done = not msg.get("more_body", False)
            return msg

        async def sending(msg: Any) -> None:
            nonlocal started
            if refused:
                return  # the refusal is the answer
            started = True
            await send(msg)

        await self.app(scope, limited, sending)

    async def _refuse(self, send: Any, status: int) -> None:
        if status == 413:
            body = error_body("body_too_large", f"请求内容过大（上限 {self.max_bytes} 字节）",
                              f"request body over {self.max_bytes} bytes")
        else:
            body = error_body("body_too_slow", "请求内容发送太慢，已放弃",
                              f"request body not received within {self.timeout_s:.0f} s")
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"connection", b"close"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
