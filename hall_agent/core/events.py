"""In-process fan-out of live events to SSE subscribers (the kiosk, hallctl events).

Publishers are worker threads (API handlers, device monitors); subscribers are
asyncio generators in the server's loop. A subscriber that cannot keep up loses
its oldest events and is sent a ``resync`` event, so it refetches state instead
of silently showing stale data, and a slow reader never holds up the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("hall_agent.core.events")

KINDS = frozenset({"call", "device", "card", "scan", "ticket", "resync"})
SUBSCRIBER_BUFFER = 256


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self.closed = False

    def end(self) -> None:  # runs in the subscriber's loop
        self.closed = True
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    def put(self, ev: Event) -> None:  # runs in the subscriber's loop
        if self.queue.full():
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Event("resync", {"reason": "slow reader"}))
        self.queue.put_nowait(ev)


Listener = Callable[[Event], None]
# Put in a subscriber's queue when the agent stops: its stream ends.
_END = Event("resync", {"reason": "agent stopping"})


class EventBus:
    def __init__(self) -> None:
        self._subs: set[_Subscriber] = set()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._closing = False

    def close(self) -> None:
        """The agent is stopping: every open stream ends now (after a last ``resync``),
        so the server's graceful stop does not wait out its timeout for them."""
        with self._lock:
            self._closing = True
            subs = list(self._subs)
        for s in subs:
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                s.loop.call_soon_threadsafe(s.end)

    def listen(self, fn: Listener) -> None:
        """Call ``fn(event)`` for every event, in the publisher's thread, in order.

        For in-process services (boards, voice, evaluators): ``fn`` must return
        quickly (hand the work to its own thread); an exception in it is logged and
        does not reach the publisher.
        """
        with self._lock:
            self._listeners.append(fn)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        ev = Event(kind, data)
        with self._lock:
            subs = list(self._subs)
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(ev)
            except Exception:
                log.exception("event listener %r failed on %s", fn, kind)
        for s in subs:
            try:
                s.loop.call_soon_threadsafe(s.put, ev)
            except RuntimeError:  # that loop is closed: the client is gone
                with self._lock:
                    self._subs.discard(s)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    async def stream(self, heartbeat_s: float = 15.0) -> AsyncIterator[str]:
        """SSE text for one client; a comment line every ``heartbeat_s`` keeps proxies
        and the kiosk's dead-connection detection honest."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            if self._closing:
                return
            self._subs.add(sub)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    ev = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
                except TimeoutError:
                    if sub.closed:
                        return
                    yield ": heartbeat\n\n"
                    continue
                yield ev.sse()
                if ev is _END:
                    return
        finally:
            with self._lock:
                self._subs.discard(sub)
