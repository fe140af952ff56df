"""Live changes of hall-central, fanned out to whoever listens (the MQTT side, SSE).

Modelled on the agent's ``hall_agent/core/events.py``: publishers are worker threads
(the desk's actions, the MQTT network thread); a listener is called in the
publisher's thread and must return quickly; a stream (:meth:`Bus.stream`, for SSE,
or :meth:`Bus.subscribe`, a blocking iterator for threads and tests) that cannot keep
up loses its oldest changes and gets a ``resync``, so it refetches instead of
showing stale data. Nothing is published before its transaction commits
(the desk publishes through ``Store.after_commit``).

Kinds and their data:

- ``call``: ``{"call_id","ticket","ticket_id","window","service","kind","ts"}``
  (``kind`` ``call`` | ``recall``), one per call and per recall;
- ``window``: ``{"window", "action", "staff", "channel", "ts"}`` after any clerk action
  (refetch ``Desk.view(window)``);
- ``queue``: ``{"ts"}``, the hall's waiting counts changed (refetch ``Desk.hall()``);
- ``satisfaction``: ``{"window"}`` a rating arrived;
- ``ticket``: ``{"ticket_id", "status"}`` one ticket changed (a ticket page refetches);
- ``notice``: ``{"text"}`` the hall's notice changed;
- ``resync``: ``{"reason"}`` the stream lost changes or the service is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("central.bus")

KINDS = frozenset({"call", "window", "queue", "satisfaction", "ticket", "notice", "resync"})
BUFFER = 512


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


_END = Change("resync", {"reason": "hall-central stopping"})
Listener = Callable[[Change], None]


class _Async:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.q: asyncio.Queue[Change] = asyncio.Queue(BUFFER)

    def put(self, ch: Change) -> None:  # in the subscriber's loop
        if self.q.full():
            while not self.q.empty():
                self.q.get_nowait()
            self.q.put_nowait(Change("resync", {"reason": "slow reader"}))
        self.q.put_nowait(ch)


class _Sync:
    def __init__(self) -> None:
        self.q: queue.Queue[Change] = queue.Queue(BUFFER)

    def put(self, ch: Change) -> None:
        try:
            self.q.put_nowait(ch)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.q.get_nowait()
            self.q.put_nowait(Change("resync", {"reason": "slow reader"}))
            self.q.put_nowait(ch)


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._async: set[_Async] = set()
        self._sync: set[_Sync] = set()
        self._closed = False

    def listen(self, fn: Listener) -> None:
        """``fn(change)`` for every change, in the publisher's thread, in order."""
        with self._lock:
            self._listeners.append(fn)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown change kind {kind!r}")
        ch = Change(kind, data)
        with self._lock:
            listeners, subs, syncs = list(self._listeners), list(self._async), list(self._sync)
        for fn in listeners:
            try:
                fn(ch)
            except Exception:
                log.exception("listener %r failed on %s", fn, kind)
        for s in subs:
            try:
                s.loop.call_soon_threadsafe(s.put, ch)
            except RuntimeError:  # its loop is closed: the client is gone
                with self._lock:
                    self._async.discard(s)
        for q in syncs:
            q.put(ch)

    def close(self) -> None:
        """Every open stream ends (after a last ``resync``)."""
        with self._lock:
            self._closed = True
            subs, syncs = list(self._async), list(self._sync)
        for s in subs:
            with contextlib.suppress(RuntimeError):
                s.loop.call_soon_threadsafe(s.put, _END)
        for q in syncs:
            q.put(_END)

    async def stream(self, heartbeat_s: float = 15.0) -> AsyncIterator[str]:
        """Server-sent-events text for one client, a comment line every ``heartbeat_s``."""
        sub = _Async(asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                return
            self._async.add(sub)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    ch = await asyncio.wait_for(sub.q.get(), heartbeat_s)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                yield ch.sse()
                if ch is _END:
                    return
        finally:
            with self._lock:
                self._async.discard(sub)

    def subscribe(self, timeout: float | None = None) -> Subscription:
        """A blocking iterator of changes for threads and tests, subscribed at once
        (nothing published after this call is missed); it ends at :meth:`close`, at
        its own ``close()``, or after ``timeout`` seconds without a change."""
        sub = _Sync()
        with self._lock:
            self._sync.add(sub)
        return Subscription(self, sub, timeout)

    def _drop(self, sub: _Sync) -> None:
        with self._lock:
            self._sync.discard(sub)


class Subscription:
    def __init__(self, bus: Bus, sub: _Sync, timeout: float | None) -> None:
        self._bus, self._sub, self._timeout = bus, sub, timeout
        self._done = False

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        if self._done:
            raise StopIteration
        try:
            ch = self._sub.q.get(timeout=self._timeout)
        except queue.Empty:
            self.close()
            raise StopIteration from None
        if ch is _END:
            self.close()
        return ch

    def close(self) -> None:
        self._done = True
        self._bus._drop(self._sub)
