"""``hallctl bus|board|eval``: the RS-485 bus for technicians.

- ``bus scan PORT`` asks INFO of every address 1–247 straight on the port (stop
  the agent first: a bus has one master);
- ``bus log [PORT]`` shows a bus's raw-traffic log (``>>>`` sent, ``<<<`` received),
  off until switched on (``hallctl log traffic bus-ttyUSB1 on``);
- ``board test`` / ``board show TEXT`` light the boards: through the agent, or
  straight to one board with ``--port`` and ``--address`` when the agent is off;
- ``eval press WINDOW KEY`` presses a key on a *simulated* evaluator, so the whole
  path — POLL, store, ACK — runs as with a real one. It asks hall-sim to press it
  (``hall-sim --dir DIR ctl eval press …``, DIR next to the config): the simulator's
  control socket is hall-sim's business, and hallctl does not import the simulators.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.bus import BusError, BusMaster, DeviceRefused, NoReply, PortUnavailable
from drivers.rs485 import Cmd, Info, Kind, parse_key
from drivers.traffic import LOG_DIR, bus_device
from hall_agent.contract.api import BoardShowIn, BoardTestIn
from hall_agent.contract.client import AgentRefused
from hall_agent.contract.config import resolve_config_path
from hallctl.common import (
    EXIT_DEVICE,
    EXIT_NO_AGENT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Ctl,
    config_data_dir,
)

KIND: dict[int, str] = {Kind.BOARD: "board", Kind.EVALUATOR: "evaluator"}
SCAN_TIMEOUT_MS = 60  # a device answers within 50 ms (RS485.md)


# ---------------------------------------------------------------------------- bus

def cmd_bus(ctl: Ctl, a: argparse.Namespace) -> int:
    return bus_scan(ctl, a) if a.action == "scan" else bus_log(ctl, a)


def bus_scan(ctl: Ctl, a: argparse.Namespace) -> int:
    if not a.port:
        return ctl.fail(EXIT_USAGE, "usage", "bus scan needs the PORT, e.g. /dev/ttyUSB1")
    # A bus has one master: scanning beside the agent garbles both (RS485.md).
    refused = ctl.refuse_beside_agent("the bus", a.force)
    if refused is not None:
        return refused
    m = BusMaster(a.port, a.baudrate, timeout_s=a.timeout_ms / 1000, retries=0)
    found: list[dict[str, Any]] = []
    try:
        for addr in range(a.first, a.last + 1):
            try:
                info = m.probe(addr, force=True, retries=0)
            except NoReply:
                continue
            except DeviceRefused as e:
                found.append({"address": addr, "kind": "unknown", "detail": str(e)})
                continue
            found.append({"address": addr, "kind": KIND.get(info.kind, f"kind {info.kind}"),
                          "lines": info.lines, "columns": info.columns,
                          "firmware": info.firmware})
            if not ctl.as_json:
                print(f"  {addr:>3}  {found[-1]['kind']:<9}  {info.lines} lines x "
                      f"{info.columns} columns  firmware {info.firmware}", flush=True)
    except PortUnavailable as e:
        return ctl.fail(EXIT_DEVICE, "port", str(e))
    finally:
        m.close()
    ctl.out({"port": a.port, "baudrate": a.baudrate, "devices": found},
            lambda: print(f"{len(found)} device(s) on {a.port} at {a.baudrate} baud"
                          + ("" if found else " — check the A/B wires, the baud rate and that "
                                               "the agent is stopped")))
    return EXIT_OK if found else EXIT_DEVICE


def bus_log(ctl: Ctl, a: argparse.Namespace) -> int:
    data_dir = config_data_dir(a.config)
    if data_dir is None:
        return ctl.fail(EXIT_USAGE, "config", "bus log needs the agent's config "
                        "(--config) to find data_dir")
    if a.port:  # one log per bus port (drivers/traffic.py)
        path = data_dir / LOG_DIR / f"traffic-{bus_device(a.port)}.log"
    else:  # the bus written to last
        found = sorted((data_dir / LOG_DIR).glob("traffic-bus-*.log"),
                       key=lambda p: p.stat().st_mtime)
        path = found[-1] if found else data_dir / LOG_DIR / "traffic-bus-*.log"
    if not path.exists():
        return ctl.fail(EXIT_DEVICE, "no_log", f"no bus traffic logged yet ({path}); it is off "
                        "until switched on: `hallctl log show` lists the buses, then "
                        "`hallctl log traffic bus-PORT on`")
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()[-a.lines:]
    if ctl.as_json:
        print(json.dumps({"path": str(path), "lines": lines}, indent=2))
        return EXIT_OK
    for line in lines:
        print(line)
    if not lines:
        print(f"no traffic logged yet in {path}", file=sys.stderr)
    if a.follow:
        with path.open(encoding="ascii", errors="replace") as f:
            f.seek(0, 2)
            try:
                while True:
                    line = f.readline()
                    if line:
                        print(line, end="", flush=True)
                    else:
                        time.sleep(0.2)
            except KeyboardInterrupt:
                pass
    return EXIT_OK


# ---------------------------------------------------------------------------- boards

def _direct_board(ctl: Ctl, a: argparse.Namespace,
                  lines_for: Callable[[Info], list[tuple[str, int, int]]]) -> int:
    from hall_agent.services.boards import send_lines

    m = BusMaster(a.port, a.baudrate)
    try:
        info = m.probe(a.address, force=True, retries=2)
        if info.kind != Kind.BOARD:
            return ctl.fail(EXIT_DEVICE, "not_a_board",
                            f"address {a.address} on {a.port} is a "
                            f"{KIND.get(info.kind, 'device')}, not a board")
        lines = lines_for(info)
        send_lines(m, a.address, lines, [None] * len(lines))
        m.transact(a.address, Cmd.CHIME)
    except (NoReply, PortUnavailable) as e:
        return ctl.fail(EXIT_DEVICE, "no_answer", f"{e} — check its power, the address "
                        "switches and the baud rate")
    except BusError as e:
        return ctl.fail(EXIT_DEVICE, "bus", str(e))
    finally:
        m.close()
    ctl.out({"port": a.port, "address": a.address, "lines": [t for t, _, _ in lines],
             "info": {"lines": info.lines, "columns": info.columns,
                      "firmware": info.firmware}},
            lambda: print(f"board {a.address} on {a.port} ({info.lines}x{info.columns}, "
                          f"{info.firmware}): " + " | ".join(t for t, _, _ in lines)))
    return EXIT_OK


def cmd_board(ctl: Ctl, a: argparse.Namespace) -> int:
    from hall_agent.services.boards import show_lines, test_pattern_lines

    text = " ".join(a.text or [])
    if a.action == "show" and not text:
        return ctl.fail(EXIT_USAGE, "usage", "board show needs TEXT (| separates lines)")
    if a.seconds < 1:
        return ctl.fail(EXIT_USAGE, "usage", "--seconds must be 1 or more")
    if a.port:
        if a.address is None:
            return ctl.fail(EXIT_USAGE, "usage", "--port needs --address (1-247)")
        refused = ctl.refuse_beside_agent("the bus", a.force)
        if refused is not None:
            return refused
        return _direct_board(ctl, a, test_pattern_lines if a.action == "test"
                             else (lambda info: show_lines(info, text)))
    if a.address is not None and a.action == "test":
        return ctl.fail(EXIT_USAGE, "usage", "through the agent `board test` lights every "
                        "board; one board by --address needs --port (agent stopped), or "
                        "use `board show TEXT --address N`")
    board = None
    if a.address is not None:  # through the agent: the board configured at that address
        names = [b["name"] for b in ctl.agent.bus().boards if b.get("address") == a.address]
        if not names:
            return ctl.fail(EXIT_USAGE, "usage", f"the agent drives no board at address "
                            f"{a.address} (`hallctl bus` lists them)")
        board = names[0]
    # Through the agent. model_construct: the agent judges the values (its 422 names the
    # field), as it always has.
    try:
        if a.action == "show":
            out = ctl.agent.boards_show(BoardShowIn.model_construct(
                text=text, seconds=int(a.seconds), board=board))
        else:
            out = ctl.agent.boards_test(BoardTestIn.model_construct(seconds=int(a.seconds)))
    except AgentRefused as e:
        if e.status == 404 and e.body.error == "not_found":
            return ctl.fail(EXIT_REFUSED, "not_supported", "this agent has no board route; "
                            "use --port and --address with the agent stopped")
        return ctl.refused(e)
    ctl.out(out.model_dump(mode="json"),
            lambda: print(f"boards: {a.action} for {a.seconds} s: "
                          + ", ".join(f"{k} {v}" for k, v in out.boards.items())))
    return EXIT_OK


# ---------------------------------------------------------------------------- evaluators

#: ``hall-sim ctl``'s exit code when no simulator answers on its control socket.
SIM_CTL_NO_SIM = 3


def cmd_eval(ctl: Ctl, a: argparse.Namespace) -> int:
    try:
        key = parse_key(a.key)
    except ValueError as e:
        return ctl.fail(EXIT_USAGE, "usage", str(e))
    sim_dir = Path(a.sim_dir) if a.sim_dir else resolve_config_path(a.config).parent
    sock = sim_dir / "sim.sock"
    try:
        r = subprocess.run([sys.executable, "-m", "sim.main", "--dir", str(sim_dir), "ctl",
                            "eval", "press", a.window, f"{key:x}"],
                           capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        r = subprocess.CompletedProcess([], SIM_CTL_NO_SIM, "", str(e))
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()[-1:] or [f"exit code {r.returncode}"]
        return ctl.fail(EXIT_NO_AGENT, "no_sim", f"no hall-sim at {sock} ({why[0]}); `eval "
                        "press` works on simulated evaluators: start hall-sim, or press the "
                        "real key")
    answer = r.stdout.strip()
    if answer.startswith("error"):
        return ctl.fail(EXIT_REFUSED, "refused", answer)
    ctl.out({"window": a.window, "key": key, "answer": answer},
            lambda: print(f"window {a.window}: pressed key {key:02X} ({answer})"))
    return EXIT_OK


# ---------------------------------------------------------------------------- parser

def add_parsers(sub: Any) -> None:
    b = sub.add_parser("bus", help="RS-485 bus: scan a port, show the raw traffic")
    b.add_argument("action", choices=["scan", "log"])
    b.add_argument("port", nargs="?", help="serial port to scan (agent stopped)")
    b.add_argument("--baudrate", type=int, default=9600)
    b.add_argument("--from", dest="first", type=int, default=1, help="first address (1)")
    b.add_argument("--to", dest="last", type=int, default=247, help="last address (247)")
    b.add_argument("--timeout-ms", type=int, default=SCAN_TIMEOUT_MS,
                   help="wait per address, in milliseconds")
    b.add_argument("-n", "--lines", type=int, default=40, help="log lines to show")
    b.add_argument("-f", "--follow", action="store_true", help="keep showing new traffic")
    b.add_argument("--force", action="store_true", help="scan even if the agent is running")
    d = sub.add_parser("board", help="LED boards: test pattern, or show a text")
    d.add_argument("action", choices=["test", "show"])
    d.add_argument("text", nargs="*", help="for show: the text; | separates lines")
    d.add_argument("--seconds", type=int, default=15,
                   help="how long, in whole seconds (through the agent)")
    d.add_argument("--port", help="talk to one board straight on this port (agent stopped)")
    d.add_argument("--address", type=int, help="the board's address, with --port")
    d.add_argument("--baudrate", type=int, default=9600)
    d.add_argument("--force", action="store_true",
                   help="with --port: even if the agent is running")
    e = sub.add_parser("eval", help="press a key on a simulated evaluator")
    e.add_argument("action", choices=["press"])
    e.add_argument("window")
    e.add_argument("key", help="1-5 ratings (1 = 非常满意), 11 next, 12 recall, 13 pause, "
                               "14 ask for a rating, 15 no-show, or a name (satisfied)")
    e.add_argument("--sim-dir", help="hall-sim's directory (default: the config's)")


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    "bus": cmd_bus, "board": cmd_board, "eval": cmd_eval,
}
