"""What the central tells this agent (MQTT.md), and the remote commands it runs.

The MQTT link parses and checks each message; this is where it takes effect:
leases go to the queue engine, the central's queue and hall-wide satisfaction
are kept for the boards, and ``A/cmd`` commands run at most once per ``cmd_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import HallEdgeError
from drivers.types import PrintResult
from hall_agent.contract.config import Config, load_catalog
from hall_agent.contract.mqtt import CentralQueue, Command, Lease, Satisfaction
from hall_agent.core.idempotency import Idempotency, request_hash
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.store import Store
from hall_agent.services.ports import Events, HealthView, ModeView

log = logging.getLogger("hall_agent")


@dataclass(frozen=True)
class CentralNeeds:
    cfg: Config
    store: Store
    queue: QueueEngine
    idem: Idempotency
    events: Events
    health: HealthView
    mode: ModeView
    reprint: Callable[[str], PrintResult]
    test_print: Callable[[], PrintResult]
    rebirth: Callable[[], None]


class CentralState:
    def __init__(self, needs: CentralNeeds) -> None:
        self.n = needs
        self.queue: CentralQueue | None = None
        self.hall_satisfaction: Satisfaction | None = None
        self._last_lease: tuple[str, list[tuple[str, int, int]]] | None = None

    def on_lease(self, lease: Lease) -> None:
        blocks = [(b.service, b.from_, b.to) for b in lease.blocks]
        self.n.queue.leases.set(lease.day, blocks)
        if (lease.day, blocks) != self._last_lease:  # the retained lease returns at reconnect
            self._last_lease = (lease.day, blocks)
            log.info("lease for %s: %s", lease.day,
                     ", ".join(f"{s}{lo}-{hi}" for s, lo, hi in blocks) or "none")

    def on_queue(self, q: CentralQueue) -> None:
        self.queue = q

    def on_satisfaction(self, s: Satisfaction) -> None:
        self.hall_satisfaction = s

    def satisfaction(self) -> dict[str, dict[str, int]]:
        """Today's ratings per window for the live board: the central's hall-wide figures
        in central mode (every window's evaluators, not only ours), else our own."""
        s = self.hall_satisfaction
        if self.n.mode.numbering == "central" and s is not None and \
                s.day == self.n.queue.today():
            return {w: {str(k): v for k, v in levels.items()} for w, levels in s.windows.items()}
        return self.n.queue.satisfaction()

    def on_mode(self, mode: str) -> None:
        mqtt = self.n.health.devices().get("mqtt")
        self.n.events.publish("device", {"device": "mqtt",
                                         "status": mqtt.status.value if mqtt else "absent",
                                         "detail": f"mode {mode}"})

    # ------------------------------------------------------------------ commands

    def on_command(self, cmd: Command) -> tuple[bool, str]:
        """Remote commands (A/cmd), each at most once per cmd_id."""
        route = "mqtt A/cmd"
        rh = request_hash(cmd.model_dump())
        prior = self.n.idem.replay(cmd.cmd_id, route, rh)
        if prior is not None:
            return bool(prior.body["ok"]), str(prior.body["detail"])
        ok, detail = self._run(cmd)
        self.n.idem.remember(cmd.cmd_id, route, rh, 200, {"ok": ok, "detail": detail})
        return ok, detail

    def _run(self, cmd: Command) -> tuple[bool, str]:
        if cmd.name == "reprint":
            try:
                r = self.n.reprint(str(cmd.args.get("ticket_id", "")))
            except Refused as e:
                return False, str(e)
            return r.printed, r.detail or "reprinted"
        if cmd.name == "test_print":
            r = self.n.test_print()
            return r.printed, r.detail or "test page printed"
        if cmd.name == "set_mode":
            mode = cmd.args.get("mode")
            if mode not in ("central", "standalone"):
                return False, "args.mode must be \"central\" or \"standalone\""
            self.n.store.meta_set("numbering", str(mode))
            self.n.rebirth()
            return True, f"numbering is now {mode}"
        if cmd.name == "reload":
            try:
                catalog = load_catalog(self.n.cfg.catalog_path, self.n.cfg.source)
            except HallEdgeError as e:
                return False, str(e)
            self.n.queue.catalog = catalog
            return True, f"catalogue reloaded: {len(catalog.services)} services"
        return False, f"unknown command {cmd.name}"
