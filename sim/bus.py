"""A simulated RS-485 bus on one pty: LED boards and evaluators, the device side of
docs/protocols/RS485.md, with the same codec as the agent's master (drivers/rs485.py).

Every device answers only when addressed. Faults are per address and settable
at runtime (:data:`FAULTS_HELP`): silence, a bad CRC, a slow answer, an answer
split by a gap; and :meth:`SimBus.inject` puts noise on the line. Boards render
their lines to ``out_dir/board-ADDR.png`` (sim/led.py) whenever they change.
Raw traffic goes to its own log: ``<<<`` bytes the devices received, ``>>>``
bytes they sent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.rs485 import (
    BROADCAST,
    Frame,
    FrameDecoder,
    crc16_modbus,
    parse_key,
    wire_time_s,
)
from sim.bus_devices import FAULTS_HELP, Faults, Received, SimBoard, SimDevice, SimEvaluator
from sim.ptydevice import PtyDevice

log = logging.getLogger(__name__)


class SimBus(PtyDevice):
    """Boards and evaluators sharing one pty, answering the master like real ones."""

    def __init__(self, *, baudrate: int = 9600, out_dir: Path | None = None,
                 traffic_log: Path | None = None, emulate_line: bool = False) -> None:
        self.baudrate = baudrate
        self.out_dir = out_dir
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        self.emulate_line = emulate_line
        self.devices: dict[int, SimDevice] = {}
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._decoder = FrameDecoder()
        super().__init__(name="sim-bus", traffic_log=traffic_log)
        self._dirty: set[int] = set()
        self._render_wake = threading.Event()
        self.crc_errors_seen = 0
        self._renderer = threading.Thread(target=self._render_loop, name="sim-bus-render",
                                          daemon=True)
        self._start_reading()
        self._renderer.start()

    # ------------------------------------------------------------------ devices

    def add_board(self, address: int, *, lines: int = 4, columns: int = 32,
                  role: str = "hall") -> SimBoard:
        b = SimBoard(address, lines=lines, columns=columns, role=role)
        with self.lock:
            self.devices[address] = b
        self._mark(address)
        return b

    def add_evaluator(self, address: int, window: str) -> SimEvaluator:
        e = SimEvaluator(address, window=window)
        with self.lock:
            self.devices[address] = e
        return e

    def board(self, address: int) -> SimBoard:
        d = self.devices[address]
        assert isinstance(d, SimBoard)
        return d

    def evaluator(self, address: int) -> SimEvaluator:
        d = self.devices[address]
        assert isinstance(d, SimEvaluator)
        return d

    def evaluator_at(self, window: str) -> SimEvaluator:
        for d in self.devices.values():
            if isinstance(d, SimEvaluator) and d.window == window:
                return d
        raise KeyError(f"no simulated evaluator at window {window}")

    def press(self, window: str, key: int) -> int:
        with self.lock:
            return self.evaluator_at(window).press(key)

    def set_faults(self, address: int, **kw: Any) -> Faults:
        with self.lock:
            f = self.devices[address].faults
            for k, v in kw.items():
                if not hasattr(f, k):
                    raise ValueError(f"unknown fault {k!r}; known: {', '.join(FAULTS_HELP)}")
                setattr(f, k, type(getattr(f, k))(v))
            return f

    def power(self, address: int, on: bool) -> None:
        """Switch a device off (silent) or on again (blank, as after a power cut)."""
        with self.lock:
            d = self.devices[address]
            d.faults.reply = on
            if on:
                if isinstance(d, SimBoard):
                    d.power_cycle()
                elif isinstance(d, SimEvaluator):
                    d.restart()
        self._mark(address)

    def inject(self, data: bytes) -> None:
        """Put bytes on the line unasked (noise, a broken frame from elsewhere)."""
        self._send(data)

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"port": self.port, "baudrate": self.baudrate,
                    "devices": {str(a): d.describe() for a, d in sorted(self.devices.items())}}

    def wait_for(self, pred: Callable[[], object], timeout: float = 5.0) -> bool:
        with self.changed:
            return bool(self.changed.wait_for(pred, timeout))

    def png_path(self, address: int) -> Path | None:
        return None if self.out_dir is None else self.out_dir / f"board-{address}.png"

    # ------------------------------------------------------------------ line

    def on_bytes(self, data: bytes) -> None:
        before = len(self._decoder.dropped)
        frames = self._decoder.feed(data, time.monotonic())
        self.crc_errors_seen += sum(1 for d in self._decoder.dropped[before:]
                                    if d.reason == "crc")
        for f in frames:
            self._on_frame(f, time.monotonic())

    def _on_frame(self, f: Frame, ts: float) -> None:
        if f.is_reply:
            return  # another master's reply? there is none; ignore like a device would
        with self.lock:
            targets = (list(self.devices.values()) if f.addr == BROADCAST
                       else [d for a, d in self.devices.items() if a == f.addr])
            replies: list[tuple[SimDevice, Frame | None]] = []
            for d in targets:
                if not d.faults.reply:
                    d.received.append(Received(ts, f, len(f.encode()), 0))
                    continue
                r = d.handle(f)
                d.received.append(Received(ts, f, len(f.encode()),
                                           len(r.encode()) if r else 0))
                replies.append((d, r))
                if isinstance(d, SimBoard):
                    self._dirty.add(d.address)
            self.changed.notify_all()
        if self._dirty:
            self._render_wake.set()
        if f.addr == BROADCAST:
            return
        for d, r in replies:
            if r is None:
                continue
            out = r.encode()
            fl = d.faults
            if self.emulate_line:
                time.sleep(wire_time_s(len(f.encode()) + len(out), self.baudrate))
            if fl.slow_ms:
                time.sleep(fl.slow_ms / 1000)
            if fl.bad_crc:
                crc = crc16_modbus(out[2:-2]) ^ 0x5A5A
                out = out[:-2] + crc.to_bytes(2, "little")
            if fl.split_ms:
                half = len(out) // 2
                self._send(out[:half])
                time.sleep(fl.split_ms / 1000)
                self._send(out[half:])
            else:
                self._send(out)

    # ------------------------------------------------------------------ PNGs

    def _mark(self, address: int) -> None:
        with self.lock:
            self._dirty.add(address)
            self.changed.notify_all()
        self._render_wake.set()

    def _render_loop(self) -> None:
        # Until closed, not until unplugged: a replugged bus keeps its PNGs current.
        while not self._closed:
            self._render_wake.wait(0.5)
            self._render_wake.clear()
            if self.out_dir is None:
                with self.lock:
                    self._dirty.clear()
                continue
            time.sleep(0.1)  # a call rewrites several lines: draw once for all of them
            with self.lock:
                todo = [(a, list(d.content), d.columns, d.faults.reply, d.role)
                        for a, d in self.devices.items()
                        if a in self._dirty and isinstance(d, SimBoard)]
                self._dirty.clear()
            for addr, content, columns, on, role in todo:
                self.render(addr, content, columns, on, role)

    def render(self, addr: int, content: list[tuple[str, int, int]], columns: int, on: bool,
               role: str) -> None:
        from sim.led import render_board

        path = self.png_path(addr)
        if path is None:
            return
        try:
            lines = content if on else [("", 0, 1)] * len(content)
            title = f"board {addr} ({role}){'' if on else ' — OFF'}"
            tmp = path.with_suffix(".tmp.png")
            render_board(lines, columns, title=title).save(tmp)
            os.replace(tmp, path)
        except Exception:  # a drawing bug must not stop the bus
            log.exception("sim bus: cannot render board %d", addr)

    # ------------------------------------------------------------------ close

    def _on_close(self) -> None:
        self._render_wake.set()  # or the renderer sleeps out its 0.5 s wait
        self._renderer.join(timeout=5)


# --------------------------------------------------------------------------- the hall's bus

HALL_BOARD = 1
WINDOW_BOARD_BASE = 10  # window boards at 11, 12, … for the first windows
EVALUATOR_BASE = 20  # evaluators at 21, 22, … one per window
WINDOW_BOARDS = 2
MAX_EVALUATORS = 16

BUS_HELP = """  board ADDR                         what board ADDR shows (boards/board-ADDR.png)
  board ADDR power on|off            switch a board off (silent) or on (blank again)
  eval press WINDOW KEY              press a key on WINDOW's evaluator: 1-5 ratings
                                     (1 = 非常满意), 11 next, 12 recall, 13 pause,
                                     14 ask for a rating, 15 no-show (hex, as on the wire)
  eval WINDOW                        the evaluator's display, prompt and buffered events
  bus fault ADDR reply on|off        the device at ADDR stops or resumes answering
  bus fault ADDR bad_crc on|off      its answers carry a wrong CRC
  bus fault ADDR slow_ms N           it answers N ms late
  bus fault ADDR split_ms N          it pauses N ms in the middle of each answer
  bus noise HEX                      put these bytes on the bus (e.g. aa55ff)
"""


def catalog_windows(catalog: str) -> list[str]:
    import tomllib

    from hall_agent.contract.config import DEFAULTS_DIR

    path = Path(catalog) if catalog else DEFAULTS_DIR / "services.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(w["id"]) for w in data.get("windows", [])]


def make_sim_bus(root: Path, windows: list[str], *, window_boards: int = WINDOW_BOARDS,
                 evaluators: int = MAX_EVALUATORS, emulate_line: bool = False) -> SimBus:
    """A hall board, window boards for the first windows and an evaluator per window,
    all on one bus (one pty), as a small hall wires them."""
    bus = SimBus(out_dir=root / "boards", traffic_log=root / "sim-bus-traffic.log",
                 emulate_line=emulate_line)
    bus.add_board(HALL_BOARD, lines=4, columns=32, role="hall")
    for i, w in enumerate(windows[:window_boards]):
        bus.add_board(WINDOW_BOARD_BASE + 1 + i, lines=2, columns=16, role=f"window {w}")
    for i, w in enumerate(windows[:evaluators]):
        bus.add_evaluator(EVALUATOR_BASE + 1 + i, w)
    return bus


def bus_config(bus: SimBus, port: str | Path | None = None) -> str:
    """The agent config sections for ``bus``'s devices (★ keys of DESIGN.md); ``port``
    is the name the agent opens (a stable link to the bus's pty, by default the pty)."""
    out = []
    port = port or bus.port
    for addr, d in sorted(bus.devices.items()):
        if isinstance(d, SimBoard):
            role = "hall" if d.role == "hall" else "window"
            win = f'window = "{d.role.split()[1]}"\n' if role == "window" else ""
            out.append(f'[[boards]]\nport = "{port}"\nbaudrate = {bus.baudrate}\n'
                       f'address = {addr}\nrole = "{role}"\n{win}')
        elif isinstance(d, SimEvaluator):
            out.append(f'[[evaluators]]\nport = "{port}"\nbaudrate = {bus.baudrate}\n'
                       f'address = {addr}\nwindow = "{d.window}"\n')
    return "\n" + "\n".join(out)


def bus_command(bus: SimBus, w: list[str]) -> str:
    """One ``board``/``eval``/``bus`` control command (see :data:`BUS_HELP`)."""
    import json

    try:
        if w[0] == "board":
            addr = int(w[1])
            d = bus.board(addr)
            if len(w) == 4 and w[2] == "power" and w[3] in ("on", "off"):
                bus.power(addr, w[3] == "on")
            elif len(w) > 2:
                return f"error: unknown board command {' '.join(w)!r}; try help"
            return json.dumps(d.describe(), ensure_ascii=False)
        if w[0] == "eval":
            if w[1] == "press" and len(w) == 4:
                key = parse_key(w[3])
                event = bus.press(w[2], key)
                return f"ok event {event} key {key:02X} on window {w[2]}"
            if len(w) == 2:
                with bus.lock:  # not while a frame changes it
                    return json.dumps(bus.evaluator_at(w[1]).describe(), ensure_ascii=False)
        if w[0] == "bus":
            if w[1] == "fault" and len(w) == 5:
                value: bool | int = (w[4] == "on") if w[4] in ("on", "off") else int(w[4])
                f = bus.set_faults(int(w[2]), **{w[3]: value})
                return "ok " + json.dumps(vars(f))
            if w[1] == "noise" and len(w) == 3:
                bus.inject(bytes.fromhex(w[2]))
                return "ok"
    except (KeyError, IndexError, ValueError, AssertionError) as e:
        return f"error: {' '.join(w)!r}: {e}; try help"
    return f"error: unknown command {' '.join(w)!r}; try help"
