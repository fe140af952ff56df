"""The agent against a real Mosquitto and the central stand-in: MQTT.md end to end."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import TEST_CATALOG, HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog
from sim.broker import Broker
from sim.central import Central

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
AGENT = "kiosk-01"


def make_central(broker: Broker, root: Path) -> Central:
    c = Central("127.0.0.1", broker.port, HALL, load_catalog(TEST_CATALOG), root,
                ZoneInfo("Asia/Shanghai"))
    c.start()
    assert c.connected.wait(10)
    return c


@pytest.fixture
def central(broker: Broker, tmp_path: Path) -> Iterator[Central]:
    c = make_central(broker, tmp_path / "central")
    yield c
    c.stop()


def mqtt_toml(broker: Broker, timeout_ms: int = 800) -> str:
    return (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f"request_timeout_ms = {timeout_ms}\nkeepalive_s = 5\n")


@pytest.fixture
def agent(broker: Broker, central: Central, tmp_path: Path) -> Iterator[HallUnderTest]:
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker))
    h.start()
    assert wait_until(lambda: h.health()["mode"] == "central", 15), h.health()
    assert wait_until(lambda: lease_rows(h) > 0, 10), "no lease arrived"
    yield h
    h.close()


def db(h: HallUnderTest) -> sqlite3.Connection:
    return sqlite3.connect(h.config_path.parent / "data" / "hall-agent.sqlite3")


def lease_rows(h: HallUnderTest) -> int:
    with db(h) as c:
        return int(c.execute("SELECT COUNT(*) FROM leases").fetchone()[0])


def unacked(h: HallUnderTest) -> int:
    with db(h) as c:
        return int(c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")
                   .fetchone()[0])


def outbox_ids(h: HallUnderTest) -> set[str]:
    with db(h) as c:
        return {r[0] for r in c.execute("SELECT msg_id FROM outbox")}


def take(h: HallUnderTest, service: str = "A") -> dict[str, Any]:
    r = h.client().post("/v1/tickets", json={"service": service},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return dict(r.json())


def assert_all_delivered_once(h: HallUnderTest, central: Central) -> None:
    assert wait_until(lambda: unacked(h) == 0, 60), f"{unacked(h)} events never acknowledged"
    ids = outbox_ids(h)
    got = central.received(AGENT)
    assert {e["msg_id"] for e in got} == ids, "every event stored once at the central"
    seqs = [e["seq"] for e in got]
    assert len(seqs) == len(set(seqs)) == len(ids)


def test_online_ticket_is_numbered_by_the_central(agent: HallUnderTest,
                                                  central: Central) -> None:
    t = take(agent)
    assert (t["number"], t["offline"]) == ("A001", False)
    assert central.stats()["tickets"] == 1
    assert_all_delivered_once(agent, central)
    issued = [e for e in central.received(AGENT) if e["type"] == "ticket.issued"]
    assert issued[0]["data"]["ticket_id"] == t["ticket_id"] and not issued[0]["offline"]


def test_broker_outage_numbers_from_the_lease_and_loses_nothing(
        agent: HallUnderTest, central: Central, broker: Broker) -> None:
    online = [take(agent) for _ in range(3)]
    assert [t["number"] for t in online] == ["A001", "A002", "A003"]
    broker.stop()
    assert wait_until(lambda: agent.health()["mode"] == "offline", 15)
    offline = [take(agent) for _ in range(5)]
    assert all(t["offline"] for t in offline)
    assert [t["number"] for t in offline] == ["A500", "A501", "A502", "A503", "A504"]
    health = agent.health()
    assert health["devices"]["mqtt"]["status"] == "fault"  # type: ignore[index]
    broker.start()
    assert wait_until(lambda: agent.health()["mode"] == "central", 30)
    assert_all_delivered_once(agent, central)
    # The offline tickets joined the central queue by ticket_id, with their lease numbers.
    assert central.stats()["tickets"] == 8
    after = take(agent)
    assert after["number"] == "A004" and not after["offline"]


def test_agent_killed_with_a_full_outbox_delivers_after_restart(
        agent: HallUnderTest, central: Central) -> None:
    central.faults.drop_acks = True
    for _ in range(6):
        take(agent, "B")
    assert wait_until(lambda: central.stats()["unique_events"] >= 6, 10)
    assert unacked(agent) >= 6
    agent.kill()
    central.faults.drop_acks = False
    agent.start()
    assert_all_delivered_once(agent, central)
    assert central.stats()["duplicates"] >= 1  # resent after the restart, stored once


def test_late_reply_is_dropped_and_the_event_settles_the_number(
        agent: HallUnderTest, central: Central) -> None:
    central.faults.delay_ms = 1500  # the agent waits 800 ms
    t = take(agent)
    assert t["offline"] is True and t["number"] == "A500"
    time.sleep(1.0)  # the late answer arrives and is dropped
    central.faults.delay_ms = 0
    assert_all_delivered_once(agent, central)
    row = central.store.one("SELECT number FROM tickets WHERE ticket_id = ?",
                            (t["ticket_id"],))
    assert row is not None and row[0] == "A500"
    # The offline event reached the central before its own slow answer was due, so the
    # answer repeated A500 (numbering is keyed by ticket_id) and A001 was never used.
    assert take(agent)["number"] == "A001"


def test_silent_central_still_gets_tickets_out_of_the_kiosk(
        agent: HallUnderTest, central: Central) -> None:
    central.faults.silent = True
    started = time.monotonic()
    t = take(agent)
    assert t["offline"] is True and time.monotonic() - started < 5
    central.faults.silent = False
    central.command(AGENT, "sync")
    assert_all_delivered_once(agent, central)


def test_a_hung_central_costs_the_wait_only_a_few_times(
        agent: HallUnderTest, central: Central) -> None:
    """Connected but not answering (hung, overloaded): after 3 unanswered requests the
    agent numbers from the lease without asking, says so in its health, and asks again
    as soon as the central acknowledges again or announces itself online anew."""
    central.faults.silent = True
    tickets = [take(agent) for _ in range(8)]
    assert all(t["offline"] for t in tickets)
    assert [t["number"] for t in tickets] == [f"A{n}" for n in range(500, 508)]
    assert central.requests_ignored == 3, "only the first 3 citizens waited for it"
    mqtt_health = agent.health()["devices"]["mqtt"]  # type: ignore[index]
    assert mqtt_health["status"] == "degraded", mqtt_health
    assert "not answering number requests" in mqtt_health["detail"], mqtt_health
    assert agent.health()["mode"] == "central"  # still connected, still syncing

    # It recovers: the first acknowledgement brings the next request forward.
    central.faults.silent = False
    central.command(AGENT, "sync")  # the agent sends its events again
    assert wait_until(lambda: unacked(agent) == 0, 15)
    t = take(agent)
    assert (t["number"], t["offline"]) == ("A001", False)
    assert agent.health()["devices"]["mqtt"]["status"] == "ok"  # type: ignore[index]

    # Hung again, then it restarts: offline, then online (retained state, as on boot).
    central.faults.silent = True
    assert all(take(agent)["offline"] for _ in range(4))
    assert central.requests_ignored == 6
    central.faults.silent = False
    state = f"qms/v1/{HALL}/central/state"
    for online in (False, True):
        central.client.publish(state, json.dumps({"online": online}), qos=1,
                               retain=True).wait_for_publish(5)
        assert wait_until(lambda o=online: agent.health()["mode"]  # type: ignore[misc]
                          == ("central" if o else "offline"), 10)
    t = take(agent)
    assert (t["number"], t["offline"]) == ("A002", False)
    assert agent.health()["devices"]["mqtt"]["status"] == "ok"  # type: ignore[index]
    assert_all_delivered_once(agent, central)


def test_after_the_pause_one_request_probes_the_hung_central(
        broker: Broker, central: Central, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The link itself (in-process, real broker and central): once the pause is over one
    request goes out as a probe; answered, numbering by the central resumes."""
    from hall_agent.contract.config import load_config
    from hall_agent.contract.mqtt import NumberReply, NumberRequest
    from hall_agent.core.store import Store
    from hall_agent.link import breaker
    from hall_agent.link import mqtt as mqtt_link

    monkeypatch.setattr(breaker, "ASK_AGAIN_AFTER_S", 1.0)
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker))
    link = mqtt_link.MqttLink(load_config(h.config_path), Store(tmp_path / "data"), 1, "t",
                              mqtt_link.LinkHandlers(), lambda: "central")
    link.start()
    try:
        assert wait_until(lambda: link.central_available, 10)

        def ask() -> NumberReply | None:
            return link.request_number(NumberRequest(
                req_id=str(uuid.uuid4()), ticket_id=str(uuid.uuid4()), service="A",
                ts="2026-11-30T09:00:00+08:00"), 0.3)

        central.faults.silent = True
        assert [ask() for _ in range(5)] == [None] * 5
        assert (central.requests_ignored, link.unanswered, link.not_asked) == (3, 3, 2)
        assert not link.central_answering
        time.sleep(1.1)  # the pause is over: the next request probes, still unanswered
        assert ask() is None and central.requests_ignored == 4 and link.not_asked == 2
        assert ask() is None and link.not_asked == 3  # paused again
        central.faults.silent = False
        time.sleep(1.1)
        reply = ask()
        assert reply is not None and reply.ok and reply.number == "A001"
        assert link.central_answering and link.unanswered == 0
        assert ask() is not None  # asked every time again
    finally:
        link.stop()


def test_the_central_tops_up_a_lease_that_runs_low(broker: Broker, tmp_path: Path) -> None:
    """A long stretch without central numbers: the central adds a block once fewer than
    half of the agent's leased numbers are left, so offline numbering carries on."""
    central = Central("127.0.0.1", broker.port, HALL, load_catalog(TEST_CATALOG),
                      tmp_path / "central", ZoneInfo("Asia/Shanghai"), lease_size=10)
    central.start()
    assert central.connected.wait(10)
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker, timeout_ms=300))
    h.start()
    try:
        assert wait_until(lambda: lease_rows(h) > 0, 15), "no lease arrived"
        central.faults.delay_ms = 2000  # every answer too late: numbered from the lease

        def blocks() -> list[tuple[int, int]]:
            with db(h) as c:
                return [(r[0], r[1]) for r in c.execute(
                    "SELECT from_n, to_n FROM leases WHERE service = 'A' ORDER BY from_n")]

        first = [take(h) for _ in range(7)]
        assert [t["number"] for t in first] == [f"A{n}" for n in range(500, 507)]
        assert all(t["offline"] for t in first)
        assert wait_until(lambda: len(blocks()) == 2, 10), blocks()
        assert blocks() == [(500, 509), (510, 519)]
        more = [take(h) for _ in range(7)]
        assert [t["number"] for t in more] == [f"A{n}" for n in range(507, 514)]
        central.faults.delay_ms = 0
        assert_all_delivered_once(h, central)
        numbers = [r[0] for r in central.store.query(
            "SELECT number FROM tickets WHERE number >= 'A500'")]
        assert len(numbers) == len(set(numbers)) == 14
    finally:
        h.close()
        central.stop()


def test_central_calls_are_shown_once_even_when_repeated(
        agent: HallUnderTest, central: Central, broker: Broker) -> None:
    t = take(agent)
    call = central.call("5")
    assert call is not None and call.ticket == t["number"]
    # The same call again (a redelivery): shown once.
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="dup")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish(f"qms/v1/{HALL}/central/call", call.model_dump_json(), qos=1).wait_for_publish()
    info = agent.client().get(f"/v1/tickets/{t['ticket_id']}").json()
    assert wait_until(lambda: agent.client().get(
        f"/v1/tickets/{t['ticket_id']}").json()["status"] == "called", 10), info
    time.sleep(0.5)
    with db(agent) as c:
        n = c.execute("SELECT COUNT(*) FROM calls WHERE call_id = ?", (call.call_id,)
                      ).fetchone()[0]
        shown = c.execute("SELECT COUNT(*) FROM outbox WHERE type = 'call.shown'").fetchone()[0]
    assert (n, shown) == (1, 1)
    assert agent.client().get(f"/v1/tickets/{t['ticket_id']}").json()["calls"] == 1
    pub.loop_stop()
    # In central mode the agent does not call by itself.
    assert agent.client().post("/v1/calls", json={"window": "5"}).status_code == 409


def test_malformed_payloads_are_rejected_and_counted_never_a_crash(
        agent: HallUnderTest, broker: Broker) -> None:
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="fuzz")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    a = f"qms/v1/{HALL}/agent/{AGENT}"
    for topic, payload in [(f"{a}/reply", b"not json"), (f"{a}/ack", b'{"acks": 5}'),
                           (f"{a}/lease", b'{"day": "yesterday", "blocks": []}'),
                           (f"{a}/cmd", b'{"name": "reprint"}'),
                           (f"qms/v1/{HALL}/central/call", b'{"call_id": 1}'),
                           (f"qms/v1/{HALL}/central/queue", b"\xff\xfe"),
                           (f"qms/v1/{HALL}/central/satisfaction", b"[]")]:
        pub.publish(topic, payload, qos=1).wait_for_publish()
    pub.loop_stop()
    assert wait_until(lambda: "7 malformed" in str(agent.health()["devices"]), 10), \
        agent.health()
    assert take(agent)["number"] == "A001"


def test_retained_command_is_ignored_and_a_live_one_answered(
        agent: HallUnderTest, broker: Broker) -> None:
    t = take(agent)
    results: list[dict[str, Any]] = []
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="ops")
    sub.on_message = lambda c, u, m: results.append(json.loads(m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"qms/v1/{HALL}/agent/{AGENT}/cmd_result", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    before = len(agent.printer.tickets)
    cmd = f"qms/v1/{HALL}/agent/{AGENT}/cmd"
    sub.publish(cmd, json.dumps({"cmd_id": "r1", "name": "reprint",
                                 "args": {"ticket_id": t["ticket_id"]}}), qos=1, retain=True)
    time.sleep(0.5)
    assert results == []
    sub.publish(cmd, b"", qos=1, retain=True)  # clear it
    sub.publish(cmd, json.dumps({"cmd_id": "r2", "name": "reprint",
                                 "args": {"ticket_id": t["ticket_id"]}}), qos=1)
    assert wait_until(lambda: len(results) == 1, 10)
    assert results[0]["cmd_id"] == "r2" and results[0]["ok"] is True
    assert wait_until(lambda: len(agent.printer.tickets) == before + 1, 10)
    sub.loop_stop()


def test_birth_will_and_clean_stop(broker: Broker, central: Central, tmp_path: Path) -> None:
    states: list[dict[str, Any]] = []
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="watch")
    sub.on_message = lambda c, u, m: states.append(json.loads(m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"qms/v1/{HALL}/agent/{AGENT}/state", qos=1)
    sub.loop_start()
    h = HallUnderTest(tmp_path / "h", extra_toml=mqtt_toml(broker))
    try:
        h.start()
        assert wait_until(lambda: any(s["online"] for s in states), 10)
        boot = next(s for s in states if s["online"])["boot"]
        h.kill()  # the broker sends the will
        assert wait_until(lambda: states[-1] == {"online": False, "boot": boot}, 20), states
        h.start()
        assert wait_until(lambda: states[-1].get("online") and states[-1]["boot"] == boot + 1,
                          10)
        h.stop()  # clean stop: offline said by the agent itself
        assert wait_until(lambda: states[-1]["online"] is False and "ts" in states[-1], 10)
    finally:
        sub.loop_stop()
        h.close()


def test_no_lease_and_no_central_says_so_plainly(broker: Broker, tmp_path: Path) -> None:
    h = HallUnderTest(tmp_path / "h", extra_toml=mqtt_toml(broker))
    try:
        h.start()
        r = h.client().post("/v1/tickets", json={"service": "A"})
        assert r.status_code == 503
        assert r.json()["error"] == "no_number" and "咨询台" in r.json()["message"]
        with db(h) as c:
            assert c.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 0
    finally:
        h.close()


def test_events_flow_while_tickets_are_taken_concurrently(
        agent: HallUnderTest, central: Central) -> None:
    got: list[str] = []

    def kiosk() -> None:
        for _ in range(10):
            got.append(take(agent, "B")["number"])

    threads = [threading.Thread(target=kiosk) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(got) == len(set(got)) == 30
    assert_all_delivered_once(agent, central)


def test_everything_the_agent_publishes_matches_the_published_schemas(
        broker: Broker, central: Central, tmp_path: Path) -> None:
    import jsonschema

    from hall_agent.contract.mqtt import SCHEMA_DIR

    seen: list[tuple[str, bytes]] = []
    spy = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="spy")
    spy.on_message = lambda c, u, m: seen.append((m.topic, bytes(m.payload)))
    spy.connect("127.0.0.1", broker.port)
    spy.subscribe(f"qms/v1/{HALL}/#", qos=1)
    spy.loop_start()
    h = HallUnderTest(tmp_path / "h", extra_toml=mqtt_toml(broker))
    try:
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15)
        take(h)
        central.call("5")
        h.printer.set_state(paper="end")
        take(h)
        h.client().post("/v1/evaluations", json={"window": "5", "level": "satisfied"})
        central.command(AGENT, "test_print")
        assert wait_until(lambda: unacked(h) == 0, 20)
        time.sleep(0.5)
    finally:
        h.close()
        spy.loop_stop()
    kinds = {"state": "agent-state", "event": "agent-event", "request": "agent-request",
             "cmd_result": "agent-cmd_result", "reply": "central-reply",
             "ack": "central-ack", "lease": "central-lease", "cmd": "central-cmd"}
    checked: set[str] = set()
    for topic, payload in seen:
        parts = topic.split("/")
        kind = (f"central-{parts[4]}" if parts[3] == "central" else
                "agent-device" if parts[5] == "device" else kinds.get(parts[5], ""))
        if not kind or not payload:
            continue
        schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
        jsonschema.validate(json.loads(payload), schema)
        checked.add(kind)
    assert {"agent-state", "agent-device", "agent-event", "agent-request",
            "agent-cmd_result", "central-reply", "central-ack", "central-call"} <= checked


def test_staff_call_key_in_central_mode_goes_to_the_central(
        agent: HallUnderTest, central: Central) -> None:
    t = take(agent)
    assert agent.sim.command("eval press 5 11").startswith("ok"), "key pressed on window 5"
    # The central received the key as an event, called the ticket, and the call came back.
    assert wait_until(lambda: agent.client().get(
        f"/v1/tickets/{t['ticket_id']}").json()["status"] == "called", 15)
    assert any(e["type"] == "staff.key" and e["data"] == {"window": "5",
                                                          "action": "call_next"}
               for e in central.received(AGENT))
    with db(agent) as c:
        assert c.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
