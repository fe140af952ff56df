"""The call desk: one path for every call, local or from the central.

A call is recorded (and de-duplicated by ``call_id``) by the queue engine in one
transaction with its ``call.shown`` event; the live ``call`` and ``ticket`` events
that the boards, the voice and the kiosk follow go out only after that commit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from hall_agent.contract.mqtt import CentralCall
from hall_agent.core.model import Call, Ticket
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store
from hall_agent.services.ports import Events

log = logging.getLogger("hall_agent")

# Evaluator staff keys (RS485.md) in central mode: the central decides and calls.
STAFF_KEYS: dict[int, str] = {0x11: "call_next", 0x12: "recall", 0x13: "pause",
                              0x15: "no_show"}


@dataclass(frozen=True)
class CallNeeds:
    store: Store
    queue: QueueEngine
    events: Events


class CallDesk:
    def __init__(self, needs: CallNeeds) -> None:
        self.n = needs

    def body(self, c: Call) -> dict[str, Any]:
        return c.body(self.n.queue.iso)

    def _announce(self, c: Call) -> None:
        """The live events of a recorded call, once its transaction has committed."""
        if c.called is None:
            return
        body = self.body(c)
        t = c.ticket

        def publish() -> None:
            self.n.events.publish("call", body)
            if t is not None:
                self.n.events.publish("ticket", {
                    "ticket_id": t.ticket_id, "number": t.number, "service": t.service,
                    "status": "called", "printed": t.print_state == "printed"})

        self.n.store.after_commit(publish)

    def finished(self, t: Ticket) -> None:
        """A visit ended (the clerk finished it, paused, called the next, or marked a
        no-show): the live ``ticket`` event, in either mode."""
        self.n.events.publish("ticket", {
            "ticket_id": t.ticket_id, "number": t.number, "service": t.service,
            "status": t.status, "window": t.window, "printed": t.print_state == "printed"})

    def call(self, window: str, kind: str) -> dict[str, Any]:
        """Standalone: a window calls its next ticket, or calls the current one again.
        The answer's ``finished`` names the ticket whose visit this call ended."""
        q = self.n.queue
        with self.n.store.tx():
            before = q.window_state(window).serving if kind == "call" else None
            c = q.recall(window) if kind == "recall" else q.call_next(window)
            self._announce(c)
        return {**self.body(c), "finished": before.number if before else None}

    def on_central_call(self, cc: CentralCall) -> None:
        """A call from the central: shown once per call_id, even across restarts."""
        with self.n.store.tx():
            c = self.n.queue.record_call(cc.call_id, cc.ticket, cc.window, cc.service,
                                         cc.kind)
            if c is None:
                log.info("central call %s (%s → window %s) already shown; ignored",
                         cc.call_id, cc.ticket, cc.window)
                return
            self._announce(c)

    def on_staff_key(self, window: str, key: int) -> bool:
        """Central mode: a clerk's key on the evaluator goes to the central as a
        ``staff.key`` event (docs/mqtt-extensions.md); the central decides and calls."""
        action = STAFF_KEYS.get(key)
        if action is None:
            return False
        with self.n.store.tx() as db:
            self.n.store.outbox.add(db, "staff.key", {"window": window, "action": action},
                                   ts_iso=self.n.queue.iso(time.time()))
        log.info("window %s: staff key %s sent to the central queue", window, action)
        return True
