"""An oversized MQTT message is dropped unread, and the broker is told the bound."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt

from conftest import ROOT, TEST_CATALOG
from hall_agent.contract.config import Config
from hall_agent.contract.mqtt import CentralQueue
from hall_agent.core.store import Store
from hall_agent.link.connect import MAX_MESSAGE_BYTES, Version
from hall_agent.link.mqtt import LinkHandlers, MqttLink


def link(tmp_path: Path, heard: list[CentralQueue]) -> MqttLink:
    cfg = Config.model_validate({
        "hall": {"id": "fz", "name": "大厅", "catalog": str(TEST_CATALOG)},
        "agent": {"data_dir": str(tmp_path)}, "mqtt": {"host": "127.0.0.1"}})
    h = LinkHandlers()
    h.on_queue = heard.append  # type: ignore[method-assign]
    return MqttLink(cfg, Store(tmp_path), 1, "test", h, lambda: "central")


def queue_message(topic: str, size: int) -> mqtt.MQTTMessage:
    note = "x" * size
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = json.dumps({"ts": "2026-11-30T09:00:00+08:00", "services": {},
                              "windows": {}, "note": note}).encode()
    msg.retain = True
    return msg


def test_an_oversized_retained_queue_is_dropped_unread(tmp_path: Path) -> None:
    heard: list[CentralQueue] = []
    lk = link(tmp_path, heard)
    lk._on_message(lk.client, None, queue_message(lk.t.central_queue, MAX_MESSAGE_BYTES))
    assert heard == [] and lk.rejected["oversize"] == 1
    lk._on_message(lk.client, None, queue_message(lk.t.central_queue, 100))
    assert len(heard) == 1  # a normal one is still read


def test_the_broker_is_told_the_bound_with_mqtt5() -> None:
    props = Version("auto").connect_args()["properties"]
    assert props.MaximumPacketSize > MAX_MESSAGE_BYTES


def test_the_hall_brokers_config_bounds_packets() -> None:
    conf = (ROOT / "config/mosquitto/hall-edge.conf").read_text(encoding="utf-8")
    assert any(line.split()[:1] == ["max_packet_size"] and
               int(line.split()[1]) > MAX_MESSAGE_BYTES for line in conf.splitlines())
