"""ID card and QR flows on the kiosk: check-in, real-name tickets, scans.

The kiosk never sees a name or an ID number: the agent's ``card`` event carries a
token and masked forms (``测*``, ``3501**********1238``); the token goes back to
the agent with the request that needs the person, and is forgotten when the
citizen goes home.
"""

from __future__ import annotations

import uuid
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from hall_agent.contract.api import (
    CardWantIn,
    CheckinIn,
    CheckinOut,
    ServiceOut,
    TicketIn,
    TicketOut,
)
from hall_agent.contract.client import AgentRefused
from kiosk.host import KioskHost
from kiosk.screens import Screen
from kiosk.strings import Lang, localized, service_name, tr
from kiosk.theme import Theme
from kiosk.widgets import Card, label

Center = Qt.AlignmentFlag.AlignCenter


def _ignore(_: object) -> None:
    """The answer to a request that does not matter (fast polling, forgetting a card)."""


def card_symbol(theme: Theme) -> QWidget:
    """An ID card drawn as a rounded outline, and an arrow down to the reader."""
    box = QWidget()
    v = QVBoxLayout(box)
    v.setContentsMargins(0, 0, 0, 0)
    v.setSpacing(theme.px(8))
    outline = label("身份证\nID CARD", theme, 34, bold=True, align=Center)
    outline.setFixedSize(theme.px(340), theme.px(210))
    outline.setStyleSheet(f"border: {theme.px(6)}px solid {theme.blue}; border-radius: "
                          f"{theme.px(22)}px; color: {theme.blue}; background: #ffffff;")
    v.addWidget(outline, 0, Center)
    v.addWidget(label("⬇", theme, 90, bold=True, align=Center), 0, Center)
    return box


class CardPromptScreen(Screen):
    """"Place your ID card": a big reader symbol, what it is for, and a result line."""

    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang, tr("card_title", lang))
        self.title.setAlignment(Center)
        self.box.addStretch(1)
        self.purpose = label("", theme, 40, bold=True, align=Center)
        self.box.addWidget(self.purpose)
        card = Card(spacing=16)
        # A drawn card with an arrow to the reader: understood without reading.
        self.symbol = card_symbol(theme)
        card.box.addWidget(self.symbol, 0, Center)
        self.prompt = label(tr("card_prompt", lang), theme, 36, align=Center)
        card.box.addWidget(self.prompt)
        self.types = label(tr("card_types", lang), theme, 24, name="Muted", align=Center)
        card.box.addWidget(self.types)
        self.box.addWidget(card)
        self.hint = label(tr("card_hint_qr", lang), theme, 30, name="Muted", align=Center)
        self.box.addWidget(self.hint)
        self.result = label("", theme, 36, bold=True, name="Warn", align=Center)
        self.result.hide()
        self.box.addWidget(self.result)
        self.box.addStretch(2)

    def show_prompt(self, title: str, purpose: str, prompt: str, *, qr_hint: bool) -> None:
        self.title.setText(title)
        self.purpose.setText(purpose)
        self.purpose.setVisible(bool(purpose))
        self.prompt.setText(prompt)
        self.hint.setVisible(qr_hint)
        self.result.hide()

    def show_result(self, text: str, warn: bool = True) -> None:
        self.result.setObjectName("Warn" if warn else "Notice")
        self.result.setStyle(self.result.style())
        self.result.setText(text)
        self.result.show()


class CardFlows:
    """The card and scan flows; the shell forwards ``card`` and ``scan`` events here.

    The card of this flow (its token, the masked person) survives a rebuild of the
    screens (``previous``); the 24-hour area reads it too."""

    def __init__(self, k: KioskHost, previous: CardFlows | None = None) -> None:
        self.k = k
        self.prompt = CardPromptScreen(k.theme, k.lang)
        k.add_screen(self.prompt)
        self.token: str | None = previous.token if previous else None
        self.person: dict[str, Any] | None = previous.person if previous else None
        self.waiting_for: str | None = None
        self.service: ServiceOut | None = None

    def t(self, key: str, **kw: object) -> str:
        return tr(key, self.k.lang, **kw)

    # ------------------------------------------------------------------ flow control

    def reset(self) -> None:
        """Going home: forget the card here and in the agent."""
        token, self.token, self.person = self.token, None, None
        self.waiting_for, self.service = None, None
        self.k.ticket.title.setText(self.t("ticket_title"))
        if token and self.k.client is not None:
            c = self.k.client
            self.k.runner.run(lambda: c.forget_card(token), _ignore, _ignore)

    def _want_card(self) -> None:
        c = self.k.client
        if c is not None:
            body = CardWantIn(seconds=self.k.settings.idle_timeout_s)
            self.k.runner.run(lambda: c.want_card(body), _ignore, _ignore)

    def open_checkin(self) -> None:
        self.waiting_for = "checkin"
        self._want_card()

        def render() -> None:
            self.prompt.show_prompt(self.t("checkin_title"), "", self.t("checkin_prompt"),
                                    qr_hint=True)
            self.k.show_screen("checkin", self.prompt)
        self.k.go(render)

    def ask_card_for(self, svc: ServiceOut) -> None:
        """A real-name service: the ticket is taken once the card is read."""
        self.waiting_for, self.service = "ticket", svc
        if self.token is not None:  # read earlier in this flow: it is not read again
            self._take_with_card(svc)
            return
        self._want_card()

        def render() -> None:
            self.prompt.show_prompt(self.t("card_title"),
                                    self.t("card_for", service=service_name(svc, self.k.lang)),
                                    self.t("card_prompt"), qr_hint=False)
            self.k.show_screen("card_prompt", self.prompt)
        self.k.go(render)

    # ------------------------------------------------------------------ events

    def on_card(self, data: dict[str, Any]) -> None:
        if not data.get("ok"):
            msg = data.get("message") if self.k.lang == "zh" else data.get("message_en")
            if self.k.screen_name in ("checkin", "card_prompt"):
                self.prompt.show_result(f"{self.t('card_error')}：{msg}"
                                        if self.k.lang == "zh" else
                                        f"{self.t('card_error')}: {msg}")
            return
        self.token = str(data["token"])
        self.person = {k: data.get(k) for k in ("masked_name", "masked_id", "expired")}
        if self.waiting_for == "ticket" and self.service is not None:
            self._take_with_card(self.service)
        elif self.waiting_for == "checkin" or self.k.screen_name == "home":
            self.checkin(card=self.token)

    def on_scan(self, data: dict[str, Any]) -> None:
        kind = data.get("kind")
        if kind == "appointment" and data.get("ok") and data.get("ticket"):
            self.show_checked_in(CheckinOut.model_validate(data))
        elif kind == "ticket" and data.get("ticket"):
            self.show_ticket_status(data["ticket"])
        else:
            msg = (data.get("message") if self.k.lang == "zh" else data.get("message_en")) or ""
            title = self.t("checkin_failed") if kind == "appointment" else self.t(
                "scan_unknown")
            self.k.go(lambda: self.k.show_notice(f"scan:{kind}", title, msg,
                                                 take_ticket=kind == "appointment"))

    # ------------------------------------------------------------------ actions

    def checkin(self, *, card: str | None = None, code: str | None = None) -> None:
        if self.k.client is None or self.k.flow.busy:
            return
        self.k.flow.busy = True
        c = self.k.client
        body = CheckinIn(card=card, code=code)
        self.prompt.show_result(self.t("checking_in"), warn=False)

        def ok(out: CheckinOut) -> None:
            self.k.flow.busy = False
            self.show_checked_in(out)

        def refused(e: AgentRefused) -> None:
            self.k.flow.busy = False
            self._refused(self.t("checkin_failed"), e, take_ticket=True)

        self.k.call(lambda: c.checkin(body), ok, refused)

    def _take_with_card(self, svc: ServiceOut) -> None:
        if self.k.client is None or self.k.flow.busy:
            return
        self.k.flow.busy = True
        c, key = self.k.client, self.k.flow.key
        req = TicketIn(service=svc.id, priority=self.k.flow.priority,
                       priority_reason=self.k.flow.reason if self.k.flow.priority else None,
                       card=self.token, lang=self.k.lang)
        self.prompt.show_result(self.t("issuing"), warn=False)

        def refused(e: AgentRefused) -> None:
            self.k.flow.busy = False
            self._refused(self.t("ticket_error"), e)

        self.k.call(lambda: c.take_ticket(req, key), self.k.show_ticket, refused)

    def _refused(self, title: str, e: AgentRefused, *, take_ticket: bool = False) -> None:
        """``take_ticket``: a check-in that failed still lets the citizen queue."""
        self.k.flow.key = str(uuid.uuid4())
        msg = localized(e.body.message, e.body.message_en, self.k.lang)
        self.k.replace(lambda: self.k.show_notice(f"card_refused:{e.body.error}", title, msg,
                                                  take_ticket=take_ticket))

    # ------------------------------------------------------------------ results

    def show_checked_in(self, out: CheckinOut) -> None:
        self.k.show_ticket(out.ticket)
        a = out.appointment
        self.k.ticket.title.setText(self.t("checkin_done"))
        self.k.ticket.priority.setText(self.t("checkin_slot", slot=f"{a.slot_start}-"
                                                                   f"{a.slot_end}"))
        self.k.ticket.priority.show()

    def show_ticket_status(self, t: dict[str, Any]) -> None:
        status = t.get("status")
        if status == "waiting":
            body = self.t("scan_waiting", n=t.get("waiting_ahead", 0))
        elif status == "called":
            body = self.t("scan_called", w=t.get("window") or "")
        else:
            body = self.t("scan_closed")
        title = self.t("scan_ticket", number=t.get("number", ""))
        self.k.go(lambda: self.k.show_notice("scan:ticket", title, body))
        self.k.message.title.setObjectName("Title")
        self.k.message.title.setStyle(self.k.message.title.style())


# ---------------------------------------------------------------- samples for screenshots

SAMPLE_CHECKIN = CheckinOut.model_validate({
    "appointment": {"appointment_id": "a1", "code": "K7M2Q9XW4P", "service": "A",
                    "day": "2024-05-20", "slot_start": "10:00", "slot_end": "10:30",
                    "masked_name": "张*", "status": "checked_in"},
    "ticket": TicketOut(ticket_id="0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", number="A105",
                        service="A", waiting_ahead=0, est_wait_s=0, offline=False,
                        printed=True, service_name="社保医保",
                        service_name_en="Social & medical insurance", priority=True,
                        status_url="https://qms.example.gov.cn/t/fz-citizen/0b7c1d2e",
                        masked_name="张*").model_dump()})
