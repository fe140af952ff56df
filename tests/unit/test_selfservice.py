"""The 24-hour area: the switch by the clock, the door for a valid card (GPIO mocks),
the self-service menu with its plugins printing on the thermal printer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cardhall import CardHall, wait_for

from conftest import TZ, Clock
from hall_agent.contract.config import SelfServiceConfig
from hall_agent.core.personal import id_hash
from hall_agent.services.selfservice import hall_mode, next_change
from sim.idcard import RESIDENT_NUMBER


@pytest.mark.parametrize("at,mode", [
    (datetime(2026, 3, 2, 8, 29), "selfservice"),   # Monday, before opening
    (datetime(2026, 3, 2, 8, 30), "staffed"),
    (datetime(2026, 3, 2, 17, 29), "staffed"),
    (datetime(2026, 3, 2, 17, 30), "selfservice"),
    (datetime(2026, 3, 7, 10, 0), "selfservice"),   # Saturday
])
def test_switch_to_24_hour_mode_by_the_clock(at: datetime, mode: str) -> None:
    assert hall_mode(SelfServiceConfig(), at.replace(tzinfo=TZ)) == mode
    assert hall_mode(None, at.replace(tzinfo=TZ)) == "staffed"


def test_next_change() -> None:
    at = datetime(2026, 3, 6, 17, 0, tzinfo=TZ)  # Friday
    assert next_change(SelfServiceConfig(), at) == datetime(2026, 3, 6, 17, 30, tzinfo=TZ)
    sat = datetime(2026, 3, 7, 12, 0, tzinfo=TZ)
    assert next_change(SelfServiceConfig(), sat) == datetime(2026, 3, 9, 8, 30, tzinfo=TZ)


GPIO = {"pin_factory": "mock", "door_relay": 22, "door_contact": 23, "door_open_s": 1}


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 21, 0, tzinfo=TZ))  # Monday night


@pytest.fixture
def hall(tmp_path: Path, clock: Clock) -> Iterator[CardHall]:
    h = CardHall(tmp_path, clock=clock, extra={"gpio": GPIO, "selfservice": {}}).start()
    yield h
    h.close()


def relay(h: CardHall) -> bool:
    assert h.agent.gpio is not None and h.agent.gpio.hw.relay is not None
    return bool(h.agent.gpio.hw.relay.pin_factory.pin(22).state)


def test_kiosk_learns_the_mode_and_the_menu(hall: CardHall, clock: Clock) -> None:
    s = hall.api.get("/v1/selfservice").json()
    assert s["mode"] == "selfservice" and s["door"] is True
    assert [x["id"] for x in s["services"]] == ["social_insurance", "housing_fund",
                                                 "property"]
    assert s["next_change"].startswith("2026-03-03T08:30")
    clock.t = datetime(2026, 3, 3, 9, 0, tzinfo=TZ).timestamp()
    assert hall.api.get("/v1/selfservice").json()["mode"] == "staffed"


def test_valid_card_opens_the_door_and_logs_the_hash_only(hall: CardHall) -> None:
    ev = hall.place("resident")
    assert ev["door"] == "opened" and ev["mode"] == "selfservice"
    assert relay(hall)
    assert wait_for(lambda: not relay(hall), 3)  # locked again after door_open_s
    [row] = hall.agent.store.query("SELECT data FROM outbox WHERE type = 'door.opened'")
    data = json.loads(row[0])
    assert data == {"id_hash": id_hash(hall.agent.secret, RESIDENT_NUMBER),
                    "card_type": "resident", "open_s": 1}


def test_expired_card_does_not_open_the_door(hall: CardHall) -> None:
    ev = hall.place("expired")
    assert ev["door"] == "refused" and ev["door_reason"] == "expired"
    assert not relay(hall)
    assert not hall.agent.store.query("SELECT 1 FROM outbox WHERE type = 'door.opened'")


def test_bad_card_does_not_open_the_door(hall: CardHall) -> None:
    ev = hall.place("bad_check")
    assert ev["ok"] is False and "door" not in ev
    assert not relay(hall)


def test_door_stays_shut_during_staffed_hours(hall: CardHall, clock: Clock) -> None:
    clock.t = datetime(2026, 3, 3, 10, 0, tzinfo=TZ).timestamp()
    ev = hall.place("resident")
    assert ev.get("door") is None and ev["mode"] == "staffed"
    assert not relay(hall)


@pytest.mark.parametrize("plugin,title", [
    ("social_insurance", "社会保险个人缴费记录"), ("housing_fund", "住房公积金缴存证明"),
    ("property", "不动产登记信息查询结果")])
def test_each_plugin_prints_its_result(hall: CardHall, plugin: str, title: str) -> None:
    token = hall.place("resident")["token"]
    r = hall.api.post(f"/v1/selfservice/{plugin}", json={"card": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["printed"] and body["title"] == title and body["lines"]
    assert hall.printer.wait_for_tickets(1)
    text = hall.printer.tickets[-1].text
    assert title in text and "3501**********1238" in text and "测*" in text
    assert RESIDENT_NUMBER not in text and "测试甲" not in text
    [row] = hall.agent.store.query("SELECT data FROM outbox WHERE type = 'selfservice.used'")
    assert json.loads(row[0])["service"] == plugin


def test_same_person_same_answer(hall: CardHall) -> None:
    token = hall.place("resident")["token"]
    a = hall.api.post("/v1/selfservice/housing_fund", json={"card": token, "print": False})
    b = hall.api.post("/v1/selfservice/housing_fund", json={"card": token, "print": False})
    assert a.json()["lines"] == b.json()["lines"] and not a.json()["printed"]


def test_unknown_plugin_and_expired_card(hall: CardHall) -> None:
    token = hall.place("expired")["token"]
    assert hall.api.post("/v1/selfservice/nope", json={"card": token}).status_code == 404
    r = hall.api.post("/v1/selfservice/property", json={"card": token})
    assert r.status_code == 409 and r.json()["error"] == "card_expired_date"
