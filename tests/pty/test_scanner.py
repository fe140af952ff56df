"""Scanners: the evdev wedge (fake device fed real evdev.InputEvents; no /dev/uinput
here), the serial scanner over a pty, and the routing of what was scanned."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import evdev
import pytest
from cardhall import CardHall, wait_for

from drivers.scanner import EvdevScanner, LineDecoder, SerialScanner, WedgeDecoder
from drivers.types import DeviceHealth, Health
from hall_agent.services.scans import refusal
from sim.scanner import SimScanner, key_events


def events(text: str, **kw: Any) -> list[evdev.InputEvent]:
    return [evdev.InputEvent(0, 0, t, c, v) for t, c, v in key_events(text, **kw)]


class FakeInputDevice:
    """Stands in for evdev.InputDevice: records grab/ungrab, yields the events given."""

    def __init__(self, evs: list[evdev.InputEvent]) -> None:
        self.evs = evs
        self.grabbed = False
        self.grabs = 0
        self.done = threading.Event()

    def grab(self) -> None:
        self.grabbed = True
        self.grabs += 1

    def ungrab(self) -> None:
        self.grabbed = False

    def read_loop(self) -> Iterator[evdev.InputEvent]:
        yield from self.evs
        self.done.set()
        raise OSError(19, "No such device")  # unplugged after the scans

    def close(self) -> None:
        pass


def test_wedge_decodes_shift_and_enter() -> None:
    dec = WedgeDecoder()
    out = [t for e in events("YY-AB12cd") if (t := dec.feed(e)) is not None]
    assert out == ["YY-AB12cd"]


def test_wedge_url_with_symbols() -> None:
    dec = WedgeDecoder()
    url = "https://qms.example.gov.cn/t/fz-citizen/0b7c?x=1&y=_~"
    assert [t for e in events(url) if (t := dec.feed(e)) is not None] == [url]


def test_wedge_caps_lock_and_ignored_repeat() -> None:
    dec = WedgeDecoder()
    evs = [evdev.InputEvent(0, 0, 1, 58, 1), *events("ab", enter=False),
           evdev.InputEvent(0, 0, 1, 30, 2),  # auto-repeat: ignored
           evdev.InputEvent(0, 0, 1, 28, 1)]
    assert [t for e in evs if (t := dec.feed(e)) is not None] == ["AB"]


def test_wedge_unknown_key_makes_the_scan_refused() -> None:
    dec = WedgeDecoder()
    evs = [evdev.InputEvent(0, 0, 1, 59, 1), evdev.InputEvent(0, 0, 1, 28, 1)]  # F1, Enter
    [text] = [t for e in evs if (t := dec.feed(e)) is not None]
    assert refusal(text) == "control_chars"


def test_evdev_scanner_grabs_the_device_and_delivers_scans() -> None:
    dev = FakeInputDevice(events("YY-K7M2Q9XW4P") + events("hello"))
    got: list[str] = []
    health: list[DeviceHealth] = []
    s = EvdevScanner("/dev/input/by-id/usb-scanner-event-kbd", got.append,
                     on_health=health.append, opener=lambda p: dev)
    s.start()
    assert dev.done.wait(3)
    assert wait_for(lambda: len(got) == 2)
    s.close()
    assert got == ["YY-K7M2Q9XW4P", "hello"]
    assert dev.grabs == 1
    assert health[0].status is Health.OK
    assert wait_for(lambda: health[-1].status is Health.FAULT)
    assert "usb-scanner" in health[-1].detail and "cable" in health[-1].detail


def test_evdev_permission_error_says_input_group() -> None:
    def opener(p: str) -> FakeInputDevice:
        raise PermissionError(13, "Permission denied")
    health: list[DeviceHealth] = []
    s = EvdevScanner("/dev/input/event7", lambda t: None, on_health=health.append,
                     opener=opener)
    s.start()
    assert wait_for(lambda: bool(health))
    s.close()
    assert "input group" in health[0].detail


def test_line_decoder_cr_lf_and_overflow() -> None:
    d = LineDecoder()
    assert d.feed(b"ABC\r\nDEF\n\rGH") == ["ABC", "DEF"]
    assert d.feed(b"\r") == ["GH"]
    big = d.feed(b"x" * 5000 + b"\r")
    assert len(big) == 1 and refusal(big[0]) == "too_long"


def test_serial_scanner_over_a_pty() -> None:
    sim = SimScanner()
    got: list[str] = []
    s = SerialScanner(sim.port, 9600, got.append)
    s.start()
    try:
        assert wait_for(lambda: s._dev is not None)
        sim.scan("YY-K7M2Q9XW4P")
        sim.scan("APPT:ZZZ999")
        assert wait_for(lambda: len(got) == 2)
        assert got == ["YY-K7M2Q9XW4P", "APPT:ZZZ999"]
    finally:
        s.close()
        sim.close()


def test_serial_scanner_unplugged_and_replugged_scans_again(tmp_path: Path) -> None:
    """The scanner's cable is pulled for a few seconds (its stable name goes away) and
    plugged back in under a new pty: a fault, then scans again within a second."""
    sim = SimScanner()
    link = tmp_path / "scanner.tty"
    link.symlink_to(sim.port)
    got: list[str] = []
    health: list[DeviceHealth] = []
    s = SerialScanner(str(link), 9600, got.append, on_health=health.append)
    s.start()
    try:
        assert wait_for(lambda: s._dev is not None)
        sim.scan("YY-AAAA1111")
        assert wait_for(lambda: got == ["YY-AAAA1111"])
        link.unlink()
        sim.unplug()
        assert wait_for(lambda: health[-1].status is Health.FAULT, 5), health
        assert "USB cable" in health[-1].detail
        time.sleep(3.0)  # several failed reopenings meanwhile
        sim.replug()
        link.symlink_to(sim.port)
        assert wait_for(lambda: health[-1].status is Health.OK, 2), health
        sim.scan("YY-BBBB2222")
        assert wait_for(lambda: got == ["YY-AAAA1111", "YY-BBBB2222"]), got
    finally:
        s.close()
        sim.close()


def test_refusals() -> None:
    assert refusal("x" * 512) is None
    assert refusal("x" * 513) == "too_long"
    assert refusal("ab\x07cd") == "control_chars"
    assert refusal("ab\tcd") == "control_chars"
    assert refusal("ab\u202ecd") == "control_chars"  # bidi override
    assert refusal("") == "empty"


# ---------------------------------------------------------------- routing in the agent


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[tuple[CardHall, SimScanner]]:
    sim = SimScanner()
    h = CardHall(tmp_path, reader=False, extra={"scanner": {"port": sim.port}}).start()
    yield h, sim
    h.close()
    sim.close()


def test_scans_are_routed_by_the_configured_patterns(
        hall: tuple[CardHall, SimScanner]) -> None:
    h, sim = hall
    t = h.api.post("/v1/tickets", json={"service": "B"}).json()
    assert wait_for(lambda: h.agent.devices().get("scanner") is not None)
    sim.scan(t["status_url"])
    assert wait_for(lambda: len(h.of("scan")) == 1)
    ev = h.of("scan")[0]
    assert ev["kind"] == "ticket" and ev["ticket"]["number"] == t["number"]
    assert ev["ticket"]["status"] == "waiting"

    sim.scan("YY-NOSUCHCODE1")
    assert wait_for(lambda: len(h.of("scan")) == 2)
    ev = h.of("scan")[1]
    assert ev["kind"] == "appointment" and ev["ok"] is False
    assert ev["error"] == "no_appointment"

    sim.scan("https://example.com/something-else")
    assert wait_for(lambda: len(h.of("scan")) == 3)
    assert h.of("scan")[2]["kind"] == "unknown"

    sim.scan("A" * 600)
    assert wait_for(lambda: len(h.of("scan")) == 4)
    assert h.of("scan")[3] == {"kind": "refused", "ok": False, "reason": "too_long",
                               "message": "无法识别该二维码",
                               "message_en": "This code cannot be read"}


def test_scan_route_through_the_api(hall: tuple[CardHall, SimScanner]) -> None:
    h, _ = hall
    r = h.api.post("/v1/scans", json={"text": "bad\x1bcode"})
    assert r.json()["kind"] == "refused" and r.json()["reason"] == "control_chars"


def test_scanner_config_needs_exactly_one_source() -> None:
    from pydantic import ValidationError

    from drivers.scanner_config import ScannerConfig
    with pytest.raises(ValidationError, match="either device"):
        ScannerConfig()
    with pytest.raises(ValidationError, match="named group"):
        ScannerConfig(port="/dev/ttyACM0", appointment_pattern="^YY.*$")
