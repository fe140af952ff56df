"""TicketPrinter against SimPrinter over a real pty: every status case of PRINTER.md."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.escpos_decode import decode_tickets
from drivers.printer import TicketPrinter
from drivers.printer_config import PrinterConfig
from drivers.types import Health, TicketPrint
from sim.printer import SimPrinter

TIMEOUT_MS = 200
TZ = ZoneInfo("Asia/Shanghai")


def ticket(number: str = "A023") -> TicketPrint:
    return TicketPrint(
        hall_name="南山区政务服务中心", service_name="不动产登记", number=number,
        waiting_ahead=3, est_wait_s=600, issued_at=datetime(2024, 5, 6, 9, 30, tzinfo=TZ),
        qr_url=f"https://qms.example.gov.cn/t/nanshan/{number}-0193f1c2-7a4b-7cde",
        notice="请留意叫号，过号请重新取号")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    s = SimPrinter(tmp_path / "out", traffic_log=tmp_path / "traffic.log")
    yield s
    s.close()


@pytest.fixture
def link(tmp_path: Path, sim: SimPrinter) -> Path:
    """The driver's port: a symlink, as /dev/serial/by-id/… is, re-pointable by tests."""
    p = tmp_path / "ttyPRINTER"
    p.symlink_to(sim.port)
    return p


@pytest.fixture
def printer(link: Path) -> Iterator[TicketPrinter]:
    p = TicketPrinter(PrinterConfig(transport="serial", port=str(link),
                                    status_timeout_ms=TIMEOUT_MS))
    yield p
    p.close()


def test_ok_printer_prints_the_ticket(sim: SimPrinter, printer: TicketPrinter) -> None:
    assert printer.open().status is Health.OK
    r = printer.print_ticket(ticket())
    assert r.printed and r.health.status is Health.OK and r.detail == ""
    assert 0 < r.wire_bytes < 600
    assert sim.wait_for_tickets(1)
    got = sim.tickets[0]
    assert got.number == "A023" and got.raw_bytes == r.wire_bytes
    assert got.qr_data == [ticket().qr_url]
    assert printer.health.status is Health.OK


def test_status_asks_paper_sensors_then_cover_then_offline(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    printer.status()
    assert sim.queries == [4, 2, 1]


def test_paper_near_end_still_prints_but_is_degraded(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    sim.set_state(paper="near_end")
    r = printer.print_ticket(ticket())
    assert r.printed
    assert r.health.status is Health.DEGRADED and "near end" in r.detail
    assert sim.wait_for_tickets(1)


@pytest.mark.parametrize(("state", "words"), [
    ({"paper": "end"}, "paper end — load a new roll"),
    ({"cover_open": True}, "cover open"),
    ({"offline": True}, "offline"),
    ({"error": True}, "printer error"),
])
def test_fault_means_the_ticket_is_not_sent(
        sim: SimPrinter, printer: TicketPrinter, state: dict[str, object], words: str) -> None:
    sim.set_state(**state)  # type: ignore[arg-type]
    r = printer.print_ticket(ticket())
    assert not r.printed and r.wire_bytes == 0
    assert r.health.status is Health.FAULT and words in r.detail and r.detail == r.health.detail
    assert printer.health == r.health
    time.sleep(0.1)
    # Only status queries went over the line: nothing to discard, nothing cut.
    assert sim.received_bytes == 3 * len(sim.queries) and not sim.tickets


def test_printer_that_does_not_answer_is_a_fault_within_the_timeout(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    printer.open()
    sim.set_state(reply=False)
    t0 = time.monotonic()
    r = printer.print_ticket(ticket())
    took = time.monotonic() - t0
    assert not r.printed and r.health.status is Health.FAULT
    assert "no reply" in r.detail
    assert TIMEOUT_MS / 1000 * 0.9 <= took < 2 * TIMEOUT_MS / 1000 + 0.15
    assert sim.queries[-1] == 4  # gave up after the first silent query


def test_slow_answer_within_the_timeout_is_fine(sim: SimPrinter, printer: TicketPrinter) -> None:
    sim.set_state(delay_ms=TIMEOUT_MS // 4)
    assert printer.print_ticket(ticket()).printed


def test_noise_before_the_answer_is_ignored(sim: SimPrinter, printer: TicketPrinter) -> None:
    # None of these bytes has the 0xx1xx10 shape of an answer.
    sim.set_state(garbage=b"\xff\x00\x80E\r\n!", paper="near_end")
    st = printer.status()
    assert not st.no_reply and st.paper_near_end and not st.paper_end
    assert st.health().status is Health.DEGRADED


def test_stale_bytes_are_flushed_before_asking(sim: SimPrinter, printer: TicketPrinter) -> None:
    printer.open()
    sim.inject(bytes([0x72, 0x72, 0x72]))  # a late "paper end" answer, shaped like one
    time.sleep(0.1)
    assert printer.status().health().status is Health.OK


def test_vanished_port_is_a_clear_fault_then_recovers_on_a_new_port(
        tmp_path: Path, sim: SimPrinter, link: Path, printer: TicketPrinter) -> None:
    assert printer.open().status is Health.OK
    sim.close()  # the cable is pulled: the pty disappears
    t0 = time.monotonic()
    first = printer.print_ticket(ticket())
    assert time.monotonic() - t0 < 2 * TIMEOUT_MS / 1000 + 0.2
    assert not first.printed and first.health.status is Health.FAULT
    assert f"printer on {link}" in first.detail and "check the USB cable" in first.detail
    second = printer.refresh()
    assert second.status is Health.FAULT
    assert second.detail == f"printer on {link}: not found — check the USB cable"

    with SimPrinter(tmp_path / "out2") as new:  # plugged back in: a new device node
        link.unlink()
        link.symlink_to(new.port)
        r = printer.print_ticket(ticket("B001"))
        assert r.printed and r.health.status is Health.OK
        assert new.wait_for_tickets(1) and new.tickets[0].number == "B001"


def test_missing_port_never_raises_and_answers_fast(tmp_path: Path) -> None:
    p = TicketPrinter(PrinterConfig(transport="serial", port=str(tmp_path / "ttyUSB9"),
                                    status_timeout_ms=TIMEOUT_MS))
    t0 = time.monotonic()
    r = p.print_ticket(ticket())
    assert time.monotonic() - t0 < 0.1
    assert not r.printed
    assert r.detail == f"printer on {tmp_path / 'ttyUSB9'}: not found — check the USB cable"
    assert p.health == r.health
    p.close()


def test_test_page_prints(sim: SimPrinter, printer: TicketPrinter) -> None:
    r = printer.test_print()
    assert r.printed
    assert sim.wait_for_tickets(1) and sim.tickets[0].qr_data == ["hall-edge printer test"]


def test_concurrent_prints_do_not_interleave(sim: SimPrinter, printer: TicketPrinter) -> None:
    numbers = [f"C{i:03d}" for i in range(6)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        printer.print_ticket(ticket(n)).printed)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 6
    assert sim.wait_for_tickets(6)
    assert sorted(t.number or "" for t in sim.tickets) == numbers
    assert all(t.unknown == 0 for t in sim.tickets)


def test_file_transport_spools_without_a_status_channel(tmp_path: Path) -> None:
    spool = tmp_path / "spool.bin"
    p = TicketPrinter(PrinterConfig(transport="file", port=str(spool)))
    assert p.refresh().detail == "no status channel (file)"
    r1 = p.print_ticket(ticket("A001"))
    p.close()
    r2 = p.print_ticket(ticket("A002"))  # reopened: appends, does not wipe the spool
    p.close()
    assert r1.printed and r2.printed and r1.detail == ""
    got = decode_tickets(spool.read_bytes())
    assert [t.number for t in got] == ["A001", "A002"]
    assert os.path.getsize(spool) == r1.wire_bytes + r2.wire_bytes


def test_network_printer_that_is_not_there_is_a_fault() -> None:
    p = TicketPrinter(PrinterConfig(transport="network", host="127.0.0.1", tcp_port=9,
                                    status_timeout_ms=TIMEOUT_MS))
    h = p.refresh()
    assert h.status is Health.FAULT and h.detail.startswith("printer at 127.0.0.1:9: cannot ")
    p.close()


def test_network_printer_prints_and_reports_paper_through_a_printer_server(
        sim: SimPrinter) -> None:
    """A LAN printer: our own socket link (not python-escpos') against the simulated
    printer behind a TCP-to-serial printer server, as a hall wires a remote one."""
    import socket

    import serial

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    line = serial.Serial(sim.port, timeout=0.05)
    stop = threading.Event()

    def relay() -> None:
        conn, _ = srv.accept()
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                    if not data:
                        return
                    line.write(data)
                except TimeoutError:
                    pass
                back = line.read(line.in_waiting or 1)
                if back:
                    conn.sendall(back)

    t = threading.Thread(target=relay, daemon=True)
    t.start()
    p = TicketPrinter(PrinterConfig(transport="network", host="127.0.0.1", tcp_port=port,
                                    status_timeout_ms=1000))
    try:
        assert p.refresh().status is Health.OK
        r = p.print_ticket(ticket("B007"))
        assert r.printed, r.detail
        assert sim.wait_for_tickets(1)
        sim.set_state(paper="end")
        h = p.refresh()
        assert h.status is Health.FAULT and "paper" in h.detail.lower()
    finally:
        p.close()
        stop.set()
        t.join(5)
        line.close()
        srv.close()
