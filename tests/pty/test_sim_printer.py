"""The virtual printer: its DLE EOT answers, its paper handling, and tickets that scan."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageOps
from pyzbar.pyzbar import decode as zbar_decode

from drivers.escpos_codec import (
    align,
    build_ticket,
    feed_and_cut,
    init,
    size,
)
from drivers.escpos_decode import DecodedTicket, decode_tickets
from drivers.escpos_status import is_status_reply, parse_status
from drivers.types import TicketPrint
from sim.printer import SimPrinter, SimState, apply_setting, status_byte
from sim.render import LINE_GAP, TOP_MARGIN, render_ticket

TZ = ZoneInfo("Asia/Shanghai")
URL = "https://qms.example.gov.cn/t/fz-citizen/0193f1c2-7a4b-7cde-8f0a-5566"


def ticket(number: str = "A023", **kw: object) -> TicketPrint:
    base: dict[str, object] = dict(
        hall_name="福州市民服务中心", service_name="社保医保", number=number, waiting_ahead=12,
        est_wait_s=1500, issued_at=datetime(2024, 5, 6, 9, 30, tzinfo=TZ), qr_url=URL,
        notice="请留意叫号，过号请重新取号")
    base.update(kw)
    return TicketPrint(**base)  # type: ignore[arg-type]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    s = SimPrinter(tmp_path / "out", traffic_log=tmp_path / "traffic.log")
    yield s
    s.close()


def host(sim: SimPrinter) -> int:
    """The host's end of the line, opened like a serial port."""
    return os.open(sim.port, os.O_RDWR | os.O_NOCTTY)


def ask(fd: int, n: int) -> bytes:
    os.write(fd, bytes([0x10, 0x04, n]))
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            time.sleep(0.02)  # let noise and answer arrive together
            return os.read(fd, 64)
    return b""


# --------------------------------------------------------------------------- status_byte


@pytest.mark.parametrize("state", [
    SimState(), SimState(paper="near_end"), SimState(paper="end"), SimState(cover_open=True),
    SimState(offline=True), SimState(error=True), SimState(cutter_error=True),
    SimState(unrecoverable=True, paper="end", cover_open=True, offline=True, error=True),
])
def test_every_answer_has_the_fixed_bits(state: SimState) -> None:
    for n in (1, 2, 3, 4):
        b = status_byte(n, state)
        assert b is not None and is_status_reply(b)


def test_answers_carry_the_state_printer_md_describes() -> None:
    assert status_byte(4, SimState()) == 0x12
    assert status_byte(4, SimState(paper="near_end")) == 0x1E
    assert status_byte(4, SimState(paper="end")) == 0x7E
    assert status_byte(2, SimState(paper="end")) == 0x32
    assert status_byte(2, SimState(cover_open=True)) == 0x16
    assert status_byte(2, SimState(error=True)) == 0x52
    assert status_byte(1, SimState(offline=True)) == 0x1A
    assert status_byte(3, SimState(cutter_error=True)) == 0x1A
    assert parse_status(3, status_byte(3, SimState(unrecoverable=True)) or 0) == {
        "cutter_error": False, "unrecoverable": True}


@pytest.mark.parametrize("state", [
    SimState(paper="end"), SimState(cover_open=True), SimState(error=True),
    SimState(cutter_error=True), SimState(unrecoverable=True)])
def test_a_stopped_printer_also_says_offline_as_real_ones_do(state: SimState) -> None:
    assert parse_status(1, status_byte(1, state) or 0) == {"offline": True}
    assert not state.can_print


def test_a_cutter_jam_also_sets_the_generic_error_bit() -> None:
    assert status_byte(2, SimState(cutter_error=True)) == 0x52
    assert status_byte(2, SimState(unrecoverable=True)) == 0x52
    assert status_byte(1, SimState(paper="near_end")) == 0x12  # still printing


def test_noise_puts_one_random_byte_before_each_answer(tmp_path: Path) -> None:
    with SimPrinter(tmp_path / "out", seed=1) as s:
        s.set_state(noise=1.0, paper="end")
        fd = host(s)
        try:
            got = [ask(fd, 4) for _ in range(5)]
        finally:
            os.close(fd)
    assert all(len(g) == 2 and g[-1] == 0x7E for g in got)
    assert len({g[0] for g in got}) > 1  # random, not one fixed byte


def test_a_silent_printer_and_unknown_queries_give_no_answer() -> None:
    assert status_byte(4, SimState(reply=False)) is None
    assert status_byte(7, SimState()) is None


def test_answers_over_the_pty_with_noise_and_delay(sim: SimPrinter) -> None:
    fd = host(sim)
    try:
        assert ask(fd, 4) == b"\x12"
        sim.set_state(paper="end", garbage=b"\xff", delay_ms=50)
        t0 = time.monotonic()
        assert ask(fd, 4) == b"\xff\x7e"
        assert time.monotonic() - t0 >= 0.05
        sim.set_state(reply=False)
        assert ask(fd, 2) == b""
    finally:
        os.close(fd)
    assert sim.queries == [4, 4, 2]


def test_settings_can_be_changed_from_text(sim: SimPrinter) -> None:
    assert apply_setting(sim, "paper", "near_end").paper == "near_end"
    assert apply_setting(sim, "cover_open", "true").cover_open
    assert apply_setting(sim, "garbage", "ff00").garbage == b"\xff\x00"
    assert apply_setting(sim, "noise", "0.25").noise == 0.25
    assert apply_setting(sim, "font", "gb2312").font == "gb2312"
    with pytest.raises(ValueError):
        apply_setting(sim, "noise", "2")
    with pytest.raises(ValueError, match="unknown setting"):
        apply_setting(sim, "papr", "end")
    with pytest.raises(ValueError):
        apply_setting(sim, "paper", "empty")
    assert sim.describe()["paper"] == "near_end"


# --------------------------------------------------------------------------- paper


def test_print_data_is_discarded_while_the_cover_is_open(sim: SimPrinter) -> None:
    fd = host(sim)
    try:
        sim.set_state(cover_open=True)
        os.write(fd, build_ticket(ticket("A001")))
        time.sleep(0.2)
        assert not sim.tickets and sim.discarded_bytes > 0
        sim.set_state(cover_open=False)
        os.write(fd, build_ticket(ticket("A002")))
        assert sim.wait_for_tickets(1)
    finally:
        os.close(fd)
    assert [t.number for t in sim.tickets] == ["A002"]


def test_cut_ticket_is_rendered_to_a_scannable_png(sim: SimPrinter, tmp_path: Path) -> None:
    seen: list[DecodedTicket] = []
    sim.on_ticket = seen.append
    fd = host(sim)
    try:
        data = build_ticket(ticket(priority=True, offline=True, masked_name="张*"))
        for i in range(0, len(data), 7):  # arrives in dribs, like a slow UART
            os.write(fd, data[i:i + 7])
        assert sim.wait_for_tickets(1)
    finally:
        os.close(fd)
    png = tmp_path / "out" / "ticket-0001-A023.png"
    assert sim.pngs == [png] and png.exists()
    with Image.open(png) as img:
        assert img.width == 576
        assert img.height > 600
        codes = zbar_decode(img)
    assert [c.data.decode() for c in codes] == [URL]
    t = sim.tickets[0]
    assert t.raw_bytes == len(data) and t.qr == URL and t.number == "A023"
    assert "前面还有 12 人等候" in t.text and "离线取号" in t.text
    time.sleep(0.05)
    assert seen == [t]


def test_traffic_log_has_both_directions(sim: SimPrinter, tmp_path: Path) -> None:
    fd = host(sim)
    try:
        ask(fd, 4)
    finally:
        os.close(fd)
    time.sleep(0.05)
    lines = (tmp_path / "traffic.log").read_text().splitlines()
    assert any(ln.endswith("<<< 10 04 04") for ln in lines)
    assert any(ln.endswith(">>> 12") for ln in lines)


def test_closing_removes_the_port(tmp_path: Path) -> None:
    s = SimPrinter(tmp_path / "out")
    port = s.port
    assert os.path.exists(port)
    s.close()
    s.close()  # twice is harmless
    assert not os.path.exists(port)


# --------------------------------------------------------------------------- rendering


def test_rendered_sizes_follow_the_escpos_cells() -> None:
    data = init() + align("centre") + size(4, 4) + b"A023\n" + feed_and_cut(0)
    img = render_ticket(decode_tickets(data)[0])
    assert img.width == 576
    assert img.height == TOP_MARGIN + 4 * 24 + LINE_GAP
    left, top, right, bottom = ImageOps.invert(img).getbbox() or (0, 0, 0, 0)
    assert right - left <= 4 * 4 * 12  # four half-width cells at 4× width
    assert right - left > 3 * 4 * 12
    assert abs((left + right) / 2 - 288) <= 12  # centred
    assert bottom - top > 60  # capitals fill most of a 96-dot cell


def test_long_lines_wrap_at_the_paper_edge() -> None:
    short = render_ticket(decode_tickets(build_ticket(ticket(notice="请留意")))[0])
    long = render_ticket(decode_tickets(build_ticket(ticket(notice="请" * 30)))[0])
    # 30 hanzi × 24 dots = 720 > 576: one more 30-dot row.
    assert long.height - short.height == 30
