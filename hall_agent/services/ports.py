"""The narrow interfaces services are given instead of the whole agent.

Each service receives a small frozen set of these (its ``…Needs`` dataclass),
built by the composition root (hall_agent/agent.py). A service never imports
another service's module or touches its privates: it asks through one of these,
or listens to events.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from drivers.escpos_codec import Receipt
from drivers.types import DeviceHealth, Health, PrintResult
from hall_agent.contract.api import TicketOut
from hall_agent.core.events import Event
from hall_agent.core.personal import Person


class Events(Protocol):
    """The live event fan-out (hall_agent.core.events.EventBus)."""

    def publish(self, kind: str, data: dict[str, Any]) -> None: ...
    def listen(self, fn: Callable[[Event], None]) -> None: ...


class HealthSink(Protocol):
    def set_health(self, device: str, h: DeviceHealth) -> None: ...


class HealthView(HealthSink, Protocol):
    def devices(self) -> dict[str, DeviceHealth]: ...
    def overall(self) -> Health: ...


class ModeView(Protocol):
    """Who numbers (``central`` | ``standalone``) and how the agent runs now
    (``standalone`` | ``central`` | ``offline``)."""

    @property
    def numbering(self) -> str: ...
    @property
    def mode(self) -> str: ...


class Tickets(Protocol):
    def issue(self, service: str, *, priority: bool = False,
              priority_reason: str | None = None, channel: str = "kiosk",
              key: str | None = None, card: str | None = None,
              extra: dict[str, Any] | None = None) -> TicketOut: ...


class Calls(Protocol):
    def call(self, window: str, kind: str) -> dict[str, Any]: ...


class ReceiptPrinter(Protocol):
    def print_receipt(self, r: Receipt) -> PrintResult: ...


class CardHolder(Protocol):
    """The card just read in a flow, by its token (services/cards.py)."""

    def take(self, token: str, *, keep: bool = False) -> Person: ...


class SatisfactionView(Protocol):
    def satisfaction(self) -> dict[str, dict[str, int]]: ...


class Door(Protocol):
    """The 24-hour area's door (services/gpio.py)."""

    @property
    def has_relay(self) -> bool: ...
    @property
    def door_open_s(self) -> float: ...
    def open_door(self) -> bool: ...


def bus_fault(port: str, address: int, e: BaseException, check: str) -> str:
    """What a board's or evaluator's health says when the bus fails. An adapter that is
    not there (unplugged, renamed) is said the same way for every device on it, in a few
    words, so hallctl can say it once for the port."""
    from drivers.bus import PortUnavailable

    if isinstance(e, PortUnavailable):
        text = str(e)
        if not os.path.exists(port):  # asked of the port, not of the error's wording
            return f"RS-485 adapter {port} missing: plug in its USB cable (ls /dev/serial/by-id/)"
        if "ermission denied" in text or "rrno 13]" in text:
            return (f"RS-485 adapter {port}: permission denied: add the agent's user to "
                    "the dialout group")
        return (f"RS-485 adapter {port} lost: check its USB cable "
                "(ls /dev/serial/by-id/, sudo hallctl doctor)")
    return f"no answer at address {address} on {port} ({e}); {check}"
