"""The kiosk shell: the window, its header and footer, the step history, the idle
timer and the saver, the agent's health and event stream, out of service.

What a tap leads to is a flow's business (:mod:`kiosk.flows`); the flows reach the
shell only through :class:`kiosk.host.KioskHost`, which :class:`Kiosk` implements.

The kiosk keeps no state of its own beyond the current flow (the citizen's taps since
leaving home). Going home — by a tap, the idle timer or a recovery — throws the flow
away, and answers for an old flow are ignored: nobody resumes another's half-done flow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from PyQt6.QtCore import QEvent, QObject, QTimer
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import (
    QApplication,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from hall_agent.contract.api import HealthOut, QueueOut, ServiceOut, ServicesOut, TicketOut
from hall_agent.contract.client import AgentClient, AgentRefused, AgentUnavailable
from kiosk.flows.checkin import CardFlows
from kiosk.flows.guides import GuideFlow
from kiosk.flows.queue import QueueFlow
from kiosk.flows.rating import RatingFlow
from kiosk.flows.selfservice import SelfServiceFlows
from kiosk.flows.ticket import TicketFlow
from kiosk.frame import Footer, Header, IdleTimer, Saver
from kiosk.host import Flow, KioskSettings, Render, storage_fault, storage_refusal
from kiosk.screens import (
    ChoiceScreen,
    HomeScreen,
    MessageScreen,
    OutOfServiceScreen,
    Screen,
    TicketScreen,
)
from kiosk.strings import Lang, tr
from kiosk.theme import Theme
from kiosk.widgets import Flip
from kiosk.workers import EventStream, Runner

T = TypeVar("T")

class Kiosk(QWidget):
    """The shell; implements :class:`kiosk.host.KioskHost` for the flows it builds."""

    cards: CardFlows
    selfservice: SelfServiceFlows
    tickets: TicketFlow
    guides: GuideFlow
    queue: QueueFlow
    rating: RatingFlow

    def __init__(self, settings: KioskSettings, client: AgentClient | None) -> None:
        super().__init__()
        self.setObjectName("Root")
        self.settings = settings
        self.client = client
        self.lang: Lang = settings.lang
        self.elderly = settings.elderly
        self.services: ServicesOut | None = None
        self.queue_data: QueueOut | None = None
        self.health: HealthOut | None = None
        self.printer_down = False
        self.flow = Flow()
        self.screen_name = ""
        self._gen = 0
        self._history: list[Render] = []
        self._current: Render | None = None
        self._hold_s: float | None = None
        self.runner = Runner(self)
        self.events: EventStream | None = None
        self.stream_up = False  # the agent's event stream is registered and live

        self._idle = IdleTimer(self, self._on_idle)
        self._tick = QTimer(self)
        self._tick.timeout.connect(self._on_tick)
        self._tick.start(1000)
        self._health_timer = QTimer(self)
        self._health_timer.timeout.connect(self.check_health)
        self._queue_debounce = QTimer(self)
        self._queue_debounce.setSingleShot(True)
        self._queue_debounce.setInterval(300)
        self._queue_debounce.timeout.connect(self.refresh_queue)

        self.saver = Saver(self, self._dim)
        self._outer = QVBoxLayout(self)
        self._outer.setContentsMargins(0, 0, 0, 0)
        self._outer.setSpacing(0)
        self._body: QWidget | None = None
        self._build()
        self.show_home()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    # ------------------------------------------------------------------ building

    @property
    def theme(self) -> Theme:
        return Theme(elderly=self.elderly, dpi=self.settings.dpi, compact=self.settings.compact)

    def t(self, key: str, **kw: object) -> str:
        return tr(key, self.lang, **kw)

    def _build(self) -> None:
        """(Re)build every screen for the current language and mode. The window keeps
        its size: while the new body is put together it must not grow the window
        (a top-level window grows to its layout's minimum and never shrinks back)."""
        keep = self.size() if self._body is not None else None
        if self._body is not None:
            self._outer.removeWidget(self._body)
            self._body.setParent(None)
            self._body.deleteLater()
        th = self.theme
        self.setStyleSheet(th.stylesheet())
        self.setFont(th.font(28))
        body = QWidget()
        body.setObjectName("Root")
        v = QVBoxLayout(body)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)

        self.header = Header(th, self._hall_name())
        v.addWidget(self.header)

        self.stack = QStackedWidget()
        v.addWidget(self.stack, 1)

        self.footer = footer = Footer(th, self.lang, on_back=self.back, on_home=self.go_home)
        self.back_btn, self.home_btn = footer.back_btn, footer.home_btn
        self.countdown = footer.countdown
        v.addWidget(footer)

        self.home = HomeScreen(th, self.lang, on_action=self._home_action,
                               on_toggle_elderly=self.toggle_elderly,
                               on_toggle_lang=self.toggle_lang,
                               checkin_enabled=self.settings.checkin_enabled)
        self.choice = ChoiceScreen(th, self.lang)
        self.message = MessageScreen(th, self.lang)
        self.ticket = TicketScreen(th, self.lang, on_done=self.go_home,
                                   on_reprint=lambda: self.tickets.reprint())
        self.oos = OutOfServiceScreen(th, self.lang)
        for s in (self.home, self.choice, self.message, self.ticket, self.oos):
            self.add_screen(s)
        # The flows, with their own screens. What must outlive a rebuild (the card of
        # this flow, the hall's mode, the last ticket) is handed over.
        old_tickets: TicketFlow | None = getattr(self, "tickets", None)
        self.cards = CardFlows(self, getattr(self, "cards", None))
        self.selfservice = SelfServiceFlows(self, self.cards, getattr(self, "selfservice", None))
        self.tickets = TicketFlow(self, ask_card=self.cards.ask_card_for)
        self.tickets.last = old_tickets.last if old_tickets else None
        self.guides = GuideFlow(self, on_take=self.tickets.take)
        self.queue = QueueFlow(self)
        self.rating = RatingFlow(self)
        self.home.set_printer_down(self.printer_down)
        if self.services is not None:
            self.home.set_waiting(sum(s.waiting for s in self.services.services))
        self._body = body
        self._outer.addWidget(body)
        body.show()  # a rebuilt body in a visible window is not shown until told so
        self._orient()
        self._on_tick()
        if keep is not None:
            self.resize(keep)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._orient()
        if self.saver.isVisible():
            self.saver.setGeometry(self.rect())

    def _orient(self) -> None:
        wide = self.width() > self.height() * 1.2
        for flip in self.findChildren(Flip):
            flip.set_wide(wide)

    def _hall_name(self) -> str:
        if self.services and self.lang == "en" and self.services.hall_name_en:
            return self.services.hall_name_en
        if self.services and self.services.hall_name:
            return self.services.hall_name
        if self.settings.hall_name:
            return self.settings.hall_name
        return self.health.hall_name if self.health else ""

    def toggle_elderly(self) -> None:
        self.set_mode(self.lang, not self.elderly)

    def toggle_lang(self) -> None:
        self.set_mode("en" if self.lang == "zh" else "zh", self.elderly)

    def set_mode(self, lang: Lang, elderly: bool) -> None:
        if (lang, elderly) != (self.lang, self.elderly):
            self.lang, self.elderly = lang, elderly
            self._build()
        self.show_home()

    @property
    def at_defaults(self) -> bool:
        """In the hall's own language and mode, as the next citizen should find it."""
        return (self.lang, self.elderly) == (self.settings.lang, self.settings.elderly)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin talking to the agent: services, health polling, the event stream."""
        if self.client is None:
            return
        self._health_timer.start(round(self.settings.health_interval_s * 1000))
        self.refresh_services()
        self.check_health()
        if self.settings.events:
            self.events = EventStream(self.client.base_url, self)
            self.events.received.connect(self._on_event)
            self.events.connected.connect(self._on_stream)
            self.events.start()

    def stop(self) -> None:
        self._health_timer.stop()
        self._idle.stop()
        self._tick.stop()
        if self.events is not None:
            self.events.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    # ------------------------------------------------------------------ navigation

    def add_screen(self, screen: Screen) -> None:
        # hidden until shown (show_screen): a hidden page claims no height
        screen.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.stack.addWidget(screen)

    def show_screen(self, name: str, screen: Screen, *, back: bool = True,
                    footer: bool = True, hold_s: float | None = None) -> None:
        self.screen_name = name
        # Only the screen on show may claim height: a hidden one (the home with its
        # banner, the ticket with its QR) must not push the window past the display.
        for i in range(self.stack.count()):
            page = self.stack.widget(i)
            if page is not None:
                p = QSizePolicy.Policy.Preferred if page is screen else QSizePolicy.Policy.Ignored
                page.setSizePolicy(p, p)
        self.stack.setCurrentWidget(screen)
        self.footer.setVisible(footer)
        self.back_btn.setVisible(back)
        self._hold_s = hold_s
        self._arm_idle()

    def go(self, render: Render) -> None:
        """Show a new step of the flow; ``back`` returns to the current one."""
        if self._current is not None:
            self._history.append(self._current)
        self._current = render
        render()

    def replace(self, render: Render) -> None:
        self._current = render
        render()

    def clear_steps(self) -> None:
        self._history.clear()
        self._current = None

    def back(self) -> None:
        if not self._history:
            self.go_home()
            return
        self._current = self._history.pop()
        self._current()

    def go_home(self) -> None:
        self._gen += 1          # answers for the old flow are dropped from now on
        self.flow = Flow()
        self.clear_steps()
        self.cards.reset()
        self.selfservice.reset()
        self.show_home()
        self.refresh_services()

    def show_home(self) -> None:
        self.header.hall_label.setText(self._hall_name())
        self.home.set_printer_down(self.printer_down)
        if self.selfservice.on:  # outside staffed hours: the 24-hour area's home
            self.selfservice.show_home()
            return
        self.show_screen("home", self.home, footer=False)

    def _home_action(self, key: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "take_ticket": self.tickets.start, "guides": self.guides.open,
            "queue": self.open_queue, "rate": self.start_rating,
            "checkin": self.cards.open_checkin,
        }
        if key in actions:
            actions[key]()

    # ------------------------------------------------------------------ idle

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:
        if event is not None and event.type() in (
                QEvent.Type.MouseButtonPress, QEvent.Type.TouchBegin, QEvent.Type.KeyPress):
            if self.saver.isVisible():
                # The touch that wakes the screen only wakes it: it must not also press
                # whatever button lies under the finger.
                self.wake()
                return True
            self._arm_idle()
        return False

    # ------------------------------------------------------------------ saver

    def _dim(self) -> None:
        """A home screen nobody touched for a while goes dark: it saves the panel of a
        kiosk that stands lit all night, and the motion of a person wakes it."""
        if self.screen_name == "home":
            self.saver.dim(self.theme, f"{self._hall_name()}\n\n{self.t('saver')}")

    def wake(self) -> None:
        if self.saver.isVisible():
            self.saver.hide()
        self._arm_idle()

    def _arm_idle(self) -> None:
        self.saver.arm(self.settings.blank_after_s if self.screen_name == "home" else 0)
        if self._resting():
            self._idle.stop()
        else:
            self._idle.start(self._hold_s if self._hold_s is not None
                             else self.settings.idle_timeout_s)
        self._on_tick()

    def _resting(self) -> bool:
        """Nothing to time out: home (or the 24-hour home) in the hall's own language
        and mode, or out of service."""
        if self.screen_name == "oos":
            return True
        home = self.screen_name in ("home", "") or (
            self.screen_name == "selfservice_home" and self.cards.person is None)
        return home and self.at_defaults

    def _on_idle(self) -> None:
        """Nobody touched the kiosk for a while: the next citizen finds it as the hall
        set it up, home, in the hall's language and mode."""
        if not self._resting():
            if not self.at_defaults:
                self.lang, self.elderly = self.settings.lang, self.settings.elderly
                self._build()
            self.go_home()

    def _on_tick(self) -> None:
        self.header.tick(self.lang, self.settings.tz)
        left = self._idle.left()
        self.countdown.setText(self.t("idle_countdown", s=max(1, round(left)))
                               if 0 < left <= 15 else "")

    # ------------------------------------------------------------------ agent calls

    def call(self, fn: Callable[[], T], on_ok: Callable[[T], None],
             on_refused: Callable[[AgentRefused], None] | None = None,
             *, flow_bound: bool = True) -> None:
        """Run ``fn`` off the Qt thread; an answer for a flow already left is dropped."""
        gen = self._gen

        def ok(value: T) -> None:
            if not flow_bound or gen == self._gen:
                on_ok(value)

        def err(e: Exception) -> None:
            if isinstance(e, AgentUnavailable) or storage_refusal(e) is not None:
                self.show_out_of_service(storage_refusal(e))  # gone, or keeps nothing
            elif isinstance(e, AgentRefused):
                if on_refused is not None and (not flow_bound or gen == self._gen):
                    on_refused(e)
            else:
                raise e

        self.runner.run(fn, ok, err)

    def refresh_services(self) -> None:
        if self.client is not None:
            self.call(self.client.services, self.set_services, flow_bound=False)

    def service_list(self) -> list[ServiceOut]:
        return self.services.services if self.services else []

    def service(self, sid: str) -> ServiceOut | None:
        return next((s for s in self.service_list() if s.id == sid), None)

    def set_services(self, services: ServicesOut) -> None:
        self.services = services
        self.header.hall_label.setText(self._hall_name())
        self.home.set_waiting(sum(s.waiting for s in services.services))

    def check_health(self) -> None:
        if self.client is None:
            return
        client = self.client

        def ok(h: HealthOut) -> None:
            self.set_health(h)
            storage = storage_fault(h)
            if self.screen_name == "oos" and storage is None:
                self._recover()
            elif storage is not None and self.screen_name in ("home", "oos"):
                self.show_out_of_service(storage)  # before a citizen taps in vain
            self.selfservice.refresh()

        self.runner.run(client.health, ok, lambda e: self.show_out_of_service())

    def set_health(self, h: HealthOut) -> None:
        self.health = h
        printer = h.devices.get("printer")
        self.set_printer_down(printer is not None and printer.status == "fault")

    def set_printer_down(self, down: bool) -> None:
        self.printer_down = down
        self.home.set_printer_down(down)

    def _recover(self) -> None:
        """The agent answers again: fetch the catalogue, then open for business."""
        if self.client is None:
            return

        def ok(s: ServicesOut) -> None:
            self.set_services(s)
            self._health_timer.setInterval(round(self.settings.health_interval_s * 1000))
            self.go_home()

        self.runner.run(self.client.services, ok, lambda e: None)

    def show_out_of_service(self, reason: tuple[str, str] | None = None) -> None:
        """The agent is gone (``reason`` None) or cannot keep a ticket (its storage)."""
        self.oos.set_reason(reason)
        if self.screen_name != "oos":
            self._gen += 1
            self.flow = Flow()
            self.clear_steps()
            self.show_screen("oos", self.oos, footer=False)
        if self.client is not None:
            self._health_timer.start(round(self.settings.recover_interval_s * 1000))

    def _on_stream(self, up: bool) -> None:
        self.stream_up = up
        # The stream dropping is the fastest sign that the agent went away, and its
        # return the fastest sign that it came back: either way, ask for health now.
        if up == (self.screen_name == "oos"):
            self.check_health()

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name in ("call", "ticket"):
            if self.screen_name == "queue":
                self._queue_debounce.start()
        elif name == "device" and data.get("device") == "printer":
            self.set_printer_down(data.get("status") == "fault")
        elif name == "device" and data.get("device") == "presence":
            self.wake()  # someone walked up to the kiosk (GPIO presence sensor)
        elif name == "card":
            if self.selfservice.active():
                self.selfservice.on_card(data)
            else:
                self.cards.on_card(data)
        elif name == "scan":
            self.cards.on_scan(data)

    # ------------------------------------------------------------------ for the flows

    def show_notice(self, kind: str, title: str, body: str, detail: str = "", *,
                    take_ticket: bool = False) -> None:
        buttons = [(self.t("take_ticket"), self.tickets.start)] if take_ticket else None
        self.message.show_message(kind, title, body, detail, buttons=buttons, warn=True)
        self.show_screen(kind.split(":")[0], self.message)

    def show_ticket(self, t: TicketOut) -> None:
        self.tickets.show_ticket(t)

    # ------------------------------------------------------------------ queue and rating

    def open_queue(self) -> None:
        self.queue.open()
        self.refresh_queue()

    def start_rating(self) -> None:
        self.rating.start()
        self.refresh_queue()

    def refresh_queue(self) -> None:
        self.queue.refresh(on_rate_window=self.rating.render_windows)

