"""A clerk's console action → the hall LED board, through hall-central, MQTT and an agent.

The chain measured, every part real:

* hall-central's real service (central/service.py, through sim/central.py's ``Central``)
  with its real pages (``central.main._web``: uvicorn on 127.0.0.1), in this process;
* a real Mosquitto (sim/broker.py) between hall-central and the kiosk;
* the real hall-agent as its own process (``python -m hall_agent.main``) in central
  mode, its boards and evaluators on a simulated RS-485 bus on a pty at 9600 baud
  (sim/bus.py, line speed emulated as in bench/bench_bus.py; 3 evaluators polled).

A clerk logs in through the console's form (session cookie, CSRF token from the console
page) and sends ``POST /api/v1/windows/5/call-next`` exactly as console.js does
(``X-CSRF-Token``, ``Idempotency-Key``, JSON body). Timed from that POST to the moment
the last byte of the last frame the call caused reaches the hall board (as bench_bus
times it: the frame's arrival on the pty plus its own wire time).

The floor, measured in the same run: the wire time of the same frames at 9600 8N1 (as
bench_bus computes it) plus a bare MQTT QoS-1 round trip through the same broker (one
paho client publishes a message of the call's size, another receives it), one after
each call.

Run: ``.venv/bin/python bench/bench_console_board.py [--calls 40]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.auth import add_user  # noqa: E402
from central.main import _web  # noqa: E402
from drivers.rs485 import Cmd, wire_time_s  # noqa: E402
from sim.broker import free_port  # noqa: E402
from sim.bus import HALL_BOARD, catalog_windows, make_sim_bus  # noqa: E402
from sim.hall import SimHall  # noqa: E402
from sim.procs import wait_until  # noqa: E402

CATALOG = ROOT / "tests" / "data" / "services.toml"
BAUD = 9600
WINDOW = "5"  # has its own window board on the bus too (its frames share the line)
CLERK, PASSWORD = "clerk-005", "bench console password"
WARMUP = 3


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class MqttFloor:
    """A bare QoS-1 round trip through the broker: publish → the other client has it."""

    def __init__(self, port: int) -> None:
        self.got: dict[str, float] = {}
        self.cond = threading.Condition()
        subscribed = threading.Event()

        def client(name: str) -> mqtt.Client:
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                            client_id=name, protocol=mqtt.MQTTv5)
            c.connect("127.0.0.1", port)
            c.loop_start()
            return c

        def on_message(_c: object, _u: object, msg: Any) -> None:
            with self.cond:
                self.got[msg.payload.decode()[:36]] = time.monotonic()
                self.cond.notify_all()

        self.sub = client("bench-floor-sub")
        self.sub.on_message = on_message
        self.sub.on_subscribe = lambda *_: subscribed.set()
        self.sub.subscribe("bench/floor/call", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the floor's subscriber was not subscribed")
        self.pub = client("bench-floor-pub")

    def round_trip(self, size: int) -> float:
        key = str(uuid.uuid4())
        payload = (key + "x" * max(0, size - len(key))).encode()
        t0 = time.monotonic()
        self.pub.publish("bench/floor/call", payload, qos=1)
        with self.cond:
            if not self.cond.wait_for(lambda: key in self.got, 10):
                raise RuntimeError("a floor message did not arrive within 10 s")
            return self.got.pop(key) - t0

    def close(self) -> None:
        for c in (self.pub, self.sub):
            c.disconnect()
            c.loop_stop()


def start_agent(hall: SimHall) -> subprocess.Popen[bytes]:
    """The real hall-agent process, until it reports central mode."""
    hall.write_config()
    log = (hall.root / "agent.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                             str(hall.config_path)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)

    def central_mode() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the agent exited {proc.returncode}: see {hall.root}/agent.log")
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            return bool(httpx.get(f"http://{hall.api}/v1/health", timeout=2).json()["mode"]
                        == "central")
        return False

    if not wait_until(central_mode, 60):
        stop(proc)
        raise RuntimeError(f"the agent did not reach central mode: see {hall.root}/agent.log")
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def clerk_login(base: str) -> tuple[httpx.Client, dict[str, str]]:
    """Log in through the console's form as the browser does; the CSRF token from the
    console page; the headers console.js sends with each action (less the key)."""
    c = httpx.Client(base_url=base, timeout=20, headers={"Sec-Fetch-Site": "same-origin"})
    r = c.post("/console/login", data={"staff": CLERK, "password": PASSWORD,
                                       "window": WINDOW}, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
    m = re.search(r'"csrf": "([^"]+)"', c.get("/console").text)
    if not m:
        raise RuntimeError("no CSRF token on the console page")
    return c, {"Content-Type": "application/json", "X-CSRF-Token": m.group(1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=40)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-console-board-"))
    windows = catalog_windows(str(CATALOG))
    hall = SimHall(root, api=f"127.0.0.1:{free_port()}", catalog=str(CATALOG),
                   bus_devices=False)
    hall.use_bus(make_sim_bus(root, windows, emulate_line=True))
    bus = hall.bus
    assert bus is not None
    bus.out_dir = None  # a real board draws in its own hardware, not on this CPU
    listen = f"127.0.0.1:{free_port()}"
    lat: list[float] = []
    wire: list[float] = []
    mq: list[float] = []
    parts: dict[str, list[float]] = {k: [] for k in (
        "call-next answered (session, desk, store, MQTT publish)",
        "→ first frame on the hall board (broker, agent, board thread)",
        "→ last byte, beyond the frames' wire time (bus, pty, scheduling)")}
    web: tuple[Any, threading.Thread] | None = None
    agent: subprocess.Popen[bytes] | None = None
    floor: MqttFloor | None = None
    clerk: httpx.Client | None = None
    try:
        hall.start_central(listen=listen)
        central, broker = hall.central, hall.broker
        assert central is not None and broker is not None
        web = _web(central.cfg, central)
        if web is None:
            raise RuntimeError("hall-central's pages are not installed")
        base = f"http://{listen}"
        if not wait_until(lambda: web is not None and web[0].started, 20):
            raise RuntimeError(f"hall-central's pages did not start on {base}")
        add_user(central.store, CLERK, PASSWORD, [WINDOW])
        agent = start_agent(hall)
        floor = MqttFloor(broker.port)
        n = a.calls + WARMUP
        for _ in range(n):  # taken at the kiosk, merged by hall-central over MQTT
            r = httpx.post(f"http://{hall.api}/v1/tickets", json={"service": "A"},
                           headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=20)
            r.raise_for_status()

        def waiting() -> int:
            row = central.store.one("SELECT COUNT(*) FROM tickets WHERE status = 'waiting'")
            return int(row[0]) if row else 0

        if not wait_until(lambda: waiting() >= n, 60):
            raise RuntimeError(f"hall-central has {waiting()} of {n} tickets waiting")
        time.sleep(2.0)  # the boards settle after the tickets' queue updates
        clerk, headers = clerk_login(base)
        for i in range(n):
            t0 = time.monotonic()
            r = clerk.post(f"/api/v1/windows/{WINDOW}/call-next", content=b"{}",
                           headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
            t_answered = time.monotonic()
            r.raise_for_status()
            number = r.json()["serving"]["number"]
            want = f"请 {number} 号到 {WINDOW} 号窗口"
            def shown(want: str = want) -> bool:
                return bool(bus.board(HALL_BOARD).text()[0] == want)

            if not bus.wait_for(shown, 10.0):
                raise RuntimeError(f"the hall board did not show {want!r} within 10 s")
            time.sleep(0.6)  # the rest of the call's frames (shifted lines, chime)
            with bus.lock:
                got = [x for x in bus.board(HALL_BOARD).received
                       if x.ts >= t0 and x.frame.cmd != Cmd.INFO]
            size = len(central.store.one(  # type: ignore[index]
                "SELECT call_id FROM calls ORDER BY rowid DESC LIMIT 1")[0]) + 120
            rtt = floor.round_trip(size)
            if i >= WARMUP and got:
                last = got[-1]
                total = last.ts + wire_time_s(last.nbytes, BAUD) - t0  # its last byte
                w = wire_time_s(sum(x.nbytes + x.reply_bytes for x in got)
                                - last.reply_bytes, BAUD)
                lat.append(total)
                wire.append(w)
                mq.append(rtt)
                parts["call-next answered (session, desk, store, MQTT publish)"].append(
                    t_answered - t0)
                parts["→ first frame on the hall board (broker, agent, board thread)"].append(
                    got[0].ts - t_answered)
                parts["→ last byte, beyond the frames' wire time (bus, pty, scheduling)"
                      ].append(total - (got[0].ts - t0) - w)
            time.sleep(random.uniform(0.05, 0.3))
    finally:
        if clerk is not None:
            clerk.close()
        if floor is not None:
            floor.close()
        if agent is not None:
            stop(agent)
        if web is not None:
            close = getattr(web[0].config.app.state, "close_streams", None)
            if close is not None:
                close()
            web[0].should_exit = True
            web[1].join(10)
        hall.close()
    shutil.rmtree(root, ignore_errors=True)
    if not lat:
        raise SystemExit("no call was measured")
    ms = 1000.0
    w50, m50 = statistics.median(wire), pct(mq, .5)
    f50 = w50 + m50
    print("## Console call → hall LED board (hall-central, Mosquitto, hall-agent, "
          "RS-485 at 9600 baud, 3 evaluators)\n")
    print("| measure | n | p50 | p99 | floor p50 (same run) | ratio p50 | p99 − floor |")
    print("|---|---|---|---|---|---|---|")
    print(f"| console call-next → last byte on the hall board | {len(lat)} | "
          f"{pct(lat, .5) * ms:.0f} ms | {pct(lat, .99) * ms:.0f} ms | {f50 * ms:.0f} ms "
          f"(wire {w50 * ms:.0f} + MQTT {m50 * ms:.1f}) | {pct(lat, .5) / f50:.2f} | "
          f"{(pct(lat, .99) - f50) * ms:+.0f} ms |")
    for name, xs in parts.items():
        print(f"| of which: {name} | {len(xs)} | {pct(xs, .5) * ms:.0f} ms | "
              f"{pct(xs, .99) * ms:.0f} ms | | | |")
    print(f"| bare MQTT QoS-1 round trip, same broker | {len(mq)} | {m50 * ms:.1f} ms | "
          f"{pct(mq, .99) * ms:.1f} ms | | | |")
    print(f"\nTimed from the clerk's POST (session cookie and CSRF token of a form login) "
          f"to the hall board's last byte of the call; the floor is the wire time of the "
          f"same frames (p50 {w50 * ms:.0f} ms) plus one bare QoS-1 publish → delivery "
          f"through the same Mosquitto. The agent is its own process; hall-central, its "
          f"pages and the simulated bus share this one.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
