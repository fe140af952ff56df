"""DESIGN.md "Personal data", end to end: a real agent process reads ID cards on a pty,
issues real-name tickets, checks in, opens the 24-hour door, runs self-service and books
— with a real Mosquitto and the central stand-in — and then the data dir, the logs, the
SSE stream and every MQTT payload are searched for the ID numbers and names in clear."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import HallUnderTest, wait_until
from hall_agent.contract.config import load_catalog
from sim.broker import Broker
from sim.central import Central
from sim.idcard import CARDS, SimIdReader
from sim.scanner import SimScanner

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "tests" / "data" / "services_idcard.toml"
TZ = ZoneInfo("Asia/Shanghai")
PEOPLE = ("resident", "resident2", "hmt", "foreigner2023", "expired")


def needles() -> list[bytes]:
    """Every clear form of every test identity, in the encodings it could leak in."""
    out: list[bytes] = []
    for name in PEOPLE:
        c = CARDS[name]
        for text in (c.number, c.number.lower(), c.name, c.name_en, c.address):
            if text:
                out += [text.encode("utf-8"), text.encode("utf-16-le")]
                out.append(json.dumps(text).encode())  # \\uXXXX escapes
    return out


def find_leaks(blob: bytes) -> list[str]:
    return [n.decode("utf-8", "replace") for n in needles() if n in blob]


def test_the_search_itself_finds_a_leak() -> None:
    c = CARDS["resident"]
    assert find_leaks(f"x {c.number} y".encode()) and find_leaks(c.name.encode("utf-16-le"))
    assert find_leaks(json.dumps({"n": c.name}).encode())  # ASCII-escaped JSON



class Sniffer:
    """Subscribes to the whole hall tree and keeps every payload."""

    def __init__(self, port: int) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id="privacy-sniffer")
        self.c.on_connect = lambda c, *_: c.subscribe("qms/#", 1)
        self.c.on_message = lambda _c, _u, m: self.payloads.append((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Sse:
    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.raw = bytearray()
        threading.Thread(target=self._run, args=(url,), daemon=True).start()

    def _run(self, url: str) -> None:
        name = ""
        try:
            with httpx.stream("GET", f"{url}/v1/events", timeout=None) as r:
                for line in r.iter_lines():
                    self.raw += line.encode() + b"\n"
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events.append((name, json.loads(line[5:])))
        except httpx.HTTPError:
            pass  # the agent stopped

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    broker = Broker()
    broker.start()
    central = Central("127.0.0.1", broker.port, "fz-citizen", load_catalog(CATALOG),
                      tmp_path / "central", TZ)
    central.start()
    assert central.connected.wait(10)
    reader, scanner = SimIdReader(), SimScanner()
    sniffer = Sniffer(broker.port)
    extra = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nrequest_timeout_ms = 2000\n'
             f'[id_reader]\nport = "{reader.port}"\npoll_ms = 200\n'
             f'[scanner]\nport = "{scanner.port}"\n'
             '[gpio]\npin_factory = "mock"\ndoor_relay = 22\n'
             '[appointments]\nbookable = ["B"]\n'
             # never staffed: the 24-hour door is in play all the time
             '[selfservice]\nstaffed_days = []\n'
             '[agent]\nlog_level = "debug"\n')
    h = HallUnderTest(tmp_path / "hall", catalog=CATALOG, extra_toml="")
    # [agent] is written by the sim; put log_level there instead of a second [agent]
    text = h.config_path.read_text("utf-8").replace(
        "[agent]\n", "[agent]\nlog_level = \"debug\"\n", 1)
    h.config_path.write_text(text + "\n" + extra.replace('[agent]\nlog_level = "debug"\n',
                                                          "") + "[voice]\nenabled = false\n",
                             "utf-8")
    h.start()
    try:
        yield {"hall": h, "central": central, "reader": reader, "scanner": scanner,
               "sniffer": sniffer, "broker": broker}
    finally:
        h.close()
        sniffer.close()
        central.stop()
        broker.close()
        reader.close()
        scanner.close()


def test_no_id_number_or_name_in_store_logs_sse_or_mqtt(world: dict[str, Any],
                                                         tmp_path: Path) -> None:
    h: HallUnderTest = world["hall"]
    reader: SimIdReader = world["reader"]
    central: Central = world["central"]
    c = h.client()
    sse = Sse(h.url)
    assert wait_until(lambda: h.health()["mode"] == "central", 15)
    assert wait_until(lambda: b"connected" in sse.raw or bool(sse.events), 5) or True

    def place(name: str) -> dict[str, Any]:
        n = len(sse.of("card"))
        reader.put(name)
        assert wait_until(lambda: len(sse.of("card")) > n, 10), h.log()[-3000:]
        return sse.of("card")[-1]

    def lift() -> None:
        # The agent counts a card removed after two "no card" answers 600 ms apart
        # ([id_reader] removal_ms); one poll (200 ms) more and it surely has.
        reader.put(None)
        assert wait_until(lambda: reader.no_card_run()[1] >= 0.6 + 0.2, 10)

    now = datetime.now(TZ)
    start = now.strftime("%H:%M")
    end = "23:59" if now.hour == 23 else f"{now.hour + 1:02d}:{now.minute:02d}"
    # the hall's appointment list, with clear ID numbers and names, as a booking system
    # would send it
    r = c.post("/v1/appointments/import", json={"appointments": [
        {"code": "PRIV000001", "service": "B", "date": now.date().isoformat(),
         "start": start, "end": end, "id_number": CARDS["resident"].number,
         "name": CARDS["resident"].name},
        {"code": "PRIV000002", "service": "C", "date": now.date().isoformat(),
         "start": start, "end": end, "id_number": CARDS["hmt"].number,
         "name": CARDS["hmt"].name}]})
    assert r.status_code == 200 and r.json()["added"] == 2, r.text

    # 1. resident: door, real-name ticket, check-in by card, self-service, booking
    ev = place("resident")
    assert ev["door"] == "opened"
    token = ev["token"]
    t = c.post("/v1/tickets", json={"service": "A", "card": token})
    assert t.status_code == 201, t.text
    assert c.post("/v1/checkins", json={"card": token}).status_code == 201
    s = c.post("/v1/selfservice/social_insurance", json={"card": token})
    assert s.status_code == 200 and s.json()["printed"], s.text
    tomorrow = (now + timedelta(days=1)).date().isoformat()
    b = c.post("/v1/appointments", json={"card": token, "service": "B", "day": tomorrow,
                                         "start": "09:00"})
    assert b.status_code == 201, b.text
    lift()
    # 2. HMT permit: check-in by scanning its appointment QR; foreigner: self-service
    ev = place("hmt")
    world["scanner"].scan("YY-PRIV000002")
    assert wait_until(lambda: bool(sse.of("scan")), 10)
    assert sse.of("scan")[-1]["ok"], sse.of("scan")[-1]
    lift()
    ev = place("foreigner2023")
    assert c.post("/v1/selfservice/property", json={"card": ev["token"]}).status_code == 200
    lift()
    place("expired")
    lift()
    place("resident2")
    # 3. wait until the central has every event
    want = {"door.opened", "ticket.issued", "checkin.done", "selfservice.used"}
    assert wait_until(lambda: want <= set(central.stats()["by_type"]), 20), \
        central.stats()
    assert wait_until(lambda: h.health()["devices"]["mqtt"]["detail"].find("waiting") < 0, 20)
    h.stop()

    # The card events are masked: no clear data went to the kiosk either.
    assert sse.of("card") and all("masked_id" in e or not e["ok"] for e in sse.of("card"))
    assert find_leaks(bytes(sse.raw)) == []
    # Every MQTT payload, retained or not.
    sniffed = world["sniffer"].payloads
    assert any(t.endswith("/event") for t, _ in sniffed)
    for topic, payload in sniffed:
        assert find_leaks(payload) == [], topic
    id_hashes = [json.loads(p)["data"].get("id_hash") for t, p in sniffed
                 if t.endswith("/event")]
    assert any(id_hashes)
    # The agent's data dir (SQLite, WAL, secret, traffic logs …) and its log.
    data_dir = h.sim.root / "data"
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("hall-agent.sqlite3") for p in files)
    for p in files:
        assert find_leaks(p.read_bytes()) == [], p
    assert "card read" in h.log()  # the log did see the reads …
    assert find_leaks(h.log_path.read_bytes()) == []  # … in masked form only
    # The central's store (it keeps what it was sent).
    for p in (tmp_path / "central").rglob("*"):
        if p.is_file():
            assert find_leaks(p.read_bytes()) == [], p
