"""Appointment check-in: the imported list, the QR and the ID card, the early/late rules,
and the central mode over a real Mosquitto with the central stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cardhall import CARD_CATALOG, CardHall

from conftest import TZ, Clock
from hall_agent.contract.config import load_catalog
from hall_agent.core.personal import id_hash
from sim.broker import Broker
from sim.central import Central
from sim.idcard import CARDS, RESIDENT_NUMBER

DAY = "2026-03-02"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))


@pytest.fixture
def hall(tmp_path: Path, clock: Clock) -> Iterator[CardHall]:
    h = CardHall(tmp_path, clock=clock).start()
    yield h
    h.close()


def rows(hall: CardHall) -> list[dict[str, object]]:
    return [{"code": "K7M2Q9XW4P", "service": "B", "date": DAY, "slot": "10:00-10:30",
             "id_number": RESIDENT_NUMBER, "name": "测试甲"},
            {"code": "PX3NQ7TR2M", "service": "C", "date": DAY, "start": "10:30",
             "end": "11:00"}]


def test_import_hashes_and_masks_and_keeps_no_id_number(hall: CardHall) -> None:
    r = hall.api.post("/v1/appointments/import", json={"appointments": rows(hall)})
    assert r.status_code == 200 and r.json() == {"added": 2, "updated": 0, "errors": []}
    a = hall.agent.book.by_code("K7M2Q9XW4P")
    assert a is not None and a.masked_name == "测*" and a.slot_start == "10:00"
    assert a.id_hash == id_hash(hall.agent.secret, RESIDENT_NUMBER)
    db = (hall.root / "data" / "hall-agent.sqlite3").read_bytes()
    assert RESIDENT_NUMBER.encode() not in db and "测试甲".encode() not in db


def test_import_csv_reports_bad_rows(hall: CardHall) -> None:
    csv = ("code,service,date,start,end,id_number,name\n"
           f"AAA111,B,{DAY},09:00,09:30,{RESIDENT_NUMBER},测试甲\n"
           f"BBB222,Z,{DAY},09:00,09:30,,\n"
           f"CCC333,B,{DAY},09:00,09:30,350102199001011230,测试丁\n")
    r = hall.api.post("/v1/appointments/import", json={"csv": csv}).json()
    assert r["added"] == 1 and len(r["errors"]) == 2
    assert "unknown service" in r["errors"][0] and "check digit" in r["errors"][1]


def test_import_file_is_read_then_deleted(hall: CardHall) -> None:
    d = hall.root / "data" / "appointments-import"
    d.mkdir()
    (d / "today.json").write_text(json.dumps(rows(hall), ensure_ascii=False), "utf-8")
    r = hall.api.post("/v1/checkins", json={"code": "PX3NQ7TR2M"})
    assert r.status_code == 409 and r.json()["error"] == "too_early"  # 09:00 for 10:30
    assert not (d / "today.json").exists()


def test_checkin_by_qr_gets_a_priority_ticket_in_its_slot(hall: CardHall,
                                                          clock: Clock) -> None:
    hall.api.post("/v1/appointments/import", json={"appointments": rows(hall)})
    walk_in = hall.api.post("/v1/tickets", json={"service": "B"}).json()
    clock.set("09:35")  # 25 min early: allowed
    r = hall.api.post("/v1/checkins", json={"code": "k7m2q9xw4p"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["appointment"]["status"] == "checked_in"
    t = body["ticket"]
    assert t["priority"] and t["service"] == "B" and t["masked_name"] == "测*"
    tk = hall.agent.queue.ticket(t["ticket_id"])
    assert tk.channel == "appointment"
    # placed at its slot's start (10:00), not ahead of it; still before walk-ins (priority)
    row = hall.agent.store.one("SELECT queue_key FROM tickets WHERE ticket_id = ?",
                               (t["ticket_id"],))
    assert row is not None
    assert datetime.fromtimestamp(row[0], TZ).strftime("%H:%M") == "10:00"
    assert hall.agent.queue.call_next("5").ticket.number == t["number"]  # type: ignore[union-attr]
    assert walk_in["number"] != t["number"]
    # checking in again answers with the same ticket
    again = hall.api.post("/v1/checkins", json={"code": "K7M2Q9XW4P"}).json()
    assert again["ticket"]["ticket_id"] == t["ticket_id"]
    done = hall.agent.store.query("SELECT data FROM outbox WHERE type = 'checkin.done'")
    assert len(done) == 1
    data = json.loads(done[0][0])
    assert data["code"] == "K7M2Q9XW4P" and data["number"] == t["number"]
    assert data["id_hash"] == id_hash(hall.agent.secret, RESIDENT_NUMBER)


@pytest.mark.parametrize("now,ok,error", [
    ("09:29", False, "too_early"), ("09:30", True, None), ("10:15", True, None),
    ("10:16", False, "too_late")])
def test_early_and_late_rules(hall: CardHall, clock: Clock, now: str, ok: bool,
                              error: str | None) -> None:
    hall.api.post("/v1/appointments/import", json={"appointments": rows(hall)})
    clock.set(now)
    r = hall.api.post("/v1/checkins", json={"code": "K7M2Q9XW4P"})
    assert (r.status_code == 201) is ok, r.text
    if error:
        assert r.json()["error"] == error and r.json()["message"]


def test_checkin_by_id_card(hall: CardHall, clock: Clock) -> None:
    hall.api.post("/v1/appointments/import", json={"appointments": rows(hall)})
    clock.set("09:50")
    token = hall.place("resident")["token"]
    r = hall.api.post("/v1/checkins", json={"card": token})
    assert r.status_code == 201, r.text
    assert r.json()["appointment"]["code"] == "K7M2Q9XW4P"
    hall.lift()
    other = hall.place("resident2")["token"]
    r = hall.api.post("/v1/checkins", json={"card": other})
    assert r.status_code == 404 and r.json()["error"] == "no_appointment"


def test_scan_of_an_appointment_qr_checks_in(hall: CardHall, clock: Clock) -> None:
    hall.api.post("/v1/appointments/import", json={"appointments": rows(hall)})
    clock.set("10:05")
    r = hall.api.post("/v1/scans", json={"text": "YY-K7M2Q9XW4P"}).json()
    assert r["kind"] == "appointment" and r["ok"]
    assert r["appointment"]["status"] == "checked_in"


def test_booking_for_tomorrow_prints_a_slip_and_checks_in(tmp_path: Path,
                                                          clock: Clock) -> None:
    h = CardHall(tmp_path, clock=clock, extra={"appointments": {
        "bookable": ["B"], "slot_capacity": 1}}).start()
    try:
        token = h.place("resident")["token"]
        slots = h.api.get("/v1/appointments/slots",
                          params={"service": "B", "day": "2026-03-03"}).json()["slots"]
        assert slots[0] == {"start": "09:00", "end": "09:30", "free": 1}
        r = h.api.post("/v1/appointments", json={"card": token, "service": "B",
                                                  "day": "2026-03-03", "start": "09:00"})
        assert r.status_code == 201, r.text
        code = r.json()["appointment"]["code"]
        assert r.json()["printed"]
        assert h.printer.wait_for_tickets(1)
        slip = h.printer.tickets[-1]
        assert code in slip.text and "测*" in slip.text and "测试甲" not in slip.text
        assert slip.qr_data == [f"YY-{code}"]
        r2 = h.api.post("/v1/appointments", json={"card": token, "service": "B",
                                                   "day": "2026-03-02", "start": "10:00"})
        assert r2.json()["error"] == "bad_day"
        h.lift()
        other = h.place("resident2")["token"]
        full = h.api.post("/v1/appointments", json={"card": other, "service": "B",
                                                     "day": "2026-03-03", "start": "09:00"})
        assert full.json()["error"] == "slot_full"
        clock.t += 86400  # tomorrow 09:00: its own QR checks it in
        s = h.api.post("/v1/scans", json={"text": f"YY-{code}"}).json()
        assert s["ok"] and s["ticket"]["priority"]
    finally:
        h.close()


# ---------------------------------------------------------------- central mode


def test_central_mode_checks_in_an_appointment_the_agent_does_not_know(
        tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "fz-citizen", load_catalog(CARD_CATALOG),
                      tmp_path / "central", TZ)
    central.start()
    assert central.connected.wait(10)
    h = CardHall(tmp_path / "hall", extra={"mqtt": {
        "host": "127.0.0.1", "port": broker.port, "request_timeout_ms": 2000}}).start()
    try:
        from cardhall import wait_for
        assert wait_for(lambda: h.agent.mode == "central", 10)
        central.secret = h.agent.secret  # the hall's secret is provisioned to the central
        central.book._secret = h.agent.secret
        now = datetime.now(TZ)
        slot = now.strftime("%H:%M")
        end = "23:59" if now.hour == 23 else f"{now.hour + 1:02d}:{now.minute:02d}"
        central.book.import_records([
            {"code": "CENTRAL001", "service": "B", "date": now.date().isoformat(),
             "start": slot, "end": end, "id_number": RESIDENT_NUMBER, "name": "测试甲"},
            {"code": "CENTRAL002", "service": "C", "date": now.date().isoformat(),
             "start": slot, "end": end, "id_number": CARDS["resident2"].number}])
        r = h.api.post("/v1/checkins", json={"code": "CENTRAL001"})
        assert r.status_code == 201, r.text
        t = r.json()["ticket"]
        assert t["priority"] and t["offline"] is False and t["masked_name"] == "测*"
        # numbered by the central, which now knows the ticket
        assert central.store.one("SELECT number FROM tickets WHERE ticket_id = ?",
                                 (t["ticket_id"],))[0] == t["number"]  # type: ignore[index]
        assert central.book.by_code("CENTRAL001").status == "checked_in"  # type: ignore[union-attr]
        # by ID card too
        token = h.place("resident2")["token"]
        r = h.api.post("/v1/checkins", json={"card": token})
        assert r.status_code == 201, r.text
        assert r.json()["appointment"]["code"] == "CENTRAL002"
        # unknown everywhere
        r = h.api.post("/v1/checkins", json={"code": "NOPE000"})
        assert r.status_code == 404
        assert wait_for(lambda: central.stats()["by_type"].get("checkin.done") == 2, 10)
        # The broker goes away: an appointment this kiosk does not know may well exist
        # at the central, so the citizen is sent to the desk, not told there is none.
        broker.stop()
        assert wait_for(lambda: h.agent.mode == "offline", 10)
        r = h.api.post("/v1/checkins", json={"code": "CENTRAL003"})
        assert r.status_code == 503 and r.json()["error"] == "central_timeout", r.text
        assert "咨询台" in r.json()["message"]
        # One it knows is still checked in (again: the same ticket).
        r = h.api.post("/v1/checkins", json={"code": "CENTRAL001"})
        assert r.status_code in (200, 201) and r.json()["ticket"]["number"] == t["number"]
        broker.start()
    finally:
        h.close()
        central.stop()


def test_central_mode_books_at_the_central_for_every_kiosk_of_the_hall(
        tmp_path: Path, broker: Broker) -> None:
    """Two kiosks, one central: a booking made at one kiosk is in the central's list
    (so any kiosk and the central's check-in find it), slot capacity and one booking
    per person hold across kiosks, and a central that does not answer books nothing."""
    from cardhall import wait_for

    from hall_agent.contract.config import AppointmentsConfig

    central = Central("127.0.0.1", broker.port, "fz-citizen", load_catalog(CARD_CATALOG),
                      tmp_path / "central", TZ,
                      appointments=AppointmentsConfig(bookable=["B"], slot_capacity=1))
    central.start()
    assert central.connected.wait(10)
    secret = tmp_path / "hall.secret"  # one hall, one secret on every kiosk

    def kiosk(name: str) -> CardHall:
        return CardHall(tmp_path / name, extra={
            "hall": {"id": "fz-citizen", "name": "福州市市民服务中心",
                     "catalog": str(CARD_CATALOG), "secret_file": str(secret)},
            "agent": {"id": name, "data_dir": str(tmp_path / name / "data"),
                      "health_interval_ms": 500},
            "appointments": {"bookable": ["B"], "slot_capacity": 1},
            "mqtt": {"host": "127.0.0.1", "port": broker.port,
                     "request_timeout_ms": 2000}}).start()

    k1, k2 = kiosk("kiosk-01"), kiosk("kiosk-02")
    try:
        assert wait_for(lambda: k1.agent.mode == k2.agent.mode == "central", 10)
        tomorrow = (datetime.now(TZ).date() + timedelta(days=1)).isoformat()
        token = k1.place("resident")["token"]
        r = k1.api.post("/v1/appointments", json={"card": token, "service": "B",
                                                   "day": tomorrow, "start": "09:00"})
        assert r.status_code == 201, r.text
        code = r.json()["appointment"]["code"]
        assert r.json()["printed"] and k1.printer.wait_for_tickets(1)
        assert k1.printer.tickets[-1].qr_data == [f"YY-{code}"]
        at_central = central.book.by_code(code)
        assert at_central is not None and at_central.slot_start == "09:00"
        assert at_central.id_hash == id_hash(k1.agent.secret, RESIDENT_NUMBER)
        assert at_central.masked_name == "测*"
        central_db = (tmp_path / "central" / "hall-agent.sqlite3").read_bytes()
        assert RESIDENT_NUMBER.encode() not in central_db
        assert "测试甲".encode() not in central_db

        # The other kiosk sees the slot taken, and the same citizen's booking there.
        slots = k2.api.get("/v1/appointments/slots",
                           params={"service": "B", "day": tomorrow}).json()["slots"]
        assert slots[0] == {"start": "09:00", "end": "09:30", "free": 0}
        assert slots[1]["free"] == 1
        again = k2.api.post("/v1/appointments", json={
            "card": k2.place("resident")["token"], "service": "B", "day": tomorrow,
            "start": "09:30"})
        assert again.status_code == 409 and again.json()["error"] == "already_booked"
        assert "09:00-09:30" in again.json()["message"]
        k2.lift()
        token2 = k2.place("resident2")["token"]
        full = k2.api.post("/v1/appointments", json={
            "card": token2, "service": "B", "day": tomorrow, "start": "09:00"})
        assert full.status_code == 409 and full.json()["error"] == "slot_full"

        # A wrong request is refused by the kiosk itself; a silent central books nothing.
        bad = k2.api.post("/v1/appointments", json={
            "card": token2, "service": "B", "day": tomorrow, "start": "08:00"})
        assert bad.status_code == 422 and bad.json()["error"] == "bad_slot"
        central.faults.silent = True
        down = k2.api.post("/v1/appointments", json={
            "card": token2, "service": "B", "day": tomorrow, "start": "10:00"})
        assert down.status_code == 503 and down.json()["error"] == "central_timeout"
        assert "请稍后再试" in down.json()["message"]
        assert central.book.slots("B", tomorrow)[2]["free"] == 1
    finally:
        k1.close()
        k2.close()
        central.stop()
