"""The driver's status confirmation against any noise before the answers (issue 16).

The printer here is the simulator's own answer table (sim.printer.status_byte)
behind an in-memory link, so hypothesis can try thousands of noise patterns in
seconds; tests/pty/test_printer_pty.py runs the same cases over a real pty.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.printer import TicketPrinter
from drivers.printer_config import PrinterConfig
from drivers.types import Health, TicketPrint
from sim.printer import SimState, status_byte

TICKET = TicketPrint(
    hall_name="福州市民服务中心", service_name="社保医保", number="A003", waiting_ahead=2,
    est_wait_s=300, issued_at=datetime(2024, 5, 6, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
    qr_url="https://qms.example.gov.cn/t/x", notice="请留意叫号")


class NoisyPrinter:
    """A link to a printer in ``state`` whose answers each come after some stray bytes."""

    has_status = True

    def __init__(self, state: SimState, noise: list[bytes]) -> None:
        self.state = state
        self.noise = noise
        self.asked = 0
        self.out = bytearray()
        self.printed = 0

    def write(self, data: bytes, timeout_s: float) -> None:
        if data[:2] == b"\x10\x04":
            stray = self.noise[self.asked % len(self.noise)] if self.noise else b""
            self.asked += 1
            answer = status_byte(data[2], self.state)
            self.out += stray + (bytes([answer]) if answer is not None else b"")
        elif self.state.can_print:
            self.printed += 1

    def read(self, timeout_s: float) -> bytes:
        got, self.out[:] = bytes(self.out), b""
        if not got:  # a real link waits for bytes; spinning would starve the machine
            time.sleep(min(timeout_s, 0.002))
        return got

    def flush_input(self) -> None:
        pass

    def close(self) -> None:
        pass


# The file transport only names the link here (its directory must exist); the
# link itself is NoisyPrinter.
_SPOOL = tempfile.gettempdir() + "/hall-edge-noise-spool"


def _print(link: NoisyPrinter) -> tuple[bool, Health, str]:
    p = TicketPrinter(PrinterConfig(transport="file", port=_SPOOL, status_timeout_ms=500),
                      link_factory=lambda c, t: link)
    r = p.print_ticket(TICKET)
    return r.printed, r.health.status, r.detail


_NOISE = st.lists(st.binary(min_size=0, max_size=3), min_size=1, max_size=9)
_STOPPED = st.sampled_from([
    (SimState(paper="end"), "paper end"), (SimState(cover_open=True), "cover open"),
    (SimState(cutter_error=True), "cutter error"), (SimState(error=True), "printer error"),
    (SimState(offline=True), "offline"), (SimState(unrecoverable=True), "unrecoverable")])


@settings(max_examples=60, deadline=None, database=None)
@given(_STOPPED, _NOISE)
def test_noise_before_the_answers_never_prints_on_a_stopped_printer(
        stopped: tuple[SimState, str], noise: list[bytes]) -> None:
    state, cause = stopped
    link = NoisyPrinter(state, noise)
    printed, health, detail = _print(link)
    assert not printed and health is Health.FAULT and link.printed == 0
    assert detail.startswith(cause)  # and for the right reason, noise or not


@settings(max_examples=60, deadline=None, database=None)
@given(_NOISE)
def test_noise_before_the_answers_never_faults_a_healthy_printer(noise: list[bytes]) -> None:
    link = NoisyPrinter(SimState(), noise)
    printed, health, detail = _print(link)
    assert printed and health is Health.OK and detail == "" and link.printed == 1


class SlowAfterNoise(NoisyPrinter):
    """A stray byte at once, the printer's answer only on a later read (a slow printer)."""

    def __init__(self) -> None:
        super().__init__(SimState(), [])
        self.pending: list[bytes] = []

    def write(self, data: bytes, timeout_s: float) -> None:
        if data[:2] == b"\x10\x04":
            self.asked += 1
            self.pending = [b"\xff", b"", b"", b"", bytes([status_byte(data[2], self.state) or 0])]
        else:
            self.printed += 1

    def read(self, timeout_s: float) -> bytes:
        time.sleep(min(timeout_s, 0.01))
        return self.pending.pop(0) if self.pending else b""


def test_a_slow_answer_after_a_stray_byte_is_still_heard() -> None:
    link = SlowAfterNoise()
    assert _print(link) == (True, Health.OK, "") and link.printed == 1
