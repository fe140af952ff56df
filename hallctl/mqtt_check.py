"""``hallctl mqtt check``: connect to the broker as the agent would (its credentials and
TLS, a separate client id) and see whether the central is online."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import ConfigError
from hall_agent.contract.client import AgentRefused, AgentUnavailable
from hall_agent.contract.config import load_config, resolve_config_path
from hallctl.common import EXIT_DEVICE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Ctl


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


def mqtt_check(cfg: Any, timeout_s: float = 5.0) -> list[Step]:
    """Connect as the agent would (own credentials and TLS, a separate client id) and
    see the central's retained state."""
    import socket
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hall_agent.contract.topics import Topics

    m = cfg.mqtt
    steps: list[Step] = []
    try:
        addrs = socket.getaddrinfo(m.host, m.port, type=socket.SOCK_STREAM)
        steps.append(Step("resolve", True, f"{m.host} → {addrs[0][4][0]}"))
    except OSError as e:
        return [Step("resolve", False, f"{m.host}: {e}")]
    try:
        socket.create_connection((m.host, m.port), timeout=timeout_s).close()
        steps.append(Step("tcp", True, f"{m.host}:{m.port} accepts connections"))
    except OSError as e:
        return [*steps, Step("tcp", False, f"{m.host}:{m.port}: {e} — is the broker running, "
                                            "is the port open?")]
    done = threading.Event()
    got: dict[str, Any] = {}
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                    client_id=f"{cfg.agent.id}-check",
                    protocol=mqtt.MQTTv311 if m.protocol == 311 else mqtt.MQTTv5)
    try:
        if m.username:
            pw = Path(m.password_file).read_text().strip() if m.password_file else None
            c.username_pw_set(m.username, pw)
        if m.tls_ca or m.tls_cert:
            import ssl

            c.tls_set(ca_certs=m.tls_ca, certfile=m.tls_cert, keyfile=m.tls_key,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    except (OSError, ValueError) as e:
        return [*steps, Step("credentials", False, f"{e}")]
    topic = Topics(cfg.hall.id, cfg.agent.id).central_state

    def on_connect(cl: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        got["rc"] = rc
        if not rc.is_failure:
            cl.subscribe(topic, qos=1)
        else:
            done.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        got["central"] = msg.payload.decode(errors="replace")
        done.set()

    c.on_connect = on_connect
    c.on_message = on_message
    try:
        c.connect(m.host, m.port, keepalive=10)
    except Exception as e:  # TLS and socket errors come in many types
        return [*steps, Step("connect", False, f"{type(e).__name__}: {e} — TLS: check "
                                                "tls_ca and the clock")]
    c.loop_start()
    done.wait(timeout_s)
    c.disconnect()
    c.loop_stop()
    rc = got.get("rc")
    if rc is None:
        return [*steps, Step("connect", False, "no CONNACK from the broker")]
    if rc.is_failure:
        return [*steps, Step("connect", False, f"refused: {rc} — check username, "
                                                "password_file and the broker's ACL")]
    steps.append(Step("connect", True, f"logged in as {m.username or '(anonymous)'}"
                                        f"{' over TLS' if m.tls_ca else ''}"))
    central = got.get("central")
    if central is None:
        steps.append(Step("central", False, f"no retained {topic}: the central has never "
                                             "connected to this broker"))
    else:
        online = '"online":true' in central.replace(" ", "")
        steps.append(Step("central", online, f"central {'online' if online else 'offline'}"
                                              f" ({central})"))
    return steps


def cmd_mqtt(ctl: Ctl, a: argparse.Namespace) -> int:
    try:
        cfg = load_config(resolve_config_path(a.config))
    except ConfigError as e:
        return ctl.fail(EXIT_USAGE, "config", str(e))
    if cfg.mqtt is None:
        return ctl.fail(EXIT_REFUSED, "standalone", "no [mqtt] in the config: this agent "
                                                    "runs standalone")
    steps = mqtt_check(cfg, a.timeout)
    agent: dict[str, Any] | None = None
    with contextlib.suppress(AgentUnavailable, AgentRefused):  # only helps if it answers
        state = ctl.agent.health().devices.get("mqtt")
        agent = state.model_dump(mode="json") if state else None
    body = {"steps": [s.__dict__ for s in steps], "agent_view": agent,
            "ok": all(s.ok for s in steps)}

    def human() -> None:
        for s in steps:
            print(f"  [{'ok  ' if s.ok else 'FAIL'}] {s.name:<11} {s.detail}")
        if agent:
            print(f"  agent says: {agent['status']} — {agent['detail']}")

    ctl.out(body, human)
    return EXIT_OK if body["ok"] else EXIT_DEVICE
