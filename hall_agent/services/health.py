"""Device health: the one registry every device service reports to.

A change is logged once and published once (the kiosk's event stream, and the
MQTT link's retained device state through a listener), never at every poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from drivers.types import DeviceHealth, Health
from hall_agent.services.ports import Events

log = logging.getLogger("hall_agent")

Extra = Callable[[dict[str, DeviceHealth]], None]


class HealthRegistry:
    def __init__(self, events: Events) -> None:
        self._events = events
        self._health: dict[str, DeviceHealth] = {}
        self._lock = threading.Lock()
        # Called on every change, in the reporter's thread (the MQTT link's device state).
        self.on_change: list[Callable[[str, DeviceHealth], None]] = []
        # Fill in what is not reported but asked (the printer before its first check,
        # the MQTT link's own state).
        self.extras: list[Extra] = []

    def set_health(self, device: str, h: DeviceHealth) -> None:
        """Record a device's health; a change is logged and published once."""
        with self._lock:
            old = self._health.get(device)
            self._health[device] = h
        if old == h:
            return
        level = logging.INFO if h.status in (Health.OK, Health.ABSENT) else logging.WARNING
        log.log(level, "device %s: %s%s", device, h.status.value,
                f" — {h.detail}" if h.detail else "")
        self._events.publish("device", {"device": device, "status": h.status.value,
                                        "detail": h.detail})
        for fn in self.on_change:
            fn(device, h)

    def devices(self) -> dict[str, DeviceHealth]:
        with self._lock:
            out = dict(self._health)
        for fn in self.extras:
            fn(out)
        return out

    def overall(self) -> Health:
        return DeviceHealth.worst(list(self.devices().values()))
