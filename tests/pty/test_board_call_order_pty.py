"""A call's frames on a shared RS-485 bus: the hall board's first, back to back.

Order, not timing: the benchmark (bench/bench_bus.py) measures what this buys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.rs485 import Cmd
from hall_agent.agent import Agent
from hall_agent.contract.config import load_config
from sim.bus import SimBoard, SimBus
from sim.hall import SimHall
from sim.procs import wait_until

ROOT = Path(__file__).resolve().parents[2]
HALL, WIN5 = 1, 11


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[tuple[SimHall, Agent]]:
    sim = SimHall(tmp_path, catalog=str(ROOT / "tests" / "data" / "services.toml"))
    sim.write_config()
    agent = Agent(load_config(sim.config_path))
    agent.start()
    assert sim.bus is not None
    bus = sim.bus
    assert wait_until(lambda: bus.board(HALL).text()[0] != "", 10)
    try:
        yield sim, agent
    finally:
        agent.close()
        sim.close()


def _frames(bus: SimBus, t0: float) -> list[tuple[float, int, int]]:
    with bus.lock:
        got = [(r.ts, a, r.frame.cmd) for a, d in bus.devices.items() for r in d.received
               if r.ts >= t0]
    return sorted(got)


def _boards_quiet(bus: SimBus, for_s: float) -> bool:
    """No board (evaluators aside) got a frame but INFO in the last ``for_s``."""
    since = time.monotonic() - for_s
    return not any(isinstance(bus.devices[a], SimBoard) and c != Cmd.INFO
                   for _, a, c in _frames(bus, since))


def test_the_hall_board_gets_a_call_before_the_window_board(
        hall: tuple[SimHall, Agent]) -> None:
    sim, agent = hall
    assert sim.bus is not None
    bus = sim.bus
    assert agent.boards.hall_first  # the default
    for _ in range(4):
        agent.tickets.issue("A")
    for _ in range(3):  # three calls: the hall board's lines shift, several frames each
        # Start from a settled bus: the tickets' waiting counts (and the last call's
        # tail) are painted, so every board frame from t0 on belongs to this call.
        assert wait_until(lambda: _boards_quiet(bus, 0.5), 20), "the boards never settled"
        t0 = time.monotonic()
        body = agent.calls.call("5", "call")
        want, short = f"请 {body['ticket']} 号到 5 号窗口", f"请 {body['ticket']} 号"
        assert wait_until(lambda want=want, short=short: bus.board(HALL).text()[0] == want
                          and bus.board(WIN5).text()[1] == short
                          and bus.board(HALL).chimes > 0 and bus.board(WIN5).chimes > 0, 10)
        assert wait_until(lambda t0=t0: any(
            a == WIN5 and c == Cmd.CHIME for _, a, c in _frames(bus, t0)), 10)
        frames = [(a, c) for _, a, c in _frames(bus, t0) if c != Cmd.INFO]
        hall_idx = [i for i, (a, _) in enumerate(frames) if a == HALL]
        win_idx = [i for i, (a, _) in enumerate(frames) if a == WIN5]
        # Every hall frame of the call, then the window board's; nothing between the
        # hall board's frames (no evaluator poll, no window board).
        assert hall_idx and win_idx, frames
        assert max(hall_idx) < min(win_idx), frames
        assert hall_idx == list(range(hall_idx[0], hall_idx[-1] + 1)), frames
        bus.board(HALL).chimes = 0
        bus.board(WIN5).chimes = 0
