"""The MQTT version the link speaks and how it opens its persistent session
(MQTT.md, Session).

``protocol = "auto"`` (the default) connects with MQTT 5 and, when the broker refuses
it as an unsupported protocol version, with 3.1.1 from then on. Either way the session
persists across restarts: with 5 ``clean_start=False`` and a session expiry (paho's
default "clean first time only" would wipe the session at each restart), with 3.1.1
``clean_session=False`` (3.1.1 has no expiry; the broker keeps the session by its own
setting, Mosquitto's ``persistent_client_expiration``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("hall_agent.mqtt")

SESSION_EXPIRY_S = 7 * 24 * 3600  # ≥ 1 day (MQTT.md, Session): survives a long weekend
# What paho reports for a 3.1.1 CONNACK "unacceptable protocol version" (return code 1)
# on an MQTT 5 connection, and what an MQTT 5 broker answers itself (reason 0x84).
UNSUPPORTED_VERSION = 0x84
# The largest message the agent reads (MQTT.md messages are a few KB; a busy hall's
# central/queue well under this). An 85 MB retained central/queue took the agent to
# 1.6 GB. With 5 the broker is told (CONNECT Maximum Packet Size, MQTT 5 §3.1.2.11.8:
# it drops larger packets for us); with 3.1.1 the link drops them unread, and
# config/mosquitto/hall-edge.conf bounds what the broker accepts at all.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 64 * 1024  # + topic, properties, header


class Version:
    """The version to connect with next; it falls back once, never back up (a broker
    that refused 5 is not asked again until the agent restarts)."""

    def __init__(self, protocol: Literal["auto", 5, 311]) -> None:
        self.auto = protocol == "auto"
        self.v5 = protocol != 311

    @property
    def paho(self) -> MQTTProtocolVersion:
        return mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311

    @property
    def label(self) -> str:
        return "5" if self.v5 else "3.1.1"

    def client_args(self) -> dict[str, Any]:
        """For ``mqtt.Client(...)``: with 5 the session is set at each connect."""
        return {"protocol": self.paho, "clean_session": None if self.v5 else False}

    def connect_args(self) -> dict[str, Any]:
        """For ``connect_async(...)``."""
        if not self.v5:
            return {}
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.MaximumPacketSize = MAX_PACKET_BYTES
        return {"properties": props, "clean_start": False}

    def fall_back(self, rc: Any) -> bool:
        """True if the broker's refusal ``rc`` means: speak 3.1.1 from now on."""
        if not (self.auto and self.v5 and getattr(rc, "value", rc) == UNSUPPORTED_VERSION):
            return False
        self.v5 = False
        log.warning("MQTT: the broker refused MQTT 5 (%s); connecting with 3.1.1 from now "
                    "on (protocol = \"auto\")", rc)
        return True
