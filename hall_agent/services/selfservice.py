"""The 24-hour self-service area (docs/selfservice.md).

- **Mode by the clock**: outside ``[selfservice] staffed_hours`` / ``staffed_days``
  (hall-local time) the hall is in ``selfservice`` mode; the kiosk asks
  ``GET /v1/selfservice`` and switches its home screen. Without a
  ``[selfservice]`` section the hall is always ``staffed``.
- **The door**: in self-service mode (or always, with ``door_always``) a valid,
  unexpired card on the reader opens the door relay for ``[gpio] door_open_s`` and
  writes a ``door.opened`` event carrying the HMAC only.
- **The menu**: the configured plugins (hall_agent/selfservice_plugins); a run
  needs the token of a card read in this flow, prints its result on the ticket
  printer, and writes a ``selfservice.used`` event (plugin, id_hash, printed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drivers.escpos_codec import Receipt
from hall_agent.contract.catalog import parse_hours
from hall_agent.contract.config import Config, SelfServiceConfig
from hall_agent.core.personal import Person
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store
from hall_agent.services.ports import CardHolder, Door, ReceiptPrinter
from hall_agent.services.selfservice_plugins import BackendError, Plugin, registry

log = logging.getLogger("hall_agent.services.selfservice")


@dataclass(frozen=True)
class SelfServiceNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    cfg: Config
    store: Store
    queue: QueueEngine
    printer: ReceiptPrinter
    cards: CardHolder | None
    door: Door | None
    book_slot: Callable[..., Any]


def hall_mode(cfg: SelfServiceConfig | None, now: datetime) -> str:
    """``staffed`` or ``selfservice`` at ``now`` (aware, hall-local)."""
    if cfg is None:
        return "staffed"
    if now.isoweekday() not in cfg.staffed_days:
        return "selfservice"
    spans = parse_hours(cfg.staffed_hours)
    if spans is None:
        return "staffed"
    return "staffed" if any(s <= now.time() < e for s, e in spans) else "selfservice"


def next_change(cfg: SelfServiceConfig | None, now: datetime) -> datetime | None:
    """When the mode next changes (minute resolution, within a week)."""
    if cfg is None:
        return None
    here = hall_mode(cfg, now)
    t = now.replace(second=0, microsecond=0)
    for _ in range(7 * 24 * 60):
        t += timedelta(minutes=1)
        if hall_mode(cfg, t) != here:
            return t
    return None


class SelfService:
    def __init__(self, needs: SelfServiceNeeds) -> None:
        self.n = needs
        self.cfg = needs.cfg.selfservice
        every = registry()
        names = self.cfg.services if self.cfg else []
        unknown = [n for n in names if n not in every]
        if unknown:
            log.error("[selfservice] services: unknown plugin(s) %s (known: %s); left out",
                      ", ".join(unknown), ", ".join(every))
        self.plugins: dict[str, Plugin] = {n: every[n] for n in names if n in every}

    def now(self) -> datetime:
        return self.n.queue.local()

    @property
    def mode(self) -> str:
        return hall_mode(self.cfg, self.now())

    def state(self) -> dict[str, Any]:
        now = self.now()
        change = next_change(self.cfg, now)
        return {"mode": hall_mode(self.cfg, now), "configured": self.cfg is not None,
                "staffed_hours": self.cfg.staffed_hours if self.cfg else "",
                "next_change": change.isoformat() if change else None,
                "door": self.n.door is not None and self.n.door.has_relay,
                "bookable": list(self.n.cfg.appointments.bookable),
                "services": [{"id": p.id, "name": p.name, "name_en": p.name_en,
                              "kind": p.kind} for p in self.plugins.values()]}

    # ------------------------------------------------------------------ the door

    def on_card(self, p: Person) -> dict[str, Any]:
        """A card handler (idcard.CardService): open the door for a valid card."""
        if self.cfg is None or (self.mode != "selfservice" and not self.cfg.door_always):
            return {"mode": self.mode}
        if p.expired:
            log.info("door: card %s expired; not opened", p.masked_id)
            return {"mode": self.mode, "door": "refused", "door_reason": "expired"}
        gpio = self.n.door
        opened = gpio.open_door() if gpio is not None else False
        if opened:
            now = self.n.queue.clock()
            with self.n.store.tx() as db:
                self.n.store.outbox.add(db, "door.opened", {
                    "id_hash": p.id_hash, "card_type": p.card_type,
                    "open_s": gpio.door_open_s if gpio else 0},
                    ts_iso=self.n.queue.iso(now))
        return {"mode": self.mode, "door": "opened" if opened else "none"}

    # ------------------------------------------------------------------ the menu

    def run(self, plugin_id: str, token: str, *, print_it: bool = True) -> dict[str, Any]:
        plugin = self.plugins.get(plugin_id)
        if plugin is None:
            raise Refused(f"没有自助服务 {plugin_id}", code="unknown_selfservice",
                             field="service", why=Why.NOT_FOUND,
                             en=f"no self-service {plugin_id!r} (known: "
                                f"{', '.join(self.plugins)})")
        if self.n.cards is None:
            raise Refused("本机未配置读卡器", code="no_reader", field="card", why=Why.CONFLICT,
                             en="this kiosk has no ID-card reader")
        p = self.n.cards.take(token, keep=True)
        if p.expired:
            raise Refused("证件已过期，不能办理自助业务", code="card_expired_date",
                             field="card", why=Why.CONFLICT, en="This card has expired")
        now = self.now()
        try:
            result = plugin.run(p, now)
        except BackendError as e:
            raise Refused(f"{plugin.name}：{e}", code="backend_error", field="service",
                             why=Why.UNAVAILABLE, en=f"{plugin.name_en}: the back end did not "
                                            "answer") from None
        printed, detail = False, ""
        if print_it:
            r = self.n.printer.print_receipt(Receipt(
                hall_name=self.n.cfg.hall.name, title=result.title, lines=result.lines,
                issued_at=now, masked_name=p.masked_name, masked_id=p.masked_id,
                footer=result.note))
            printed, detail = r.printed, r.detail
        with self.n.store.tx() as db:
            self.n.store.outbox.add(db, "selfservice.used", {
                "service": plugin.id, "id_hash": p.id_hash, "printed": printed},
                ts_iso=self.n.queue.iso(self.n.queue.clock()))
        log.info("self-service %s for %s: printed %s", plugin.id, p.masked_id, printed)
        return {"service": plugin.id, "title": result.title, "title_en": result.title_en,
                "lines": [list(x) for x in result.lines], "note": result.note,
                "printed": printed, "print_detail": detail, "masked_name": p.masked_name,
                "masked_id": p.masked_id}

    def book(self, token: str, service: str, day: str, start: str) -> dict[str, Any]:
        """Book a slot for the next day; prints the booking slip with its QR code."""
        if self.n.cards is None:
            raise Refused("本机未配置读卡器", code="no_reader", field="card", why=Why.CONFLICT,
                             en="this kiosk has no ID-card reader")
        p = self.n.cards.take(token, keep=True)
        a = self.n.book_slot(p, service, day, start)
        svc = self.n.queue.catalog.service(service)
        name = svc.name if svc else service
        r = self.n.printer.print_receipt(Receipt(
            hall_name=self.n.cfg.hall.name, title="预约凭证", lines=(
                ("业务", name), ("日期", a.day), ("时段", f"{a.slot_start}-{a.slot_end}"),
                ("预约码", a.code)),
            issued_at=self.now(), masked_name=p.masked_name, masked_id=p.masked_id,
            qr=f"YY-{a.code}", qr_caption="到厅后扫码或刷身份证签到",
            footer=f"请于时段开始前 {self.n.cfg.appointments.early_min} 分钟内签到"))
        return {"appointment": a.public(), "printed": r.printed, "print_detail": r.detail,
                "service_name": name}
