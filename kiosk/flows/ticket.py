"""Taking a ticket: category, (priority reason,) service, the ticket on screen, reprint."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

from hall_agent.contract.api import PrintOut, PriorityReason, ServiceOut, TicketIn, TicketOut
from hall_agent.contract.client import AgentRefused
from kiosk.host import KioskHost
from kiosk.strings import closed_text, hours_text, localized, promise_text, service_name
from kiosk.widgets import TileSpec

REASONS: tuple[PriorityReason, ...] = ("elderly", "disabled", "pregnant", "military")


class TicketFlow:
    """``ask_card`` takes over a real-name service (the card first, then the ticket)."""

    def __init__(self, k: KioskHost, *, ask_card: Callable[[ServiceOut], None]) -> None:
        self.k = k
        self.ask_card = ask_card
        self.last: TicketOut | None = None

    def categories(self) -> list[str]:
        seen: list[str] = []
        for s in self.k.service_list():
            if s.category not in seen:
                seen.append(s.category)
        return seen

    def start(self) -> None:
        self.k.refresh_services()
        self._to_services()

    def _to_services(self) -> None:
        cats = self.categories()
        if len(cats) == 1:
            self.k.go(lambda: self.render_services(cats[0]))
        else:
            self.k.go(self.render_categories)

    def _priority_banner(self) -> str:
        f = self.k.flow
        if not f.priority or f.reason is None:
            return ""
        return f"{self.k.t('priority_banner')} · {self.k.t('reason_' + f.reason)}"

    def render_categories(self) -> None:
        k, lang = self.k, self.k.lang
        specs = []
        for cat in self.categories():
            members = [s for s in k.service_list() if s.category == cat]
            first = members[0]
            title = cat if lang == "zh" else first.category_en
            sep = "、" if lang == "zh" else ", "
            sub = sep.join(service_name(s, lang) for s in members[:3])
            waiting = sum(s.waiting for s in members)
            specs.append(TileSpec(f"cat:{cat}", title, sub,
                                  badge=k.t("waiting_n", n=waiting),
                                  on_click=partial(k.go, partial(self.render_services, cat))))
        extra = None
        if not k.flow.priority:
            extra = TileSpec("priority", k.t("priority_path"), k.t("priority_path_sub"),
                             variant="priority", on_click=lambda: k.go(self.render_priority))
        # standard mode has the height for larger tiles; elderly mode pages them
        k.choice.set_choices(k.t("choose_category"), specs,
                             tile_height=200 if k.theme.elderly else 240,
                             banner=self._priority_banner(), extra=extra)
        k.show_screen("categories", k.choice)

    def render_priority(self) -> None:
        k = self.k
        specs = [TileSpec(f"reason:{r}", k.t("reason_" + r), variant="priority",
                          on_click=partial(self.choose_priority, r)) for r in REASONS]
        k.choice.set_choices(k.t("priority_title"), specs,
                             note=k.t("priority_note"), page_size=len(REASONS))
        k.show_screen("priority", k.choice)

    def choose_priority(self, reason: PriorityReason) -> None:
        self.k.flow.priority = True
        self.k.flow.reason = reason
        self._to_services()

    def render_services(self, category: str) -> None:
        k, lang = self.k, self.k.lang
        specs = []
        for s in k.service_list():
            if s.category != category:
                continue
            if s.open_now:
                sub = promise_text(s.promise, lang, s.promise_en)
                badge = k.t("waiting_n", n=s.waiting)
                variant = "priority" if k.flow.priority else ""
            else:
                sub, badge, variant = closed_text(s, lang), k.t("closed"), "closed"
            specs.append(TileSpec(s.id, service_name(s, lang), sub, badge=badge,
                                  variant=variant, on_click=partial(self.take, s)))
        k.choice.set_choices(k.t("choose_service"), specs, tile_height=180,
                             banner=self._priority_banner())
        k.show_screen("services", k.choice)

    def take(self, svc: ServiceOut) -> None:
        """Issue a ticket; a second tap while the first is on its way does nothing."""
        k = self.k
        if not svc.open_now:
            k.go(lambda: self.render_closed(svc))
            return
        if svc.requires_id:  # a real-name service: the card first, then the ticket
            self.ask_card(svc)
            return
        c = k.client
        if k.flow.busy or c is None:
            return
        k.flow.busy = True
        req = TicketIn(service=svc.id, priority=k.flow.priority,
                       priority_reason=k.flow.reason if k.flow.priority else None,
                       lang=k.lang)
        key = k.flow.key
        k.message.show_message("busy", k.t("issuing"))
        k.show_screen("issuing", k.message, back=False, footer=False)
        k.call(lambda: c.take_ticket(req, key), self.show_ticket,
               lambda e: self._refused(svc, e))

    def show_ticket(self, t: TicketOut) -> None:
        k = self.k
        k.flow.busy = False
        self.last = t
        k.clear_steps()
        if not t.printed:
            k.set_printer_down(True)
        k.ticket.show_ticket(t)
        hold = k.settings.ticket_hold_s if t.printed else k.settings.unprinted_hold_s
        # "完成" on the ticket is the way home; no footer to tap by mistake
        k.show_screen("ticket", k.ticket, back=False, footer=False, hold_s=hold)

    def _refused(self, svc: ServiceOut, e: AgentRefused) -> None:
        k = self.k
        k.flow.busy = False
        # Nothing was written for a refused request, so the next try needs a fresh key
        # (the agent would otherwise repeat this refusal to the same key).
        k.flow.key = str(uuid.uuid4())
        body = e.body
        msg = localized(body.message, body.message_en, k.lang)
        closed = body.error in ("service_closed", "daily_limit")
        title = k.t("closed_title") if closed else k.t("ticket_error")
        detail = "" if closed else k.t("ticket_error_retry")
        k.replace(lambda: k.show_notice(f"refused:{body.error}", title, msg, detail))
        k.refresh_services()

    def render_closed(self, svc: ServiceOut) -> None:
        k, lang = self.k, self.k.lang
        body = f"{service_name(svc, lang)}\n{closed_text(svc, lang)}"
        detail = f"{k.t('hours')}：{hours_text(svc.hours, lang)}" if lang == "zh" \
            else f"{k.t('hours')}: {hours_text(svc.hours, lang)}"
        k.message.show_message("closed", k.t("closed_title"), body, detail, warn=True)
        k.show_screen("closed", k.message)

    def reprint(self) -> None:
        k, t, c = self.k, self.last, self.k.client
        if t is None or c is None:
            return
        k.ticket.reprint_btn.setEnabled(False)
        key = str(uuid.uuid4())

        def ok(p: PrintOut) -> None:
            k.ticket.reprint_btn.setEnabled(True)
            if p.printed:
                k.set_printer_down(False)
                k.ticket.set_printed(True, k.t("reprinted"))
            else:
                k.ticket.set_printed(False, k.t("reprint_failed"))

        def refused(e: AgentRefused) -> None:
            k.ticket.reprint_btn.setEnabled(True)
            k.ticket.set_printed(False, k.t("reprint_failed"))

        k.call(lambda: c.reprint(t.ticket_id, key), ok, refused)
