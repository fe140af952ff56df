"""The kiosk's card flows against a real agent process with a simulated ID-card reader:
a real-name ticket, check-in by card, and the 24-hour area's menu."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PyQt6.QtCore import Qt

from conftest import HallUnderTest
from hall_agent.contract.client import AgentClient
from hall_agent.contract.config import load_config
from kiosk.app import Kiosk
from kiosk.host import KioskSettings
from kiosk.main import agent_url
from kiosk.widgets import Tile
from sim.idcard import RESIDENT_NUMBER, SimIdReader

pytestmark = pytest.mark.slow
CATALOG = Path(__file__).resolve().parents[1] / "data" / "services_idcard.toml"


def start_hall(root: Path, extra: str = "") -> tuple[HallUnderTest, SimIdReader]:
    reader = SimIdReader()
    h = HallUnderTest(root, catalog=CATALOG, extra_toml=(
        f'[id_reader]\nport = "{reader.port}"\npoll_ms = 200\nfast_poll_ms = 100\n'
        '[voice]\nenabled = false\n' + extra))
    h.start()
    return h, reader


@pytest.fixture
def kiosk_for(qtbot: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[tuple[Kiosk, HallUnderTest, SimIdReader]] = []

    def make(extra: str = "") -> tuple[Kiosk, HallUnderTest, SimIdReader]:
        h, reader = start_hall(tmp_path / f"hall{len(made)}", extra)
        cfg = load_config(h.config_path)
        k = Kiosk(KioskSettings(hall_name=cfg.hall.name, health_interval_s=0.3,
                                checkin_enabled=True), AgentClient(agent_url(cfg)))
        qtbot.addWidget(k)
        k.resize(1080, 1920)
        k.show()
        k.start()
        qtbot.waitUntil(lambda: k.services is not None, timeout=10_000)
        made.append((k, h, reader))
        return k, h, reader

    yield make
    for k, h, reader in made:
        k.stop()
        h.close()
        reader.close()


def tap(qtbot: Any, k: Kiosk, key: str) -> None:
    tiles = [t for t in k.findChildren(Tile) if t.key == key and t.isVisible()]
    assert tiles, f"no tile {key!r} on {k.screen_name!r}"
    qtbot.mouseClick(tiles[0], Qt.MouseButton.LeftButton)


def test_real_name_ticket_asks_for_the_card_then_prints(qtbot: Any, kiosk_for: Any) -> None:
    k, h, reader = kiosk_for()
    tap(qtbot, k, "take_ticket")
    tap(qtbot, k, "cat:社会保障")
    tap(qtbot, k, "A")
    assert k.screen_name == "card_prompt"
    # The card's event must find the kiosk listening: wait for the stream to be live.
    qtbot.waitUntil(lambda: k.stream_up, timeout=5000)
    reader.put("resident")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.tickets.last is not None and k.tickets.last.masked_name == "测*"
    assert h.printer.wait_for_tickets(1)
    assert "测试甲" not in h.printer.tickets[-1].text
    k.go_home()
    assert k.cards.token is None


def test_check_in_by_card_shows_the_priority_ticket(qtbot: Any, kiosk_for: Any) -> None:
    k, h, reader = kiosk_for()
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    end = "23:59" if now.hour == 23 else f"{now.hour + 1:02d}:{now.minute:02d}"
    with h.client() as c:
        r = c.post("/v1/appointments/import", json={"appointments": [{
            "code": "KIOSK00001", "service": "B", "date": now.date().isoformat(),
            "start": now.strftime("%H:%M"), "end": end, "id_number": RESIDENT_NUMBER}]})
        assert r.json()["added"] == 1
    tap(qtbot, k, "checkin")
    assert k.screen_name == "checkin"
    reader.put("resident")
    qtbot.waitUntil(lambda: k.screen_name == "ticket", timeout=10_000)
    assert k.tickets.last is not None and k.tickets.last.priority
    assert k.ticket.title.text() == "签到成功，已为您优先排队"


def test_24_hour_mode_home_card_menu_and_print(qtbot: Any, kiosk_for: Any) -> None:
    k, h, reader = kiosk_for('[selfservice]\nstaffed_days = []\n')
    qtbot.waitUntil(lambda: k.screen_name == "selfservice_home", timeout=10_000)
    reader.put("resident")
    qtbot.waitUntil(lambda: k.cards.person is not None, timeout=10_000)
    person = k.cards.person
    assert person is not None and person["masked_name"] == "测*"
    tap(qtbot, k, "ss:housing_fund")
    qtbot.waitUntil(lambda: k.screen_name == "selfservice_result", timeout=10_000)
    assert h.printer.wait_for_tickets(1)
    assert "住房公积金缴存证明" in h.printer.tickets[-1].text
