"""An ONBON hall board driven by the real board service, over a pty and over TCP.

The agent runs in this process; every byte goes through its ONBON driver
(drivers/onbon_link.py), a pty or a 127.0.0.1 socket, and the simulated
controller's side of the vendor's protocol (sim/onbon.py), which decodes the
dots it was sent. A test compares those dots with the text rendered the way the
board service renders it, so a call that is painted wrong fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from drivers.bus_config import BoardConfig
from drivers.onbon import Cmd, DisplayMode, Group
from drivers.onbon_area import decode_pixels
from drivers.onbon_render import render_line
from drivers.rs485 import Colour
from drivers.types import Health
from hall_agent.agent import Agent
from hall_agent.contract.config import load_config
from hall_agent.services.boards import call_text
from hall_agent.services.boards_onbon import DAY_LEVEL
from sim.hall import SimHall
from sim.onbon import SimOnbon
from sim.procs import wait_until

ROOT = Path(__file__).resolve().parents[2]
TEST_CATALOG = ROOT / "tests" / "data" / "services.toml"


class OnbonHall:
    def __init__(self, root: Path, model: str, transport: str) -> None:
        self.sim = SimHall(root, catalog=str(TEST_CATALOG), boards=model,
                           board_transport=transport)
        self.sim.write_config()
        self.agent = Agent(load_config(self.sim.config_path))
        self.agent.start()

    @property
    def ctl(self) -> SimOnbon:
        assert self.sim.onbon is not None
        return self.sim.onbon

    @property
    def board_cfg(self) -> BoardConfig:
        return next(b for b in self.agent.cfg.boards if b.protocol != "hall-edge")

    def line_dots(self, line: int) -> list[list[int]] | None:
        with self.ctl.lock:
            a = self.ctl.areas.get(line)
        if a is None:
            return None
        return decode_pixels(self.ctl.model, a.pages[0].bitmap, a.width, a.height,
                             colours=self.ctl.colours)

    def shows(self, line: int, text: str, colour: int = Colour.RED) -> bool:
        return self.line_dots(line) == render_line(text, self.ctl.width, colour)

    def call(self, ticket: str, window: str) -> None:
        self.agent.boards.show_call(f"c-{ticket}", ticket, window)

    def close(self) -> None:
        self.agent.close()
        self.sim.close()


@pytest.fixture(params=[("onbon-bx5", "serial"), ("onbon-bx5", "tcp"), ("onbon-bx6", "tcp"),
                        ("onbon-bx6", "serial")], ids=lambda p: f"{p[0]}-{p[1]}")
def hall(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnbonHall]:
    h = OnbonHall(tmp_path, *request.param)
    yield h
    h.close()


def test_a_call_is_painted_on_the_onbon_board(hall: OnbonHall) -> None:
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.OK
                      and hall.ctl.requests, 15)
    hall.call("A001", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A001", "5")), 15), hall.ctl.describe()
    with hall.ctl.lock:
        assert hall.ctl.areas[0].pages[0].mode == DisplayMode.FLASH  # a fresh call flashes
    hall.call("B002", "6")
    assert wait_until(lambda: hall.shows(0, call_text("B002", "6"))
                      and hall.shows(1, call_text("A001", "5")), 15), hall.ctl.describe()
    # The dimming table went out with the first paint: the test catalogue is open around
    # the clock, so the board is bright all day (tests/unit/test_onbon.py: the night).
    assert any((g, c) == (Group.CONTROL, Cmd.BRIGHTNESS) for _, g, c, _ in hall.ctl.requests)
    assert hall.ctl.brightness == [DAY_LEVEL] * 48
    png = hall.ctl.png_path
    assert png is not None
    assert wait_until(png.exists, 10)
    assert Image.open(png).size[0] > 192


def test_a_power_cycled_controller_is_repainted(hall: OnbonHall) -> None:
    hall.call("A007", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A007", "5")), 20), hall.ctl.describe()
    boots = hall.ctl.boots
    hall.sim.command("onbon power off")
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.FAULT, 20)
    detail = hall.agent.devices()["board-hall"].detail
    assert hall.ctl.model.value in detail and hall.board_cfg.where in detail
    hall.sim.command("onbon power on")
    assert hall.ctl.boots == boots + 1 and not hall.ctl.areas  # blank after the power cut
    assert wait_until(lambda: hall.shows(0, call_text("A007", "5")), 30), hall.ctl.describe()
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.OK, 10)


def test_a_nack_makes_the_service_repaint_the_whole_board(hall: OnbonHall) -> None:
    hall.call("A010", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A010", "5")), 20)
    # The controller restarted between two heartbeats (nothing noticed it) and then
    # refuses the next update: the service must paint every line again.
    with hall.ctl.lock:
        hall.ctl.areas.clear()
        hall.ctl.faults.nack = 1
    hall.call("A011", "6")
    assert wait_until(lambda: hall.shows(0, call_text("A011", "6"))
                      and hall.shows(1, call_text("A010", "5")), 30), hall.ctl.describe()
    assert hall.ctl.nacks_sent >= 1
    deletes = [r for r in hall.ctl.requests if (r[1], r[2]) == (Group.AREA, Cmd.AREA_DELETE)]
    assert len(deletes) >= 2  # the first paint and the repaint both start from a clean board


def test_garbage_on_the_line_and_bad_answers_lose_nothing(hall: OnbonHall) -> None:
    hall.call("A020", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A020", "5")), 20)
    # Noise before the answer (a cable picking up interference, half a frame from
    # elsewhere): the driver skips it and the call still lands.
    hall.sim.command("onbon fault noise 00ff5aa5a61177")
    hall.call("A021", "6")
    assert wait_until(lambda: hall.shows(0, call_text("A021", "6")), 20), hall.ctl.describe()
    assert hall.ctl.noise == b""
    # Answers with a bad CRC are not answers: the board goes fault, saying so, and the
    # call made meanwhile is on it once the answers are good again.
    hall.sim.command("onbon fault bad_crc on")
    hall.call("A022", "5")
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.FAULT, 30)
    assert "no answer" in hall.agent.devices()["board-hall"].detail
    hall.sim.command("onbon fault bad_crc off")
    assert wait_until(lambda: hall.shows(0, call_text("A022", "5"))
                      and hall.shows(1, call_text("A021", "6")), 30), hall.ctl.describe()
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.OK, 10)


def test_an_unreachable_tcp_controller_is_a_clear_fault(tmp_path: Path) -> None:
    h = OnbonHall(tmp_path, "onbon-bx5", "tcp")
    try:
        assert wait_until(lambda: h.ctl.areas, 15)
        h.sim.command("onbon power off")  # the port refuses now, like a controller unplugged
        h.call("A030", "5")
        assert wait_until(lambda: "cannot connect" in h.agent.devices()["board-hall"].detail
                          or "closed the connection" in h.agent.devices()["board-hall"].detail,
                          30), h.agent.devices()["board-hall"]
        detail = h.agent.devices()["board-hall"].detail
        assert h.board_cfg.where in detail and "onbon-bx5" in detail
        h.sim.command("onbon power on")
        assert wait_until(lambda: h.shows(0, call_text("A030", "5")), 30), h.ctl.describe()
    finally:
        h.close()


def test_a_controller_that_keeps_refusing_is_reported_not_hammered(hall: OnbonHall) -> None:
    hall.call("A040", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A040", "5")), 20)
    # The controller's screen is narrower than the config says: it answers pings but
    # refuses every picture (ERR_SCREEN_PARA).
    with hall.ctl.lock:
        hall.ctl.width = 160
        nacks = hall.ctl.nacks_sent
    hall.call("A041", "6")
    assert wait_until(lambda: "check width" in hall.agent.devices()["board-hall"].detail, 30)
    assert hall.agent.devices()["board-hall"].status == Health.FAULT
    # The heartbeat ping is answered, and does not clear the fault.
    assert wait_until(lambda: hall.ctl.requests[-1][1:3] == (Group.CONTROL, Cmd.PING), 15)
    assert hall.agent.devices()["board-hall"].status == Health.FAULT
    with hall.ctl.lock:
        refused = hall.ctl.nacks_sent - nacks
        hall.ctl.width = 192
    assert refused == 3  # the update; then each of its 2 lines once, repainted; no more
    hall.call("A042", "5")
    assert wait_until(lambda: hall.shows(0, call_text("A042", "5"))
                      and hall.shows(1, call_text("A041", "6")), 30), hall.ctl.describe()
    assert wait_until(lambda: hall.agent.devices()["board-hall"].status == Health.OK, 10)
