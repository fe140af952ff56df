"""The RS-485 bus at 9600 baud: calls to the hall board, ratings from 16 evaluators.

The agent core runs in this process on its real bus master; the simulated bus
emulates the line speed (each answer comes after the wire time of request and
answer at 9600 8N1), and 16 evaluators are polled on the same bus throughout.

1. Call → last byte on the hall board: from ``agent.call()`` to the moment the last
   byte of the last frame the call caused reaches the hall board, beside the wire
   time of those frames alone (the floor no software can beat). Measured twice in
   the same run, calls alternating: with the hall board first and each call's
   frames held together (``BoardService.hall_first``, the default), and without
   (the window board's frames interleaved with the hall board's, as before).
2. Rating key press → stored event: from the key press on an evaluator to its
   ``evaluation.submitted`` row in the store.

Run: ``.venv/bin/python bench/bench_bus.py [--calls 40] [--ratings 80]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.rs485 import Cmd, Key, wire_time_s  # noqa: E402
from hall_agent.agent import Agent  # noqa: E402
from hall_agent.contract.config import load_config  # noqa: E402
from sim.bus import HALL_BOARD, make_sim_bus  # noqa: E402
from sim.hall import SimHall  # noqa: E402

BAUD = 9600
WINDOWS = [str(i) for i in range(1, 17)]


def catalog(root: Path) -> Path:
    text = (ROOT / "tests" / "data" / "services.toml").read_text(encoding="utf-8")
    text = text.split("[[windows]]")[0].replace("daily_limit = 3", "")
    text += "".join(f'\n[[windows]]\nid = "{w}"\nservices = ["A", "B", "C"]\n'
                    for w in WINDOWS)
    p = root / "services.toml"
    p.write_text(text, encoding="utf-8")
    return p


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--ratings", type=int, default=80)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    hall = SimHall(root, catalog=str(catalog(root)), bus_devices=False)
    hall.use_bus(make_sim_bus(root, WINDOWS, window_boards=2, evaluators=16,
                              emulate_line=True))
    hall.write_config()
    agent = Agent(load_config(hall.config_path))
    agent.start()
    bus = hall.bus
    assert bus is not None
    # A real board draws in its own hardware: the simulator's PNGs, drawn in this
    # process, would take the CPU from the agent under test.
    bus.out_dir = None
    lat: dict[bool, list[float]] = {True: [], False: []}
    parts: dict[str, list[float]] = {k: [] for k in (
        "call() returned (store commit, call event)",
        "→ first frame leaves (board thread, a poll in progress)",
        "frames beyond their wire time (pty, sim, scheduling)")}
    floor: dict[bool, list[float]] = {True: [], False: []}
    try:
        time.sleep(3.0)  # every device probed, boards filled
        for _ in range(2 * a.calls):
            agent.tickets.issue("A")
        for i in range(2 * a.calls):
            w = WINDOWS[(i // 2) % 2]  # windows with their own board too
            mode = agent.boards.hall_first = i % 2 == 0
            t0 = time.monotonic()
            body = agent.calls.call(w, "call")
            t_called = time.monotonic()
            want = f"请 {body['ticket']} 号到 {w} 号窗口"
            bus.wait_for(lambda want=want: bus.board(HALL_BOARD).text()[0] == want, 5.0)
            time.sleep(0.6)  # let the rest of the call's frames (shifted lines, chime) go
            with bus.lock:
                got = [r for r in bus.board(HALL_BOARD).received
                       if r.ts >= t0 and r.frame.cmd != Cmd.INFO]
            if not got:
                continue
            last = got[-1]
            lat[mode].append(last.ts + wire_time_s(last.nbytes, BAUD) - t0)  # its last byte
            floor[mode].append(wire_time_s(sum(r.nbytes + r.reply_bytes for r in got)
                                           - last.reply_bytes, BAUD))
            if mode:
                parts["call() returned (store commit, call event)"].append(t_called - t0)
                parts["→ first frame leaves (board thread, a poll in progress)"].append(
                    got[0].ts - t_called)
                parts["frames beyond their wire time (pty, sim, scheduling)"].append(
                    lat[mode][-1] - (got[0].ts - t0) - floor[mode][-1])
            time.sleep(random.uniform(0.05, 0.3))
        rlat = []
        for _ in range(2 * a.ratings + len(WINDOWS)):
            agent.tickets.issue("A")
        for w in WINDOWS:  # each window serves someone, so the next call asks about them
            agent.calls.call(w, "call")
        for _ in range(a.ratings):
            w = random.choice(WINDOWS)
            # One rating per visit (core/ratings.py): each press rates a visit of its own,
            # the one the evaluator asks about once the window calls its next citizen.
            agent.calls.call(w, "call")
            ev = bus.evaluator_at(w)
            bus.wait_for(lambda ev=ev: ev.prompt_open, 5.0)
            before = agent.store.one("SELECT COUNT(*) FROM outbox WHERE type = "
                                     "'evaluation.submitted'")[0]  # type: ignore[index]
            t0 = time.monotonic()
            bus.press(w, random.choice([Key.VERY_SATISFIED, Key.SATISFIED]))
            while agent.store.one("SELECT COUNT(*) FROM outbox WHERE type = "
                                  "'evaluation.submitted'")[0] == before:  # type: ignore[index]
                time.sleep(0.002)
                if time.monotonic() - t0 > 10:
                    raise SystemExit("a rating was not stored within 10 s")
            rlat.append(time.monotonic() - t0)
            time.sleep(random.uniform(0.0, 0.2))
        poll = wire_time_s(10 + 10, BAUD)  # POLL request + empty reply
    finally:
        agent.close()
        hall.close()
    ms = 1000.0
    print("## RS-485 bus at 9600 baud (16 evaluators polled on the same bus)\n")
    print("| measure | n | p50 | p99 | wire-time floor p50 | ratio p50 | p99 − floor |")
    print("|---|---|---|---|---|---|---|")
    for mode, name in ((False, "call → last byte on the hall board, before (window board "
                               "interleaved)"),
                       (True, "call → last byte on the hall board (hall first, held)")):
        xs, fl = lat[mode], statistics.median(floor[mode])
        print(f"| {name} | {len(xs)} | {pct(xs, .5) * ms:.0f} ms | {pct(xs, .99) * ms:.0f} ms"
              f" | {fl * ms:.0f} ms | {pct(xs, .5) / fl:.2f} | "
              f"{(pct(xs, .99) - fl) * ms:+.0f} ms |")
    for name, xs in parts.items():
        print(f"| of which: {name} | {len(xs)} | {pct(xs, .5) * ms:.0f} ms | "
              f"{pct(xs, .99) * ms:.0f} ms | | | |")
    round_s = 16 * poll
    print(f"| rating key → stored event | {len(rlat)} | {pct(rlat, .5) * ms:.0f} ms | "
          f"{pct(rlat, .99) * ms:.0f} ms | {round_s / 2 * ms:.0f} ms (half a poll round) | "
          f"{pct(rlat, .5) / (round_s / 2):.2f} | |")
    print(f"\nA poll round of 16 evaluators needs at least {round_s * ms:.0f} ms of wire "
          f"({poll * ms:.1f} ms each); calls go to the boards ahead of waiting polls. "
          "Before: the window board of the called window took the bus between the hall "
          "board's frames (its two frames, about 55 ms of wire, counted against the hall "
          "board's last byte); now the hall board goes first and holds the bus for its "
          "call's frames, and the window board follows.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
