"""An ONBON BX-5E/BX-6E controller over RS-232/485 or TCP (drivers/onbon.py is the codec).

A transport only moves bytes: :class:`SerialTransport` (pyserial, any of its
URLs) or :class:`TcpTransport` (the controller's TCP port, 5005 by default).
:class:`OnbonController` sends one request at a time and waits for the answer
from that screen address: the request's wire time (at 9600 baud a full line
of dual-colour dots takes most of a second) plus :data:`REPLY_TIMEOUT_S`, twice
more on silence. A NACK is an answer: it raises :class:`DeviceRefused` naming
the controller's error; silence raises :class:`NoReply`; a port or a connection
that cannot be opened raises :class:`PortUnavailable`. All three are the bus's
errors (drivers/bus.py), so the board service treats both kinds of board alike.

``opens`` counts successful (re)connections: a TCP controller that went away
and came back was most likely power-cycled, and lost its dynamic areas (§1.3).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import serial

from drivers.bus import DeviceRefused, NoReply, PortUnavailable
from drivers.onbon import (
    PC_ADDRESS,
    TCP_PORT,
    FrameDecoder,
    Model,
    OnbonCodecError,
    Response,
    encode_frame,
    error_text,
    parse_response,
    ping,
    wire_time_s,
)
from drivers.onbon_area import (
    Area,
    Page,
    Voice,
    brightness,
    delete_areas,
    encode_pixels,
    insert_voice,
    update_area,
)
from drivers.traffic import RawTraffic
from drivers.types import SERIAL_ERRORS

log = logging.getLogger("drivers.onbon_link")

REPLY_TIMEOUT_S = 0.5  # after the request has left the wire: the controller parses it first
RETRIES = 2
CONNECT_TIMEOUT_S = 2.0


class Transport(Protocol):
    where: str
    baudrate: int | None  # None: not a serial line (no wire time to wait for)
    opens: int

    def send(self, data: bytes) -> None: ...
    def recv(self, timeout_s: float) -> bytes: ...
    def discard_input(self) -> None: ...
    def drop(self) -> None: ...
    def close(self) -> None: ...


class SerialTransport:
    """A serial port (RS-232, or RS-485 through an auto-direction adapter), 8N1."""

    def __init__(self, port: str, baudrate: int = 9600) -> None:
        self.where = port
        self.baudrate: int | None = baudrate
        self.opens = 0
        self._ser: Any = None

    def _port(self) -> Any:
        if self._ser is None:
            try:
                # A short read timeout only bounds the wait loop's idle turns: a read
                # returns as soon as bytes are there (the bus master does the same).
                self._ser = serial.serial_for_url(self.where, baudrate=self.baudrate,
                                                  timeout=0.01, write_timeout=10.0)
            except (serial.SerialException, OSError, ValueError) as e:
                raise PortUnavailable(f"LED controller on {self.where}: cannot open ({e}); "
                                      "check the cable and the port name") from None
            self.opens += 1
        return self._ser

    def send(self, data: bytes) -> None:
        ser = self._port()
        try:
            ser.write(data)
            ser.flush()
        except SERIAL_ERRORS as e:
            self.drop()
            raise PortUnavailable(f"LED controller on {self.where}: port lost ({e}); "
                                  "check the USB cable") from None

    def recv(self, timeout_s: float) -> bytes:
        ser = self._port()
        try:
            data = bytes(ser.read(max(1, ser.in_waiting)))
            if data and ser.in_waiting:
                data += ser.read(ser.in_waiting)
            return data
        except SERIAL_ERRORS as e:
            self.drop()
            raise PortUnavailable(f"LED controller on {self.where}: port lost ({e}); "
                                  "check the USB cable") from None

    def discard_input(self) -> None:
        if self._ser is not None:
            with contextlib.suppress(*SERIAL_ERRORS):
                self._ser.reset_input_buffer()

    def drop(self) -> None:
        """Close the port; the next request opens it again (a replugged adapter)."""
        if self._ser is not None:
            with contextlib.suppress(Exception):
                self._ser.close()
            self._ser = None

    def close(self) -> None:
        self.drop()


class TcpTransport:
    """The controller's TCP server (§3.2, port 5005)."""

    def __init__(self, host: str, port: int = TCP_PORT, *,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.host, self.port = host, port
        self.where = f"{host}:{port}"
        self.baudrate: int | None = None
        self.opens = 0
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None

    def _conn(self) -> socket.socket:
        if self._sock is None:
            try:
                s = socket.create_connection((self.host, self.port), self.connect_timeout_s)
            except OSError as e:
                raise PortUnavailable(f"LED controller at {self.where}: cannot connect "
                                      f"({e.strerror or e}); check its power and network "
                                      "cable, and its IP address") from None
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = s
            self.opens += 1
        return self._sock

    def send(self, data: bytes) -> None:
        s = self._conn()
        try:
            s.settimeout(10.0)
            s.sendall(data)
        except OSError as e:
            self.drop()
            raise PortUnavailable(f"LED controller at {self.where}: connection lost "
                                  f"({e.strerror or e})") from None

    def recv(self, timeout_s: float) -> bytes:
        s = self._conn()
        try:
            s.settimeout(max(0.001, timeout_s))
            data = s.recv(65536)
        except TimeoutError:
            return b""
        except OSError as e:
            self.drop()
            raise PortUnavailable(f"LED controller at {self.where}: connection lost "
                                  f"({e.strerror or e})") from None
        if not data:
            self.drop()
            raise PortUnavailable(f"LED controller at {self.where}: it closed the connection "
                                  "(restarted?)")
        return data

    def discard_input(self) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.setblocking(False)
            try:
                while self._sock.recv(65536):
                    pass
            finally:
                self._sock.setblocking(True)

    def drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def close(self) -> None:
        self.drop()


class OnbonController:
    """One controller (one screen address) behind a transport; thread-safe."""

    def __init__(self, model: Model, address: int, transport: Transport, *,
                 width: int, height: int, colours: int = 2,
                 traffic: RawTraffic | None = None, timeout_s: float = REPLY_TIMEOUT_S,
                 retries: int = RETRIES) -> None:
        self.model = model
        self.address = address
        self.transport = transport
        self.width, self.height, self.colours = width, height, colours
        self.traffic = traffic
        self.timeout_s = timeout_s
        self.retries = retries
        self._lock = threading.Lock()
        self._decoder = FrameDecoder()
        self.tx_bytes = 0

    @property
    def name(self) -> str:
        return f"{self.model.value} controller {self.address} on {self.transport.where}"

    def transact(self, data: bytes, *, retries: int | None = None) -> Response:
        frame = encode_frame(self.address, data)
        tries = 1 + (self.retries if retries is None else retries)
        with self._lock:
            for _ in range(tries):
                reply = self._attempt(frame)
                if reply is None:
                    continue
                if reply.nack:
                    raise DeviceRefused(f"{self.name}: refused command {data[1]:02X}/"
                                        f"{data[2]:02X}: {error_text(reply.error)}",
                                        reply.error)
                return reply
        raise NoReply(f"{self.name}: no answer ({tries} tries); check its power, the cable "
                      "and its screen address")

    def _attempt(self, frame: bytes) -> Response | None:
        t = self.transport
        t.discard_input()
        self._decoder.reset()
        t.send(frame)
        self.tx_bytes += len(frame)
        self._log(">>>", frame)
        wire = wire_time_s(len(frame), t.baudrate) if t.baudrate else 0.0
        deadline = time.monotonic() + wire + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = t.recv(left)
            if not data:
                continue
            before = len(self._decoder.dropped)
            packets = self._decoder.feed(data)
            self._log("<<<", data, ",".join(d.reason for d in self._decoder.dropped[before:]))
            for p in packets:
                if p.dst != PC_ADDRESS or p.src != self.address:
                    continue  # another controller's answer on a shared line
                try:
                    return parse_response(p.data)
                except OnbonCodecError as e:
                    log.warning("%s: unreadable answer (%s)", self.name, e)

    def _log(self, arrow: str, data: bytes, note: str = "") -> None:
        if self.traffic is not None:
            self.traffic.write(arrow, data, note)

    # ------------------------------------------------------------------ commands

    def ping(self, *, retries: int | None = None) -> None:
        self.transact(ping(), retries=retries)

    def show(self, area_id: int, y: int, pages: Sequence[tuple[list[list[int]], int, int]],
             *, voice: Voice | None = None) -> None:
        """Area ``area_id``: full width, ``len(rows)`` high at ``y``; each page is
        (rows, display mode, stay in 10 ms)."""
        h = len(pages[0][0])
        ps = tuple(Page(encode_pixels(self.model, rows, colours=self.colours), mode, stay)
                   for rows, mode, stay in pages)
        self.transact(update_area(self.model, Area(area_id, 0, y, self.width, h, ps,
                                                   voice=voice)))

    def delete(self, ids: Sequence[int] | None = None) -> None:
        self.transact(delete_areas(ids))

    def set_brightness(self, levels: Sequence[int]) -> None:
        self.transact(brightness(levels))

    def say(self, text: str, *, volume: int = 5) -> None:
        """BX-6 only: speak ``text`` now (6th §5.4.4)."""
        if self.model != Model.BX6:
            raise DeviceRefused(f"{self.name}: a BX-5 controller has no speech", 0)
        self.transact(insert_voice(Voice(text, volume=volume)))

    def close(self) -> None:
        with self._lock:
            self.transport.close()
