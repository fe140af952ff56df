"""The hall-day soak against the real hall-central, in short form (bench/soak_central.py
runs the full day: 8,000 tickets): three kiosk agents, twenty clerks on the console's
JSON API, every fault, hall-central SIGKILLed twice; nothing lost, doubled or undone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak_central import CentralSoak, report

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_a_short_hall_day_at_the_real_central_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    r = CentralSoak(tmp_path, tickets=180, duration_s=60, seed=5).run()
    text = report(r, 180, 60)
    print(text)
    assert r["settled"], text
    assert r["kiosks"] == 3 and r["clerks"] == 20
    assert r["lost"] == 0 and r["duplicated"] == 0, text
    assert r["tickets_answered"] == r["tickets_in_agent_stores"] == r["tickets_at_central"] \
        == 180, text
    assert r["duplicate_numbers_central"] == 0 == r["duplicate_numbers_across_kiosks"], text
    assert r["clerk_actions_stored"] == r["clerk_actions_answered"] > 180, text
    assert r["clerk_actions_missing"] == 0 == r["clerk_actions_stored_twice"], text
    assert r["waiting_at_central"] == 0 and r["outbox_unacknowledged"] == 0, text
    assert r["offline_tickets"] > 0, "the faults really took the central away for a while"
    assert sum("SIGKILLed" in f and "hall-central" in f for f in r["faults"]) == 2, text
    assert r["ok"], text
