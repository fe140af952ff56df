"""The kiosk's real widgets driven against a real agent on simulated hardware."""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtCore import Qt

from hall_agent.contract.api import TicketsOut
from hall_agent.contract.client import AgentClient
from hall_agent.contract.config import load_config
from kiosk.app import Kiosk
from kiosk.host import KioskSettings
from kiosk.main import agent_url
from kiosk.widgets import Tile

pytestmark = pytest.mark.slow


@pytest.fixture
def make_kiosk(qtbot: Any, hall: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[Kiosk] = []

    def make(**overrides: Any) -> Kiosk:
        cfg = load_config(hall.config_path)
        settings = KioskSettings(hall_name=cfg.hall.name, health_interval_s=0.5,
                                 recover_interval_s=0.3,
                                 checkin_enabled=cfg.id_reader is not None)
        for name, value in overrides.items():
            setattr(settings, name, value)
        k = Kiosk(settings, AgentClient(agent_url(cfg)))
        qtbot.addWidget(k)
        k.resize(1080, 1920)
        k.show()
        k.start()
        qtbot.waitUntil(lambda: k.services is not None, timeout=10_000)
        made.append(k)
        return k

    yield make
    for k in made:
        k.stop()


def tap(qtbot: Any, k: Kiosk, key: str) -> None:
    """Touch the visible tile ``key`` the way a finger does (a mouse click on it)."""
    tiles = [t for t in k.findChildren(Tile) if t.key == key and t.isVisible()]
    shown = [(t.key, t.isVisible()) for t in k.findChildren(Tile)]
    assert tiles, f"no visible tile {key!r} on screen {k.screen_name!r}: {shown}"
    qtbot.mouseClick(tiles[0], Qt.MouseButton.LeftButton)


def shot(k: Kiosk, tmp_path: Path, name: str) -> None:
    path = tmp_path / "screens" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    assert k.grab().save(str(path))


def tickets_issued(hall: Any) -> int:
    with hall.client() as c:
        return len(TicketsOut.model_validate(c.get("/v1/tickets").json()).tickets)


def test_ticket_in_three_taps_is_printed_with_its_qr(qtbot: Any, hall: Any, make_kiosk: Any,
                                                     tmp_path: Path) -> None:
    k = make_kiosk()
    tap(qtbot, k, "take_ticket")
    assert k.screen_name == "categories"
    tap(qtbot, k, "cat:社会保障")
    assert k.screen_name == "services"
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    t = k.tickets.last
    assert t is not None and t.printed and t.number.startswith("A")
    assert k.ticket.number.text() == t.number
    assert not k.ticket.reprint_btn.isVisible()
    assert hall.printer.wait_for_tickets(1)
    printed = hall.printer.tickets[0]
    assert t.number in printed.text
    qr = printed.qr  # one payload (str) or a list of them, depending on the simulator
    assert (qr if isinstance(qr, list) else [qr]) == [t.status_url]
    shot(k, tmp_path, "ticket")
    # "完成" goes home, ready for the next person with a fresh flow
    key = k.flow.key
    qtbot.mouseClick(k.ticket.done_btn, Qt.MouseButton.LeftButton)
    assert k.screen_name == "home" and k.flow.key != key


def test_double_tap_takes_one_ticket(qtbot: Any, hall: Any, make_kiosk: Any) -> None:
    k = make_kiosk()
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:社会保障")
    tile = next(t for t in k.findChildren(Tile) if t.key == "A" and t.isVisible())
    tile.click()
    tile.click()            # the finger bounced
    svc = k.service("A")
    assert svc is not None
    k.tickets.take(svc)             # and a third, straight to the handler
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    qtbot.wait(500)
    assert tickets_issued(hall) == 1
    assert len(hall.printer.tickets) == 1


def test_paper_out_keeps_the_ticket_on_screen_with_its_qr(qtbot: Any, hall: Any,
                                                          make_kiosk: Any,
                                                          tmp_path: Path) -> None:
    hall.printer.set_state(paper="end")
    k = make_kiosk(unprinted_hold_s=300, ticket_hold_s=5)
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:住房不动产")
    tap(qtbot, k, "B")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    t = k.tickets.last
    assert t is not None and not t.printed
    assert "打印机暂时无法出票" in k.ticket.status.text()
    assert k.ticket.reprint_btn.isVisible()
    pix = k.ticket.qr.pixmap()
    assert pix is not None and pix.width() >= 400    # bigger QR: the phone is the ticket now
    assert k._hold_s == 300
    assert hall.printer.tickets == []
    shot(k, tmp_path, "ticket_unprinted")
    # paper loaded: "print again" prints it
    hall.printer.set_state(paper="ok")
    qtbot.mouseClick(k.ticket.reprint_btn, Qt.MouseButton.LeftButton)
    assert hall.printer.wait_for_tickets(1, timeout=10)
    assert t.number in hall.printer.tickets[0].text
    qtbot.waitUntil(lambda: not k.ticket.reprint_btn.isVisible(), timeout=5000)


def test_idle_timeout_returns_home_and_forgets_the_flow(qtbot: Any, hall: Any,
                                                        make_kiosk: Any) -> None:
    k = make_kiosk(idle_timeout_s=0.6)
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "priority")
    tap(qtbot, k, "reason:elderly")
    assert k.flow.priority and k.screen_name == "categories"
    key = k.flow.key
    qtbot.waitUntil(lambda: k.screen_name == "home", timeout=5000)
    assert not k.flow.priority and k.flow.key != key
    # the next person's regular ticket is not a priority one
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:社会保障")
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.tickets.last is not None and not k.tickets.last.priority


def test_priority_path_issues_a_priority_ticket(qtbot: Any, hall: Any,
                                                make_kiosk: Any) -> None:
    k = make_kiosk()
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "priority")
    tap(qtbot, k, "reason:pregnant")
    tap(qtbot, k, "cat:社会保障")
    assert "孕妇" in k.choice.banner.text()
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.tickets.last is not None and k.tickets.last.priority
    assert k.ticket.priority.isVisible()


def test_agent_down_shows_out_of_service_and_recovers(qtbot: Any, hall: Any,
                                                      make_kiosk: Any,
                                                      tmp_path: Path) -> None:
    k = make_kiosk()
    tap(qtbot, k, "queue")
    hall.stop()
    qtbot.waitUntil(lambda: k.screen_name == "oos", timeout=10_000)
    assert "暂停服务" in k.oos.title.text()
    shot(k, tmp_path, "out_of_service")
    hall.start()
    qtbot.waitUntil(lambda: k.screen_name == "home", timeout=30_000)
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:社会保障")
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)


def test_elderly_mode_is_larger_with_fewer_choices(qtbot: Any, hall: Any, make_kiosk: Any,
                                                   tmp_path: Path) -> None:
    k = make_kiosk()
    normal_px = k.home.title.font().pixelSize()
    qtbot.mouseClick(k.home.elderly_btn, Qt.MouseButton.LeftButton)
    assert k.elderly and k.home.title.font().pixelSize() > normal_px
    assert k.home.elderly_btn.text() == "标准模式"
    assert k.theme.page_size == 4
    shot(k, tmp_path, "home_elderly")
    tap(qtbot, k, "take_ticket")
    assert k.choice.grid.page_size == 4
    tap(qtbot, k, "cat:社会保障")
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.ticket.number.font().pixelSize() >= 200
    shot(k, tmp_path, "ticket_elderly")


def test_english_everywhere_a_citizen_looks(qtbot: Any, hall: Any, make_kiosk: Any,
                                            tmp_path: Path) -> None:
    k = make_kiosk()
    qtbot.mouseClick(k.home.lang_btn, Qt.MouseButton.LeftButton)
    assert k.lang == "en"
    assert k.home.title.text() == "Welcome. Please touch a service."
    tap(qtbot, k, "take_ticket")
    assert k.choice.title.text() == "Choose a category"
    titles = [t.title_label.text() for t in k.findChildren(Tile) if t.isVisible()]
    assert "Social security" in titles
    tap(qtbot, k, "cat:社会保障")
    tap(qtbot, k, "A")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.ticket.service.text() == "Social & medical insurance"
    assert "people ahead" in k.ticket.ahead.text() or "No one ahead" in k.ticket.ahead.text()
    shot(k, tmp_path, "ticket_en")


def test_daily_limit_says_so_instead_of_failing(qtbot: Any, hall: Any,
                                                make_kiosk: Any) -> None:
    with hall.client() as c:
        for i in range(3):
            r = c.post("/v1/tickets", json={"service": "C"},
                       headers={"Idempotency-Key": f"fill-{i}"})
            assert r.status_code == 201
    k = make_kiosk()
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:住房不动产")
    tap(qtbot, k, "C")
    qtbot.waitUntil(lambda: k.screen_name in ("closed", "refused"), timeout=10_000)
    assert k.message.title.text() == "该业务现在不能取号"
    assert tickets_issued(hall) == 3


def test_no_number_at_all_says_what_to_do_instead_of_out_of_service(
        qtbot: Any, tmp_path: Path) -> None:
    """Central mode, broker unreachable, no lease yet: the agent works but cannot number
    (503 no_number). The kiosk says so and where to go, and stays in service."""
    from conftest import HallUnderTest
    from sim.broker import free_port

    h = HallUnderTest(tmp_path / "hall", extra_toml=(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\nrequest_timeout_ms = 300\n'))
    h.start()
    cfg = load_config(h.config_path)
    k = Kiosk(KioskSettings(hall_name=cfg.hall.name, health_interval_s=0.5,
                            recover_interval_s=0.3), AgentClient(agent_url(cfg)))
    try:
        qtbot.addWidget(k)
        k.resize(1080, 1920)
        k.show()
        k.start()
        qtbot.waitUntil(lambda: k.services is not None, timeout=10_000)
        tap(qtbot, k, "take_ticket")
        tap(qtbot, k, "cat:社会保障")
        tap(qtbot, k, "A")
        qtbot.waitUntil(lambda: k.screen_name == "refused", timeout=10_000)
        assert "咨询台" in k.message.body.text()
        assert k.message.kind == "refused:no_number"
        shot(k, tmp_path, "no_number")
        qtbot.wait(1500)  # health checks come and go: still in service
        assert k.screen_name == "refused"
    finally:
        k.stop()
        h.close()


def test_queue_status_follows_the_event_stream(qtbot: Any, hall: Any,
                                               make_kiosk: Any) -> None:
    k = make_kiosk()
    tap(qtbot, k, "queue")
    qtbot.waitUntil(lambda: k.queue.screen.last is not None, timeout=10_000)
    assert k.queue.screen.last is not None
    before = k.queue.screen.last.services["A"].waiting
    with hall.client() as c:
        c.post("/v1/tickets", json={"service": "A"}, headers={"Idempotency-Key": "q-1"})
    qtbot.waitUntil(lambda: k.queue.screen.last is not None
                    and k.queue.screen.last.services["A"].waiting == before + 1, timeout=10_000)
    with hall.client() as c:
        c.post("/v1/calls", json={"window": "5"})
    qtbot.waitUntil(lambda: k.queue.screen.last is not None
                    and k.queue.screen.last.windows["5"].serving is not None, timeout=10_000)


def test_rating_a_window(qtbot: Any, hall: Any, make_kiosk: Any) -> None:
    with hall.client() as c:
        c.post("/v1/tickets", json={"service": "A"}, headers={"Idempotency-Key": "r-1"})
        c.post("/v1/calls", json={"window": "5"})
    k = make_kiosk()
    tap(qtbot, k, "rate")
    qtbot.waitUntil(lambda: any(t.key == "window:5" and t.isVisible()
                                for t in k.findChildren(Tile)), timeout=10_000)
    tap(qtbot, k, "window:5")
    levels = [t.title_label.text() for t in k.findChildren(Tile) if t.isVisible()]
    assert levels == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    tap(qtbot, k, "level:satisfied")
    qtbot.waitUntil(lambda: k.screen_name == "rate_done", timeout=10_000)
    assert k.message.title.text() == "感谢您的评价！"


def test_idle_home_dims_and_a_presence_or_touch_wakes_it(qtbot: Any, make_kiosk: Any,
                                                        tmp_path: Path) -> None:
    k = make_kiosk(blank_after_s=0.5)
    qtbot.waitUntil(k.saver.isVisible, timeout=5000)
    shot(k, tmp_path, "saver")
    # The presence sensor's event (GPIO → agent → SSE device event) wakes it.
    k._on_event("device", {"device": "presence", "status": "ok", "detail": "present"})
    assert not k.saver.isVisible() and k.screen_name == "home"
    qtbot.waitUntil(k.saver.isVisible, timeout=5000)
    # A touch wakes it and does nothing else: the tile under the finger is not pressed.
    tap(qtbot, k, "take_ticket")
    assert not k.saver.isVisible() and k.screen_name == "home"
    tap(qtbot, k, "take_ticket")
    assert k.screen_name == "categories"


def test_a_poor_rating_asks_why_and_a_visit_is_rated_once(qtbot: Any, hall: Any,
                                                          make_kiosk: Any) -> None:
    with hall.client() as c:
        c.post("/v1/tickets", json={"service": "A"}, headers={"Idempotency-Key": "r-2"})
        c.post("/v1/calls", json={"window": "5"})
    k = make_kiosk()
    tap(qtbot, k, "rate")
    qtbot.waitUntil(lambda: any(t.key == "window:5" and t.isVisible()
                                for t in k.findChildren(Tile)), timeout=10_000)
    tap(qtbot, k, "window:5")
    tap(qtbot, k, "level:unsatisfied")
    # the agent's own list of reasons (GET /v1/evaluations/reasons)
    qtbot.waitUntil(lambda: k.screen_name == "rate_reason", timeout=10_000)
    reasons = [t.key for t in k.findChildren(Tile) if t.isVisible()]
    assert "reason:long_wait" in reasons and "reason:other" in reasons
    tap(qtbot, k, "reason:long_wait")
    qtbot.waitUntil(lambda: k.screen_name == "rate_done", timeout=10_000)
    assert k.message.kind == "thanks" and k.message.detail.isVisible()  # a follow-up
    # the same visit again: thanked as already rated, no error look
    qtbot.mouseClick(k.home_btn, Qt.MouseButton.LeftButton)
    tap(qtbot, k, "rate")
    qtbot.waitUntil(lambda: any(t.key == "window:5" and t.isVisible()
                                for t in k.findChildren(Tile)), timeout=10_000)
    tap(qtbot, k, "window:5")
    tap(qtbot, k, "level:very_satisfied")
    qtbot.waitUntil(lambda: k.screen_name == "rate_done", timeout=10_000)
    assert k.message.kind == "already_rated"
    assert k.message.title.text() == "已评价"
    assert k.message.title.objectName() == "Title"  # not the red of a refusal


def test_a_full_card_puts_the_kiosk_out_of_service_with_its_reason_and_back(
        qtbot: Any, tmp_path: Path) -> None:
    """The agent answers but its card is full (503 storage_full): the citizen is sent to
    the desk or another kiosk, the staff read why, and the kiosk opens again by itself
    once the card has room (the agent's health tries a write while it is in fault)."""
    from conftest import HallUnderTest, wait_until
    from sim.storage import FullCard, fill_up

    root = tmp_path / "hall"
    card = FullCard(root / "data", "6m")
    why = card.mount()
    if why:
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    h = HallUnderTest(root)
    try:
        h.start()
        cfg = load_config(h.config_path)
        k = Kiosk(KioskSettings(hall_name=cfg.hall.name, health_interval_s=0.5,
                                recover_interval_s=0.3), AgentClient(agent_url(cfg)))
        qtbot.addWidget(k)
        k.resize(1080, 1920)
        k.show()
        k.start()
        qtbot.waitUntil(lambda: k.services is not None, timeout=10_000)
        tap(qtbot, k, "take_ticket")
        tap(qtbot, k, "cat:社会保障")  # a citizen is choosing when the card fills up
        filler = fill_up(root / "data")
        with h.client() as c:  # until the store refuses (the WAL may take a few more)
            assert wait_until(lambda: c.post(
                "/v1/tickets", json={"service": "A"},
                headers={"Idempotency-Key": str(uuid.uuid4())}).status_code == 503, 20)
        tap(qtbot, k, "A")
        qtbot.waitUntil(lambda: k.screen_name == "oos", timeout=15_000)
        assert "另一台取号机" in k.oos.body_zh.text()
        assert "another kiosk" in k.oos.body_en.text()
        assert k.oos.staff.isVisible() and "存储卡已满" in k.oos.staff.text()
        assert "disk full" in k.oos.staff.text()
        shot(k, tmp_path, "out_of_service_storage")
        qtbot.wait(1500)  # health says the same: it stays out of service
        assert k.screen_name == "oos"
        filler.unlink()
        qtbot.waitUntil(lambda: k.screen_name == "home", timeout=30_000)
        tap(qtbot, k, "take_ticket")
        tap(qtbot, k, "cat:社会保障")
        tap(qtbot, k, "A")
        qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
        k.stop()
    finally:
        h.close()
        card.close()
