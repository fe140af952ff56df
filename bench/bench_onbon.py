"""An ONBON BX-5E hall board at 9600 baud: call → last byte, against its wire time.

The agent core runs in this process with its real ONBON driver on a pty; the
simulated controller plays the line at 9600 8N1 (each frame takes its wire
time to arrive, each answer too). A call repaints two 192×16 dual-colour
dynamic areas (the new call, and the previous one moved down): about 1.7 s of
wire at 9600 baud, which no software can beat. Measured: from ``agent.call()``
to the arrival of the last byte of the last frame the call caused, beside the
wire time of those frames and their answers.

Run: ``.venv/bin/python bench/bench_onbon.py [--calls 12]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.onbon import ACK, PC_ADDRESS, Packet, wire_time_s  # noqa: E402
from drivers.onbon_area import decode_pixels  # noqa: E402
from drivers.onbon_render import render_line  # noqa: E402
from drivers.rs485 import Colour  # noqa: E402
from hall_agent.agent import Agent  # noqa: E402
from hall_agent.contract.config import load_config  # noqa: E402
from hall_agent.services.boards import call_text  # noqa: E402
from sim.hall import SimHall  # noqa: E402
from sim.onbon import SimOnbon  # noqa: E402
from sim.procs import wait_until  # noqa: E402

BAUD = 9600


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def shows(ctl: SimOnbon, line: int, text: str) -> bool:
    with ctl.lock:
        a = ctl.areas.get(line)
    return a is not None and decode_pixels(
        ctl.model, a.pages[0].bitmap, a.width, a.height,
        colours=ctl.colours) == render_line(text, ctl.width, Colour.RED)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=12)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-onbon-"))
    hall = SimHall(root, catalog=str(ROOT / "tests" / "data" / "services.toml"),
                   bus_devices=False, boards="onbon-bx5")
    ctl = hall.onbon
    assert ctl is not None
    ctl.emulate_baud = BAUD
    ctl.out_dir = None  # no PNGs drawn in the agent's process while it is measured
    hall.write_config()
    agent = Agent(load_config(hall.config_path))
    agent.start()
    ack = len(Packet(PC_ADDRESS, ctl.address, ACK.encode()).encode())
    lat, floor, nbytes = [], [], []
    try:
        if not wait_until(lambda: ctl.areas, 30):
            raise SystemExit("the ONBON board was not painted within 30 s")
        for _ in range(a.calls):
            agent.tickets.issue("A")
        prev = None
        for _ in range(a.calls):
            time.sleep(0.5)
            with ctl.lock:
                n0 = len(ctl.requests)
            t0 = time.monotonic()
            body = agent.calls.call("5", "call")
            now = call_text(body["ticket"], "5")
            done = wait_until(lambda now=now, prev=prev: shows(ctl, 0, now) and (
                prev is None or shows(ctl, 1, prev)), 20, step=0.01)
            if not done:
                raise SystemExit(f"the call {now!r} was not painted within 20 s")
            prev = now
            with ctl.lock:
                got = [r for r in ctl.requests[n0:] if r[0] >= t0]
            lat.append(got[-1][0] - t0)
            floor.append(sum(wire_time_s(r[3] + ack, BAUD) for r in got)
                         - wire_time_s(ack, BAUD))
            nbytes.append(sum(r[3] for r in got))
    finally:
        agent.close()
        hall.close()
    ms = 1000.0
    fl = statistics.median(floor)
    print("## ONBON BX-5E hall board at 9600 baud (192×32 dots, dual colour, serial)\n")
    print("| measure | n | p50 | p99 | wire-time floor p50 | ratio p50 | p99 − floor |")
    print("|---|---|---|---|---|---|---|")
    print(f"| call → last byte on the ONBON board | {len(lat)} | {pct(lat, .5) * ms:.0f} ms | "
          f"{pct(lat, .99) * ms:.0f} ms | {fl * ms:.0f} ms | {pct(lat, .5) / fl:.2f} | "
          f"{(pct(lat, .99) - fl) * ms:+.0f} ms |")
    print(f"\nA call sends {statistics.median(nbytes):.0f} bytes (two dynamic areas of "
          "192×16 dots, red and green); at 57600 baud or over TCP the same call needs a "
          "sixth of the wire time or less.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
