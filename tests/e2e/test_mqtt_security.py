"""TLS, passwords and the documented ACL (config/mosquitto/) on a real Mosquitto."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import ROOT, TEST_CATALOG, HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog
from sim.broker import Broker
from sim.central import Central

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
PASSWORDS = {"central": "c-secret", "kiosk-01": "k1-secret", "kiosk-02": "k2-secret"}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def secure_broker() -> Iterator[Broker]:
    b = Broker(anonymous=False)
    d = b.root
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=hall-edge test CA", cwd=d)
    openssl("req", *ec, "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    pw = d / "passwd"
    for i, (user, secret) in enumerate(PASSWORDS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(pw), user,
                        secret], check=True, capture_output=True)
    shutil.copy(ROOT / "config/mosquitto/hall-edge.acl", d / "acl")
    b.listener_extra = (f"cafile {d / 'ca.crt'}\ncertfile {d / 'broker.crt'}\n"
                        f"keyfile {d / 'broker.key'}\ntls_version tlsv1.2")
    b.extra = f"password_file {pw}\nacl_file {d / 'acl'}"
    b.write_conf()
    for f in d.iterdir():
        f.chmod(0o644)
    b.start()
    yield b
    b.close()


def client(b: Broker, user: str | None, secret: str | None) -> tuple[mqtt.Client, list[Any]]:
    got: list[Any] = []
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                    client_id=f"{user}-{uuid.uuid4().hex[:6]}")
    if user:
        c.username_pw_set(user, secret)
    c.tls_set(ca_certs=str(b.root / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    c.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    return c, got


def connect_rc(b: Broker, user: str | None, secret: str | None) -> Any:
    c, _ = client(b, user, secret)
    rcs: list[Any] = []
    c.on_connect = lambda *a: rcs.append(a[3])
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    wait_until(lambda: bool(rcs), 10)
    c.loop_stop()
    c.disconnect()
    return rcs[0] if rcs else None


def test_agent_runs_over_tls_with_a_password_file(secure_broker: Broker,
                                                  tmp_path: Path) -> None:
    b = secure_broker
    central = Central("127.0.0.1", b.port, HALL, load_catalog(TEST_CATALOG),
                      tmp_path / "central", ZoneInfo("Asia/Shanghai"), username="central",
                      password=PASSWORDS["central"], tls_ca=str(b.root / "ca.crt"))
    central.start()
    assert central.connected.wait(10)
    secret = tmp_path / "mqtt.password"
    secret.write_text(PASSWORDS["kiosk-01"] + "\n")
    h = HallUnderTest(tmp_path / "hall", extra_toml=(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {b.port}\nusername = "kiosk-01"\n'
        f'password_file = "{secret}"\ntls_ca = "{b.root / "ca.crt"}"\n'))
    try:
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15), h.health()
        t = h.client().post("/v1/tickets", json={"service": "A"}).json()
        assert (t["number"], t["offline"]) == ("A001", False)
        assert wait_until(lambda: central.stats()["by_type"].get("ticket.printed") == 1, 10)
    finally:
        h.close()
        central.stop()


def test_wrong_password_and_anonymous_clients_are_refused(secure_broker: Broker) -> None:
    assert connect_rc(secure_broker, "kiosk-01", PASSWORDS["kiosk-01"]) == 0
    assert connect_rc(secure_broker, "kiosk-01", "guess").is_failure
    assert connect_rc(secure_broker, None, None).is_failure


def test_an_agent_cannot_publish_under_another_agents_topics(secure_broker: Broker) -> None:
    b = secure_broker
    spy, seen = client(b, "central", PASSWORDS["central"])
    spy.connect("127.0.0.1", b.port)
    spy.subscribe(f"qms/v1/{HALL}/#", qos=1)
    spy.loop_start()
    k1, k1_seen = client(b, "kiosk-01", PASSWORDS["kiosk-01"])
    k1.connect("127.0.0.1", b.port)
    k1.subscribe(f"qms/v1/{HALL}/agent/kiosk-02/#", qos=1)  # not allowed to read either
    k1.loop_start()
    time.sleep(0.5)
    mine = f"qms/v1/{HALL}/agent/kiosk-01/event"
    theirs = f"qms/v1/{HALL}/agent/kiosk-02/event"
    central_topic = f"qms/v1/{HALL}/central/call"
    for topic in (theirs, central_topic, mine):
        k1.publish(topic, json.dumps({"from": "kiosk-01"}), qos=1).wait_for_publish(5)
    k2, _ = client(b, "kiosk-02", PASSWORDS["kiosk-02"])
    k2.connect("127.0.0.1", b.port)
    k2.loop_start()
    k2.publish(theirs, b'{"from": "kiosk-02"}', qos=1).wait_for_publish(5)
    assert wait_until(lambda: len(seen) >= 2, 10)
    time.sleep(0.5)
    topics = [t for t, _ in seen]
    assert mine in topics  # its own subtree: allowed
    assert central_topic not in topics  # may only read the central's topics
    assert [p for t, p in seen if t == theirs] == [b'{"from": "kiosk-02"}']
    assert not any(t == theirs for t, _ in k1_seen)
    for c in (spy, k1, k2):
        c.loop_stop()
        c.disconnect()
