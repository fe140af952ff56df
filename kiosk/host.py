"""What a flow may ask of the kiosk shell: :class:`KioskHost`.

The flows (:mod:`kiosk.flows`) are written against this interface, never against
the shell's class (:class:`kiosk.app.Kiosk`), so they import nothing of it and a
flow can be read, and tested, on its own. The shell owns the window, the step
history, the idle timer and the agent's answers; a flow owns its screens and what
its taps do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from hall_agent.contract.api import (
    STORAGE_FAULTS,
    HealthOut,
    PriorityReason,
    QueueOut,
    ServiceOut,
    TicketOut,
)
from hall_agent.contract.client import AgentClient, AgentRefused
from kiosk.screens import ChoiceScreen, MessageScreen, Screen, TicketScreen
from kiosk.strings import Lang
from kiosk.theme import Theme
from kiosk.workers import Runner

T = TypeVar("T")
Render = Callable[[], None]
"""Draws one step of a flow; kept in the history so "back" can draw it again."""


def storage_refusal(e: Exception) -> tuple[str, str] | None:
    """(Chinese, English) when ``e`` is the agent refusing for its storage (a full or
    read-only card): it answers but can keep nothing, so no flow can go on."""
    if isinstance(e, AgentRefused) and e.body.error in STORAGE_FAULTS:
        return e.body.message, e.body.message_en
    return None


def storage_fault(h: HealthOut | None) -> tuple[str, str] | None:
    """(Chinese, English) of the storage fault in the agent's health, if any."""
    d = h.devices.get("storage") if h is not None else None
    if d is None or d.status != "fault":
        return None
    zh, _, en = d.detail.partition(" / ")
    return zh, en


@dataclass
class KioskSettings:
    """Timings are in seconds; tests shorten them."""

    idle_timeout_s: float = 60.0
    ticket_hold_s: float = 30.0        # a printed ticket stays on screen this long
    unprinted_hold_s: float = 120.0    # an unprinted one longer: it must be photographed
    message_hold_s: float = 8.0        # "thank you" and similar
    health_interval_s: float = 10.0    # background health poll while in service
    recover_interval_s: float = 2.0    # health poll while out of service
    dpi: float = 96.0
    lang: Lang = "zh"
    elderly: bool = False
    checkin_enabled: bool = False      # an ID reader or scanner is configured
    hall_name: str = ""
    events: bool = True                # follow GET /v1/events
    compact: bool = False              # landscape, ~1080 px high: smaller type and tiles
    blank_after_s: float = 300.0       # home untouched this long: dim to a saver (0: never)
    timezone: str = "Asia/Shanghai"    # [hall] timezone: every time a citizen reads

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class Flow:
    """One citizen's taps since leaving home; one Idempotency-Key for the ticket it takes."""

    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    priority: bool = False
    reason: PriorityReason | None = None
    window: str | None = None
    busy: bool = False


class KioskHost(Protocol):
    """The shell as the flows see it."""

    settings: KioskSettings
    client: AgentClient | None
    runner: Runner
    lang: Lang
    flow: Flow
    screen_name: str
    queue_data: QueueOut | None
    # the screens several flows draw on
    choice: ChoiceScreen
    message: MessageScreen
    ticket: TicketScreen

    @property
    def theme(self) -> Theme: ...

    def t(self, key: str, **kw: object) -> str:
        """A string of :mod:`kiosk.strings` in the current language."""
        ...

    # ------------------------------------------------------------ screens and steps

    def add_screen(self, screen: Screen) -> None:
        """A flow's own screen joins the window (flows are rebuilt with the shell)."""
        ...

    def show_screen(self, name: str, screen: Screen, *, back: bool = True,
                    footer: bool = True, hold_s: float | None = None) -> None:
        """Put ``screen`` on show as ``name``; ``hold_s`` overrides the idle timeout."""
        ...

    def go(self, render: Render) -> None:
        """A new step of the flow: draw it; "back" returns to the current one."""
        ...

    def replace(self, render: Render) -> None:
        """Draw ``render`` in place of the current step (a busy screen is no step)."""
        ...

    def clear_steps(self) -> None:
        """Forget the steps so far: "back" from here goes home."""
        ...

    def go_home(self) -> None:
        """The citizen is done: a fresh flow, the home screen."""
        ...

    def show_notice(self, kind: str, title: str, body: str, detail: str = "", *,
                    take_ticket: bool = False) -> None:
        """A refusal or a result in words, on the message screen, as a step;
        ``take_ticket`` offers 取号 there (a check-in that failed: queue anyway)."""
        ...

    def show_ticket(self, t: TicketOut) -> None:
        """A ticket just issued (by a tap, a card or a check-in)."""
        ...

    # ------------------------------------------------------------ the agent

    def call(self, fn: Callable[[], T], on_ok: Callable[[T], None],
             on_refused: Callable[[AgentRefused], None] | None = None,
             *, flow_bound: bool = True) -> None:
        """Run ``fn`` (a client call) off the Qt thread; no answer means out of service,
        and an answer for a flow already left is dropped unless not ``flow_bound``."""
        ...

    def service_list(self) -> list[ServiceOut]:
        """The catalogue as last fetched (empty before the first answer)."""
        ...

    def refresh_services(self) -> None: ...

    def set_printer_down(self, down: bool) -> None: ...
