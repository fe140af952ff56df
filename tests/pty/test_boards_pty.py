"""LED boards over a simulated RS-485 bus on a pty, driven by a real agent core.

The agent runs in this process (so a test can publish calls and read the store),
but every byte goes through its real bus master, a pty and the simulated
devices' side of the same protocol.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from drivers.rs485 import Cmd, Frame, parse_text
from drivers.types import Health
from hall_agent.agent import Agent
from hall_agent.contract.config import load_config
from sim.bus import SimBus
from sim.hall import SimHall

ROOT = Path(__file__).resolve().parents[2]
TEST_CATALOG = ROOT / "tests" / "data" / "services.toml"
HALL, WIN5, WIN6 = 1, 11, 12


class AgentOnBus:
    """A SimHall (printer + RS-485 bus on ptys) and an in-process Agent pointed at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sim = SimHall(root, catalog=str(TEST_CATALOG))
        self.sim.write_config()
        self.agent: Agent | None = None

    @property
    def bus(self) -> SimBus:
        assert self.sim.bus is not None
        return self.sim.bus

    def start(self, **evaluator_kw: float) -> Agent:
        a = Agent(load_config(self.sim.config_path))
        for k, v in evaluator_kw.items():
            setattr(a.evaluators, k, v)
        a.start()
        self.agent = a
        return a

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None

    def close(self) -> None:
        self.stop()
        self.sim.close()

    def issue(self, *services: str) -> None:
        assert self.agent is not None
        for s in services:
            self.agent.tickets.issue(s)

    def health(self, name: str) -> Health:
        assert self.agent is not None
        return self.agent.devices()[name].status

    def frames_to(self, addr: int, since: float, cmd: int | None = None) -> list[Frame]:
        with self.bus.lock:
            got = list(self.bus.devices[addr].received)
        return [r.frame for r in got if r.ts >= since and (cmd is None or r.frame.cmd == cmd)]


def wait(pred: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[AgentOnBus]:
    h = AgentOnBus(tmp_path / "hall")
    try:
        h.start()
        assert wait(lambda: h.bus.board(HALL).text()[0] != "", 5), "hall board never filled"
        yield h
    finally:
        h.close()


def test_call_reaches_hall_and_window_board_with_the_text(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.issue("A", "A")
    t0 = time.monotonic()
    hall.agent.calls.call("5", "call")
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).text()[0] == "请 A001 号到 5 号窗口"
                             and hall.bus.board(WIN5).text()[1] == "请 A001 号", 10.0)
    # How fast is bench/bench_bus.py's to measure, never this test's to assert.
    texts = [parse_text(f.payload).text for f in hall.frames_to(HALL, t0, Cmd.TEXT)]
    assert "请 A001 号到 5 号窗口" in texts
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).chimes >= 1, 10.0)
    # Window 6's board has nothing to do with it.
    assert not any("A001" in parse_text(f.payload).text
                   for f in hall.frames_to(WIN6, t0, Cmd.TEXT))
    assert hall.bus.board(WIN5).text()[0] == "5号窗口"


def test_latest_call_is_on_top(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.issue("A", "B", "C")
    hall.agent.calls.call("5", "call")
    hall.agent.calls.call("6", "call")
    hall.agent.calls.call("8", "call")
    want = ["请 C001 号到 8 号窗口", "请 B001 号到 6 号窗口", "请 A001 号到 5 号窗口"]
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).text()[:3] == want, 2.0), \
        hall.bus.board(HALL).text()
    # A recall moves its ticket back to the top instead of listing it twice.
    hall.agent.calls.call("5", "recall")
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).text()[:3] == [
        "请 A001 号到 5 号窗口", "请 C001 号到 8 号窗口", "请 B001 号到 6 号窗口"], 2.0)


def test_paused_window_board_says_so(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.agent.queue.set_paused("5", True)
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text()[1] == "暂停服务", 3.0)
    hall.agent.queue.set_paused("5", False)
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text()[1] == "欢迎光临", 3.0)


def test_board_that_stops_answering_goes_fault_and_gets_its_content_back(
        hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.issue("A", "A")
    hall.bus.power(WIN5, False)
    hall.agent.calls.call("5", "call")
    assert wait(lambda: hall.health("board-5") is Health.FAULT, 3.0)
    # The other boards on the same bus carry on.
    assert hall.bus.wait_for(lambda: "A001" in hall.bus.board(HALL).text()[0], 2.0)
    assert hall.health("board-hall") is Health.OK
    hall.bus.power(WIN5, True)  # back, blank, as after a power cut
    assert hall.bus.board(WIN5).text() == ["", ""]
    assert wait(lambda: hall.health("board-5") is Health.OK, 8.0)  # re-probed every 5 s
    assert hall.bus.wait_for(lambda: hall.bus.board(WIN5).text() == ["5号窗口", "请 A001 号"],
                             2.0)


def test_rs485_adapter_unplugged_and_replugged_every_board_gets_the_current_content(
        hall: AgentOnBus) -> None:
    """The USB-RS485 adapter's cable is pulled (the port vanishes; the boards, powered on
    their own, keep their text) and plugged back in under a new pty. Calls made while it
    was gone reach every board once it is back, and nothing blocks meanwhile."""
    assert hall.agent is not None
    hall.issue("A", "A")
    hall.sim.unplug("bus")
    hall.agent.calls.call("5", "call")  # answered at once: boards are not on the call path
    assert wait(lambda: hall.health("board-hall") is Health.FAULT, 3.0)
    detail = hall.agent.devices()["board-hall"].detail
    assert "USB" in detail or "cannot open" in detail, detail
    assert "A001" not in hall.bus.board(HALL).text()[0]
    time.sleep(3.0)  # a technician takes a few seconds: reopening has failed meanwhile
    replugged = time.monotonic()
    hall.sim.replug("bus")
    assert hall.bus.wait_for(lambda: "A001" in hall.bus.board(HALL).text()[0]
                             and hall.bus.board(WIN5).text() == ["5号窗口", "请 A001 号"], 5.0)
    back_s = time.monotonic() - replugged
    assert wait(lambda: hall.health("board-hall") is Health.OK
                and hall.health("board-5") is Health.OK, 3.0)
    print(f"boards had the current content {back_s:.2f} s after the replug")


def test_crc_garbage_and_partial_frames_are_survived(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.issue("A", "B")
    # Noise and a broken frame on the line between transactions.
    hall.bus.inject(bytes.fromhex("aa55aa5501") + b"\x00\xff" * 10)
    hall.bus.inject(bytes.fromhex("aa5501810001"))  # a reply cut short
    # Every answer of the hall board gets split by a 40 ms gap (its master drops the
    # partial frame, then the retry gets through once the fault is cleared).
    hall.bus.set_faults(HALL, split_ms=40)
    hall.agent.calls.call("5", "call")
    assert wait(lambda: hall.health("board-hall") is Health.FAULT, 3.0)
    hall.bus.set_faults(HALL, split_ms=0, bad_crc=True)
    time.sleep(0.5)
    hall.bus.set_faults(HALL, bad_crc=False)
    assert wait(lambda: hall.health("board-hall") is Health.OK, 8.0)
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).text()[0] == "请 A001 号到 5 号窗口",
                             2.0)
    # A slow-but-in-time device is fine; the others never noticed anything.
    hall.bus.set_faults(HALL, slow_ms=60)
    hall.agent.calls.call("6", "call")
    assert hall.bus.wait_for(lambda: hall.bus.board(HALL).text()[0] == "请 B001 号到 6 号窗口",
                             2.0)
    assert hall.health("board-hall") is Health.OK
    assert hall.health("board-5") is Health.OK


def test_led_png_is_rendered(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    hall.issue("C")
    hall.agent.calls.call("8", "call")
    png = hall.bus.png_path(HALL)
    assert png is not None

    def red_lit() -> bool:
        """The PNG is wide and has red dots lit somewhere: the call line."""
        try:
            with Image.open(png) as im:
                colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
                return im.size[0] > 1000 and any(r > 200 and g < 80
                                                 for _, (r, g, b) in colours)
        except (OSError, SyntaxError):  # not there yet, or being rewritten
            return False

    assert wait(red_lit, 10.0), "the hall board's PNG never showed the call"


def test_window_board_of_two_lines_and_board_health_names(hall: AgentOnBus) -> None:
    assert hall.agent is not None
    names = set(hall.agent.devices())
    assert {"board-hall", "board-5", "board-6", "evaluator-5", "evaluator-6",
            "evaluator-8"} <= names
