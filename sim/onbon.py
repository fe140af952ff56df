"""A simulated ONBON BX-5E / BX-6E controller, on a pty (RS-232/485) or on TCP.

It plays the controller's side of the vendor's dynamic-area protocol with the
agent's own codec (drivers/onbon.py): frames are checked (CRC, escapes,
length) and a bad one is answered with a NACK ``ERR_CHECKSUM`` as the manual
says, a frame for another screen address is ignored, each request is answered
ACK or NACK. Dynamic areas live in RAM and a power cut loses them (§1.3);
the screen is drawn dot for dot to ``out_dir/onbon-ADDR.png`` (sim/led.py)
whenever it changes. A BX-6's speech goes to :attr:`SimOnbon.spoken`.

Faults are settable at run time (:data:`ONBON_HELP`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.onbon import (
    ACK,
    ANY_DEVICE,
    HEAD,
    HEADER,
    PC_ADDRESS,
    PROTOCOL,
    TAIL,
    Cmd,
    Error,
    FrameDecoder,
    Group,
    Model,
    OnbonCodecError,
    Packet,
    Response,
    crc16,
    escape,
    nack,
    parse_request,
    wire_time_s,
)
from drivers.onbon_area import (
    Area,
    decode_pixels,
    parse_brightness,
    parse_delete,
    parse_insert_voice,
    parse_update,
)
from sim.ptydevice import PtyDevice

log = logging.getLogger(__name__)

ONBON_HELP = """  onbon power on|off            switch the ONBON controller off (silent, TCP
                                refused) or on (blank: its dynamic areas are lost)
  onbon fault nack N            answer the next N requests NACK (ERR_BUSY)
  onbon fault bad_crc on|off    its answers carry a wrong CRC
  onbon fault reply on|off      it receives but never answers
  onbon fault noise HEX         these bytes on the line just before its next answer
  onbon                         its state: areas, brightness, speech
"""


@dataclass
class OnbonFaults:
    reply: bool = True
    bad_crc: bool = False
    nack: int = 0


@dataclass
class SimOnbon:
    """The controller itself, whatever its cable; :meth:`handle_bytes` is the line."""

    model: Model
    address: int = 1
    width: int = 192
    height: int = 32
    colours: int = 2
    out_dir: Path | None = None
    faults: OnbonFaults = field(default_factory=OnbonFaults)
    powered: bool = True
    areas: dict[int, Area] = field(default_factory=dict)
    brightness: list[int] = field(default_factory=lambda: [15] * 48)
    spoken: list[str] = field(default_factory=list)
    # (arrival of its last byte, group, command, frame bytes on the wire)
    requests: list[tuple[float, int, int, int]] = field(default_factory=list)
    nacks_sent: int = 0
    noise: bytes = b""  # sent once, just before the next answer (`onbon fault noise HEX`)
    boots: int = 1
    on_change: Callable[[], None] | None = None
    # Set: the line is played at this speed (each frame takes its 8N1 wire time to
    # arrive and each answer to leave), for the benchmarks' wire-time floor.
    emulate_baud: int | None = None

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._decoder = FrameDecoder()
        self._render_wake = threading.Event()
        self._stop = threading.Event()
        self._renderer = threading.Thread(target=self._render_loop, daemon=True,
                                          name=f"sim-onbon-{self.address}-render")
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._renderer.start()
        self._render_wake.set()

    # ------------------------------------------------------------------ the line

    def handle_bytes(self, data: bytes) -> bytes:
        """Bytes from the host in, the controller's answer bytes out."""
        out = b""
        with self.lock:
            if not self.powered:
                return b""
            before = len(self._decoder.dropped)
            packets = self._decoder.feed(data)
            bad = [d for d in self._decoder.dropped[before:] if d.reason != "noise"]
        for _ in bad:
            # §5.2.2 ERR_CHECKSUM: a damaged frame is answered, not silently dropped.
            out += self._answer(nack(Error.CHECKSUM))
        for p in packets:
            n = len(p.encode())
            if self.emulate_baud:
                time.sleep(wire_time_s(n, self.emulate_baud))  # its last byte arrives
            ans = self._on_packet(p, n)
            if self.emulate_baud and ans:
                time.sleep(wire_time_s(len(ans), self.emulate_baud))
            out += ans
        return out

    def _answer(self, r: Response) -> bytes:
        if not self.faults.reply:
            return b""
        if r.nack:
            self.nacks_sent += 1
        data = r.encode()
        if not self.faults.bad_crc:
            return Packet(PC_ADDRESS, self.address, data).encode()
        phy1 = HEADER.pack(PC_ADDRESS, self.address, PROTOCOL, 0, ANY_DEVICE, 0, len(data)) + data
        phy1 += (crc16(phy1) ^ 0x0101).to_bytes(2, "little")
        return HEAD + escape(phy1) + bytes([TAIL])

    def _on_packet(self, p: Packet, nbytes: int) -> bytes:
        if p.dst not in (self.address, 0xFFFE, 0xFFFF) or p.src == self.address:
            return b""
        with self.changed:
            try:
                req = parse_request(p.data)
            except OnbonCodecError:
                return self._answer(nack(Error.NOCMD))
            self.requests.append((time.monotonic(), req.group, req.cmd, nbytes))
            del self.requests[:-1000]
            if self.faults.nack > 0:
                self.faults.nack -= 1
                self.changed.notify_all()
                return self._answer(nack(Error.BUSY))
            r = self._execute(req)
            self.changed.notify_all()
        if self.on_change is not None:
            self.on_change()
        return self._answer(r) if req.reply else b""

    def _execute(self, req: Any) -> Response:
        g, c = req.group, req.cmd
        try:
            if g == Group.CONTROL and c == Cmd.PING:
                return ACK
            if g == Group.CONTROL and c == Cmd.BRIGHTNESS:
                self.brightness = parse_brightness(req)
                return ACK
            if g == Group.AREA and c == Cmd.AREA_UPDATE:
                areas = parse_update(self.model, req)
                for a in areas:
                    if a.area_id > 3 or a.x + a.width > self.width or (
                            a.y + a.height > self.height):
                        return nack(Error.SCREEN_PARA)
                    for pg in a.pages:  # an unreadable picture is refused, not drawn
                        decode_pixels(self.model, pg.bitmap, a.width, a.height, x0=a.x,
                                      colours=self.colours)
                for a in areas:
                    self.areas[a.area_id] = a
                    if a.voice is not None:
                        self.spoken.append(a.voice.text)
                self._render_wake.set()
                return ACK
            if g == Group.AREA and c == Cmd.AREA_DELETE:
                ids = parse_delete(req)
                for i in list(self.areas) if ids is None else ids:
                    self.areas.pop(i, None)
                self._render_wake.set()
                return ACK
            if g == Group.AREA and c in (Cmd.VOICE_INSERT, Cmd.VOICE_QUEUE):
                if self.model != Model.BX6 or c == Cmd.VOICE_QUEUE:
                    return nack(Error.NOCMD)
                self.spoken.append(parse_insert_voice(req).text)
                return ACK
        except OnbonCodecError as e:
            log.info("sim onbon %d: bad request %02X/%02X: %s", self.address, g, c, e)
            return nack(Error.SCREEN_PARA)
        if g not in (Group.CONTROL, Group.AREA):
            return nack(Error.OUTOFGROUP)
        return nack(Error.NOCMD)

    def take_noise(self) -> bytes:
        with self.lock:
            out, self.noise = self.noise, b""
        return out

    # ------------------------------------------------------------------ state

    def power(self, on: bool) -> None:
        with self.changed:
            if on and not self.powered:
                self.areas.clear()  # §1.3: dynamic areas do not survive a power cut
                self._decoder.reset()
                self.boots += 1
            self.powered = on
            self.changed.notify_all()
        self._render_wake.set()

    def screen(self) -> list[list[int]]:
        """The dots lit now (pages shown: each area's first)."""
        rows = [[0] * self.width for _ in range(self.height)]
        with self.lock:
            areas = list(self.areas.values()) if self.powered else []
        for a in sorted(areas, key=lambda a: a.area_id):
            dots = decode_pixels(self.model, a.pages[0].bitmap, a.width, a.height, x0=a.x,
                                 colours=self.colours)
            for y, row in enumerate(dots):
                if 0 <= a.y + y < self.height:
                    rows[a.y + y][a.x:a.x + a.width] = row[:self.width - a.x]
        return rows

    def wait_for(self, pred: Callable[[], object], timeout: float = 10.0) -> bool:
        with self.changed:
            return bool(self.changed.wait_for(pred, timeout))

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"model": self.model.value, "address": self.address,
                    "size": f"{self.width}x{self.height}", "colours": self.colours,
                    "powered": self.powered, "faults": vars(self.faults).copy(),
                    "areas": {i: {"y": a.y, "height": a.height, "pages": len(a.pages),
                                  "mode": a.pages[0].mode} for i, a in self.areas.items()},
                    "brightness": self.brightness, "spoken": self.spoken[-5:],
                    "requests": len(self.requests), "boots": self.boots}

    def command(self, w: list[str]) -> str:
        """``onbon …`` control words (see :data:`ONBON_HELP`), without the ``onbon``."""
        import json

        if len(w) == 2 and w[0] == "power" and w[1] in ("on", "off"):
            self.power(w[1] == "on")
        elif len(w) == 3 and w[0] == "fault" and w[1] in ("nack", "bad_crc", "reply", "noise"):
            with self.lock:
                if w[1] == "noise":
                    self.noise = bytes.fromhex(w[2])
                elif w[1] == "nack":
                    self.faults.nack = int(w[2])
                else:
                    setattr(self.faults, w[1], w[2] == "on")
        elif w:
            return f"error: unknown onbon command {' '.join(w)!r}; try help"
        return json.dumps(self.describe(), ensure_ascii=False)

    @property
    def png_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / f"onbon-{self.address}.png"

    def _render_loop(self) -> None:
        while not self._stop.is_set():
            if not self._render_wake.wait(0.5):
                continue
            self._render_wake.clear()
            time.sleep(0.05)  # several areas change per call: draw once for all of them
            if self._stop.is_set() or self.png_path is None:
                continue
            try:
                self.render(self.png_path)
            except Exception:  # a drawing bug must not stop the controller
                log.exception("sim onbon %d: cannot render", self.address)

    def render(self, path: Path) -> None:
        from sim.led import render_dots

        title = (f"ONBON {self.model.value} #{self.address} {self.width}x{self.height}"
                 f"{'' if self.powered else ' — OFF'}")
        tmp = path.with_suffix(".tmp.png")
        render_dots(self.screen(), title=title, on=self.powered).save(tmp)
        os.replace(tmp, path)

    def close(self) -> None:
        self._stop.set()
        self._render_wake.set()
        self._renderer.join(timeout=5)


class SimOnbonPty(PtyDevice):
    """The controller on a pty, as on its RS-232/485 port."""

    def __init__(self, ctl: SimOnbon, *, traffic_log: Path | None = None) -> None:
        self.ctl = ctl
        super().__init__(name=f"sim-onbon-{ctl.address}", traffic_log=traffic_log)
        self._start_reading()

    def on_bytes(self, data: bytes) -> None:
        out = self.ctl.handle_bytes(data)
        if out:
            self._send(self.ctl.take_noise() + out)

    def inject(self, data: bytes) -> None:
        """Bytes on the line unasked (noise, another device's half frame)."""
        self._send(data)

    def _on_close(self) -> None:
        self.ctl.close()


class SimOnbonTcp:
    """The controller's TCP server on 127.0.0.1 (5005 on a real one; here any port)."""

    def __init__(self, ctl: SimOnbon, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctl = ctl
        self.host = host
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._srv: socket.socket | None = None
        self.port = port
        self.connections = 0
        self._listen()

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        self.port = s.getsockname()[1]
        s.listen(4)
        self._srv = s
        threading.Thread(target=self._accept, args=(s,), daemon=True,
                         name=f"sim-onbon-{self.ctl.address}-tcp").start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                out = self.ctl.handle_bytes(data)
                if out:
                    with contextlib.suppress(OSError):
                        conn.sendall(self.ctl.take_noise() + out)
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)

    def power(self, on: bool) -> None:
        """Off: the connections drop and the port refuses; on: listening again, blank."""
        self.ctl.power(on)
        if not on:
            self._close_sockets()
        elif self._srv is None:
            self._listen()

    def _close_sockets(self) -> None:
        if self._srv is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not,
            # and the port would stay bound.
            with contextlib.suppress(OSError):
                self._srv.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._srv.close()
            self._srv = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def close(self) -> None:
        self._close_sockets()
        self.ctl.close()
