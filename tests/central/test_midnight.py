"""Leases through midnight: hall-central publishes each agent's next-day lease before
local midnight, so a kiosk running through midnight without the central still numbers
(the hall's clock is Asia/Shanghai; the machine runs UTC)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_process import HALL, Listener, P, agent_db

from central.service import HallCentral
from conftest import TEST_CATALOG, TZ, Clock, HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog
from sim.broker import Broker
from sim.central import CentralProcess, sim_config, write_config

pytestmark = pytest.mark.slow
LEASE = f"{P}/agent/kiosk-01/lease"


@pytest.fixture
def late(broker: Broker, tmp_path: Path) -> Iterator[tuple[HallCentral, Clock]]:
    clock = Clock(datetime(2026, 11, 30, 22, 0, tzinfo=TZ))
    cfg = sim_config("127.0.0.1", broker.port, HALL, tmp_path / "c", TZ, lease_size=20)
    c = HallCentral(cfg, load_catalog(TEST_CATALOG), clock=clock)
    c.start()
    assert c.connected.wait(10)
    yield c, clock
    c.stop()


def days(ears: Listener) -> list[str]:
    return [p["day"] for p in ears.on(LEASE)]


def test_the_next_days_lease_goes_out_before_midnight(
        late: tuple[HallCentral, Clock], broker: Broker) -> None:
    c, clock = late
    ears = Listener(broker, LEASE)
    try:
        ears.send(f"{P}/agent/kiosk-01/state", json.dumps({"online": True, "boot": 1}))
        assert wait_until(lambda: days(ears) == ["2026-11-30"], 10)
        c.tick()  # 22:00: two hours before midnight, not yet
        assert days(ears) == ["2026-11-30"]
        clock.set("23:05")
        c.tick()
        assert wait_until(lambda: days(ears) == ["2026-11-30", "2026-12-01"], 10)
        c.tick()  # once per agent and day
        # An agent reconnecting now gets today's blocks, then tomorrow's last (retained).
        ears.send(f"{P}/agent/kiosk-01/state", json.dumps({"online": True, "boot": 2}))
        assert wait_until(lambda: len(days(ears)) == 4, 10)
        assert days(ears)[2:] == ["2026-11-30", "2026-12-01"]
        fresh = Listener(broker, LEASE)
        assert wait_until(lambda: days(fresh) == ["2026-12-01"], 10)
        fresh.close()
        # Tomorrow's blocks never overlap what the central numbers itself tomorrow.
        tomorrow = ears.on(LEASE)[-1]["blocks"]
        assert {b["service"] for b in tomorrow} == {"A", "B", "C"}
        clock.set(datetime(2026, 12, 1, 8, 30, tzinfo=TZ))
        own = c.engine.issue("A").ticket
        a_block = next(b for b in tomorrow if b["service"] == "A")
        assert own.day == "2026-12-01" and not a_block["from"] <= int(own.number[1:]) <= \
            a_block["to"]
    finally:
        ears.close()


def test_a_kiosk_numbers_through_midnight_without_the_central(
        broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real hall-central and a real agent, both on a clock that starts at 23:59:40
    hall time (libfaketime); the central is SIGKILLed before midnight, and after midnight
    the kiosk still issues tickets, from the next day's lease."""
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
    monkeypatch.setenv("FAKETIME", "@2026-11-30 15:59:40")  # UTC = 23:59:40 in Shanghai
    if not Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1").exists():
        pytest.skip("libfaketime is not installed (scripts/bootstrap installs it)")
    cfg = write_config(tmp_path / "central", broker_port=broker.port, catalog=TEST_CATALOG,
                       lease_size=200)
    central = CentralProcess(cfg, tmp_path / "central.log")
    central.start()
    h = HallUnderTest(tmp_path / "k1", extra_toml=f'[mqtt]\nhost = "127.0.0.1"\n'
                                                  f"port = {broker.port}\nkeepalive_s = 5\n")
    try:
        h.start()
        for var in ("LD_PRELOAD", "FAKETIME"):
            monkeypatch.delenv(var)
        assert wait_until(lambda: {r[0] for r in agent_db(
            h, "SELECT DISTINCT day FROM leases")} == {"2026-11-30", "2026-12-01"}, 20), \
            central.log()[-2000:]
        central.kill()
        got: list[dict[str, Any]] = []

        def after_midnight() -> bool:
            r = h.client().post("/v1/tickets", json={"service": "A"},
                                headers={"Idempotency-Key": str(uuid.uuid4())})
            assert r.status_code == 201, r.text  # never refused for want of a lease
            got.append(r.json())
            day = agent_db(h, f"SELECT day FROM tickets WHERE ticket_id = "
                              f"'{r.json()['ticket_id']}'")[0][0]
            return bool(day == "2026-12-01")

        assert wait_until(after_midnight, 90, step=1.0)
        last = got[-1]
        blocks = agent_db(h, "SELECT from_n, to_n FROM leases WHERE day = '2026-12-01' AND "
                             "service = 'A'")
        assert last["offline"] and any(lo <= int(last["number"][1:]) <= hi for lo, hi in blocks)
    finally:
        h.close()
        central.stop()
