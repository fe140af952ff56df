"""Requests to the central against a real Mosquitto (MQTT.md: "Session", "Requests and
their extensions", "Numbering"): each request type judged on its own, the 3.1.1
fallback of ``protocol = "auto"``, and a number given to a ticket never committed."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from conftest import TEST_CATALOG, HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog, load_config
from hall_agent.contract.mqtt import AnyRequest, NumberReply, NumberRequest, SlotsRequest
from hall_agent.core.store import Store
from hall_agent.link import mqtt as mqtt_link
from sim.broker import Broker
from sim.central import Central

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
AGENT = "kiosk-01"
TS = "2026-11-30T09:00:00+08:00"


@pytest.fixture
def central(broker: Broker, tmp_path: Path) -> Iterator[Central]:
    c = Central("127.0.0.1", broker.port, HALL, load_catalog(TEST_CATALOG),
                tmp_path / "central", ZoneInfo("Asia/Shanghai"))
    c.start()
    assert c.connected.wait(10)
    yield c
    c.stop()


def mqtt_toml(port: int, timeout_ms: int = 800) -> str:
    return (f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
            f"request_timeout_ms = {timeout_ms}\nkeepalive_s = 5\n")


@pytest.fixture
def link(broker: Broker, central: Central, tmp_path: Path) -> Iterator[mqtt_link.MqttLink]:
    """The link itself, in-process, against the real broker and central."""
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker.port))
    lk = mqtt_link.MqttLink(load_config(h.config_path), Store(tmp_path / "data"), 1, "t",
                            mqtt_link.LinkHandlers(), lambda: "central")
    lk.start()
    assert wait_until(lambda: lk.central_available, 10)
    yield lk
    lk.stop()


def number() -> NumberRequest:
    return NumberRequest(req_id=str(uuid.uuid4()), ticket_id=str(uuid.uuid4()), service="A",
                         ts=TS)


def slots() -> SlotsRequest:
    return SlotsRequest(req_id=str(uuid.uuid4()), service="A", day="2026-12-02", ts=TS)


def ask(link: mqtt_link.MqttLink, req: AnyRequest) -> NumberReply | None:
    return link.request_number(req, 0.3)


# ---------------------------------------------------------------- per request type

def test_unanswered_extension_requests_never_stop_numbering(
        link: mqtt_link.MqttLink, central: Central) -> None:
    """Issue 12 #2: an older central that does not know appointment.slots stays silent;
    the agent keeps asking it for numbers (before, three such requests sent numbering
    to the lease)."""
    central.faults.ignore = {"appointment.slots"}
    assert [ask(link, slots()) for _ in range(4)] == [None] * 4
    assert central.requests_ignored == 3  # the fourth was not sent: paused
    reply = ask(link, number())
    assert reply is not None and reply.ok and reply.number == "A001"
    assert not link.breakers.of("appointment.slots").answering
    assert link.central_answering and link.unanswered == 0 and link.not_asked == 0
    health = link.describe()
    assert health.status.value == "ok", health.detail
    assert "not answering appointment.slots" in health.detail


def test_unanswered_number_requests_never_disable_an_extension(
        link: mqtt_link.MqttLink, central: Central) -> None:
    central.faults.ignore = {"ticket.number"}
    assert [ask(link, number()) for _ in range(3)] == [None] * 3
    assert not link.central_answering  # numbering from the lease at once
    assert ask(link, number()) is None and link.not_asked == 1
    reply = ask(link, slots())
    assert reply is not None and reply.ok and reply.slots is not None
    health = link.describe()
    assert health.status.value == "degraded"
    assert "not answering number requests" in health.detail


def test_an_unsupported_extension_is_paused_and_numbering_goes_on(
        link: mqtt_link.MqttLink, central: Central) -> None:
    central.faults.unsupported = {"appointment.slots"}
    reply = ask(link, slots())
    assert reply is not None and not reply.ok and reply.error == "unsupported"
    sent = central.requests_received
    assert ask(link, slots()) is None and central.requests_received == sent  # not asked
    assert "does not support appointment.slots" in link.describe().detail
    got = [ask(link, number()) for _ in range(3)]
    assert [r.number for r in got if r is not None] == ["A001", "A002", "A003"]
    assert link.central_answering


# ---------------------------------------------------------------- protocol = "auto"

@dataclass
class Connect:
    level: int  # 4 = 3.1.1, 5 = MQTT 5
    clean: bool  # clean_start (5) or clean_session (3.1.1)
    expiry_s: int | None  # MQTT 5 session expiry interval


def _exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        got = s.recv(n - len(out))
        if not got:
            raise ConnectionError("closed")
        out += got
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = data[i]
        value |= (b & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not b & 0x80:
            return value, i


def _packet(s: socket.socket) -> bytes:
    head = _exact(s, 1)
    length = b""
    while not length or length[-1] & 0x80:
        length += _exact(s, 1)
    n, _ = _varint(length, 0)
    return head + length + _exact(s, n)


def _parse_connect(pkt: bytes) -> Connect:
    _, i = _varint(pkt, 1)
    name_len = int.from_bytes(pkt[i:i + 2], "big")
    i += 2 + name_len
    level, flags = pkt[i], pkt[i + 1]
    i += 4  # level, flags, keepalive
    expiry = None
    if level == 5:
        plen, i = _varint(pkt, i)
        end = i + plen
        while i < end:
            pid = pkt[i]
            if pid == 0x11:
                expiry = int.from_bytes(pkt[i + 1:i + 5], "big")
            size = {0x11: 4, 0x27: 4, 0x21: 2, 0x22: 2, 0x17: 1, 0x19: 1}.get(pid)
            if size is None:
                break
            i += 1 + size
    return Connect(level, bool(flags & 0x02), expiry)


class Only311:
    """A broker that speaks only 3.1.1 as far as a client can tell (Mosquitto 2 cannot be
    told to refuse 5): an MQTT 5 CONNECT gets the 3.1.1 CONNACK "unacceptable protocol
    version" and the connection is closed; a 3.1.1 connection is passed through to the
    real Mosquitto. Records each CONNECT and whether the broker had a session."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connects: list[Connect] = []
        self.session_present: list[bool] = []
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._socks.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            first = _packet(conn)
            c = _parse_connect(first)
            self.connects.append(c)
            if c.level != 4:
                conn.sendall(b"\x20\x02\x00\x01")  # 3.1.1 CONNACK: unacceptable version
                conn.close()
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            self._socks.append(up)
            up.sendall(first)
            ack = _packet(up)
            self.session_present.append(bool(ack[2] & 0x01))
            conn.sendall(ack)
        except OSError:
            conn.close()
            return
        threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()
        self._pump(conn, up)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        for s in self._socks:
            s.close()


def test_protocol_auto_falls_back_to_311_when_the_broker_refuses_5(
        broker: Broker, central: Central, tmp_path: Path) -> None:
    """Issue 12 #8: the default protocol = "auto" tries 5, and on "unacceptable protocol
    version" connects with 3.1.1, keeping a persistent session with both."""
    proxy = Only311(broker.port)
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(proxy.port))
    try:
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 20), h.log()[-3000:]
        r = h.client().post("/v1/tickets", json={"service": "A"},
                            headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        assert (r.json()["number"], r.json()["offline"]) == ("A001", False)
        v5, v311 = proxy.connects[:2]
        assert (v5.level, v5.clean) == (5, False) and (v5.expiry_s or 0) >= 86400
        assert (v311.level, v311.clean) == (4, False)
        # A restart: 5 is refused again, and the broker still has the 3.1.1 session.
        h.stop()
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 20), h.log()[-3000:]
        assert [c.level for c in proxy.connects] == [5, 4, 5, 4]
        assert proxy.session_present == [False, True]
        assert h.health()["devices"]["mqtt"]["status"] == "ok"
    finally:
        h.close()
        proxy.close()


# ---------------------------------------------------------------- orphan numbers

def _db(h: HallUnderTest) -> sqlite3.Connection:
    return sqlite3.connect(h.config_path.parent / "data" / "hall-agent.sqlite3")


def _voided_in_outbox(h: HallUnderTest) -> list[str]:
    with _db(h) as c:
        return [r[0] for r in c.execute(
            "SELECT json_extract(data, '$.ticket_id') FROM outbox WHERE type = "
            "'ticket.voided'")]


def _unacked(h: HallUnderTest) -> int:
    with _db(h) as c:
        return int(c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")
                   .fetchone()[0])


def test_an_agent_killed_while_waiting_for_its_number_voids_it(
        broker: Broker, central: Central, tmp_path: Path) -> None:
    """Issue 12, orphan numbers: SIGKILL while the kiosk waits for a slow central; the
    central numbers the ticket anyway (A001, held by no citizen). At the restart the
    agent reports it void once, and the central never calls it."""
    h = HallUnderTest(tmp_path / "hall", extra_toml=mqtt_toml(broker.port, timeout_ms=10_000))
    try:
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15)
        central.faults.delay_ms = 3000

        def take_and_lose() -> None:
            with contextlib.suppress(httpx.HTTPError):  # killed under the request
                h.client(timeout=30).post("/v1/tickets", json={"service": "A"},
                                          headers={"Idempotency-Key": str(uuid.uuid4())})

        kiosk = threading.Thread(target=take_and_lose, daemon=True)
        kiosk.start()
        assert wait_until(lambda: central.requests_received == 1, 10)
        h.kill()
        kiosk.join(10)
        # The slow answer went to a dead agent: the central has numbered it.
        assert wait_until(lambda: central.stats()["tickets"] == 1, 10)
        row = central.store.one("SELECT ticket_id, number FROM tickets")
        assert row is not None and row["number"] == "A001"
        tid = row["ticket_id"]
        central.faults.delay_ms = 0
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15)
        assert wait_until(lambda: any(e["type"] == "ticket.voided" for e in
                                      central.received(AGENT)), 15)
        r = h.client().post("/v1/tickets", json={"service": "A"},
                            headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201 and r.json()["number"] == "A002", r.text
        call = central.call("5")
        assert call is not None and call.ticket == "A002"
        assert central.call("5") is None  # A001 is never called
        # Stored once, also across another restart.
        h.stop()
        h.start()
        assert wait_until(lambda: h.health()["mode"] == "central", 15)
        assert wait_until(lambda: _unacked(h) == 0, 15)
        assert _voided_in_outbox(h) == [tid]
        voided = [e for e in central.received(AGENT) if e["type"] == "ticket.voided"]
        assert [e["data"]["ticket_id"] for e in voided] == [tid]
        with _db(h) as c:
            assert c.execute("SELECT COUNT(*) FROM number_requests").fetchone()[0] == 0
    finally:
        h.close()
