"""Shared fixtures: a real agent process on simulated hardware."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hall_agent.agent import Agent
from sim.broker import Broker, free_port
from sim.hall import SimHall
from sim.printer import SimPrinter
from sim.procs import AgentProcess, wait_until

ROOT = Path(__file__).resolve().parent.parent
TEST_CATALOG = ROOT / "tests" / "data" / "services.toml"
TZ = ZoneInfo("Asia/Shanghai")
# The machines tests run on may have no NTP (the kernel says "not synchronised"): the
# tests believe the clock unless one says otherwise (hall_agent/core/clock.py).
os.environ.setdefault("HALL_EDGE_CLOCK_SYNCED", "1")
__all__ = ["ROOT", "TEST_CATALOG", "TZ", "Clock", "HallUnderTest", "free_port", "wait_until"]


class Clock:
    """A clock the tests move, passed to the engine or agent as ``clock=``."""

    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def set(self, when: datetime | str) -> None:
        """A datetime, or "HH:MM" for that time of the same hall-local day."""
        if isinstance(when, str):
            h, m = (int(x) for x in when.split(":"))
            when = datetime.fromtimestamp(self.t, TZ).replace(hour=h, minute=m)
        self.t = when.timestamp()


class HallUnderTest(AgentProcess):
    """An agent process (started by the test) driving simulated devices in this process."""

    def __init__(self, root: Path, catalog: Path = TEST_CATALOG, extra_toml: str = "",
                 id_devices: bool = False) -> None:
        self.sim = SimHall(root, api=f"127.0.0.1:{free_port()}", catalog=str(catalog),
                           health_interval_ms=1000, extra_toml=extra_toml,
                           id_devices=id_devices)
        self.sim.write_config()
        super().__init__(self.sim.config_path, self.sim.api, root / "agent.log")

    @property
    def printer(self) -> SimPrinter:
        return self.sim.printer

    def close(self) -> None:
        self.stop()
        self.sim.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """One-off builds before the first test, outside pytest-timeout's per-test limit (which
    covers fixture setup too): each selected test module's ``prepare_session(config)``, once.
    The install test's Debian root is one; it keeps its own time limit and reports its own
    failure through its fixture."""
    if session.config.option.collectonly:
        return
    modules = {id(m): m for item in session.items if (m := getattr(item, "module", None))}
    for module in modules.values():
        prepare = getattr(module, "prepare_session", None)
        if callable(prepare):
            prepare(session.config)


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[HallUnderTest]:
    h = HallUnderTest(tmp_path / "hall")
    try:
        h.start()
        yield h
    finally:
        with contextlib.suppress(Exception):
            h.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A private Mosquitto on its own loopback port."""
    b = Broker()
    b.start()
    yield b
    b.close()


# A udev rule line: every comma-separated part is a match or an assignment udev knows.
RULE_PART = re.compile(r'^(SUBSYSTEM|KERNEL|KERNELS|ATTRS?\{\w+\}|ENV\{\w+\})=="[^"]*"$'
                       r'|^(SYMLINK\+|GROUP|MODE)="[^"]*"$')


def rule_ok(line: str) -> bool:
    return all(RULE_PART.match(p.strip()) for p in line.split(","))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """An agent in this process, standalone, no devices: the API and the core."""
    from hall_agent.contract.config import Config

    cfg = Config.model_validate({
        "hall": {"id": "fz-citizen", "name": "福州市市民服务中心",
                 "catalog": str(TEST_CATALOG)},
        "agent": {"data_dir": str(tmp_path)}})
    a = Agent(cfg)
    yield a
    a.close()
