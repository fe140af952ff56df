"""Offline tickets join hall-central's queue by their ``issued_at`` (MQTT.md, Event
envelope), a late answer is settled by the ticket's event, and a voided number is never
called — against the real service (in this process) over a real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_process import Listener, P, envelope

from conftest import TEST_CATALOG, TZ, wait_until
from hall_agent.contract.config import load_catalog
from sim.broker import Broker
from sim.central import Central

pytestmark = pytest.mark.slow


@pytest.fixture
def central(broker: Broker, tmp_path: Path) -> Iterator[Central]:
    c = Central("127.0.0.1", broker.port, "fz-citizen", load_catalog(TEST_CATALOG),
                tmp_path / "c", TZ)
    c.start()
    assert c.connected.wait(10)
    yield c
    c.stop()


def issued(tid: str, number: str, at: str) -> dict[str, object]:
    return {"ticket_id": tid, "number": number, "service": "A", "channel": "kiosk",
            "priority": False, "issued_at": at}


def test_offline_tickets_are_merged_by_their_issue_time(broker: Broker,
                                                        central: Central) -> None:
    ears = Listener(broker, f"{P}/agent/kiosk-03/ack", f"{P}/agent/kiosk-03/reply")
    try:
        a = f"{P}/agent/kiosk-03"
        # Online first: the central numbers A001 now.
        ears.send(f"{a}/request", json.dumps({"req_id": "r1", "ticket_id": "online-1",
                                              "service": "A", "ts": "2026-11-30T09:00:00+08:00"}))
        assert wait_until(lambda: len(ears.on(f"{a}/reply")) == 1, 10)
        # Then a kiosk's backlog from an outage an hour ago, sent late and out of order.
        ev = []
        for seq, (tid, num, at) in enumerate([
                ("off-2", "A702", "2020-01-01T08:10:00+08:00"),
                ("off-1", "A701", "2020-01-01T08:05:00+08:00")], start=1):
            body = json.loads(envelope("kiosk-03", seq, "ticket.issued", issued(tid, num, at)))
            body["offline"] = True
            ev.append(json.dumps(body))
        for e in ev:
            ears.send(f"{a}/event", e)
        assert wait_until(lambda: len(ears.acked(f"{a}/ack")) == 2, 10)
        called = [central.call("5") for _ in range(3)]
        assert [c.ticket for c in called if c] == ["A701", "A702", "A001"]
    finally:
        ears.close()


def test_a_late_answer_is_settled_by_the_event_and_a_void_is_never_called(
        broker: Broker, central: Central) -> None:
    ears = Listener(broker, f"{P}/agent/kiosk-04/ack", f"{P}/agent/kiosk-04/reply")
    try:
        a = f"{P}/agent/kiosk-04"
        for rid, tid in (("r1", "late"), ("r2", "gone")):
            ears.send(f"{a}/request", json.dumps({"req_id": rid, "ticket_id": tid,
                                                  "service": "A", "ts": 0}))
        assert wait_until(lambda: len(ears.on(f"{a}/reply")) == 2, 10)
        # The kiosk gave up waiting for "late" and used its lease: the event says A900.
        ears.send(f"{a}/event", envelope("kiosk-04", 1, "ticket.issued",
                                         issued("late", "A900", "2026-11-30T09:00:00+08:00")))
        ears.send(f"{a}/event", envelope("kiosk-04", 2, "ticket.voided",
                                         {"ticket_id": "gone", "req_id": "r2",
                                          "service": "A", "reason": "killed"}))
        assert wait_until(lambda: len(ears.acked(f"{a}/ack")) == 2, 10)
        row = central.store.one("SELECT number FROM tickets WHERE ticket_id = 'late'")
        assert row is not None and row[0] == "A900"
        calls = [central.call("5") for _ in range(2)]
        assert [c.ticket for c in calls if c] == ["A900"], "the voided A002 is never called"
    finally:
        ears.close()
