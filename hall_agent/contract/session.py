"""What both ends of the ★ MQTT contract do with their connection (MQTT.md, Session):
the agent's link (hall_agent/link/mqtt.py) and a central (sim/central.py)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any


def no_delay(_client: Any, _userdata: Any, sock: Any) -> None:
    """paho's ``on_socket_open``: small request/answer messages. Without TCP_NODELAY,
    Nagle and delayed ACKs add ~40 ms to each hop of a number request."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
