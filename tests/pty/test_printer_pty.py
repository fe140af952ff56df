"""TicketPrinter against SimPrinter over a real pty: every status case of PRINTER.md."""

from __future__ import annotations

import os
import threading
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
from sim.procs import wait_until

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


def test_status_asks_paper_cover_cutter_offline_each_until_two_answers_agree(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    printer.status()
    assert sim.queries == [4, 4, 2, 2, 3, 3, 1, 1]


def test_paper_near_end_still_prints_but_is_degraded(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    sim.set_state(paper="near_end")
    r = printer.print_ticket(ticket())
    assert r.printed
    assert r.health.status is Health.DEGRADED and "near end" in r.detail
    assert sim.wait_for_tickets(1)


@pytest.mark.parametrize(("state", "words", "not_said"), [
    ({"paper": "end"}, "paper end — load a new roll", "offline"),
    ({"cover_open": True}, "cover open", "offline"),
    ({"offline": True}, "offline", "cover"),
    ({"error": True}, "printer error", "offline"),
    ({"cutter_error": True}, "cutter error", "printer error"),
    ({"unrecoverable": True}, "unrecoverable error", "offline"),
])
def test_fault_means_the_ticket_is_not_sent_and_names_its_cause(
        sim: SimPrinter, printer: TicketPrinter, state: dict[str, object], words: str,
        not_said: str) -> None:
    sim.set_state(**state)  # type: ignore[arg-type]
    r = printer.print_ticket(ticket())
    assert not r.printed and r.wire_bytes == 0
    assert r.health.status is Health.FAULT and words in r.detail and r.detail == r.health.detail
    assert not_said not in r.detail
    assert printer.health == r.health
    # Only status queries went over the line: nothing to discard, nothing cut.
    assert wait_until(lambda: sim.received_bytes == 3 * len(sim.queries))
    assert sim.discarded_bytes == 0 and not sim.tickets


def test_cutter_jam_is_a_cutter_error_not_offline(sim: SimPrinter,
                                                   printer: TicketPrinter) -> None:
    sim.set_state(cutter_error=True)
    st = printer.status()
    assert st.cutter_error and st.offline and st.error  # what the printer says ...
    h = st.health()
    assert h.detail.startswith("cutter error")  # ... and what staff are told
    assert "offline" not in h.detail and "power" not in h.detail


@pytest.mark.parametrize(("state", "cause"), [
    ({"cover_open": True}, "cover open"), ({"paper": "end"}, "paper end")])
def test_offline_bit_with_the_cover_open_or_no_paper_is_reported_as_its_cause(
        sim: SimPrinter, printer: TicketPrinter, state: dict[str, object], cause: str) -> None:
    sim.set_state(**state)  # type: ignore[arg-type]
    st = printer.status()
    assert st.offline and st.replies[1] == 0x1A  # the printer does say offline ...
    h = st.health()
    assert h.status is Health.FAULT and h.detail.startswith(cause)  # ... staff hear why
    assert "offline" not in h.detail and "power" not in h.detail


def test_printer_that_does_not_answer_is_a_fault_after_one_silent_query(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    printer.open()
    asked = len(sim.queries)
    sim.set_state(reply=False)
    r = printer.print_ticket(ticket())
    assert not r.printed and r.health.status is Health.FAULT
    assert "no reply" in r.detail
    assert sim.queries[asked:] == [4]  # gave up after the first silent query


def test_slow_answer_within_the_timeout_is_fine(sim: SimPrinter, printer: TicketPrinter) -> None:
    sim.set_state(delay_ms=TIMEOUT_MS // 8)
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
    assert printer.status().health().status is Health.OK


# --------------------------------------------------------------------------- noise (issue 16)


@pytest.mark.parametrize("stray", [b"\x12", b"\x12\x12", b"\x1e", b"\xff\x12"])
def test_stray_ok_shaped_bytes_before_each_answer_never_print_without_paper(
        sim: SimPrinter, printer: TicketPrinter, stray: bytes) -> None:
    sim.set_state(paper="end", garbage=stray)
    for number in ("A003", "A004", "A005"):
        r = printer.print_ticket(ticket(number))
        assert not r.printed and r.health.status is Health.FAULT
        assert "paper end" in r.detail
    assert wait_until(lambda: sim.received_bytes == 3 * len(sim.queries))
    assert not sim.tickets


def test_a_cover_open_shaped_byte_before_each_answer_does_not_fault_a_healthy_printer(
        sim: SimPrinter, printer: TicketPrinter) -> None:
    sim.set_state(garbage=b"\x7e")  # 0x7E: paper end + near end, or cover open for EOT 2
    r = printer.print_ticket(ticket())
    assert r.printed and r.health.status is Health.OK and r.detail == ""
    assert sim.wait_for_tickets(1) and sim.tickets[0].number == "A023"


def test_random_noise_never_turns_paper_out_into_printed(tmp_path: Path) -> None:
    with SimPrinter(tmp_path / "out", seed=16) as sim:
        sim.set_state(paper="end", noise=1.0)  # a random byte before every answer
        p = TicketPrinter(PrinterConfig(transport="serial", port=sim.port,
                                        status_timeout_ms=TIMEOUT_MS))
        try:
            results = [p.print_ticket(ticket(f"A{i:03d}")) for i in range(20)]
        finally:
            p.close()
        assert [r.printed for r in results] == [False] * 20
        assert all(r.health.status is Health.FAULT for r in results)
        assert not sim.tickets and sim.discarded_bytes == 0


def test_a_healthy_printer_under_random_noise_prints_every_ticket(tmp_path: Path) -> None:
    with SimPrinter(tmp_path / "out", seed=7) as sim:
        sim.set_state(noise=1.0)
        p = TicketPrinter(PrinterConfig(transport="serial", port=sim.port,
                                        status_timeout_ms=TIMEOUT_MS))
        try:
            results = [p.print_ticket(ticket(f"B{i:03d}")) for i in range(20)]
        finally:
            p.close()
        assert [(r.printed, r.health.status) for r in results] == [(True, Health.OK)] * 20
        assert sim.wait_for_tickets(20)
        assert [t.number for t in sim.tickets] == [f"B{i:03d}" for i in range(20)]


class _FlappingLink:
    """A line whose answers to the same query keep changing (a loose connector
    picking up bytes): the transport seam, as python-escpos' Dummy is."""

    has_status = True

    def __init__(self) -> None:
        self._answers = [0x12, 0x72]
        self._out = bytearray()
        self.tickets = 0

    def write(self, data: bytes, timeout_s: float) -> None:
        if data[:2] == b"\x10\x04":
            self._out.append(self._answers[0])
            self._answers.reverse()
        else:
            self.tickets += 1

    def read(self, timeout_s: float) -> bytes:
        out, self._out[:] = bytes(self._out), b""
        return out

    def flush_input(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_answers_that_never_agree_mean_not_printed(tmp_path: Path) -> None:
    link = _FlappingLink()
    p = TicketPrinter(PrinterConfig(transport="file", port=str(tmp_path / "spool")),
                      link_factory=lambda c, t: link)
    r = p.print_ticket(ticket())
    assert not r.printed and r.health.status is Health.FAULT
    assert "did not agree" in r.detail and link.tickets == 0


# --------------------------------------------------------------------------- models


def test_snbc_model_prints_a_gs_k_qr_that_scans(tmp_path: Path, sim: SimPrinter,
                                                link: Path) -> None:
    from PIL import Image
    from pyzbar.pyzbar import decode as zbar_decode

    p = TicketPrinter(PrinterConfig(transport="serial", port=str(link), model="snbc-btp",
                                    status_timeout_ms=TIMEOUT_MS))
    try:
        r = p.print_ticket(ticket("C042"))
    finally:
        p.close()
    assert r.printed
    assert sim.wait_for_tickets(1)
    assert sim.tickets[0].number == "C042" and sim.tickets[0].unknown == 0
    with Image.open(sim.pngs[0]) as img:
        codes = [c.data.decode() for c in zbar_decode(img)]
    assert codes == [ticket("C042").qr_url]
    wire = (tmp_path / "traffic.log").read_text()
    assert "1d 6b 0b" in wire and "1d 28 6b" not in wire


def test_gb2312_charset_prints_no_garbage_on_a_gb2312_font(
        sim: SimPrinter, link: Path) -> None:
    sim.set_state(font="gb2312")
    t = TicketPrint(
        hall_name="南山区政务服务中心", service_name="外币兑换 €", number="D001",
        waiting_ahead=0, est_wait_s=0, issued_at=datetime(2024, 5, 6, 9, 30, tzinfo=TZ),
        qr_url="https://qms.example.gov.cn/t/x", notice="手续费 ¥5")
    for charset in ("gbk", "gb2312"):
        p = TicketPrinter(PrinterConfig(transport="serial", port=str(link), charset=charset,
                                        status_timeout_ms=TIMEOUT_MS))  # type: ignore[arg-type]
        try:
            assert p.print_ticket(t).printed
        finally:
            p.close()
    assert sim.wait_for_tickets(2)
    gbk, gb2312 = sim.tickets
    assert "外币兑换 \ufffd" in gbk.texts  # what a GB2312 font makes of € (A2E3)
    assert "外币兑换 ?" in gb2312.texts and "\ufffd" not in gb2312.text
    assert "手续费 ￥5" in gbk.texts and "手续费 ￥5" in gb2312.texts


def test_vanished_port_is_a_clear_fault_then_recovers_on_a_new_port(
        tmp_path: Path, sim: SimPrinter, link: Path, printer: TicketPrinter) -> None:
    assert printer.open().status is Health.OK
    sim.close()  # the cable is pulled: the pty disappears
    first = printer.print_ticket(ticket())
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


def test_missing_port_never_raises(tmp_path: Path) -> None:
    p = TicketPrinter(PrinterConfig(transport="serial", port=str(tmp_path / "ttyUSB9"),
                                    status_timeout_ms=TIMEOUT_MS))
    r = p.print_ticket(ticket())
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
