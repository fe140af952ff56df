"""Events received by hall-central (central/service.py), handed from paho's network
thread to the thread that stores them, a batch at a time.

The store commits with ``synchronous=FULL``: one fsync per event was what bounded a
day's drain (docs/benchmarks.md). A batch is whatever arrived while the last one was
being written, up to :data:`ACK_BATCH`, so a lone event is still stored and
acknowledged at once and a backlog costs one fsync and one ``A/ack`` per batch.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

from central.reading import Event

ACK_BATCH = 500  # events per transaction and per A/ack at most (MQTT.md: a list of acks)

Received = tuple[str, Event]  # (agent, envelope)


class EventInbox:
    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Received | None] = queue.SimpleQueue()

    def put(self, agent: str, env: Event) -> None:
        self._q.put((agent, env))

    def close(self) -> None:
        """:meth:`batches` ends after what was put before."""
        self._q.put(None)

    def batches(self) -> Iterator[list[Received]]:
        while (first := self._q.get()) is not None:
            batch = [first]
            while len(batch) < ACK_BATCH:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._q.put(None)  # end after this batch
                    break
                batch.append(item)
            yield batch
