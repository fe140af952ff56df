"""The agent's GPIO: what the button, the door, the presence sensor and the LED do.

- The big button takes a ticket of ``[gpio] ticket_service`` (channel ``button``),
  printed like any other; a second press while one is printing is ignored.
- The door relay opens for ``door_open_s`` (the 24-hour area, selfservice.py); the
  door contact reports a door held open past ``door_held_s`` as a fault.
- The presence sensor wakes the kiosk screen: an SSE ``device`` event
  ``{"device": "presence", "detail": "present"}``.
- The status LED follows the agent's overall health.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from drivers.errors import HallEdgeError
from drivers.gpio import HallGpio
from drivers.gpio_config import GpioConfig
from drivers.types import DeviceHealth, Health
from hall_agent.core.queue import QueueEngine
from hall_agent.services.ports import Events, HealthView, Tickets

log = logging.getLogger("hall_agent.gpio")


@dataclass(frozen=True)
class GpioNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    bus: Events
    queue: QueueEngine
    health: HealthView
    tickets: Tickets


class GpioService:
    def __init__(self, needs: GpioNeeds, cfg: GpioConfig, *, factory: Any = None) -> None:
        self.n = needs
        self.cfg = cfg
        self.hw = HallGpio(cfg, factory=factory)
        self._busy = threading.Lock()
        self._door_opened_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.presses = 0
        if self.hw.button is not None:
            self.hw.button.when_pressed = self._pressed
        if self.hw.presence is not None:
            self.hw.presence.when_activated = self._presence
        if self.hw.contact is not None:
            self.hw.contact.when_released = self._door_opened
            self.hw.contact.when_pressed = self._door_closed

    @property
    def has_relay(self) -> bool:
        return self.hw.relay is not None

    @property
    def door_open_s(self) -> float:
        return self.cfg.door_open_s

    @property
    def ticket_service(self) -> str:
        return self.cfg.ticket_service or self.n.queue.catalog.services[0].id

    # ------------------------------------------------------------------ button

    def _pressed(self) -> None:
        # gpiozero calls this in its own thread; printing takes a while: hand it off.
        threading.Thread(target=self.take_ticket, name="gpio-button", daemon=True).start()

    def take_ticket(self) -> dict[str, Any] | None:
        if not self._busy.acquire(blocking=False):
            log.info("ticket button pressed while a ticket is printing: ignored")
            return None
        try:
            self.presses += 1
            body = self.n.tickets.issue(self.ticket_service, channel="button",
                                        key=f"button:{uuid.uuid4()}")
            log.info("ticket button: %s", body.number)
            return body.model_dump()
        except HallEdgeError as e:
            log.warning("ticket button: no ticket: %s", e)
            return None
        finally:
            self._busy.release()

    # ------------------------------------------------------------------ door

    def open_door(self) -> bool:
        return self.hw.open_door(self.cfg.door_open_s)

    def _door_opened(self) -> None:
        self._door_opened_at = time.monotonic()

    def _door_closed(self) -> None:
        self._door_opened_at = None
        self.n.health.set_health("door", DeviceHealth(Health.OK, "closed"))

    def door_state(self) -> dict[str, Any]:
        return {"relay_open": self.hw.relay_open, "closed": self.hw.door_closed}

    # ------------------------------------------------------------------ presence

    def _presence(self) -> None:
        self.n.bus.publish("device", {"device": "presence", "status": "ok",
                                          "detail": "present"})

    # ------------------------------------------------------------------ watch

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="gpio-watch", daemon=True)
        self._thread.start()

    def check(self) -> None:
        opened = self._door_opened_at
        if opened is not None and time.monotonic() - opened > self.cfg.door_held_s:
            self.n.health.set_health("door", DeviceHealth(
                Health.FAULT, f"the 24-hour area's door has been open for more than "
                              f"{self.cfg.door_held_s:.0f} s — check that it closes"))
        self.hw.show_status(self.n.health.overall().value)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.check()
            except Exception:
                log.exception("GPIO watch failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
        self.hw.close()
