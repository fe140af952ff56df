"""Appointments: the imported list, check-in (QR or ID card), booking for the next day.

See docs/appointments.md. The rules:

- check-in opens ``[appointments] early_min`` before the slot starts and closes
  ``late_min`` after it started; outside that the citizen is told when to come or
  to take an ordinary ticket;
- a checked-in appointment gets a priority ticket placed in its queue at its slot's
  start (never ahead of its slot), channel ``appointment``, and a ``checkin.done``
  event; checking in again answers with the same ticket;
- the list holds no ID number: an import is hashed (personal.py) and masked on the
  way in, and an import file dropped into ``data_dir/appointments-import/`` is
  deleted once read, because it holds ID numbers;
- in central mode an appointment not in the local list is checked in by the
  central (``A/request`` type ``appointment.checkin``); the ticket is then numbered
  the usual way.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.idcard import valid_id_number
from hall_agent.contract.catalog import Catalog, parse_hours
from hall_agent.contract.config import AppointmentsConfig, Config
from hall_agent.core.personal import Person, id_hash, mask_id, mask_name
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store
from hall_agent.services.appointment_files import parse_records, read_text
from hall_agent.services.ports import ModeView, Tickets
from hall_agent.services.tickets import NumberSource

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from hall_agent.contract.mqtt import AnyRequest, AppointmentInfo, NumberReply

log = logging.getLogger("hall_agent.services.appointments")


@dataclass(frozen=True)
class CheckinNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    cfg: Config
    store: Store
    queue: QueueEngine
    modes: ModeView
    tickets: Tickets
    link: NumberSource | None

IMPORT_DIR = "appointments-import"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a desk


@dataclass(frozen=True, slots=True)
class Appointment:
    appointment_id: str
    code: str
    service: str
    day: str
    slot_start: str
    slot_end: str
    id_hash: str | None
    masked_name: str | None
    masked_id: str | None
    source: str
    status: str
    ticket_id: str | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Appointment:
        return cls(**{k: r[k] for k in cls.__slots__})

    def public(self) -> dict[str, Any]:
        return {"appointment_id": self.appointment_id, "code": self.code,
                "service": self.service, "day": self.day, "slot_start": self.slot_start,
                "slot_end": self.slot_end, "masked_name": self.masked_name,
                "status": self.status}


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    errors: list[str] | None = None


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


class AppointmentBook:
    """The appointment list in the store, and the rules; the agent and sim/central share it."""

    def __init__(self, store: Store, catalog: Catalog, cfg: AppointmentsConfig, tz: ZoneInfo,
                 secret: bytes, clock: Any = time.time) -> None:
        self.store = store
        self.catalog = catalog
        self.cfg = cfg
        self.tz = tz
        self._secret = secret
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.tz)

    # ------------------------------------------------------------------ import

    def import_records(self, records: list[dict[str, Any]], source: str = "import"
                       ) -> ImportResult:
        """Add or update appointments (by ``code``); a bad row is reported, not stored."""
        res = ImportResult(errors=[])
        assert res.errors is not None
        rows: list[tuple[Any, ...]] = []
        for i, rec in enumerate(records, start=1):
            try:
                rows.append(self._row(rec, source))
            except (ValueError, KeyError, TypeError) as e:
                res.errors.append(f"row {i}: {e}")
        with self.store.tx() as db:
            for row in rows:
                known = db.execute("SELECT status FROM appointments WHERE code = ?",
                                   (row[1],)).fetchone()
                if known is not None:
                    if known[0] == "booked":
                        db.execute("UPDATE appointments SET service = ?, day = ?, "
                                   "slot_start = ?, slot_end = ?, id_hash = ?, masked_name = ?, "
                                   "masked_id = ? WHERE code = ?", (*row[2:9], row[1]))
                        res.updated += 1
                    continue
                db.execute("INSERT INTO appointments (appointment_id, code, service, day, "
                           "slot_start, slot_end, id_hash, masked_name, masked_id, source, "
                           "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
                res.added += 1
        return res

    def _row(self, rec: dict[str, Any], source: str) -> tuple[Any, ...]:
        code = str(rec.get("code", "")).strip().upper()
        if not code or not code.isalnum() or len(code) > 32:
            raise ValueError("code must be 1–32 letters or digits")
        service = str(rec.get("service", "")).strip()
        if self.catalog.service(service) is None:
            raise ValueError(f"unknown service {service!r}")
        day = date.fromisoformat(str(rec.get("date") or rec.get("day", "")).strip()).isoformat()
        if rec.get("slot"):
            start, _, end = str(rec["slot"]).partition("-")
        else:
            start, end = str(rec.get("start", "")), str(rec.get("end", ""))
        spans = parse_hours(f"{start.strip()}-{end.strip()}")
        assert spans is not None
        start_s, end_s = spans[0][0].strftime("%H:%M"), spans[0][1].strftime("%H:%M")
        number = str(rec.get("id_number") or "").strip().upper()
        hashed = str(rec.get("id_hash") or "").strip().lower() or None
        masked_id = None
        if number:
            if not valid_id_number(number) and len(number) != 15:
                raise ValueError("id_number fails its check digit")
            hashed, masked_id = id_hash(self._secret, number), mask_id(number)
        name = str(rec.get("name") or "").strip()
        masked = mask_name(name) if name else (str(rec.get("masked_name") or "") or None)
        return (str(uuid.uuid4()), code, service, day, start_s, end_s, hashed, masked,
                masked_id, source, self.clock())

    def import_dir(self, data_dir: Path) -> ImportResult | None:
        """Import (then delete) every ``*.csv`` / ``*.json`` in data_dir/appointments-import."""
        d = data_dir / IMPORT_DIR
        if not d.is_dir():
            return None
        total = ImportResult(errors=[])
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in (".csv", ".json"):
                continue
            try:
                recs = parse_records(read_text(p), p.suffix.lower()[1:])
                r = self.import_records(recs)
            except (OSError, ValueError) as e:
                # It holds ID numbers in clear: never left behind, even unread.
                with contextlib.suppress(OSError):
                    p.unlink()
                log.error("appointments: %s not imported and deleted (it holds personal "
                          "data): %s; fix it and copy it again", p.name, e)
                total.errors = [*(total.errors or []),
                                f"{p.name}: not imported ({e}); the file was deleted, "
                                "fix it and copy it again / 未导入，文件已删除，请修正后重新放入"]
                continue
            total.added += r.added
            total.updated += r.updated
            total.errors = (total.errors or []) + [f"{p.name}: {e}" for e in r.errors or []]
            # It holds ID numbers: gone once they are hashed (DESIGN.md, Personal data).
            p.unlink()
            log.info("appointments: imported %s: %d added, %d updated, %d rejected", p.name,
                     r.added, r.updated, len(r.errors or []))
        return total

    # ------------------------------------------------------------------ look-ups

    def by_code(self, code: str) -> Appointment | None:
        row = self.store.one("SELECT * FROM appointments WHERE code = ?", (code.upper(),))
        return Appointment.from_row(row) if row else None

    def for_person(self, hashed: str, day: str) -> list[Appointment]:
        rows = self.store.query("SELECT * FROM appointments WHERE id_hash = ? AND day = ? "
                                "ORDER BY slot_start", (hashed, day))
        return [Appointment.from_row(r) for r in rows]

    def pick_for_person(self, hashed: str) -> Appointment | None:
        """Today's booked appointment of this person nearest to now (or checked in)."""
        now = self.now()
        todays = self.for_person(hashed, now.date().isoformat())
        open_ = [a for a in todays if a.status in ("booked", "checked_in")]
        if not open_:
            return None
        return min(open_, key=lambda a: abs((self.slot_at(a) - now).total_seconds()))

    def slot_at(self, a: Appointment) -> datetime:
        h, m = (int(x) for x in a.slot_start.split(":"))
        return datetime.combine(date.fromisoformat(a.day), datetime.min.time(),
                                self.tz).replace(hour=h, minute=m)

    # ------------------------------------------------------------------ rules

    def check_window(self, a: Appointment) -> None:
        """Raise unless ``now`` is within the check-in window of the appointment."""
        if a.status == "cancelled":
            raise Refused("该预约已取消", code="appointment_cancelled", field="code",
                             why=Why.CONFLICT, en="This appointment was cancelled")
        now = self.now()
        start = self.slot_at(a)
        opens = start - timedelta(minutes=self.cfg.early_min)
        closes = start + timedelta(minutes=self.cfg.late_min)
        slot = f"{a.slot_start}-{a.slot_end}"
        if now < opens:
            when = f"{opens:%H:%M}" if opens.date() == now.date() else f"{opens:%m月%d日 %H:%M}"
            raise Refused(f"预约时段 {a.day} {slot}，请于 {when} 后签到",
                             code="too_early", field="code", why=Why.CONFLICT,
                             en=f"Your slot is {a.day} {slot}; check-in opens at "
                                f"{opens:%Y-%m-%d %H:%M}")
        if now > closes:
            raise Refused(f"已超过预约签到时间（{slot}，迟到 {self.cfg.late_min} 分钟内"
                             "可签到），"
                             "请现场取号办理", code="too_late", field="code", why=Why.CONFLICT,
                             en=f"Check-in for the {slot} slot closed {self.cfg.late_min} min "
                                "after it started; please take an ordinary ticket")

    def mark_checked_in(self, db: sqlite3.Connection, a: Appointment, ticket_id: str,
                        now: float) -> bool:
        cur = db.execute("UPDATE appointments SET status = 'checked_in', ticket_id = ?, "
                         "checked_in_at = ? WHERE appointment_id = ? AND status = 'booked'",
                         (ticket_id, now, a.appointment_id))
        return cur.rowcount == 1

    # ------------------------------------------------------------------ booking

    def slots(self, service: str, day: str) -> list[dict[str, Any]]:
        spans = parse_hours(self.cfg.booking_hours)
        assert spans is not None
        taken = {r[0]: r[1] for r in self.store.query(
            "SELECT slot_start, COUNT(*) FROM appointments WHERE service = ? AND day = ? AND "
            "status != 'cancelled' GROUP BY slot_start", (service, day))}
        out = []
        step = timedelta(minutes=self.cfg.slot_min)
        d = date.fromisoformat(day)
        for s, e in spans:
            at = datetime.combine(d, s)
            end = datetime.combine(d, e)
            while at + step <= end:
                key = f"{at:%H:%M}"
                out.append({"start": key, "end": f"{at + step:%H:%M}",
                            "free": max(0, self.cfg.slot_capacity - taken.get(key, 0))})
                at += step
        return out

    def check_bookable(self, service: str, day: str, start: str) -> dict[str, Any]:
        """The slot, if this service, day and start may be booked here (else 422)."""
        svc = self.catalog.service(service)
        if svc is None or service not in self.cfg.bookable:
            raise Refused(f"{service} 不能在本机预约", code="not_bookable", field="service",
                             why=Why.INVALID, en=f"{service} cannot be booked here")
        tomorrow = (self.now().date() + timedelta(days=1)).isoformat()
        if day != tomorrow:
            raise Refused("本机只能预约明天", code="bad_day", field="day", why=Why.INVALID,
                             en="Only tomorrow can be booked here")
        slot = next((s for s in self.slots(service, day) if s["start"] == start), None)
        if slot is None:
            raise Refused(f"没有 {start} 这个时段", code="bad_slot", field="start",
                             why=Why.INVALID, en=f"no slot at {start}")
        return slot

    def book(self, p: Person, service: str, day: str, start: str,
             appointment_id: str | None = None) -> Appointment:
        """Book a slot. With ``appointment_id`` (the central's side of
        ``appointment.book``) a repeated request answers the booking it already made."""
        if appointment_id:
            row = self.store.one("SELECT * FROM appointments WHERE appointment_id = ?",
                                 (appointment_id,))
            if row is not None:
                return Appointment.from_row(row)
        slot = self.check_bookable(service, day, start)
        with self.store.tx() as db:
            mine = db.execute("SELECT slot_start, slot_end FROM appointments WHERE id_hash = ? "
                              "AND day = ? AND service = ? AND status = 'booked'",
                              (p.id_hash, day, service)).fetchone()
            if mine:
                slot_ = f"{mine[0]}-{mine[1]}"
                raise Refused(f"您明天已预约该业务（{slot_}），到厅后刷身份证即可签到",
                                 code="already_booked", field="service", why=Why.CONFLICT,
                                 en=f"You already have a booking for this service tomorrow "
                                    f"({slot_}); check in with your ID card when you come")
            taken = db.execute("SELECT COUNT(*) FROM appointments WHERE service = ? AND day = ? "
                               "AND slot_start = ? AND status != 'cancelled'",
                               (service, day, start)).fetchone()[0]
            if taken >= self.cfg.slot_capacity:
                raise Refused("该时段已约满，请选择其他时段", code="slot_full", field="start",
                                 why=Why.CONFLICT, en="This slot is full; please choose another")
            aid = appointment_id or str(uuid.uuid4())
            db.execute("INSERT INTO appointments (appointment_id, code, service, day, "
                       "slot_start, slot_end, id_hash, masked_name, masked_id, source, "
                       "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (aid, new_code(), service, day, start, slot["end"], p.id_hash,
                        p.masked_name, p.masked_id, "kiosk", self.clock()))
            row = db.execute("SELECT * FROM appointments WHERE appointment_id = ?",
                             (aid,)).fetchone()
        return Appointment.from_row(row)


# --------------------------------------------------------------------------- the agent's side


class CheckinService:
    """Check-in as the agent does it: local list first, then the central (central mode)."""

    def __init__(self, needs: CheckinNeeds, book: AppointmentBook) -> None:
        self.n = needs
        self.book = book

    def _find(self, code: str | None, p: Person | None) -> Appointment | None:
        self.book.import_dir(Path(self.n.cfg.agent.data_dir))
        if code:
            return self.book.by_code(code)
        assert p is not None
        return self.book.pick_for_person(p.id_hash)

    def checkin(self, *, code: str | None = None, person: Person | None = None,
                channel: str = "scan") -> dict[str, Any]:
        """Check in by appointment code or by the person of an ID card; returns the
        appointment and its ticket (the ticket body of POST /v1/tickets)."""
        if not code and person is None:
            raise Refused("请扫描预约码或放置身份证", code="nothing_to_check_in",
                             field="code", why=Why.INVALID, en="Scan the booking QR or place "
                                                          "your ID card")
        if person is not None and person.expired:
            raise Refused("证件已过期，请到咨询台办理", code="card_expired_date", field="card",
                             why=Why.CONFLICT, en="This card has expired; please ask at the desk")
        a = self._find(code, person)
        if a is None and self._central_books:
            # Also when the central cannot be reached now: then the citizen is told to
            # check in at the desk, not that no appointment exists.
            a = self._ask_central(code, person)
        if a is None:
            raise Refused("没有找到您今天的预约，请核对后重试或现场取号",
                             code="no_appointment", field="code" if code else "card",
                             why=Why.NOT_FOUND, en="No appointment found for today; please check, "
                                            "or take an ordinary ticket")
        if a.status == "booked":
            self.book.check_window(a)
        # The same key for every try: checking in twice answers with the same ticket.
        start = self.book.slot_at(a).timestamp()
        hashed = a.id_hash or (person.id_hash if person else None)
        body = self.n.tickets.issue(
            a.service, priority=True, priority_reason="appointment", channel="appointment",
            key=f"checkin:{a.appointment_id}",
            extra={"id_hash": hashed, "masked_name": a.masked_name or (
                person.masked_name if person else None),
                "queue_key": max(start, self.book.clock()), "check_limit": False})

        now = self.book.clock()
        with self.n.store.tx() as db:
            if self.book.mark_checked_in(db, a, body.ticket_id, now):
                late = round((now - start) / 60)
                data: dict[str, Any] = {
                    "appointment_id": a.appointment_id, "code": a.code, "service": a.service,
                    "slot": f"{a.slot_start}-{a.slot_end}", "ticket_id": body.ticket_id,
                    "number": body.number, "channel": channel, "late_min": late}
                if a.id_hash:
                    data["id_hash"] = a.id_hash
                self.n.store.outbox.add(db, "checkin.done", data,
                                           ts_iso=self.n.queue.iso(now))
        log.info("appointment %s checked in (%s): ticket %s", a.code, channel, body.number)
        got = self.book.by_code(a.code) or a
        return {"appointment": got.public(), "ticket": body.model_dump(), "status": 201}

    # ------------------------------------------------------------------ booking

    @property
    def _central_books(self) -> bool:
        """In central mode the central keeps the hall's one appointment list: slots and
        bookings are asked of it (a booking kept here alone would be unknown to the
        other kiosks and to the central's check-in)."""
        return self.n.link is not None and self.n.modes.numbering == "central"

    def slots(self, service: str, day: str) -> list[dict[str, Any]]:
        if not self._central_books:
            return self.book.slots(service, day)
        from hall_agent.contract.mqtt import SlotsRequest

        reply = self._ask(SlotsRequest(req_id=str(uuid.uuid4()), service=service, day=day,
                                       ts=self.n.queue.iso(self.book.clock())))
        if not reply.ok or reply.slots is None:
            raise Refused(reply.error or "中心预约系统不提供该业务的时段",
                             code=reply.error_code or "central_refused", field="service",
                             why=Why.CONFLICT, en=reply.error or "the central offers no slots")
        return [s.model_dump() for s in reply.slots]

    def book_slot(self, p: Person, service: str, day: str, start: str) -> Appointment:
        """Book tomorrow's slot: here in standalone mode, at the central in central mode
        (checked here first, so a wrong request is a 422 without a round trip)."""
        if not self._central_books:
            return self.book.book(p, service, day, start)
        from hall_agent.contract.mqtt import BookRequest

        self.book.check_bookable(service, day, start)
        reply = self._ask(BookRequest(
            req_id=str(uuid.uuid4()), appointment_id=str(uuid.uuid4()), service=service,
            day=day, start=start, id_hash=p.id_hash, masked_name=p.masked_name,
            ts=self.n.queue.iso(self.book.clock())))
        if not reply.ok or reply.appointment is None:
            raise Refused(reply.error or "中心预约系统未受理该预约",
                             code=reply.error_code or "central_refused", field="start",
                             why=Why.CONFLICT, en=reply.error or "the central refused the booking")
        info = reply.appointment
        # Kept here too: the slip is printed from it, and a check-in at this kiosk finds
        # it without asking.
        got = self._keep(info)
        assert got is not None
        log.info("appointment %s booked at the central: %s %s %s-%s", info.code,
                 info.service, info.day, info.slot_start, info.slot_end)
        return got

    def _ask(self, req: AnyRequest) -> NumberReply:
        link, mc = self.n.link, self.n.cfg.mqtt
        assert link is not None and mc is not None
        reply = link.request_number(req, mc.request_timeout_ms / 1000)
        if reply is None:
            raise Refused("暂时无法连接中心预约系统，请稍后再试，或到咨询台预约",
                             code="central_timeout", field="service", why=Why.UNAVAILABLE,
                             en="The central booking system does not answer; please try "
                                "again later or book at the information desk")
        return reply

    def _ask_central(self, code: str | None, p: Person | None) -> Appointment | None:
        from hall_agent.contract.mqtt import CheckinRequest

        link, mc = self.n.link, self.n.cfg.mqtt
        if link is None or mc is None:
            return None
        reply = link.request_number(
            CheckinRequest(req_id=str(uuid.uuid4()), code=code,
                           id_hash=p.id_hash if p else None,
                           ts=self.n.queue.iso(self.book.clock())),
            mc.request_timeout_ms / 1000)
        if reply is None:
            raise Refused("暂时无法连接中心预约系统，请到咨询台签到", code="central_timeout",
                             field="code", why=Why.UNAVAILABLE,
                             en="The central booking system does not answer; please check "
                                "in at the information desk")
        if not reply.ok or reply.appointment is None:
            if reply.error_code in ("too_early", "too_late", "appointment_cancelled"):
                raise Refused(reply.error or "预约不能签到", code=reply.error_code,
                                 field="code", why=Why.CONFLICT)
            return None
        # Keep it locally, so a repeat and the ticket's event find it.
        return self._keep(reply.appointment)

    def _keep(self, info: AppointmentInfo) -> Appointment | None:
        """An appointment the central answered with, in this kiosk's list too."""
        self.book.import_records([{
            "code": info.code, "service": info.service, "date": info.day,
            "start": info.slot_start, "end": info.slot_end, "id_hash": info.id_hash,
            "masked_name": info.masked_name}], source="central")
        return self.book.by_code(info.code)
