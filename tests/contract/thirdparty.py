"""A central queue written by a third party from ``docs/protocols/MQTT.md`` alone.

Nothing of the project is used here (not sim/central.py, not the contract models or
topics): raw paho for the conversation, ``mosquitto_pub`` for what a person types into
a shell, JSON written by hand. It numbers requests, acknowledges events, holds a
retained lease and state, and records what the agent answers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HALL_TZ = ZoneInfo("Asia/Shanghai")  # the hall's zone, as its central knows it
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"

Reply = Callable[[dict[str, Any]], str | None]  # request → the raw reply text, None: silent


def today() -> str:
    return datetime.now(HALL_TZ).date().isoformat()


class ThirdPartyCentral:
    def __init__(self, port: int, hall: str, agent: str) -> None:
        self.port = port
        self.p = f"qms/v1/{hall}"
        self.a = f"{self.p}/agent/{agent}"
        self.requests: list[dict[str, Any]] = []
        self.cmd_results: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.next_number = 1
        self.reply: Reply = self.number_reply
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id="third-party-central", protocol=mqtt.MQTTv311)
        self.client.will_set(f"{self.p}/central/state", '{"online": false}', qos=1,
                             retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()

    # ------------------------------------------------------------------ session

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "third-party central could not connect"

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(f"{self.a}/request", 1), (f"{self.a}/event", 1),
                          (f"{self.a}/cmd_result", 1)])
        self.connected.set()

    def _on_message(self, client: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[1]
        if kind == "request":
            with self._lock:
                self.requests.append(body)
            text = self.reply(body)
            if text is not None:
                client.publish(f"{self.a}/reply", text, qos=1)
        elif kind == "event":
            with self._lock:
                self.events.append(body)
            client.publish(f"{self.a}/ack", json.dumps({"acks": [body["msg_id"]]}), qos=1)
        elif kind == "cmd_result":
            with self._lock:
                self.cmd_results.append(body)

    def number_reply(self, req: dict[str, Any]) -> str:
        """The plain answer of MQTT.md: the next number of the service, as the page shows."""
        n, self.next_number = self.next_number, self.next_number + 1
        return json.dumps({"req_id": req["req_id"], "ok": True,
                           "number": f"{req['service']}{n:03d}", "waiting_ahead": 0,
                           "est_wait_s": 0})

    # ------------------------------------------------------------------ publishing

    def pub(self, topic: str, text: str, *, retain: bool = False) -> None:
        """Publish ``text`` exactly as typed with ``mosquitto_pub`` (an empty text is sent
        as a zero-length message: ``-n``, the way to clear a retained topic)."""
        args = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1",
                "-i", "third-party-shell", "-t", topic]
        args += ["-n"] if text == "" else ["-m", text]
        if retain:
            args.append("-r")
        subprocess.run(args, check=True, timeout=10, capture_output=True)

    def state(self, text: str) -> None:
        self.pub(f"{self.p}/central/state", text, retain=True)

    def online(self) -> None:
        self.state(json.dumps({"online": True,
                               "ts": datetime.now(HALL_TZ).isoformat(timespec="milliseconds")}))

    def lease(self) -> None:
        self.pub(f"{self.a}/lease", json.dumps({"day": today(), "blocks": [
            {"service": s, "from": 900, "to": 949} for s in ("A", "B", "C")]}), retain=True)

    def call(self, text: str) -> None:
        self.pub(f"{self.p}/central/call", text)

    def cmd(self, text: str) -> None:
        self.pub(f"{self.a}/cmd", text)
