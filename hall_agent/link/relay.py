"""How the outbox relay (hall_agent/link/mqtt.py) keeps up with a day's backlog.

Two costs set the drain rate (docs/benchmarks.md, "Outbox drain"):

- The store runs ``synchronous=FULL``: every commit is an fsync. Writing each ``A/ack``
  in its own transaction on paho's network thread cost an fsync per event, and while
  that thread waits on the disk it reads no PUBACKs, so the next events wait too. Acks
  are therefore only collected on the network thread (:class:`AckQueue`) and written by
  the relay thread, all that arrived since the last write in one transaction.
- paho takes every publish at once into memory, however many there are. Marking an event
  sent when it is only queued in paho would start its 30 s resend clock early, and a
  long paho queue is lost with the process anyway. The relay keeps at most about two
  batches ahead of the broker's PUBACKs (:func:`caught_up`).

``sent_at`` is a time of the monotonic clock of this boot (``Outbox.forget_sends`` at
the link's start). What does not change (MQTT.md): events are sent in ``seq`` order by
one thread, an event is marked done only when the central's ack is written, and one not
acknowledged 30 s after it was sent is due again with its ``msg_id``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt

from hall_agent.core.outbox import Outbox, OutboxEntry

RELAY_BATCH = 500  # events per outbox query and per mark_sent transaction
# QoS-1 messages paho keeps on the wire before waiting for PUBACKs (paho's default is 20;
# a PUBACK from the broker is about 0.1 ms away on a LAN, so 20 is not the limit either).
MAX_INFLIGHT = 100
PUBACK_WAIT_S = 5.0  # a broker slower than this to PUBACK a batch: stop, retry on the wake


class AckQueue:
    """The ``msg_id``s of ``A/ack`` messages received and not yet written to the outbox."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._lock = threading.Lock()

    def add(self, msg_ids: Iterable[str]) -> None:
        with self._lock:
            self._ids.extend(msg_ids)

    def write(self, outbox: Outbox) -> int:
        """Write every ack received so far in one transaction; returns how many."""
        with self._lock:
            ids, self._ids = self._ids, []
        if ids:
            try:
                outbox.ack(ids, time.time())
            except BaseException:
                self.add(ids)  # not written: kept for the next try
                raise
        return len(ids)


def caught_up(info: mqtt.MQTTMessageInfo | None, still: Callable[[], bool]) -> bool:
    """Wait until the broker has PUBACKed ``info`` (the last event of the batch before
    the one just handed to paho), while ``still()`` holds; False when it gave up."""
    if info is None:
        return True
    deadline = time.monotonic() + PUBACK_WAIT_S
    try:
        while not info.is_published():
            if not still() or time.monotonic() > deadline:
                return False
            info.wait_for_publish(0.1)
    except (RuntimeError, ValueError):  # paho gave up on it (disconnected, queue full)
        return False
    return True


def drain(outbox: Outbox, acks: AckQueue,
          publish: Callable[[OutboxEntry], mqtt.MQTTMessageInfo], resend_after_s: float,
          go_on: Callable[[], bool]) -> None:
    """Send what is due in ``seq`` order, a batch at a time, while ``go_on()`` holds:
    each batch is marked sent in one transaction, and the next is handed to paho only
    once the broker has PUBACKed the one before the last."""
    last: mqtt.MQTTMessageInfo | None = None
    while go_on():
        acks.write(outbox)  # first: an event acknowledged meanwhile is not sent again
        # The resend clock is the monotonic one (an NTP step back of an hour would
        # otherwise keep every unacknowledged event "sent in the future", never resent).
        rows = outbox.due(time.monotonic() - resend_after_s, RELAY_BATCH)
        if not rows:
            return
        sent: list[int] = []
        info: mqtt.MQTTMessageInfo | None = None
        for r in rows:
            info = publish(r)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            sent.append(r.seq)
        outbox.mark_sent(sent, time.monotonic())
        if len(sent) < len(rows) or not caught_up(last, go_on):
            return  # the next wake (reconnect, new events, the 1 s tick) goes on
        last = info
