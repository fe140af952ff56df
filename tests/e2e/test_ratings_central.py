"""One rating per visit in central mode: the central calls (tickets of this kiosk and
of others), the kiosk and the evaluator rate, the central counts each visit once; and
hallctl shows who each window serves."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_mqtt import AGENT, lease_rows, mqtt_toml, take
from test_mqtt import central as central

from conftest import ROOT, HallUnderTest, wait_until
from drivers.rs485 import Key
from sim.broker import Broker
from sim.central import Central


@pytest.fixture
def hall(broker: Broker, central: Central, tmp_path: Path) -> Iterator[HallUnderTest]:
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker))
    try:
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15), h.health()
        assert wait_until(lambda: lease_rows(h) > 0, 10), "no lease arrived"
        yield h
    finally:
        h.close()


def ratings_at_central(central: Central) -> list[tuple[str, str | None, str]]:
    return [(e["data"]["window"], e["data"]["ticket"], e["data"]["level"])
            for e in central.received(AGENT) if e["type"] == "evaluation.submitted"]


def status(h: HallUnderTest) -> str:
    r = subprocess.run([sys.executable, "-m", "hallctl.main", "status", "--config",
                        str(h.config_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return r.stdout


def test_each_visit_is_rated_once_in_central_mode(hall: HallUnderTest,
                                                  central: Central) -> None:
    assert hall.sim.bus is not None
    assert take(hall)["number"] == "A001"
    assert central.call("5") is not None
    assert wait_until(lambda: hall.client().get("/v1/queue").json()["windows"]["5"]
                      ["serving"] == "A001", 15)
    assert "serving: 5:A001" in status(hall)
    with hall.client() as c:
        r = c.post("/v1/evaluations", json={"window": "5", "level": "satisfied"})
        assert r.status_code == 201 and r.json()["ticket"] == "A001", r.text
        hall.sim.bus.press("5", Key.VERY_UNSATISFIED)  # the same visit, on the evaluator
        ev = hall.sim.bus.evaluator_at("5")
        assert wait_until(lambda: not ev.events, 15)  # acknowledged, not stored
        again = c.post("/v1/evaluations", json={"window": "5", "level": "basic",
                                                "reason": "long_wait"})
        assert again.status_code == 409 and again.json()["error"] == "already_rated"
        # A ticket another kiosk took, called by the central: rated once too.
        central.engine.issue("B")
        assert central.call("6") is not None
        assert wait_until(lambda: c.get("/v1/queue").json()["windows"]["6"]["serving"]
                          == "B001", 15)
        hall.sim.bus.press("6", Key.VERY_SATISFIED)
        assert wait_until(lambda: len(ratings_at_central(central)) == 2, 20)
        late = c.post("/v1/evaluations", json={"window": "6", "level": "satisfied",
                                               "ticket": "B001"})
        assert late.status_code == 409 and late.json()["error"] == "already_rated"
    assert "serving: 5:A001 6:B001" in status(hall)
    assert sorted(ratings_at_central(central)) == [("5", "A001", "satisfied"),
                                                   ("6", "B001", "very_satisfied")]
