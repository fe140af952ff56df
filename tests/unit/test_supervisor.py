"""The device supervisor: a vanished printer comes back by itself, and a hung one never
holds up a ticket."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import TEST_CATALOG, wait_until
from drivers.printer import TicketPrinter
from drivers.printer_config import PrinterConfig
from drivers.types import DeviceHealth, Health
from hall_agent.agent import Agent
from hall_agent.api.app import create_app
from hall_agent.contract.config import Config, load_config
from hall_agent.core.events import Event
from hall_agent.core.supervisor import DeviceSupervisor, DeviceTimeout
from hall_agent.services.printing import print_deadline_s
from sim.printer import SimPrinter

STATUS_TIMEOUT_MS = 200


def write_config(root: Path, printer_toml: str, health_interval_ms: int = 10_000) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "agent.toml"
    path.write_text(
        f'[hall]\nid = "test-hall"\nname = "测试大厅"\ncatalog = "{TEST_CATALOG}"\n\n'
        f'[agent]\ndata_dir = "{root / "data"}"\nhealth_interval_ms = {health_interval_ms}\n\n'
        f"[voice]\nenabled = false\n\n[printer]\n{printer_toml}\n", encoding="utf-8")
    return load_config(path)


class DeviceEvents:
    """The ``device`` events the agent published for one device, in order."""

    def __init__(self, agent: Agent, device: str) -> None:
        self.seen: list[tuple[str, str]] = []
        self._device = device
        agent.bus.listen(self._on)

    def _on(self, ev: Event) -> None:
        if ev.kind == "device" and ev.data["device"] == self._device:
            self.seen.append((ev.data["status"], ev.data["detail"]))

    @property
    def statuses(self) -> list[str]:
        return [s for s, _ in self.seen]


# ---------------------------------------------------------------------------- replug

@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    s = SimPrinter(tmp_path / "out")
    yield s
    s.close()


def test_unplugged_printer_is_reopened_within_2s_of_replug(tmp_path: Path,
                                                          sim: SimPrinter) -> None:
    link = tmp_path / "hall-printer"  # as udev's SYMLINK+="hall-printer"
    link.symlink_to(sim.port)
    # A healthy device is checked only every 10 s: the replug must be noticed anyway.
    cfg = write_config(tmp_path, f'port = "{link}"\nstatus_timeout_ms = {STATUS_TIMEOUT_MS}')
    agent = Agent(cfg)
    events = DeviceEvents(agent, "printer")
    agent.start()
    try:
        assert wait_until(lambda: events.statuses[-1:] == ["ok"], 5)

        sim.close()  # the cable is pulled: the pty and its node are gone,
        link.unlink()  # and udev removes the link (else its /dev/pts/N may be reused)
        assert wait_until(lambda: events.statuses[-1:] == ["fault"], 2)
        assert "check the USB cable" in events.seen[-1][1]
        time.sleep(3)  # stays unplugged for a while: reported once, not at every poll
        assert events.statuses == ["ok", "fault"]

        with SimPrinter(tmp_path / "out2") as new:  # plugged back: a new device node
            link.symlink_to(new.port)
            t0 = time.monotonic()
            assert wait_until(lambda: events.statuses[-1:] == ["ok"], 2)
            assert time.monotonic() - t0 < 2
            assert events.statuses == ["ok", "fault", "ok"]
            body = agent.tickets.issue("A")
            assert body.printed is True
            assert new.wait_for_tickets(1)
    finally:
        agent.close()


def test_printer_replugged_between_two_health_checks_prints_the_next_ticket(
        tmp_path: Path, sim: SimPrinter) -> None:
    """Unplugged and back within a second: the old handle is stale, the node is new."""
    link = tmp_path / "hall-printer"
    link.symlink_to(sim.port)
    cfg = write_config(tmp_path, f'port = "{link}"\nstatus_timeout_ms = {STATUS_TIMEOUT_MS}')
    agent = Agent(cfg)
    agent.start()
    try:
        assert wait_until(lambda: agent.devices()["printer"].status is Health.OK, 5)
        with SimPrinter(tmp_path / "out2") as new:
            sim.close()
            link.unlink()
            link.symlink_to(new.port)
            time.sleep(1.0)
            body = agent.tickets.issue("A")
            assert body.printed is True, body.print_detail
            assert new.wait_for_tickets(1)
    finally:
        agent.close()


# ---------------------------------------------------------------------------- hung device

class HangingLink:
    """A printer that answers its status but whose ticket write never returns
    (as a USB write stuck in the kernel does) until ``release`` is set."""

    has_status = True

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self._replies = bytearray()
        self.writes = 0

    def write(self, data: bytes, timeout_s: float) -> None:
        if data[:2] == b"\x10\x04":
            self._replies.append(0x12)  # every status query: all fine (PRINTER.md)
            return
        self.writes += 1
        self.release.wait()

    def read(self, timeout_s: float) -> bytes:
        out, self._replies[:] = bytes(self._replies), b""
        return out

    def flush_input(self) -> None:
        self._replies.clear()

    def close(self) -> None:
        pass


def test_hung_printer_does_not_stall_ticket_issue(tmp_path: Path) -> None:
    release = threading.Event()
    links: list[HangingLink] = []

    def factory(cfg: PrinterConfig, timeout_s: float) -> HangingLink:
        links.append(HangingLink(release))
        return links[-1]

    cfg = write_config(tmp_path, f'transport = "file"\nport = "{tmp_path / "spool"}"\n'
                                 f"status_timeout_ms = {STATUS_TIMEOUT_MS}")
    assert cfg.printer is not None
    deadline = print_deadline_s(cfg.printer)
    printer = TicketPrinter(cfg.printer, link_factory=factory)
    agent = Agent(cfg, printer=printer)
    agent.start()
    client = TestClient(create_app(agent))
    try:
        answers: list[tuple[float, Any]] = []
        for i in range(2):
            t0 = time.monotonic()
            r = client.post("/v1/tickets", json={"service": "A"},
                            headers={"Idempotency-Key": f"hung-{i}"})
            answers.append((time.monotonic() - t0, r))
        for took, r in answers:
            assert r.status_code == 201
            assert r.json()["printed"] is False
            assert "not responding" in r.json()["print_detail"]
            assert took < deadline + 0.5
        assert links[0].writes == 1  # the second ticket did not queue behind the first
        health = client.get("/v1/health").json()
        assert health["devices"]["printer"]["status"] == "fault"
        assert "not responding" in health["devices"]["printer"]["detail"]
        # Both tickets are in the queue all the same.
        assert client.get("/v1/queue").json()["services"]["A"]["waiting"] == 2

        release.set()  # the write finally returns: the printer works again
        r = client.post("/v1/tickets", json={"service": "A"})
        assert r.status_code == 201 and r.json()["printed"] is True
    finally:
        release.set()
        agent.close()


def test_printer_status_of_a_hung_printer_answers_in_bounded_time(tmp_path: Path) -> None:
    release = threading.Event()
    cfg = write_config(tmp_path, f'transport = "file"\nport = "{tmp_path / "spool"}"\n'
                                 f"status_timeout_ms = {STATUS_TIMEOUT_MS}")
    assert cfg.printer is not None
    agent = Agent(cfg, printer=TicketPrinter(
        cfg.printer, link_factory=lambda c, t: HangingLink(release)))
    agent.start()
    closed = False
    try:
        threading.Thread(target=agent.printing.test_print, daemon=True).start()  # hangs in write
        assert wait_until(lambda: "not responding" in agent.devices()["printer"].detail,
                          print_deadline_s(cfg.printer) + 1)
        t0 = time.monotonic()
        h = agent.printing.status()
        assert time.monotonic() - t0 < print_deadline_s(cfg.printer) + 0.5
        assert h.status is Health.FAULT and "not responding" in h.detail
        t0 = time.monotonic()
        closed = True
        agent.close()  # still stuck: the stop does not wait for it forever
        assert time.monotonic() - t0 < 5
    finally:
        release.set()
        if not closed:
            agent.close()


# ---------------------------------------------------------------------------- the loop itself

def test_repeated_failures_back_off_instead_of_hammering_the_port() -> None:
    calls: list[float] = []

    def broken() -> DeviceHealth:
        calls.append(time.monotonic())
        return DeviceHealth(Health.FAULT, "printer at 192.0.2.10:9100: cannot connect")

    reports: list[DeviceHealth] = []
    sup = DeviceSupervisor(lambda _n, h: reports.append(h), healthy_interval_s=60,
                           fault_interval_s=0.05, max_backoff_s=0.4, tick_s=0.01)
    sup.add("printer", broken, deadline_s=1)
    sup.start()
    time.sleep(2.0)
    sup.close()
    # Without back-off: ~40 tries. With it: 3 at 50 ms, then 0.1, 0.2, 0.4, 0.4 …
    assert 6 <= len(calls) <= 10
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert max(gaps) == pytest.approx(0.4, abs=0.1)


def test_a_hung_check_does_not_stop_the_others() -> None:
    stuck = threading.Event()
    good: list[float] = []

    def hangs() -> DeviceHealth:
        stuck.wait()
        return DeviceHealth(Health.OK)

    def fine() -> DeviceHealth:
        good.append(time.monotonic())
        return DeviceHealth(Health.OK)

    reports: dict[str, DeviceHealth] = {}
    sup = DeviceSupervisor(lambda n, h: reports.__setitem__(n, h), healthy_interval_s=0.1,
                           tick_s=0.01)
    sup.add("board-hall", hangs, deadline_s=0.2, where="LED board on /dev/hall-rs485")
    sup.add("scanner", fine, deadline_s=0.2)
    sup.start()
    try:
        assert wait_until(lambda: len(good) >= 5, 3)
        assert sup.alive()
        assert reports["board-hall"].status is Health.FAULT
        assert "LED board on /dev/hall-rs485: not responding" in reports["board-hall"].detail
        with pytest.raises(DeviceTimeout):
            sup.call("board-hall", lambda: DeviceHealth(Health.OK), deadline_s=0.1)
    finally:
        stuck.set()
        sup.close()


def test_the_agent_limits_malloc_arenas_where_glibc_is() -> None:
    """One malloc arena for the agent's threads (hall_agent.main): glibc accepts it."""
    import platform

    from hall_agent.main import limit_malloc_arenas

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert limit_malloc_arenas() is True
