"""MQTT benchmarks against a real Mosquitto and the central stand-in.

1. Outbox drain: a day offline (8,000 tickets, each issued, printed and called — 24,000
   events in the outbox), then the broker is reachable: time until the central has
   acknowledged the last event, events/s, and duplicates stored (must be 0); next to the
   figure of the first run (issue 12) and to the floor measured in the same run: the
   same envelopes published with raw paho QoS 1 through the same Mosquitto to one
   subscriber, with nothing stored and nothing acknowledged.
2. Ticket issue p50/p99 through the API in central mode (a round trip to the central per
   ticket) vs standalone, in one run.

Run: ``bench/run`` (or ``.venv/bin/python bench/bench_mqtt.py``).
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hall_agent.contract.config import load_catalog
from hall_agent.contract.mqtt import EventEnvelope
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store
from hall_agent.link.relay import MAX_INFLIGHT
from sim.broker import Broker
from sim.central import Central
from sim.hall import SimHall

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "tests/data/services.toml"
TZ = ZoneInfo("Asia/Shanghai")
# docs/benchmarks.md of 2026-11-30T08:33Z (issue 12): 24,000 events in 19.8 s, on another
# machine; the same run on this one is in docs/benchmarks.md's drain section.
FIRST_DRAIN_RATE = 1213


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_agent(hall: SimHall) -> subprocess.Popen[bytes]:
    hall.write_config()
    proc = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                             str(hall.config_path)], stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://{hall.api}/v1/health", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("agent did not start")


def fill_offline_day(data_dir: Path, tickets: int) -> int:
    """A day's events written exactly as the agent writes them, with the clock moving
    through opening hours; returns the outbox size."""
    cat = load_catalog(CATALOG)
    t0 = datetime.now(TZ).replace(hour=8, minute=30, second=0, microsecond=0)
    clock_t = [t0.timestamp()]
    engine = QueueEngine(Store(data_dir), cat, TZ, clock=lambda: clock_t[0])
    services = [s.id for s in cat.services if s.daily_limit is None]
    step = timedelta(hours=9).total_seconds() / tickets
    for i in range(tickets):
        clock_t[0] += step
        issued = engine.issue(services[i % len(services)])
        engine.set_print_state(issued.ticket.ticket_id, True, "")
        engine.call_next("5" if issued.ticket.service == "A" else "6")
    row = engine.store.one("SELECT COUNT(*) FROM outbox")
    engine.store.close()
    return int(row[0]) if row else 0


def envelopes(data_dir: Path) -> list[bytes]:
    """The outbox as the agent sends it (hall_agent/link/mqtt.py ``_publish_event``)."""
    store = Store(data_dir)
    rows = store.outbox.due(time.time(), 10**9)
    store.close()
    return [EventEnvelope(msg_id=r.msg_id, seq=r.seq, boot=1, ts=r.ts, hall="fz-citizen",
                          agent="kiosk-01", type=r.type,  # type: ignore[arg-type]
                          offline=r.offline, data=r.data).model_dump_json().encode()
            for r in rows]


def raw_qos1_rate(port: int, payloads: list[bytes]) -> float:
    """Events/s of the floor: ``payloads`` published QoS 1 by one paho client (the agent's
    in-flight window) through the broker to one QoS-1 subscriber, until the last one
    arrived: the network, Mosquitto and paho, without the outbox, the central or acks."""
    topic = "bench/floor/event"
    got, done, subscribed = [0], threading.Event(), threading.Event()

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] == len(payloads):
            done.set()

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name,
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(MAX_INFLIGHT)  # the agent's window (link/relay.py)
        c.connect("127.0.0.1", port)
        c.loop_start()
        return c

    sub = client("bench-floor-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.subscribe(topic, qos=1)
    subscribed.wait(10)
    pub = client("bench-floor-pub")
    t0 = time.perf_counter()
    for p in payloads:
        pub.publish(topic, p, qos=1)
    done.wait(600)
    took = time.perf_counter() - t0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return len(payloads) / took


def bench_drain(tickets: int) -> list[str]:
    broker = Broker()
    broker.start()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        events = fill_offline_day(root / "hall" / "data", tickets)
        floor = raw_qos1_rate(broker.port, envelopes(root / "hall" / "data"))
        central = Central("127.0.0.1", broker.port, "fz-citizen", load_catalog(CATALOG),
                          root / "central", TZ)
        central.start()
        central.connected.wait(10)
        hall = SimHall(root / "hall", api=f"127.0.0.1:{free_port()}", catalog=str(CATALOG),
                       health_interval_ms=60_000, bus_devices=False,
                       extra_toml=f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
        db = root / "hall" / "data" / "hall-agent.sqlite3"
        t0 = time.perf_counter()
        proc = start_agent(hall)
        left = events
        while left and time.perf_counter() - t0 < 600:
            time.sleep(0.05)
            with sqlite3.connect(db) as c:
                left = c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL"
                                 ).fetchone()[0]
        took = time.perf_counter() - t0
        stats = central.stats()
        proc.terminate()
        proc.wait(10)
        central.stop()
        hall.close()
    broker.close()
    rate = events / took
    return [
        f"{tickets} tickets offline → {events} events in the outbox",
        "| events | agent start → last ack | events/s | first run (issue 12) | "
        "raw QoS-1 floor | ratio to the floor | stored at central | duplicates stored | "
        "unacknowledged |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {events} | {took:.1f} s | {rate:.0f} | {FIRST_DRAIN_RATE} events/s | "
        f"{floor:.0f} events/s | {rate / floor:.2f} | {stats['unique_events']} | "
        f"{stats['unique_events'] - events} (deliveries {stats['deliveries']}) | {left} |",
        "",
        "The floor: the same envelopes published with raw paho QoS 1 through the same "
        "Mosquitto to one subscriber, in this run, with nothing stored and nothing "
        "acknowledged. \"agent start\" includes the agent's start-up and connection.",
    ]


def issue_latency(hall: SimHall, n: int) -> tuple[list[float], int]:
    proc = start_agent(hall)
    http = httpx.Client(base_url=f"http://{hall.api}", timeout=10)
    try:
        if hall.central is not None:
            for _ in range(150):
                if http.get("/v1/health").json()["mode"] == "central":
                    break
                time.sleep(0.1)
        lat, offline = [], 0
        for i in range(n):
            t0 = time.perf_counter()
            r = http.post("/v1/tickets", json={"service": "AB"[i % 2]},
                          headers={"Idempotency-Key": str(uuid.uuid4())})
            lat.append(time.perf_counter() - t0)
            offline += bool(r.json()["offline"])
    finally:
        proc.terminate()
        proc.wait(10)
    return lat, offline


def bench_modes(n: int) -> list[str]:
    rows = ["| mode | p50 | p99 | offline tickets |", "|---|---:|---:|---:|"]
    results: dict[str, float] = {}
    for mode in ("standalone", "central"):
        with tempfile.TemporaryDirectory() as d:
            hall = SimHall(Path(d), api=f"127.0.0.1:{free_port()}", catalog=str(CATALOG),
                           health_interval_ms=60_000, bus_devices=False)
            if mode == "central":
                hall.start_central()
            try:
                lat, offline = issue_latency(hall, n)
            finally:
                hall.close()
        results[mode] = pct(lat, 50)
        rows.append(f"| {mode} | {pct(lat, 50) * 1000:.1f} ms | {pct(lat, 99) * 1000:.1f} ms "
                    f"| {offline} |")
    rows.append(f"\ncentral / standalone at p50: {results['central'] / results['standalone']:.2f}"
                "× (one MQTT round trip to the central per ticket)")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=8000, help="tickets in the offline day")
    ap.add_argument("--issue", type=int, default=500, help="tickets per mode for latency")
    ap.add_argument("--drain-only", action="store_true", help="only the outbox drain")
    a = ap.parse_args()
    print("## Outbox drain after a day offline\n")
    print("\n".join(bench_drain(a.tickets)))
    if a.drain_only:
        return 0
    print("\n## Ticket issue: central vs standalone\n")
    print("\n".join(bench_modes(a.issue)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
