"""The reader service in a real agent: polling over a pty, read once until removed,
real-name tickets, the per-person limit, and what a card event may carry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardhall import CardHall, wait_for

from drivers.types import Health
from sim.idcard import CARDS, RESIDENT_NUMBER


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[CardHall]:
    h = CardHall(tmp_path).start()
    yield h
    h.close()


def test_card_event_carries_masked_forms_and_a_token_only(hall: CardHall) -> None:
    ev = hall.place("resident")
    assert ev["ok"] is True
    assert ev["masked_id"] == "3501**********1238" and ev["masked_name"] == "测*"
    assert len(ev["id_hash"]) == 64 and ev["card_type"] == "resident"
    assert ev["expired"] is False and ev["token"]
    text = repr(ev)
    assert RESIDENT_NUMBER not in text and "测试甲" not in text


@pytest.mark.parametrize("name,ctype", [
    ("hmt", "hmt_permit"), ("foreigner2017", "foreigner_2017"),
    ("foreigner2023", "foreigner_2023")])
def test_every_card_type_is_accepted(hall: CardHall, name: str, ctype: str) -> None:
    ev = hall.place(name)
    assert ev["ok"] and ev["card_type"] == ctype
    assert CARDS[name].number not in repr(ev) and CARDS[name].name not in repr(ev)


def test_a_card_left_on_the_reader_is_read_once_until_removed(hall: CardHall) -> None:
    hall.place("resident")
    assert hall.reader is not None
    seen = hall.reader.finds
    assert wait_for(lambda: hall.reader is not None and hall.reader.finds >= seen + 4)
    assert len(hall.of("card")) == 1
    assert hall.agent.cards is not None and hall.agent.cards.reads == 1
    hall.lift()
    hall.place("resident")
    assert len(hall.of("card")) == 2


def test_expired_card_is_read_and_flagged(hall: CardHall) -> None:
    ev = hall.place("expired")
    assert ev["ok"] and ev["expired"] is True


def test_bad_check_digit_is_a_bad_read_not_used(hall: CardHall) -> None:
    ev = hall.place("bad_check")
    assert ev["ok"] is False and ev["error"] == "bad_check_digit"
    assert "token" not in ev and "重新放置" in ev["message"]


@pytest.mark.parametrize(("nation", "ok"), [("97", True), ("98", True), ("99", False)])
def test_nation_codes_97_and_98_are_real_and_others_a_misread(
        hall: CardHall, nation: str, ok: bool) -> None:
    from dataclasses import replace

    assert hall.reader is not None
    hall.reader.cards["odd_nation"] = replace(CARDS["resident"], nation=nation)
    ev = hall.place("odd_nation")
    assert ev["ok"] is ok
    if not ok:
        assert ev["error"] == "bad_nation" and "重新放置" in ev["message"]


def test_reader_error_code_tells_the_citizen_and_keeps_the_reader_healthy(
        hall: CardHall) -> None:
    assert hall.reader is not None
    hall.reader.fail("read", 0x41)
    ev = hall.place("resident")
    assert ev["ok"] is False and ev["error"] == "read_failed"
    assert hall.agent.devices()["id_reader"].status is Health.OK


def test_silent_reader_is_a_fault_and_recovers(hall: CardHall) -> None:
    assert hall.reader is not None
    hall.reader.set("reply", "false")
    assert wait_for(lambda: hall.agent.devices().get("id_reader") is not None and
                    hall.agent.devices()["id_reader"].status is Health.FAULT, 5)
    assert "no answer" in hall.agent.devices()["id_reader"].detail
    hall.reader.set("reply", "true")
    assert wait_for(lambda: hall.agent.devices()["id_reader"].status is Health.OK, 8)


def test_reader_unplugged_and_replugged_reads_again_within_a_second_or_two(
        tmp_path: Path) -> None:
    """The reader's USB cable is pulled for a few seconds (its stable udev name goes
    away) and plugged back in under a new pty: a fault meanwhile, then cards read."""
    link = tmp_path / "idreader.tty"
    h = CardHall(tmp_path / "hall", extra={"id_reader": {
        "port": str(link), "poll_ms": 100, "fast_poll_ms": 50, "timeout_ms": 1000}})
    assert h.reader is not None
    link.symlink_to(h.reader.port)
    h.start()
    try:
        assert h.place("resident")["ok"]
        h.lift()
        link.unlink()
        h.reader.unplug()
        assert wait_for(lambda: h.agent.devices()["id_reader"].status is Health.FAULT, 5)
        time.sleep(4.0)  # long enough for several failed reopenings
        h.reader.replug()
        link.symlink_to(h.reader.port)
        replugged = time.monotonic()
        assert wait_for(lambda: h.agent.devices()["id_reader"].status is Health.OK, 3)
        back_s = time.monotonic() - replugged
        ev = h.place("resident2")
        assert ev["ok"] and ev["masked_name"].startswith("测")
        print(f"the reader was read again {back_s:.2f} s after the replug")
    finally:
        h.close()


def test_real_name_service_needs_a_card(hall: CardHall) -> None:
    r = hall.api.post("/v1/tickets", json={"service": "A"})
    assert r.status_code == 422 and r.json()["error"] == "card_required"
    assert r.json()["field"] == "card"
    services = {s["id"]: s for s in hall.api.get("/v1/services").json()["services"]}
    assert services["A"]["requires_id"] and not services["B"]["requires_id"]


def test_real_name_ticket_prints_the_masked_name(hall: CardHall) -> None:
    token = hall.place("resident")["token"]
    r = hall.api.post("/v1/tickets", json={"service": "A", "card": token})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["masked_name"] == "测*" and body["printed"]
    assert hall.printer.wait_for_tickets(1)
    text = hall.printer.tickets[-1].text
    assert "姓名：测*" in text and "测试甲" not in text
    row = hall.agent.store.one("SELECT id_hash, masked_name FROM tickets")
    assert row is not None and row["masked_name"] == "测*" and len(row["id_hash"]) == 64


def test_at_most_n_open_tickets_per_person_per_service(hall: CardHall) -> None:
    token = hall.place("resident")["token"]
    assert hall.api.post("/v1/tickets", json={"service": "A", "card": token}
                         ).status_code == 201
    r = hall.api.post("/v1/tickets", json={"service": "A", "card": token})
    assert r.status_code == 409 and r.json()["error"] == "person_limit"
    # another service with its own limit (2)
    for _ in range(2):
        assert hall.api.post("/v1/tickets", json={"service": "C", "card": token}
                             ).status_code == 201
    assert hall.api.post("/v1/tickets", json={"service": "C", "card": token}
                         ).json()["error"] == "person_limit"
    # another person is not affected
    hall.lift()
    other = hall.place("resident2")["token"]
    assert hall.api.post("/v1/tickets", json={"service": "A", "card": other}
                         ).status_code == 201
    # once served, the first person may queue again
    hall.agent.queue.call_next("5")
    hall.agent.queue.finish("5")
    assert hall.api.post("/v1/tickets", json={"service": "A", "card": token}
                         ).status_code == 201


def test_expired_card_gets_no_ticket(hall: CardHall) -> None:
    token = hall.place("expired")["token"]
    r = hall.api.post("/v1/tickets", json={"service": "A", "card": token})
    assert r.status_code == 409 and r.json()["error"] == "card_expired_date"


def test_unknown_or_forgotten_token_is_refused(hall: CardHall) -> None:
    r = hall.api.post("/v1/tickets", json={"service": "A", "card": "nosuchtoken123"})
    assert r.status_code == 409 and r.json()["error"] == "card_expired"
    token = hall.place("resident")["token"]
    assert hall.api.delete(f"/v1/cards/{token}").status_code == 204
    r = hall.api.post("/v1/tickets", json={"service": "A", "card": token})
    assert r.json()["error"] == "card_expired"


def test_secret_file_is_created_root_only(hall: CardHall, tmp_path: Path) -> None:
    p = tmp_path / "data" / "hall.secret"
    assert p.exists() and (p.stat().st_mode & 0o777) == 0o600


# --------------------------------------------------------------------------- removal debounce


class _Clock:
    """The service's monotonic clock, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[tuple[CardHall, _Clock]]:
    """The agent's real card service and reader over the pty, polled by the test."""
    h = CardHall(tmp_path)  # not started: the test calls poll_once itself
    clock = _Clock()
    assert h.agent.cards is not None
    h.agent.cards.monotonic = clock
    yield h, clock
    h.close()


def _polls(h: CardHall, clock: _Clock, n: int, step_s: float = 0.25) -> list[bool]:
    cards = h.agent.cards
    assert cards is not None
    out = []
    for _ in range(n):
        out.append(cards.poll_once())
        clock.t += step_s
    return out


def test_a_card_at_the_edge_of_the_field_is_read_once(
        polled: tuple[CardHall, _Clock]) -> None:
    h, clock = polled
    assert h.reader is not None and h.agent.cards is not None
    h.reader.set("edge", "true")  # every other find-card: "no card"
    h.reader.put("resident")
    seen = _polls(h, clock, 12)
    assert seen.count(False) >= 5  # it did flicker out, many times
    assert h.agent.cards.reads == 1 and h.reader.reads == 1
    assert h.agent.cards.holding_a_card


def test_one_no_card_answer_is_not_a_removal(polled: tuple[CardHall, _Clock]) -> None:
    h, clock = polled
    assert h.reader is not None and h.agent.cards is not None
    h.reader.put("resident")
    _polls(h, clock, 1)
    h.reader.put(None)
    _polls(h, clock, 1, step_s=5.0)  # one "no card", however long before the next poll
    h.reader.put("resident")
    _polls(h, clock, 3)
    assert h.agent.cards.reads == 1


def test_no_card_twice_but_too_close_together_is_not_a_removal(
        polled: tuple[CardHall, _Clock]) -> None:
    h, clock = polled
    assert h.reader is not None and h.agent.cards is not None
    h.reader.put("resident")
    _polls(h, clock, 1)
    h.reader.put(None)
    _polls(h, clock, 2, step_s=0.5)  # 80 at t and t + 500 ms
    assert h.agent.cards.holding_a_card
    h.reader.put("resident")
    _polls(h, clock, 2)
    assert h.agent.cards.reads == 1


def test_a_card_found_between_two_no_cards_starts_the_count_again(
        polled: tuple[CardHall, _Clock]) -> None:
    h, clock = polled
    assert h.reader is not None and h.agent.cards is not None
    h.reader.put("resident")
    _polls(h, clock, 1)
    for card in (None, "resident", None, "resident"):
        h.reader.put(card)
        _polls(h, clock, 1, step_s=0.5)
    assert h.agent.cards.reads == 1


def test_a_card_really_lifted_is_read_again_when_placed_again(
        polled: tuple[CardHall, _Clock]) -> None:
    h, clock = polled
    assert h.reader is not None and h.agent.cards is not None
    h.reader.put("resident")
    _polls(h, clock, 1)
    h.reader.put(None)
    _polls(h, clock, 3)  # 80 at t, t + 250 ms, t + 500 ms: not yet
    assert h.agent.cards.holding_a_card
    _polls(h, clock, 1)  # 80 at t + 750 ms: removed
    assert not h.agent.cards.holding_a_card
    h.reader.put("resident")
    _polls(h, clock, 1)
    assert h.agent.cards.reads == 2 and h.reader.reads == 2


def test_a_flickering_card_is_read_once_by_the_running_agent(hall: CardHall) -> None:
    assert hall.reader is not None
    hall.reader.set("edge", "true")
    hall.place("resident")
    seen = hall.reader.finds
    assert wait_for(lambda: hall.reader is not None and hall.reader.finds >= seen + 12)
    assert len(hall.of("card")) == 1 and hall.reader.reads == 1
