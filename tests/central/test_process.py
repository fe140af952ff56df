"""The real hall-central process (``python -m central.main``, what systemd starts) with a
real Mosquitto and real kiosk agents: numbering for several kiosks, a SIGKILL of
hall-central mid-work with nothing lost, staff keys, duplicates, seq gaps, garbage."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import TEST_CATALOG, HallUnderTest, wait_until
from sim.broker import Broker
from sim.central import CentralProcess, write_config

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
P = f"qms/v1/{HALL}"


@pytest.fixture
def central(broker: Broker, tmp_path: Path) -> Iterator[CentralProcess]:
    cfg = write_config(tmp_path / "central", broker_port=broker.port, catalog=TEST_CATALOG,
                       lease_size=50, rules={"recall_min_interval_s": 0})
    c = CentralProcess(cfg, tmp_path / "central.log")
    c.start()
    yield c
    c.stop()


def kiosk(root: Path, broker: Broker, agent_id: str) -> HallUnderTest:
    h = HallUnderTest(root, extra_toml=f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                                       "keepalive_s = 5\n")
    h.sim.agent_id = agent_id
    h.sim.write_config()
    h.start()
    assert wait_until(lambda: h.health()["mode"] == "central", 20), h.health()
    assert wait_until(lambda: agent_db(h, "SELECT COUNT(*) FROM leases")[0][0] > 0, 15)
    return h


def agent_db(h: HallUnderTest, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(h.config_path.parent / "data" / "hall-agent.sqlite3") as c:
        return c.execute(sql).fetchall()


def central_rows(c: CentralProcess, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    with c.db() as db:
        return db.execute(sql, args).fetchall()


def take(h: HallUnderTest, service: str = "A") -> dict[str, Any]:
    r = h.client().post("/v1/tickets", json={"service": service},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return dict(r.json())


class Listener:
    """A plain MQTT client beside the agents: what hall-central publishes."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        self.got: list[tuple[str, dict[str, Any] | None, bool]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=f"listener-{uuid.uuid4().hex[:6]}")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", broker.port)
        for t in topics:
            self.c.subscribe(t, 1)
        self.c.loop_start()

    def _on(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((m.topic, json.loads(m.payload) if m.payload else None, m.retain))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for t, p, _ in self.got if t == topic and p is not None]

    def acked(self, topic: str) -> list[str]:
        """The msg_ids acknowledged on an ``A/ack`` topic: one message may carry
        several (a batch stored in one commit)."""
        return [i for p in self.on(topic) for i in p.get("acks", [])]

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def envelope(agent: str, seq: int, etype: str, data: dict[str, Any],
             msg_id: str | None = None) -> str:
    return json.dumps({"v": 1, "msg_id": msg_id or str(uuid.uuid4()), "seq": seq, "boot": 1,
                       "ts": "2026-11-30T09:12:03.412+08:00", "hall": HALL, "agent": agent,
                       "type": etype, "offline": False, "data": data})


def test_two_kiosks_number_through_one_central_with_unique_numbers(
        broker: Broker, central: CentralProcess, tmp_path: Path) -> None:
    k1, k2 = kiosk(tmp_path / "k1", broker, "kiosk-01"), kiosk(tmp_path / "k2", broker,
                                                              "kiosk-02")
    try:
        got = [take(k) for _ in range(5) for k in (k1, k2)]
        numbers = [t["number"] for t in got]
        assert numbers == [f"A{n:03d}" for n in range(1, 11)]
        assert not any(t["offline"] for t in got)
        # Each kiosk holds its own lease blocks, apart from each other.
        b1 = agent_db(k1, "SELECT from_n, to_n FROM leases WHERE service = 'A'")
        b2 = agent_db(k2, "SELECT from_n, to_n FROM leases WHERE service = 'A'")
        assert b1 and b2 and not {n for lo, hi in b1 for n in range(lo, hi + 1)} & {
            n for lo, hi in b2 for n in range(lo, hi + 1)}
        assert wait_until(lambda: central_rows(
            central, "SELECT COUNT(*) FROM received WHERE type = 'ticket.issued'")[0][0] == 10,
            20)
    finally:
        k1.close()
        k2.close()


def test_central_sigkilled_mid_work_loses_nothing(broker: Broker, central: CentralProcess,
                                                  tmp_path: Path) -> None:
    """Two kiosks issue tickets without pause while hall-central is SIGKILLed twice: the
    kiosks ride through on their leases, and once it is back every ticket is in the
    central's queue once, with numbers unique across kiosks, every event acknowledged."""
    kiosks = [kiosk(tmp_path / f"k{i}", broker, f"kiosk-0{i}") for i in (1, 2)]
    answers: list[dict[str, Any]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def citizens(h: HallUnderTest) -> None:
        while not stop.is_set():
            t = take(h, "A")
            with lock:
                answers.append(t)

    threads = [threading.Thread(target=citizens, args=(h,)) for h in kiosks]
    try:
        for t in threads:
            t.start()
        for _ in range(2):
            n = len(answers)
            assert wait_until(lambda n=n: len(answers) >= n + 8, 30)  # type: ignore[misc]
            central.kill()
            m = len(answers)
            assert wait_until(lambda m=m: len(answers) >= m + 5, 30), "kiosks stalled"
            central.start()
        n = len(answers)
        assert wait_until(lambda: len(answers) >= n + 8, 30)
        stop.set()
        for t in threads:
            t.join(30)
        assert any(t["offline"] for t in answers), "some tickets came from the leases"
        ids = {t["ticket_id"] for t in answers}
        for h in kiosks:
            assert wait_until(lambda h=h: agent_db(  # type: ignore[misc]
                h, "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")[0][0] == 0, 90)
        rows = central_rows(central, "SELECT ticket_id, day, number FROM tickets")
        assert {r[0] for r in rows} == ids, "every ticket at the central, none extra"
        dup = [k for k, c in Counter((r[1], r[2]) for r in rows).items() if c > 1]
        assert not dup, f"numbers given twice: {dup}"
        assert len({t["number"] for t in answers}) == len(answers)
        stored = central_rows(central, "SELECT COUNT(*), SUM(deliveries) FROM received")[0]
        sent = sum(agent_db(h, "SELECT COUNT(*) FROM outbox")[0][0] for h in kiosks)
        assert stored[0] == sent, "each event stored once"
    finally:
        stop.set()
        for h in kiosks:
            h.close()


def test_a_staff_key_calls_once_per_msg_id_and_is_audited(
        broker: Broker, central: CentralProcess, tmp_path: Path) -> None:
    k = kiosk(tmp_path / "k1", broker, "kiosk-01")
    ears = Listener(broker, f"{P}/central/call", f"{P}/agent/kiosk-09/ack")
    try:
        t = take(k, "B")
        key = envelope("kiosk-09", 1, "staff.key", {"window": 6, "action": "CALL_NEXT"},
                       msg_id="key-1")
        ears.send(f"{P}/agent/kiosk-09/event", key)
        assert wait_until(lambda: len(ears.on(f"{P}/central/call")) == 1, 10)
        call = ears.on(f"{P}/central/call")[0]
        assert (call["ticket"], call["window"], call["kind"]) == (t["number"], "6", "call")
        ears.send(f"{P}/agent/kiosk-09/event", key)  # redelivered: acknowledged again
        assert wait_until(lambda: len(ears.acked(f"{P}/agent/kiosk-09/ack")) == 2, 10)
        assert len(ears.on(f"{P}/central/call")) == 1, "one call per msg_id"
        audit = central_rows(central, "SELECT staff, channel, action, number FROM audit")
        assert [tuple(r) for r in audit] == [("evaluator@6", "evaluator", "call_next",
                                              t["number"])]
        assert central_rows(central, "SELECT deliveries FROM received WHERE msg_id = "
                                     "'key-1'")[0][0] == 2
        # The agent shows the call on its boards: it arrives there as a call.shown event.
        assert wait_until(lambda: agent_db(k, "SELECT COUNT(*) FROM calls")[0][0] == 1, 10)
    finally:
        ears.close()
        k.close()


def test_a_seq_gap_is_answered_by_cmd_sync(broker: Broker, central: CentralProcess) -> None:
    ears = Listener(broker, f"{P}/agent/kiosk-07/cmd", f"{P}/agent/kiosk-07/ack")
    try:
        ev = f"{P}/agent/kiosk-07/event"
        ears.send(ev, envelope("kiosk-07", 1, "door.opened", {}))
        assert wait_until(lambda: len(ears.acked(f"{P}/agent/kiosk-07/ack")) == 1, 10)
        assert ears.on(f"{P}/agent/kiosk-07/cmd") == []
        ears.send(ev, envelope("kiosk-07", 4, "door.opened", {}))  # 2 and 3 never came
        assert wait_until(lambda: len(ears.on(f"{P}/agent/kiosk-07/cmd")) == 1, 10)
        cmd = ears.on(f"{P}/agent/kiosk-07/cmd")[0]
        assert cmd["name"] == "sync" and cmd["cmd_id"]
    finally:
        ears.close()


def test_garbage_and_odd_but_legal_messages(broker: Broker, central: CentralProcess) -> None:
    """Garbage is logged and counted, never a crash; an odd but legal request (a number
    as req_id, lower-case service, unknown fields) is answered."""
    ears = Listener(broker, f"{P}/agent/kiosk-05/reply", f"{P}/agent/kiosk-05/ack")
    try:
        a = f"{P}/agent/kiosk-05"
        for topic, junk in [(f"{a}/event", b"\xff\xfe"), (f"{a}/event", b"[1,2]"),
                            (f"{a}/request", b"{"), (f"{a}/state", b'{"online":"yes"}'),
                            (f"{a}/event", b'{"type":"door.opened"}')]:
            ears.send(topic, junk)
        ears.send(f"{a}/state", b"", retain=True)  # a cleared retained state: not an error
        ears.send(f"{a}/request", json.dumps({
            "req_id": 12345, "ticket_id": "t-1", "service": "a", "ts": 1764465123,
            "extra": {"nested": [1]}}))
        assert wait_until(lambda: len(ears.on(f"{a}/reply")) == 1, 10), central.log()[-2000:]
        reply = ears.on(f"{a}/reply")[0]
        assert reply["req_id"] == "12345" and reply["ok"] is True and reply["number"] == "A001"
        ears.send(f"{a}/request", json.dumps({"req_id": "r2", "ticket_id": "t-1",
                                              "service": "A", "ts": "x"}))
        assert wait_until(lambda: len(ears.on(f"{a}/reply")) == 2, 10)
        assert ears.on(f"{a}/reply")[1]["number"] == "A001", "numbering keyed by ticket_id"
        assert central.log().count("rejected a message") == 5
        assert central.pid is not None
    finally:
        ears.close()
