"""The kiosk controller: which screen shows, what a tap does, and what the agent says.

The kiosk keeps no state of its own beyond the current flow (the citizen's
taps since leaving home). Going home — by a tap, the idle timer or a
recovery — throws the flow away, and answers that arrive for an old flow are
ignored, so a half-done flow is never resumed by the next person.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from hall_agent.contract.api import (
    EvaluationIn,
    EvaluationOut,
    HealthOut,
    Level,
    PrintOut,
    PriorityReason,
    QueueOut,
    ServiceOut,
    ServicesOut,
    TicketIn,
    TicketOut,
)
from hall_agent.contract.client import (
    AgentClient,
    AgentRefused,
    AgentUnavailable,
)
from kiosk.checkin import CardFlows
from kiosk.screens import (
    CheckinScreen,
    ChoiceScreen,
    GuideListScreen,
    GuideScreen,
    HomeScreen,
    MessageScreen,
    OutOfServiceScreen,
    QueueScreen,
    Screen,
    TicketScreen,
    closed_text,
    hours_text,
    promise_text,
    service_name,
)
from kiosk.strings import Lang, tr
from kiosk.theme import Theme
from kiosk.widgets import Flip, TileSpec, label, nav_button
from kiosk.workers import EventStream, Runner

T = TypeVar("T")

LEVELS: tuple[Level, ...] = ("very_satisfied", "satisfied", "basic", "unsatisfied",
                             "very_unsatisfied")
REASONS: tuple[PriorityReason, ...] = ("elderly", "disabled", "pregnant", "military")
_WEEKDAYS = "一二三四五六日"


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


@dataclass
class Flow:
    """One citizen's taps since leaving home; one Idempotency-Key for the ticket it takes."""

    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    priority: bool = False
    reason: PriorityReason | None = None
    window: str | None = None
    busy: bool = False


class Kiosk(QWidget):
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
        self.last_ticket: TicketOut | None = None
        self.screen_name = ""
        self._gen = 0
        self._history: list[Callable[[], None]] = []
        self._current: Callable[[], None] | None = None
        self._hold_s: float | None = None
        self._idle_deadline = 0.0
        self.runner = Runner(self)
        self.events: EventStream | None = None

        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.timeout.connect(self._on_idle)
        self._tick = QTimer(self)
        self._tick.timeout.connect(self._on_tick)
        self._tick.start(1000)
        self._health_timer = QTimer(self)
        self._health_timer.timeout.connect(self.check_health)
        self._queue_debounce = QTimer(self)
        self._queue_debounce.setSingleShot(True)
        self._queue_debounce.setInterval(300)
        self._queue_debounce.timeout.connect(self._refresh_queue)

        self.saver = self._build_saver()
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
        """(Re)build every screen for the current language and mode."""
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

        header = QWidget()
        header.setObjectName("Header")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        h = QHBoxLayout(header)
        h.setContentsMargins(40, 22, 40, 22)
        self.hall_label = label(self._hall_name(), th, 44, bold=True)
        clock = QVBoxLayout()
        clock.setSpacing(0)
        self.clock_label = label("", th, 44, bold=True, wrap=False,
                                 align=Qt.AlignmentFlag.AlignRight)
        self.date_label = label("", th, 22, wrap=False, align=Qt.AlignmentFlag.AlignRight)
        clock.addWidget(self.clock_label)
        clock.addWidget(self.date_label)
        h.addWidget(self.hall_label, 1)
        h.addLayout(clock)
        v.addWidget(header)

        self.stack = QStackedWidget()
        v.addWidget(self.stack, 1)

        footer = QWidget()
        footer.setObjectName("Footer")
        footer.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        f = QHBoxLayout(footer)
        f.setContentsMargins(40, 16, 40, 20)
        f.setSpacing(24)
        self.back_btn = nav_button(self.t("back"), th, self.back)
        self.home_btn = nav_button(self.t("home"), th, self.go_home)
        self.countdown = label("", th, 26, name="Muted", wrap=False,
                               align=Qt.AlignmentFlag.AlignCenter)
        f.addWidget(self.back_btn, 1)
        f.addWidget(self.countdown, 1)
        f.addWidget(self.home_btn, 1)
        self.footer = footer
        v.addWidget(footer)

        self.home = HomeScreen(th, self.lang, on_action=self._home_action,
                               on_toggle_elderly=self.toggle_elderly,
                               on_toggle_lang=self.toggle_lang,
                               checkin_enabled=self.settings.checkin_enabled)
        self.choice = ChoiceScreen(th, self.lang)
        self.message = MessageScreen(th, self.lang)
        self.ticket = TicketScreen(th, self.lang, on_done=self.go_home, on_reprint=self.reprint)
        self.guides = GuideListScreen(th, self.lang, on_pick=self._open_guide)
        self.guide = GuideScreen(th, self.lang, on_take=self.take)
        self.queue = QueueScreen(th, self.lang)
        self.checkin = CheckinScreen(th, self.lang)
        self.oos = OutOfServiceScreen(th, self.lang)
        for s in (self.home, self.choice, self.message, self.ticket, self.guides, self.guide,
                  self.queue, self.checkin, self.oos):
            self.stack.addWidget(s)
        # ID card, QR and 24-hour flows (kiosk/checkin.py, kiosk/selfservice.py); their
        # state (the card of this flow, the hall's mode) survives a rebuild.
        self.cardflows = CardFlows(self, getattr(self, "cardflows", None))
        self.home.set_printer_down(self.printer_down)
        if self.services is not None:
            self.home.set_waiting(sum(s.waiting for s in self.services.services))
        self._body = body
        self._outer.addWidget(body)
        body.show()  # a rebuilt body in a visible window is not shown until told so
        self._orient()
        self._on_tick()

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
        self.elderly = not self.elderly
        self._build()
        self.show_home()

    def toggle_lang(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        self._build()
        self.show_home()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin talking to the agent: services, health polling, the event stream."""
        if self.client is None:
            return
        self._health_timer.start(round(self.settings.health_interval_s * 1000))
        self._refresh_services()
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

    def _show(self, name: str, screen: Screen, *, back: bool = True, footer: bool = True,
              hold_s: float | None = None) -> None:
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

    def _go(self, render: Callable[[], None]) -> None:
        """Show a new step of the flow; ``back`` returns to the current one."""
        if self._current is not None:
            self._history.append(self._current)
        self._current = render
        render()

    def back(self) -> None:
        if not self._history:
            self.go_home()
            return
        self._current = self._history.pop()
        self._current()

    def go_home(self) -> None:
        self._gen += 1          # answers for the old flow are dropped from now on
        self.flow = Flow()
        self._history.clear()
        self._current = None
        self.cardflows.reset()
        self.cardflows.ss.reset()
        self.show_home()
        self._refresh_services()

    def show_home(self) -> None:
        self.hall_label.setText(self._hall_name())
        self.home.set_printer_down(self.printer_down)
        if self.cardflows.ss.on:  # outside staffed hours: the 24-hour area's home
            self.cardflows.ss.show_home()
            return
        self._show("home", self.home, footer=False)

    def _home_action(self, key: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "take_ticket": self.start_ticket, "guides": self.open_guides,
            "queue": self.open_queue, "rate": self.start_rating, "checkin": self.open_checkin,
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

    def _build_saver(self) -> QLabel:
        saver = QLabel(self)
        saver.setAlignment(Qt.AlignmentFlag.AlignCenter)
        saver.setWordWrap(True)
        saver.setStyleSheet("background: #000; color: #7f8fa6;")
        saver.hide()
        self._blank = QTimer(self)
        self._blank.setSingleShot(True)
        self._blank.timeout.connect(self._dim)
        return saver

    def _dim(self) -> None:
        """A home screen nobody touched for a while goes dark: it saves the panel of a
        kiosk that stands lit all night, and the motion of a person wakes it."""
        if self.screen_name != "home":
            return
        self.saver.setFont(self.theme.font(44))
        self.saver.setText(f"{self._hall_name()}\n\n{self.t('saver')}")
        self.saver.setGeometry(self.rect())
        self.saver.raise_()
        self.saver.show()

    def wake(self) -> None:
        if self.saver.isVisible():
            self.saver.hide()
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.screen_name == "home" and self.settings.blank_after_s > 0:
            self._blank.start(max(1, round(self.settings.blank_after_s * 1000)))
        else:
            self._blank.stop()
        if self.screen_name in ("home", "oos", "") or (
                self.screen_name == "selfservice_home" and self.cardflows.person is None):
            self._idle.stop()
            self._idle_deadline = 0.0
        else:
            s = self._hold_s if self._hold_s is not None else self.settings.idle_timeout_s
            self._idle_deadline = time.monotonic() + s
            self._idle.start(max(1, round(s * 1000)))
        self._on_tick()

    def _on_idle(self) -> None:
        if self.screen_name not in ("home", "oos") and not (
                self.screen_name == "selfservice_home" and self.cardflows.person is None):
            self.go_home()

    def _on_tick(self) -> None:
        now = datetime.now()
        self.clock_label.setText(now.strftime("%H:%M"))
        if self.lang == "zh":
            self.date_label.setText(f"{now.month}月{now.day}日 星期{_WEEKDAYS[now.weekday()]}")
        else:
            self.date_label.setText(now.strftime("%a %d %b"))
        left = self._idle_deadline - time.monotonic() if self._idle_deadline else 0
        self.countdown.setText(self.t("idle_countdown", s=max(1, round(left)))
                               if 0 < left <= 15 else "")

    # ------------------------------------------------------------------ agent calls

    def _call(self, fn: Callable[[], T], on_ok: Callable[[T], None],
              on_refused: Callable[[AgentRefused], None] | None = None,
              *, flow_bound: bool = True) -> None:
        """Run ``fn`` off the Qt thread; an answer for a flow already left is dropped."""
        gen = self._gen

        def ok(value: T) -> None:
            if not flow_bound or gen == self._gen:
                on_ok(value)

        def err(e: Exception) -> None:
            if isinstance(e, AgentRefused):
                if on_refused is not None and (not flow_bound or gen == self._gen):
                    on_refused(e)
            elif isinstance(e, AgentUnavailable):
                self.show_out_of_service()
            else:
                raise e

        self.runner.run(fn, ok, err)

    def _refresh_services(self) -> None:
        if self.client is not None:
            self._call(self.client.services, self.set_services, flow_bound=False)

    def set_services(self, services: ServicesOut) -> None:
        self.services = services
        self.hall_label.setText(self._hall_name())
        self.home.set_waiting(sum(s.waiting for s in services.services))

    def check_health(self) -> None:
        if self.client is None:
            return
        client = self.client

        def ok(h: HealthOut) -> None:
            self.set_health(h)
            if self.screen_name == "oos":
                self._recover()
            self.cardflows.ss.refresh()

        self.runner.run(client.health, ok, lambda e: self.show_out_of_service())

    def set_health(self, h: HealthOut) -> None:
        self.health = h
        printer = h.devices.get("printer")
        self._set_printer_down(printer is not None and printer.status == "fault")

    def _set_printer_down(self, down: bool) -> None:
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

    def show_out_of_service(self) -> None:
        if self.screen_name != "oos":
            self._gen += 1
            self.flow = Flow()
            self._history.clear()
            self._current = None
            self._show("oos", self.oos, footer=False)
        if self.client is not None:
            self._health_timer.start(round(self.settings.recover_interval_s * 1000))

    def _on_stream(self, up: bool) -> None:
        # The stream dropping is the fastest sign that the agent went away, and its
        # return the fastest sign that it came back: either way, ask for health now.
        if up == (self.screen_name == "oos"):
            self.check_health()

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name in ("call", "ticket"):
            if self.screen_name == "queue":
                self._queue_debounce.start()
        elif name == "device" and data.get("device") == "printer":
            self._set_printer_down(data.get("status") == "fault")
        elif name == "device" and data.get("device") == "presence":
            self.wake()  # someone walked up to the kiosk (GPIO presence sensor)
        elif name == "card":
            self.cardflows.on_card(data)
        elif name == "scan":
            self.cardflows.on_scan(data)

    # ------------------------------------------------------------------ take a ticket

    def _service_list(self) -> list[ServiceOut]:
        return self.services.services if self.services else []

    def categories(self) -> list[str]:
        seen: list[str] = []
        for s in self._service_list():
            if s.category not in seen:
                seen.append(s.category)
        return seen

    def start_ticket(self) -> None:
        self._refresh_services()
        cats = self.categories()
        if len(cats) == 1:
            self._go(lambda: self._render_services(cats[0]))
        else:
            self._go(self._render_categories)

    def _priority_banner(self) -> str:
        if not self.flow.priority or self.flow.reason is None:
            return ""
        return f"{self.t('priority_banner')} · {self.t('reason_' + self.flow.reason)}"

    def _render_categories(self) -> None:
        specs = []
        for cat in self.categories():
            members = [s for s in self._service_list() if s.category == cat]
            first = members[0]
            title = cat if self.lang == "zh" else first.category_en
            sep = "、" if self.lang == "zh" else ", "
            sub = sep.join(service_name(s, self.lang) for s in members[:3])
            waiting = sum(s.waiting for s in members)
            specs.append(TileSpec(f"cat:{cat}", title, sub,
                                  badge=self.t("waiting_n", n=waiting),
                                  on_click=partial(self._go, partial(self._render_services, cat))))
        extra = None
        if not self.flow.priority:
            extra = TileSpec("priority", self.t("priority_path"), self.t("priority_path_sub"),
                             variant="priority", on_click=lambda: self._go(
                                 self._render_priority))
        self.choice.set_choices(self.t("choose_category"), specs, tile_height=200,
                                banner=self._priority_banner(), extra=extra)
        self._show("categories", self.choice)

    def _render_priority(self) -> None:
        specs = [TileSpec(f"reason:{r}", self.t("reason_" + r), variant="priority",
                          on_click=partial(self._choose_priority, r)) for r in REASONS]
        self.choice.set_choices(self.t("priority_title"), specs,
                                note=self.t("priority_note"), page_size=len(REASONS))
        self._show("priority", self.choice)

    def _choose_priority(self, reason: PriorityReason) -> None:
        self.flow.priority = True
        self.flow.reason = reason
        cats = self.categories()
        if len(cats) == 1:
            self._go(lambda: self._render_services(cats[0]))
        else:
            self._go(self._render_categories)

    def _render_services(self, category: str) -> None:
        specs = []
        for s in self._service_list():
            if s.category != category:
                continue
            if s.open_now:
                sub = promise_text(s.promise, self.lang, s.promise_en)
                badge = self.t("waiting_n", n=s.waiting)
                variant = "priority" if self.flow.priority else ""
            else:
                sub, badge, variant = closed_text(s, self.lang), self.t("closed"), "closed"
            specs.append(TileSpec(s.id, service_name(s, self.lang), sub, badge=badge,
                                  variant=variant, on_click=partial(self.take, s)))
        self.choice.set_choices(self.t("choose_service"), specs, tile_height=180,
                                banner=self._priority_banner())
        self._show("services", self.choice)

    def service(self, sid: str) -> ServiceOut | None:
        return next((s for s in self._service_list() if s.id == sid), None)

    def take(self, svc: ServiceOut) -> None:
        """Issue a ticket; a second tap while the first is on its way does nothing."""
        if not svc.open_now:
            self._go(lambda: self._render_closed(svc))
            return
        if svc.requires_id:  # a real-name service: the card first, then the ticket
            self.cardflows.ask_card_for(svc)
            return
        if self.flow.busy or self.client is None:
            return
        self.flow.busy = True
        req = TicketIn(service=svc.id, priority=self.flow.priority,
                       priority_reason=self.flow.reason if self.flow.priority else None)
        key = self.flow.key
        self.message.show_message("busy", self.t("issuing"))
        self._show("issuing", self.message, back=False, footer=False)
        self._call(lambda: self._client().take_ticket(req, key), self.show_ticket,
                   lambda e: self._ticket_refused(svc, e))

    def _client(self) -> AgentClient:
        assert self.client is not None
        return self.client

    def show_ticket(self, t: TicketOut) -> None:
        self.flow.busy = False
        self.last_ticket = t
        self._history.clear()
        self._current = None
        if not t.printed:
            self._set_printer_down(True)
        self.ticket.show_ticket(t)
        hold = self.settings.ticket_hold_s if t.printed else self.settings.unprinted_hold_s
        # "完成" on the ticket is the way home; no footer to tap by mistake
        self._show("ticket", self.ticket, back=False, footer=False, hold_s=hold)

    def _ticket_refused(self, svc: ServiceOut, e: AgentRefused) -> None:
        self.flow.busy = False
        # Nothing was written for a refused request, so the next try needs a fresh key
        # (the agent would otherwise repeat this refusal to the same key).
        self.flow.key = str(uuid.uuid4())
        body = e.body
        msg = body.message if self.lang == "zh" else (body.message_en or body.message)
        title = (self.t("closed_title") if body.error in ("service_closed", "daily_limit")
                 else self.t("ticket_error"))
        detail = "" if body.error in ("service_closed", "daily_limit") \
            else self.t("ticket_error_retry")
        self._history_render(lambda: self._render_message(
            f"refused:{body.error}", title, msg, detail))
        self._refresh_services()

    def _history_render(self, render: Callable[[], None]) -> None:
        # The issuing screen is not a step to go back to: replace it.
        self._current = render
        render()

    def _render_message(self, kind: str, title: str, body: str, detail: str = "") -> None:
        self.message.show_message(kind, title, body, detail, warn=True)
        self._show(kind.split(":")[0], self.message)

    def _render_closed(self, svc: ServiceOut) -> None:
        body = f"{service_name(svc, self.lang)}\n{closed_text(svc, self.lang)}"
        detail = f"{self.t('hours')}：{hours_text(svc.hours, self.lang)}" if self.lang == "zh" \
            else f"{self.t('hours')}: {hours_text(svc.hours, self.lang)}"
        self.message.show_message("closed", self.t("closed_title"), body, detail, warn=True)
        self._show("closed", self.message)

    def reprint(self) -> None:
        t = self.last_ticket
        if t is None or self.client is None:
            return
        self.ticket.reprint_btn.setEnabled(False)
        key = str(uuid.uuid4())

        def ok(p: PrintOut) -> None:
            self.ticket.reprint_btn.setEnabled(True)
            if p.printed:
                self._set_printer_down(False)
                self.ticket.set_printed(True, self.t("reprinted"))
            else:
                self.ticket.set_printed(False, self.t("reprint_failed"))

        def refused(e: AgentRefused) -> None:
            self.ticket.reprint_btn.setEnabled(True)
            self.ticket.set_printed(False, self.t("reprint_failed"))

        self._call(lambda: self._client().reprint(t.ticket_id, key), ok, refused)

    # ------------------------------------------------------------------ guides

    def open_guides(self) -> None:
        self._refresh_services()
        self._go(self._render_guides)

    def _render_guides(self) -> None:
        self.guides.set_services(self._service_list())
        self._show("guides", self.guides)

    def _open_guide(self, svc: ServiceOut) -> None:
        def render() -> None:
            self.guide.show_service(svc)
            self._show("guide", self.guide)
        self._go(render)

    # ------------------------------------------------------------------ queue

    def open_queue(self) -> None:
        self._go(self._render_queue)
        self._refresh_queue()

    def _render_queue(self) -> None:
        if self.queue_data is not None:
            self.queue.show_queue(self.queue_data)
        self._show("queue", self.queue)

    def _refresh_queue(self) -> None:
        if self.client is None:
            return

        def ok(q: QueueOut) -> None:
            self.queue_data = q
            if self.screen_name == "queue":
                self.queue.show_queue(q)
            elif self.screen_name == "rate_window":
                self._render_windows()

        self._call(self.client.queue, ok, flow_bound=False)

    # ------------------------------------------------------------------ rating

    def start_rating(self) -> None:
        self._go(self._render_windows)
        self._refresh_queue()

    def _render_windows(self) -> None:
        windows = sorted((self.queue_data.windows if self.queue_data else {}).items(),
                         key=lambda kv: (int(kv[0]), "") if kv[0].isdigit() else (10**4, kv[0]))
        specs = [TileSpec(f"window:{wid}", self.t("window_n", w=wid),
                          wq.serving or "", on_click=partial(self._choose_window, wid))
                 for wid, wq in windows if wq.open]
        self.choice.set_choices(self.t("rate_title"), specs,
                                note="" if specs else self.t("no_windows"), tile_height=140)
        self._show("rate_window", self.choice)

    def _choose_window(self, window: str) -> None:
        self.flow.window = window
        self._go(self._render_levels)

    def _render_levels(self) -> None:
        specs = [TileSpec(f"level:{lv}", self.t("lvl_" + lv), variant="light",
                          on_click=partial(self.rate, lv)) for lv in LEVELS]
        self.choice.set_choices(self.t("rate_level_title", w=self.flow.window or ""), specs,
                                page_size=len(LEVELS), tile_height=115,
                                # one level per row: a slipped thumb must not rate the neighbour
                                max_cols=1)
        self._show("rate_level", self.choice)

    def rate(self, level: Level) -> None:
        if self.flow.busy or self.flow.window is None or self.client is None:
            return
        self.flow.busy = True
        req = EvaluationIn(window=self.flow.window, level=level)
        key = self.flow.key

        def ok(ev: EvaluationOut) -> None:
            self.flow.busy = False
            self.show_thanks(ev.follow_up)

        def refused(e: AgentRefused) -> None:
            self.flow.busy = False
            self.flow.key = str(uuid.uuid4())
            self._go(lambda: self._render_message("rate_failed", self.t("rate_failed"),
                                                  e.body.message if self.lang == "zh"
                                                  else e.body.message_en or e.body.message))

        self._call(lambda: self._client().evaluate(req, key), ok, refused)

    def show_thanks(self, follow_up: bool) -> None:
        self._history.clear()
        self._current = None
        detail = self.t("rate_follow_up") if follow_up else ""
        self.message.show_message("thanks", self.t("rate_thanks"), "", detail,
                                  buttons=[(self.t("home"), self.go_home)])
        self._show("rate_done", self.message, back=False, hold_s=self.settings.message_hold_s)

    # ------------------------------------------------------------------ check-in

    def open_checkin(self) -> None:
        self.cardflows.open_checkin()

