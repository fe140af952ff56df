"""Raw-traffic logs (drivers/traffic.py): off by default, switched per device at run
time, rotated; the RS-485 bus writes one per port; the ID reader never has one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import serial

from drivers.bus import BusPool
from drivers.rs485 import BROADCAST, Cmd, encode_frame
from drivers.traffic import RawTraffic, TrafficLogs, bus_device

PORT = "/dev/ttyFAKE0"


def _loop(_port: str, _baud: int) -> Any:
    return serial.serial_for_url("loop://", timeout=0.01)


def test_bus_device_names_follow_the_port() -> None:
    assert bus_device("/dev/ttyUSB1") == "bus-ttyUSB1"
    assert bus_device("/dev/serial/by-id/usb-FTDI_A1-if00-port0") == "bus-usb-FTDI_A1-if00-port0"
    assert bus_device("socket://127.0.0.1:5000") == "bus-127.0.0.1-5000"


def test_bus_traffic_log_is_off_by_default_and_switchable_per_port(tmp_path: Path) -> None:
    logs = TrafficLogs(tmp_path)
    pool = BusPool(logs, opener=_loop)
    master = pool.get(PORT, 9600)
    log = logs.known()[bus_device(PORT)]
    assert not log.enabled
    master.transact(BROADCAST, Cmd.CHIME)
    assert not log.path.exists()

    log.set(True)
    master.transact(BROADCAST, Cmd.CHIME)
    frame = encode_frame(BROADCAST, Cmd.CHIME, master._seq)
    lines = log.path.read_text().splitlines()
    assert log.path == tmp_path / "logs" / f"traffic-{bus_device(PORT)}.log"
    # loop:// echoes, so the first frame comes back as stale input: both arrows show.
    assert lines[-1].endswith(f">>> {frame.hex(' ')}")
    assert all(" >>> " in line or " <<< " in line for line in lines)

    log.set(False)
    master.transact(BROADCAST, Cmd.CHIME)
    assert log.path.read_text().splitlines() == lines
    pool.close()
    logs.close()


def test_a_traffic_log_rotates_and_stays_bounded(tmp_path: Path) -> None:
    log = RawTraffic("printer", tmp_path / "traffic-printer.log", max_bytes=400, backups=2)
    log.set(True)
    for _ in range(100):
        log.write(">>>", bytes(range(32)))
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["traffic-printer.log", "traffic-printer.log.1",
                                       "traffic-printer.log.2"]
    assert all(p.stat().st_size <= 400 for p in files)


def test_the_id_reader_never_gets_a_traffic_log(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="personal data"):
        TrafficLogs(tmp_path).get("id_reader")


def test_a_traffic_stamp_is_hall_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import drivers.traffic as traffic

    when = datetime(2026, 11, 30, 1, 2, 3, 456000, tzinfo=ZoneInfo("UTC")).timestamp()
    monkeypatch.setattr(traffic.time, "time", lambda: when)
    t = RawTraffic("printer", tmp_path / "t.log")
    t.set(True)
    try:
        traffic.set_timezone(ZoneInfo("Asia/Shanghai"))
        t.write(">>>", b"\x1b\x40")
    finally:
        traffic.set_timezone(None)
        t.close()
    assert (tmp_path / "t.log").read_text().splitlines() == ["09:02:03.456 >>> 1b 40"]
