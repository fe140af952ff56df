"""Live pages: one listener on the desk's change bus, fanned out to each SSE client.

Each client gets its own bounded asyncio queue (filled from the publisher's thread
with ``call_soon_threadsafe``); a client that falls behind loses its oldest changes
and is told to refetch, so nobody shows a stale view as live. A stream coalesces the
changes that arrived together into one fresh view (:func:`sse_views`), computed in a
worker thread (the desk's reads take the store's lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from central.bus import Bus, Change

BUFFER = 256
HEARTBEAT_S = 15.0
# A browser's EventSource reconnects after this long when the stream ends (ms).
RETRY_MS = 2000

_STOP = Change("resync", {"reason": "hall-central stopping"})


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop, want: Callable[[Change], bool]) -> None:
        self.loop, self.want = loop, want
        self.q: asyncio.Queue[Change] = asyncio.Queue(BUFFER)

    def put(self, ch: Change) -> None:  # in the client's loop
        if self.q.full():
            while not self.q.empty():
                self.q.get_nowait()
            ch = Change("resync", {"reason": "slow reader"})
        self.q.put_nowait(ch)


class Hub:
    def __init__(self, bus: Bus) -> None:
        self._lock = threading.Lock()
        self._clients: set[_Client] = set()
        self._closed = False
        bus.listen(self._on_change)

    def _on_change(self, ch: Change) -> None:
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            if ch.kind == "resync" or c.want(ch):
                with contextlib.suppress(RuntimeError):  # its loop is gone
                    c.loop.call_soon_threadsafe(c.put, ch)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients = list(self._clients)
        for c in clients:
            with contextlib.suppress(RuntimeError):
                c.loop.call_soon_threadsafe(c.put, _STOP)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def subscribe(self, want: Callable[[Change], bool]) -> Subscription:
        """Subscribed at once (nothing published after this call is missed); call it
        in the event loop that will read it."""
        c = _Client(asyncio.get_running_loop(), want)
        with self._lock:
            if self._closed:
                c.put(_STOP)
            else:
                self._clients.add(c)
        return Subscription(self, c)

    def _drop(self, c: _Client) -> None:
        with self._lock:
            self._clients.discard(c)


class Subscription:
    def __init__(self, hub: Hub, client: _Client) -> None:
        self._hub, self._c = hub, client

    async def next(self, heartbeat_s: float = HEARTBEAT_S) -> list[Change] | None:
        """The changes that came together (at least one), or None when ``heartbeat_s``
        passed without any."""
        try:
            first = await asyncio.wait_for(self._c.q.get(), heartbeat_s)
        except TimeoutError:
            return None
        batch = [first]
        while not self._c.q.empty():
            batch.append(self._c.q.get_nowait())
        return batch

    def close(self) -> None:
        self._hub._drop(self._c)


def event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def sse_views(hub: Hub, want: Callable[[Change], bool],
                    render: Callable[[list[Change]], AsyncIterator[tuple[str, Any]]],
                    heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[str]:
    """The SSE text of one client: the current view at once, then a fresh one after
    each batch of wanted changes; ``render(batch)`` yields what to send, each piece
    sent as soon as it is ready (a call goes out before the view it changed)."""
    sub = hub.subscribe(want)  # before the first view: nothing falls in between
    try:
        yield f"retry: {RETRY_MS}\n\n"
        async for kind, data in render([]):
            yield event(kind, data)
        while True:
            batch = await sub.next(heartbeat_s)
            if batch is None:
                yield ": heartbeat\n\n"
                continue
            async for kind, data in render(batch):
                yield event(kind, data)
            if any(ch is _STOP for ch in batch):
                return
    finally:
        sub.close()
