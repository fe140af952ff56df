"""A large outbox after a long time offline drains against a real Mosquitto (MQTT.md):
everything arrives, first sent in ``seq`` order, each event stored once. How fast is
measured in bench/bench_mqtt.py, never asserted here."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import TEST_CATALOG, HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog
from hall_agent.contract.mqtt import EventEnvelope
from hall_agent.contract.topics import Topics
from hall_agent.core.store import Store
from sim.broker import Broker
from sim.central import Central

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
AGENT = "kiosk-01"
BACKLOG = 3000
TS = "2026-11-30T09:12:03.412+08:00"


def fill_outbox(data_dir: Path, n: int) -> None:
    """``n`` events written while the agent was down, a few hundred per transaction."""
    store = Store(data_dir)
    kinds = ["door.opened", "selfservice.used", "ticket.printed"]
    for start in range(0, n, 250):
        with store.tx() as db:
            for i in range(start, min(n, start + 250)):
                store.outbox.add(db, kinds[i % 3], {"n": i}, ts_iso=TS, offline=True)
    store.close()


class Listener:
    """Every ``A/event`` the broker delivers, in the order it delivers them."""

    def __init__(self, broker: Broker) -> None:
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id="drain-listener", protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_: self._subscribed.set()
        self.c.connect("127.0.0.1", broker.port)
        self.c.subscribe(Topics(HALL, AGENT).event, qos=1)
        self.c.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seqs.append(EventEnvelope.model_validate_json(msg.payload).seq)

    def distinct(self) -> int:
        with self._lock:
            return len(set(self.seqs))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def unacked(db: Path) -> int:
    with sqlite3.connect(db) as c:
        return int(c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")
                   .fetchone()[0])


def test_a_large_backlog_drains_completely_in_order_and_each_event_is_stored_once(
        broker: Broker, tmp_path: Path) -> None:
    central = Central("127.0.0.1", broker.port, HALL, load_catalog(TEST_CATALOG),
                      tmp_path / "central", ZoneInfo("Asia/Shanghai"))
    central.start()
    assert central.connected.wait(10)
    h = HallUnderTest(tmp_path / "hall", extra_toml=f'[mqtt]\nhost = "127.0.0.1"\n'
                                                    f"port = {broker.port}\n")
    data = h.config_path.parent / "data"
    fill_outbox(data, BACKLOG)
    listener = Listener(broker)
    try:
        h.start()
        db = data / "hall-agent.sqlite3"
        assert wait_until(lambda: unacked(db) == 0, 90), f"{unacked(db)} never acknowledged"
        with sqlite3.connect(db) as c:
            ours = [(r[0], r[1]) for r in c.execute("SELECT seq, msg_id FROM outbox "
                                                     "ORDER BY seq")]
        assert len(ours) == BACKLOG
        got = central.received(AGENT)
        # Every event stored, each once, with the seq and msg_id it was written with.
        assert sorted((e["seq"], e["msg_id"]) for e in got) == ours
        assert central.stats()["unique_events"] == BACKLOG
        # First sent in seq order: a resend may repeat an event, never overtake one.
        # The listener is a subscriber of its own and may still be reading the tail
        # the central has already acknowledged: wait until it has seen every event.
        assert wait_until(lambda: listener.distinct() >= BACKLOG, 90), \
            f"the listener saw {listener.distinct()} of {BACKLOG} events"
        with listener._lock:
            seen = list(listener.seqs)
        first_sent = list(dict.fromkeys(seen))
        assert first_sent == [seq for seq, _ in ours]
    finally:
        listener.close()
        h.close()
        central.stop()
