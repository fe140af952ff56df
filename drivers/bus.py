"""The RS-485 bus master: one per serial port, one transaction at a time.

Boards and evaluators may share a port, so both services go through the same
:class:`BusMaster` (``BusPool.get(port)``). A transaction is: flush stale input,
send the request, wait up to 150 ms for the reply with the same address and
SEQ, twice more on silence, then count the address as ``fault``
(RS485.md "Frame"). A faulted address is not retried on every request — that
would stall the bus 450 ms each time — but re-probed every 5 s, and it is ``ok``
again on its first good answer.

Urgent transactions (calls going to the boards) go before waiting routine ones
(evaluator polls): the lock is taken per attempt, and routine callers step aside
while an urgent one waits. :meth:`BusMaster.hold` keeps the bus for one caller
across several transactions (the lines and chime of one call), so nothing else
slips in between them.

Each port has a raw-traffic log (drivers/traffic.py, device ``bus_device(port)``,
e.g. ``bus-ttyUSB1``), off until switched on at run time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial
import serial.rs485

from drivers.backoff import Backoff
from drivers.errors import DeviceError
from drivers.rs485 import (
    BROADCAST,
    Cmd,
    ErrorCode,
    Frame,
    FrameDecoder,
    Info,
    encode_frame,
    parse_error,
    parse_info,
)
from drivers.traffic import RawTraffic, TrafficLogs, bus_device
from drivers.types import SERIAL_ERRORS, DeviceHealth, Health

log = logging.getLogger("drivers.bus")

# RS485.md "Frame": the master waits 150 ms, retries twice, re-probes every 5 s.
REPLY_TIMEOUT_S = 0.150
RETRIES = 2
REPROBE_S = 5.0
BUSY_BACKOFF_S = 0.050


class BusError(DeviceError):
    """Root of the bus errors (an ``OSError``); the message names port and address."""


class NoReply(BusError, TimeoutError):
    """The device did not answer (in time, or with a good CRC)."""


class DeviceFault(BusError):
    """The address is counted as ``fault`` and its re-probe is not due yet."""


class DeviceRefused(BusError):
    """The device answered with an error reply (``FF``)."""

    def __init__(self, msg: str, code: int) -> None:
        super().__init__(msg)
        self.code = code


class PortUnavailable(BusError):
    """The serial port cannot be opened or was lost."""


ERROR_TEXT: dict[int, str] = {
    ErrorCode.UNKNOWN_COMMAND: "unknown command", ErrorCode.BAD_LENGTH: "bad length",
    ErrorCode.TEXT_NOT_ENCODABLE: "text not encodable", ErrorCode.BUSY: "busy"}


class Port(Protocol):
    """What the master needs of a pyserial port (tests may pass their own)."""

    timeout: float | None

    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int = 1) -> bytes: ...
    @property
    def in_waiting(self) -> int: ...
    def reset_input_buffer(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def open_port(port: str, baudrate: int) -> Any:
    """Open ``port`` 8N1 with RS-485 direction control where the driver supports it."""
    try:
        ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.01,
                                    write_timeout=2.0, do_not_open=True)
        ser.open()
    except (serial.SerialException, OSError, ValueError) as e:
        raise PortUnavailable(f"RS-485 bus {port}: cannot open ({e}); check the cable and "
                              "the port name (ls /dev/serial/by-id/)") from None
    try:
        # RTS drives the transceiver's DE pin while sending. A pty or an
        # auto-direction USB adapter refuses the ioctl: that is fine, they need none.
        ser.rs485_mode = serial.rs485.RS485Settings(rts_level_for_tx=True,
                                                    rts_level_for_rx=False)
    except (OSError, ValueError, AttributeError, NotImplementedError) as e:
        # pyserial keeps the refused setting and would fail every reconfigure.
        ser._rs485_mode = None
        log.info("RS-485 bus %s: no kernel direction control (%s); assuming an "
                 "auto-direction adapter", port, e)
    return ser


@dataclass
class _AddrState:
    fault: bool = False
    detail: str = ""
    next_probe: float = 0.0
    info: Info | None = None


@dataclass
class Stats:
    transactions: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    tx_bytes: int = 0
    rx_bytes: int = 0
    by_addr: dict[int, int] = field(default_factory=dict)


HealthListener = Callable[[int, DeviceHealth], None]


class BusMaster:
    """The only master on one RS-485 bus (one serial port)."""

    def __init__(self, port: str, baudrate: int = 9600, *, traffic: RawTraffic | None = None,
                 timeout_s: float = REPLY_TIMEOUT_S, retries: int = RETRIES,
                 reprobe_s: float = REPROBE_S,
                 opener: Callable[[str, int], Any] = open_port,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.retries = retries
        self.reprobe_s = reprobe_s
        # Off unless switched on (drivers/traffic.py); None: this master logs nothing.
        self.traffic = traffic
        self.stats = Stats()
        self._opener = opener
        self._clock = clock
        self._ser: Any = None
        self._seq = 0
        self._decoder = FrameDecoder()
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0
        self._holder: int | None = None  # the thread inside hold(), if any
        self._addrs: dict[int, _AddrState] = {}
        self._listeners: list[HealthListener] = []
        self._closed = False
        self._port_error = ""
        self._next_open = 0.0
        # A port that fails is tried again at the re-probe pace; an unplugged one sooner.
        self._reopen = Backoff(reprobe_s, ceiling=reprobe_s, factor=1.0)

    # ------------------------------------------------------------------ health

    def on_health(self, fn: HealthListener) -> None:
        """``fn(addr, health)`` on each change of an address's health (in the caller's
        thread, while no bus lock is held)."""
        self._listeners.append(fn)

    def health(self, addr: int) -> DeviceHealth:
        st = self._addrs.get(addr)
        if self._port_error:
            return DeviceHealth(Health.FAULT, self._port_error)
        if st is None:
            return DeviceHealth(Health.OK, "not probed yet")
        return DeviceHealth(Health.FAULT, st.detail) if st.fault else DeviceHealth(Health.OK)

    def is_fault(self, addr: int) -> bool:
        st = self._addrs.get(addr)
        return bool(self._port_error) or (st is not None and st.fault)

    def probe_due(self, addr: int) -> bool:
        st = self._addrs.get(addr)
        return st is None or not st.fault or self._clock() >= st.next_probe

    def info(self, addr: int) -> Info | None:
        st = self._addrs.get(addr)
        return st.info if st else None

    def _set(self, addr: int, ok: bool, detail: str = "") -> None:
        st = self._addrs.setdefault(addr, _AddrState())
        changed = st.fault == ok or (not ok and not st.detail)
        if ok:
            st.fault, st.detail = False, ""
        else:
            st.fault, st.detail = True, detail
            st.next_probe = self._clock() + self.reprobe_s
        if changed:
            h = self.health(addr)
            for fn in list(self._listeners):
                try:
                    fn(addr, h)
                except Exception:
                    log.exception("bus health listener failed")

    # ------------------------------------------------------------------ lock

    @contextlib.contextmanager
    def _turn(self, urgent: bool) -> Iterator[None]:
        if self._holder == threading.get_ident():
            yield  # inside this thread's hold(): the bus is already ours
            return
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._busy or (not urgent and self._urgent_waiting):
                    self._cond.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    @contextlib.contextmanager
    def hold(self, urgent: bool = True) -> Iterator[None]:
        """Keep the bus for this thread's transactions until the block ends."""
        with self._turn(urgent):
            outer = self._holder
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = outer

    # ------------------------------------------------------------------ port

    def _ensure_open(self) -> Any:
        if self._ser is not None:
            return self._ser
        now = self._clock()
        if now < self._next_open:
            raise PortUnavailable(self._port_error)
        try:
            self._ser = self._opener(self.port, self.baudrate)
        except BusError as e:
            self._port_error = str(e)
            self._next_open = now + self._reopen.for_port(self.port)
            raise
        if self._port_error:
            log.info("RS-485 bus %s: port open again", self.port)
        self._port_error = ""
        return self._ser

    def _lost(self, e: BaseException) -> PortUnavailable:
        with contextlib.suppress(Exception):
            self._ser.close()
        self._ser = None
        self._port_error = f"RS-485 bus {self.port}: port lost ({e}); check the USB cable"
        self._next_open = self._clock() + 1.0
        return PortUnavailable(self._port_error)

    def close(self) -> None:
        self._closed = True
        with self._turn(True):
            if self._ser is not None:
                with contextlib.suppress(Exception):
                    self._ser.close()
                self._ser = None

    # ------------------------------------------------------------------ transactions

    def transact(self, addr: int, cmd: int, payload: bytes = b"", *, urgent: bool = False,
                 retries: int | None = None, timeout_s: float | None = None,
                 force: bool = False) -> Frame:
        """Send one request and return the device's reply frame.

        Raises :class:`DeviceFault` at once for an address counted as faulty whose
        re-probe is not due (``force`` sends anyway, with no retries), and
        :class:`NoReply` after the retries. Only silence counts towards ``fault``;
        an error reply proves the device is alive and raises :class:`DeviceRefused`.
        """
        if self._closed:
            raise PortUnavailable(f"RS-485 bus {self.port}: closed")
        st = self._addrs.get(addr)
        faulted = st is not None and st.fault
        if faulted and not force:
            if self._clock() < st.next_probe:  # type: ignore[union-attr]
                raise DeviceFault(f"RS-485 bus {self.port} address {addr}: {st.detail}"  # type: ignore[union-attr]
                                  f" (re-probed every {self.reprobe_s:g} s)")
            st.next_probe = self._clock() + self.reprobe_s  # type: ignore[union-attr]
        tries = 1 + (0 if faulted else (self.retries if retries is None else retries))
        timeout = self.timeout_s if timeout_s is None else timeout_s
        last = ""
        for attempt in range(tries):
            try:
                with self._turn(urgent):
                    reply = self._attempt(addr, cmd, payload, timeout)
            except NoReply as e:
                last = str(e)
                self.stats.timeouts += 1
                continue
            if reply.is_error:
                req_cmd, code = parse_error(reply.payload)
                self._set(addr, True)
                if code == ErrorCode.BUSY and attempt + 1 < tries:
                    time.sleep(BUSY_BACKOFF_S)
                    continue
                raise DeviceRefused(f"RS-485 bus {self.port} address {addr}: refused command "
                                    f"{req_cmd:02X}: {ERROR_TEXT.get(code, f'code {code:02X}')}"
                                    , code)
            self._set(addr, True)
            return reply
        detail = f"no reply ({tries} tries of {timeout * 1000:.0f} ms)"
        self._set(addr, False, detail)
        raise NoReply(f"RS-485 bus {self.port} address {addr}: {last or detail}")

    def _attempt(self, addr: int, cmd: int, payload: bytes, timeout: float) -> Frame:
        try:
            ser = self._ensure_open()
        except PortUnavailable:
            raise
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        frame = encode_frame(addr, cmd, seq, payload)
        try:
            waiting = ser.in_waiting
            if waiting:
                stale = ser.read(waiting)
                self._log("<<<", stale, "stale, discarded")
            self._decoder.reset()
            ser.write(frame)
            ser.flush()
        except SERIAL_ERRORS as e:
            raise self._lost(e) from None
        self._log(">>>", frame)
        self.stats.transactions += 1
        self.stats.tx_bytes += len(frame)
        self.stats.by_addr[addr] = self.stats.by_addr.get(addr, 0) + 1
        if addr == BROADCAST:
            # No reply; leave the line quiet for the frame to go out.
            time.sleep(len(frame) * 10 / self.baudrate)
            return Frame(addr, cmd | 0x80, seq)
        # The reply cannot finish before the request has left the wire.
        deadline = time.monotonic() + timeout + len(frame) * 10 / self.baudrate
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoReply(f"no reply in {timeout * 1000:.0f} ms")
            try:
                # The port's read timeout (10 ms) only bounds this loop's idle turns:
                # a read returns as soon as bytes are there.
                data = ser.read(max(1, ser.in_waiting))
                if data and ser.in_waiting:
                    data += ser.read(ser.in_waiting)
            except SERIAL_ERRORS as e:
                raise self._lost(e) from None
            if not data:
                continue
            self.stats.rx_bytes += len(data)
            dropped_before = len(self._decoder.dropped)
            frames = self._decoder.feed(data, time.monotonic())
            bad = self._decoder.dropped[dropped_before:]
            note = ",".join(d.reason for d in bad)
            if any(d.reason == "crc" for d in bad):
                self.stats.crc_errors += 1
            self._log("<<<", data, note)
            for f in frames:
                if f.addr == addr and f.seq == seq and (f.cmd == (cmd | 0x80) or f.is_error):
                    return f
                log.debug("bus %s: ignored frame %s while waiting for %d/%d", self.port, f,
                          addr, seq)

    # ------------------------------------------------------------------ helpers

    def _log(self, arrow: str, data: bytes, note: str = "") -> None:
        if self.traffic is not None:
            self.traffic.write(arrow, data, note)

    def probe(self, addr: int, *, urgent: bool = False, force: bool = True,
              retries: int | None = 0, timeout_s: float | None = None) -> Info:
        """INFO on ``addr``; remembers the answer (``info(addr)``)."""
        reply = self.transact(addr, Cmd.INFO, urgent=urgent, force=force, retries=retries,
                              timeout_s=timeout_s)
        info = parse_info(reply.payload)
        self._addrs.setdefault(addr, _AddrState()).info = info
        return info


class BusPool:
    """One master per port, shared by the board and evaluator services."""

    def __init__(self, traffic: TrafficLogs | None = None, **master_kw: Any) -> None:
        self.traffic = traffic
        self._kw = master_kw
        self._masters: dict[str, BusMaster] = {}
        self._lock = threading.Lock()

    def get(self, port: str, baudrate: int) -> BusMaster:
        with self._lock:
            m = self._masters.get(port)
            if m is None:
                raw = self.traffic.get(bus_device(port)) if self.traffic else None
                m = BusMaster(port, baudrate, traffic=raw, **self._kw)
                self._masters[port] = m
            elif m.baudrate != baudrate:
                log.warning("RS-485 bus %s: configured at %d and at %d baud; one bus has one "
                            "speed, using %d", port, m.baudrate, baudrate, m.baudrate)
            return m

    @property
    def masters(self) -> list[BusMaster]:
        with self._lock:
            return list(self._masters.values())

    def close(self) -> None:
        for m in self.masters:
            m.close()  # the raw-traffic logs belong to their TrafficLogs, closed by its owner
