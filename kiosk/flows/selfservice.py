"""The 24-hour self-service area on the kiosk (docs/selfservice.md).

Outside staffed hours the agent says ``mode: selfservice`` (GET /v1/selfservice)
and the home screen becomes the self-service home: place a card (the door opens),
then pick a query to print or book a slot for tomorrow.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGridLayout

from hall_agent.contract.api import (
    BookIn,
    BookOut,
    SelfServiceOut,
    SelfServiceResultOut,
    SelfServiceRunIn,
    SlotsOut,
)
from hall_agent.contract.client import AgentRefused
from kiosk.flows.checkin import CardFlows, card_symbol
from kiosk.host import KioskHost
from kiosk.screens import Screen
from kiosk.strings import Lang, localized, service_name, tr
from kiosk.theme import Theme
from kiosk.widgets import Card, TileGrid, TileSpec, label

Center = Qt.AlignmentFlag.AlignCenter


class SelfServiceHome(Screen):
    """Before a card: what this area is and what to do; after: the menu."""

    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang, tr("ss_title", lang))
        self.title.setAlignment(Center)
        self.hours = label("", theme, 28, name="Muted", align=Center)
        self.box.addWidget(self.hours)
        self.status = label("", theme, 40, bold=True, name="Notice", align=Center)
        self.box.addWidget(self.status)
        self.prompt_card = Card(spacing=12)
        self.prompt_card.box.addWidget(card_symbol(theme), 0, Center)
        self.prompt = label(tr("ss_card_prompt", lang), theme, 40, bold=True, align=Center)
        self.prompt_card.box.addWidget(self.prompt)
        self.prompt_card.box.addWidget(label(tr("card_types", lang), theme, 24, name="Muted",
                                             align=Center))
        self.box.addSpacing(theme.px(30))
        self.box.addWidget(self.prompt_card)
        self.grid = TileGrid(theme, lang, tile_height=190, page_size=6, max_cols=2)
        self.box.addWidget(self.grid, 1)
        self.box.addStretch(1)
        self.box.addWidget(label(tr("help_desk", lang), theme, 26, name="Muted",
                                 align=Center))

    def show_home(self, state: SelfServiceOut, person: dict[str, Any] | None,
                  door: str | None, specs: list[TileSpec]) -> None:
        self.hours.setText(tr("ss_hours", self.lang, hours=state.staffed_hours or "—"))
        if person is None:
            self.status.hide()
            self.prompt_card.show()
            self.grid.hide()
            return
        hello = tr("card_hello", self.lang, name=person.get("masked_name") or "")
        if door == "opened":
            hello += "  ·  " + tr("ss_door_open", self.lang)
        elif door == "refused":
            hello = tr("ss_door_refused", self.lang)
        self.status.setText(hello)
        self.status.setObjectName("Warn" if door == "refused" else "Notice")
        self.status.setStyle(self.status.style())
        self.status.show()
        self.prompt_card.hide()
        self.grid.set_tiles(specs)
        self.grid.show()


class ResultScreen(Screen):
    """A query's result, as printed: title, masked holder, label/value lines."""

    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang)
        self.title.setAlignment(Center)
        self.holder = label("", theme, 30, name="Muted", align=Center)
        self.box.addWidget(self.holder)
        self.card = Card(spacing=10)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(28)
        self.grid.setVerticalSpacing(12)
        self.card.box.addLayout(self.grid)
        self.box.addWidget(self.card)
        self.note = label("", theme, 26, name="Muted", align=Center)
        self.box.addWidget(self.note)
        self.printed = label("", theme, 36, bold=True, name="Notice", align=Center)
        self.box.addWidget(self.printed)
        self.box.addStretch(1)

    def show_result(self, r: SelfServiceResultOut) -> None:
        th = self.theme
        self.title.setText(r.title if self.lang == "zh" else r.title_en or r.title)
        self.holder.setText(f"{r.masked_name}  ·  {r.masked_id}")
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.setParent(None)
                w.deleteLater()
        for i, line in enumerate(r.lines):
            key, value = ([*line, "", ""])[:2]
            self.grid.addWidget(label(key, th, 30, name="Muted", wrap=False), i, 0)
            self.grid.addWidget(label(value, th, 32, bold=True), i, 1)
        self.grid.setColumnStretch(1, 1)
        self.note.setText(r.note)
        self.note.setVisible(bool(r.note))
        self.printed.setText(tr("ss_printed" if r.printed else "ss_not_printed", self.lang))
        self.printed.setObjectName("Notice" if r.printed else "Warn")
        self.printed.setStyle(self.printed.style())


class SelfServiceFlows:
    """The 24-hour area; it reads the card through ``cards`` (the card flows' token and
    person). The hall's mode and the door's answer survive a rebuild (``previous``)."""

    def __init__(self, k: KioskHost, cards: CardFlows,
                 previous: SelfServiceFlows | None = None) -> None:
        self.k = k
        self.cards = cards
        self.state: SelfServiceOut | None = previous.state if previous else None
        self.door: str | None = previous.door if previous else None
        self.home = SelfServiceHome(k.theme, k.lang)
        self.result = ResultScreen(k.theme, k.lang)
        for s in (self.home, self.result):
            k.add_screen(s)

    def t(self, key: str, **kw: object) -> str:
        return tr(key, self.k.lang, **kw)

    @property
    def on(self) -> bool:
        return self.state is not None and self.state.mode == "selfservice"

    def active(self) -> bool:
        return self.on and self.k.screen_name.startswith("selfservice")

    # ------------------------------------------------------------------ mode

    def refresh(self) -> None:
        c = self.k.client
        if c is None:
            return

        def ok(s: SelfServiceOut) -> None:
            was = self.on
            self.set_state(s)
            if was != self.on and self.k.screen_name in ("home", "selfservice_home"):
                self.k.go_home()

        self.k.runner.run(c.selfservice, ok, lambda e: None)

    def set_state(self, s: SelfServiceOut) -> None:
        self.state = s

    def reset(self) -> None:
        self.door = None

    def show_home(self) -> None:
        assert self.state is not None
        specs = [TileSpec(f"ss:{x.id}", x.name if self.k.lang == "zh" else x.name_en,
                          self.t("ss_query" if x.kind == "query" else "ss_print"),
                          on_click=partial(self.run, x.id)) for x in self.state.services]
        if self.state.bookable:
            specs.append(TileSpec("ss:book", self.t("ss_book"), self.t("ss_book_sub"),
                                  variant="light", on_click=self.start_booking))
        self.home.show_home(self.state, self.cards.person, self.door, specs)
        self.k.show_screen("selfservice_home", self.home,
                           footer=self.cards.person is not None, back=False)

    # ------------------------------------------------------------------ card

    def on_card(self, data: dict[str, Any]) -> None:
        if not data.get("ok"):
            msg = data.get("message") if self.k.lang == "zh" else data.get("message_en")
            self.k.go(lambda: self.k.show_notice("selfservice_card_error",
                                                 self.t("card_error"), str(msg or "")))
            return
        self.cards.token = str(data["token"])
        self.cards.person = {k: data.get(k) for k in ("masked_name", "masked_id", "expired")}
        self.door = data.get("door")
        self.k.clear_steps()
        self.k.replace(self.show_home)

    # ------------------------------------------------------------------ plugins

    def run(self, plugin: str) -> None:
        c, token = self.k.client, self.cards.token
        if c is None or token is None or self.k.flow.busy:
            return
        self.k.flow.busy = True
        key = str(uuid.uuid4())
        self.k.message.show_message("busy", self.t("ss_running"))
        self.k.show_screen("selfservice_running", self.k.message, back=False, footer=False)

        def ok(r: SelfServiceResultOut) -> None:
            self.k.flow.busy = False
            self.k.go(lambda: self.show_result(r))

        def refused(e: AgentRefused) -> None:
            self.k.flow.busy = False
            self._failed(e)

        body = SelfServiceRunIn(card=token)
        self.k.call(lambda: c.run_selfservice(plugin, body, key), ok, refused)

    def _failed(self, e: AgentRefused) -> None:
        msg = localized(e.body.message, e.body.message_en, self.k.lang)
        self.k.go(lambda: self.k.show_notice("selfservice_failed", self.t("ss_failed"), msg))

    def show_result(self, r: SelfServiceResultOut) -> None:
        self.result.show_result(r)
        self.k.show_screen("selfservice_result", self.result)

    # ------------------------------------------------------------------ booking

    def _tomorrow(self) -> str:
        # the hall's tomorrow, whatever day the machine's zone is already on
        return (datetime.now(self.k.settings.tz).date() + timedelta(days=1)).isoformat()

    def start_booking(self) -> None:
        self.k.go(self.render_book_services)

    def render_book_services(self) -> None:
        names = {s.id: s for s in self.k.service_list()}
        bookable = self.state.bookable if self.state else []
        specs = [TileSpec(f"book:{sid}",
                          service_name(names[sid], self.k.lang) if sid in names else sid,
                          on_click=partial(self.pick_service, sid)) for sid in bookable]
        self.k.choice.set_choices(self.t("ss_book_service"), specs, tile_height=160)
        self.k.show_screen("selfservice_book", self.k.choice)

    def pick_service(self, sid: str) -> None:
        c = self.k.client
        day = self._tomorrow()
        if c is None:
            return

        def ok(s: SlotsOut) -> None:
            self.k.go(lambda: self.render_slots(s))

        self.k.call(lambda: c.slots(sid, day), ok, self._failed)

    def render_slots(self, s: SlotsOut) -> None:
        svc = next((x for x in self.k.service_list() if x.id == s.service), None)
        name = service_name(svc, self.k.lang) if svc else s.service
        specs = [TileSpec(f"slot:{x.start}", f"{x.start}-{x.end}",
                          badge=self.t("ss_free", n=x.free) if x.free else self.t("ss_full"),
                          enabled=x.free > 0, variant="" if x.free else "closed",
                          on_click=partial(self.book, s.service, s.day, x.start))
                 for x in s.slots]
        self.k.choice.set_choices(self.t("ss_book_slot", service=name, day=s.day), specs,
                                  tile_height=120, max_cols=3,
                                  page_size=6 if self.k.theme.elderly else 12)
        self.k.show_screen("selfservice_slots", self.k.choice)

    def book(self, service: str, day: str, start: str) -> None:
        c, token = self.k.client, self.cards.token
        if c is None or token is None or self.k.flow.busy:
            return
        self.k.flow.busy = True
        body = BookIn(card=token, service=service, day=day, start=start)
        key = str(uuid.uuid4())

        def ok(b: BookOut) -> None:
            self.k.flow.busy = False
            self.show_booked(b)

        def refused(e: AgentRefused) -> None:
            self.k.flow.busy = False
            self._failed(e)

        self.k.call(lambda: c.book(body, key), ok, refused)

    def show_booked(self, b: BookOut) -> None:
        a = b.appointment
        body = self.t("ss_booked_body", service=b.service_name or a.service, day=a.day,
                      slot=f"{a.slot_start}-{a.slot_end}", code=a.code)
        self.k.message.show_message("booked", self.t("ss_booked"), body,
                                    self.t("ss_booked_detail") if b.printed
                                    else self.t("ss_not_printed"),
                                    buttons=[(self.t("done"), self.k.go_home)])
        self.k.show_screen("selfservice_booked", self.k.message, back=False)


# ---------------------------------------------------------------- samples for screenshots

SAMPLE_STATE = SelfServiceOut.model_validate(dict(
    mode="selfservice", configured=True, staffed_hours="08:30-17:30", door=True,
    bookable=["A", "B"], services=[
        {"id": "social_insurance", "name": "社保缴费记录", "name_en": "Social insurance record",
         "kind": "query"},
        {"id": "housing_fund", "name": "公积金缴存证明", "name_en": "Housing fund certificate",
         "kind": "print"},
        {"id": "property", "name": "不动产登记信息", "name_en": "Property records",
         "kind": "query"}]))
SAMPLE_CARD = {"ok": True, "token": "sample-token-0001", "masked_name": "张*",
               "masked_id": "3501**********1238", "expired": False, "door": "opened"}
SAMPLE_RESULT = SelfServiceResultOut(
    service="housing_fund", title="住房公积金缴存证明",
    title_en="Housing provident fund certificate",
    lines=[["缴存状态", "正常缴存"], ["开户年份", "2016 年"], ["月缴存额", "1,280 元"],
           ["账户余额", "86,400 元"], ["证明编号", "GJJ202405201234"]],
    note="本证明自打印之日起 30 日内有效", printed=True, masked_name="张*",
    masked_id="3501**********1238")
SAMPLE_SLOTS = SlotsOut.model_validate(dict(service="A", day="2024-05-21", slots=[
    {"start": f"{h:02d}:{m:02d}", "end": f"{h + (m + 30) // 60:02d}:{(m + 30) % 60:02d}",
     "free": (h * 7 + m) % 5} for h in (9, 10, 11, 14, 15, 16) for m in (0, 30)
]))
SAMPLE_BOOKED = BookOut.model_validate({
    "appointment": {"appointment_id": "b1", "code": "K7M2Q9XW4P", "service": "A",
                    "day": "2024-05-21", "slot_start": "09:30", "slot_end": "10:00",
                    "masked_name": "张*", "status": "booked"},
    "printed": True, "service_name": "社保医保"})
