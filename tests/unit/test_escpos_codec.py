"""The ESC/POS codec: exact bytes per PRINTER.md, and the device side reading them back."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos_codec import (
    align,
    bold,
    build_test_page,
    build_ticket,
    encode_text,
    feed_and_cut,
    init,
    qr,
    size,
    status_query,
)
from drivers.escpos_decode import EscPosDecoder, Op, decode_tickets
from drivers.escpos_status import PrinterStatus, parse_status
from drivers.types import Health, TicketPrint

TZ = ZoneInfo("Asia/Shanghai")
URL_60 = "https://qms.example.gov.cn/t/hall-01/0193f1c2-7a4b-7cde-8f0a"
assert len(URL_60) == 60


def ticket(**kw: object) -> TicketPrint:
    base: dict[str, object] = dict(
        hall_name="深圳市南山区政务服务中心", service_name="不动产登记（二手房）", number="A023",
        waiting_ahead=12, est_wait_s=1500, issued_at=datetime(2024, 5, 6, 9, 30, tzinfo=TZ),
        qr_url=URL_60, notice="请留意叫号，过号请重新取号",
    )
    base.update(kw)
    return TicketPrint(**base)  # type: ignore[arg-type]


def chinese_runs(data: bytes) -> list[bytes]:
    return re.findall(rb"\x1c\x26(.*?)\x1c\x2e", data, flags=re.S)


# --------------------------------------------------------------------------- small commands


def test_small_commands_are_the_bytes_of_printer_md() -> None:
    assert init() == bytes.fromhex("1b40")
    assert align("left") == bytes.fromhex("1b6100")
    assert align("centre") == bytes.fromhex("1b6101")
    assert align("right") == bytes.fromhex("1b6102")
    assert bold(True) == bytes.fromhex("1b4501")
    assert bold(False) == bytes.fromhex("1b4500")
    assert size(1, 1) == bytes.fromhex("1d2100")
    assert size(4, 4) == bytes.fromhex("1d2133")
    assert size(1, 2) == bytes.fromhex("1d2101")
    assert size(2, 1) == bytes.fromhex("1d2110")
    assert feed_and_cut(80) == bytes.fromhex("1d564250")
    assert status_query(4) == bytes.fromhex("100404")
    assert status_query(2) == bytes.fromhex("100402")
    assert status_query(1) == bytes.fromhex("100401")


def test_native_qr_sequence_counts_pl_ph_as_data_plus_three() -> None:
    data = URL_60.encode()
    assert qr(data, module=6) == (
        bytes.fromhex("1d286b040031413200")
        + bytes.fromhex("1d286b0300314306")
        + bytes.fromhex("1d286b0300314531")
        + bytes.fromhex("1d286b") + bytes([63, 0]) + bytes.fromhex("315030") + data
        + bytes.fromhex("1d286b0300315130")
    )
    long = b"x" * 300  # 303 = 0x012F: pL 0x2F, pH 0x01
    assert bytes.fromhex("1d286b2f01315030") + long in qr(long)


def test_bad_arguments_are_refused_not_sent() -> None:
    with pytest.raises(ValueError):
        size(9, 1)
    with pytest.raises(ValueError):
        qr(b"", module=6)
    with pytest.raises(ValueError):
        qr(b"x", module=0)
    with pytest.raises(ValueError):
        status_query(5)


# --------------------------------------------------------------------------- text


def test_full_width_punctuation_goes_as_gb_codes() -> None:
    enc = encode_text("请留意叫号，过号：")
    assert enc.data == b"\x1c\x26" + "请留意叫号，过号：".encode("gbk") + b"\x1c\x2e"
    assert "，".encode("gb18030") == b"\xa3\xac" and b"\xa3\xac" in enc.data
    assert b"\xa3\xba" in enc.data  # ：
    assert enc.replaced == []


def test_ascii_stays_outside_chinese_mode() -> None:
    assert encode_text("A023").data == b"A023"
    assert encode_text("前面 12 人").data == (
        b"\x1c\x26" + "前面".encode("gbk") + b"\x1c\x2e 12 \x1c\x26" + "人".encode("gbk")
        + b"\x1c\x2e")


def test_characters_needing_four_bytes_are_replaced_never_sent() -> None:
    enc = encode_text("𠮷野家😀")
    assert enc.replaced == ["𠮷", "😀"]
    assert enc.data == b"?\x1c\x26" + "野家".encode("gbk") + b"\x1c\x2e?"
    for run in chinese_runs(enc.data):
        assert len(run) % 2 == 0


def test_control_characters_cannot_smuggle_commands() -> None:
    enc = encode_text("A\x1b@\x10\x04\x01\nB")
    assert b"\x1b" not in enc.data and b"\x10" not in enc.data and b"\n" not in enc.data


# --------------------------------------------------------------------------- tickets


def test_ticket_starts_with_init_and_ends_with_feed_and_cut() -> None:
    data = build_ticket(ticket(), feed_dots=80)
    assert data.startswith(bytes.fromhex("1b40"))
    assert data.endswith(bytes.fromhex("1d564250"))


def test_ticket_number_is_printed_at_four_times_size() -> None:
    assert bytes.fromhex("1d2133") + b"A023\n" in build_ticket(ticket())


def test_ticket_chinese_is_two_byte_gb_inside_fs_and() -> None:
    data = build_ticket(ticket(masked_name="张*", offline=True, priority=True))
    runs = chinese_runs(data)
    assert runs
    for run in runs:
        assert len(run) % 2 == 0
        for i in range(0, len(run), 2):
            assert 0x81 <= run[i] <= 0xFE and 0x40 <= run[i + 1] <= 0xFE
            run[i:i + 2].decode("gb18030")
    assert "深圳市南山区政务服务中心".encode("gb18030") in runs


def test_ticket_carries_native_qr_of_the_status_url() -> None:
    data = build_ticket(ticket(), qr_module=7)
    assert qr(URL_60.encode(), module=7) in data


def test_ticket_stays_under_600_bytes_with_a_60_char_url() -> None:
    t = ticket(masked_name="欧阳*", offline=True, priority=True, waiting_ahead=123,
               est_wait_s=7200)
    assert len(build_ticket(t)) < 600


def test_ticket_taken_in_english_says_the_service_and_the_wait_in_english_too() -> None:
    t = ticket(lang="en", service_name_en="Real estate registration (resale)", priority=True,
               masked_name="欧阳*", offline=True, waiting_ahead=123, est_wait_s=7200)
    data = build_ticket(t)
    assert len(data) < 600  # PRINTER.md "A ticket", with the longest English lines
    texts = decode_tickets(data)[0].texts
    assert "Real estate registration (resale)" in texts
    assert "123 ahead of you, about 120 min" in texts
    assert "前面还有 123 人等候" in texts  # the Chinese stays: staff read it
    assert "Please listen for your number" in texts
    assert "【优先】Priority" in texts
    # a Chinese ticket has none of it
    zh = decode_tickets(build_ticket(ticket(service_name_en="Real estate")))[0].texts
    assert not any("ahead of you" in x or x == "Real estate" for x in zh)


def test_english_ticket_with_nobody_ahead() -> None:
    texts = decode_tickets(build_ticket(ticket(lang="en", waiting_ahead=0)))[0].texts
    assert "No one ahead of you" in texts


def test_ticket_lines_say_the_wait_and_the_time() -> None:
    texts = decode_tickets(build_ticket(ticket()))[0].texts
    assert "前面还有 12 人等候" in texts
    assert "预计等候约 25 分钟" in texts
    assert "取号时间 2024-05-06 09:30" in texts


def test_nobody_ahead_is_said_kindly_without_a_wait_estimate() -> None:
    texts = decode_tickets(build_ticket(ticket(waiting_ahead=0, est_wait_s=0)))[0].texts
    assert "前面无人等候，即将为您办理" in texts
    assert not any("预计" in t for t in texts)


def test_offline_priority_and_name_lines_only_when_asked() -> None:
    plain = decode_tickets(build_ticket(ticket()))[0].texts
    assert "离线取号" not in plain and "【优先】" not in plain
    assert not any(t.startswith("姓名") for t in plain)
    full = decode_tickets(build_ticket(ticket(offline=True, priority=True,
                                              masked_name="张*")))[0].texts
    assert {"离线取号", "【优先】", "姓名：张*"} <= set(full)


def test_replaced_characters_are_logged_but_not_from_the_name(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="drivers.escpos_codec"):
        data = build_ticket(ticket(service_name="𠮷办理", masked_name="𠮷*"))
    assert b"?" in data and "𠮷".encode("gb18030") not in data
    text = caplog.text
    assert "U+20BB7" in text and "service_name" in text
    assert "name line" in text and text.count("U+20BB7") == 1


def test_test_page_has_sizes_qr_and_cut() -> None:
    data = build_test_page(where="printer on /dev/ttyUSB0")
    t = decode_tickets(data)[0]
    assert t.qr_data == ["hall-edge printer test"]
    assert "打印机测试页" in t.texts and t.cut_feed == 80
    assert {ln.width for ln in t.lines} >= {1, 2, 3, 4}


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(("n", "byte", "flags"), [
    (4, 0x12, {"paper_near_end": False, "paper_end": False}),
    (4, 0x1E, {"paper_near_end": True, "paper_end": False}),
    (4, 0x7E, {"paper_near_end": True, "paper_end": True}),
    (4, 0x72, {"paper_near_end": False, "paper_end": True}),
    (2, 0x16, {"cover_open": True, "paper_end": False, "error": False}),
    (2, 0x32, {"cover_open": False, "paper_end": True, "error": False}),
    (2, 0x52, {"cover_open": False, "paper_end": False, "error": True}),
    (1, 0x1A, {"offline": True}),
    (3, 0x3A, {"cutter_error": True, "unrecoverable": True}),
])
def test_status_bits_follow_printer_md(n: int, byte: int, flags: dict[str, bool]) -> None:
    assert parse_status(n, byte) == flags


@pytest.mark.parametrize("byte", [0x00, 0xFF, 0x92, 0x13, 0x10, 0x02, 0x41])
def test_bytes_not_shaped_0xx1xx10_are_not_answers(byte: int) -> None:
    assert parse_status(4, byte) is None


@pytest.mark.parametrize(("replies", "health", "word"), [
    ({4: 0x12, 2: 0x12, 1: 0x12}, Health.OK, ""),
    ({4: 0x1E, 2: 0x12, 1: 0x12}, Health.DEGRADED, "paper near end"),
    ({4: 0x7E, 2: 0x32, 1: 0x12}, Health.FAULT, "paper end — load a new roll"),
    ({4: 0x12, 2: 0x16, 1: 0x12}, Health.FAULT, "cover open"),
    ({4: 0x12, 2: 0x12, 1: 0x1A}, Health.FAULT, "offline"),
    ({4: 0x12, 2: 0x52, 1: 0x12}, Health.FAULT, "error"),
    ({4: 0x12, 2: None}, Health.FAULT, "no reply"),
])
def test_status_becomes_health_with_words_for_people(
        replies: dict[int, int | None], health: Health, word: str) -> None:
    h = PrinterStatus.from_replies(replies).health()
    assert h.status is health
    assert word in h.detail


def test_paper_end_wins_over_near_end() -> None:
    h = PrinterStatus.from_replies({4: 0x7E, 2: 0x32}).health()
    assert h.status is Health.FAULT and "near end" not in h.detail


# --------------------------------------------------------------------------- decoder


def test_decoder_waits_for_a_command_split_across_feeds() -> None:
    data = build_ticket(ticket())
    dec = EscPosDecoder()
    ops: list[Op] = []
    for i in range(len(data)):
        ops += dec.feed(data[i:i + 1])
    assert dec.pending == 0
    kinds = [o.kind for o in ops]
    assert kinds[0] == "init" and kinds[-1] == "cut"
    assert "".join(o.text for o in ops if o.kind == "text").count("A023") == 1
    assert [o.data for o in ops if o.kind == "qr_print"] == [URL_60.encode()]


def test_decoder_reports_garbage_and_carries_on() -> None:
    ops = EscPosDecoder().feed(b"\x1b\x99\x00\xff\x10\x05\x1d\x56\x00" + b"ok\n")
    assert [o.kind for o in ops][-2:] == ["text", "newline"]
    assert ops[-2].text == "ok"
    assert sum(1 for o in ops if o.kind == "unknown") >= 4


def test_decoder_sees_status_queries() -> None:
    ops = EscPosDecoder().feed(b"\x10\x04\x04\x10\x04\x02")
    assert [(o.kind, o.value) for o in ops] == [("status_query", 4), ("status_query", 2)]


def _flatten(ops: list[Op]) -> list[tuple[str, int, str, bytes]]:
    """Ops with text split into characters: how they arrive in chunks must not matter."""
    out: list[tuple[str, int, str, bytes]] = []
    for o in ops:
        if o.kind == "text":
            out += [("text", 0, c, b"") for c in o.text]
        else:
            out.append((o.kind, o.value, "", o.data))
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 40), max_size=20))
def test_decoder_never_raises_and_chunking_does_not_change_the_result(
        data: bytes, cuts: list[int]) -> None:
    whole = EscPosDecoder().feed(data)
    dec = EscPosDecoder()
    parts: list[Op] = []
    i = 0
    for c in cuts:
        parts += dec.feed(data[i:i + c])
        i += c
    parts += dec.feed(data[i:])
    assert _flatten(parts) == _flatten(whole)
    decode_tickets(data)  # the assembler copes with anything the decoder says


_HANZI = "中文政务服务大厅不动产登记社保医保公积金户籍出入境办理窗口请留意叫号过欧阳张王李赵"
_PUNCT = "，。：；！？（）【】《》、·"
_TEXT = st.text(alphabet=st.sampled_from(_HANZI + _PUNCT + "ABCxyz0123 -_/"), min_size=1,
                max_size=16).map(str.strip).filter(bool)


@st.composite
def tickets(draw: st.DrawFn) -> TicketPrint:
    return TicketPrint(
        hall_name=draw(_TEXT), service_name=draw(_TEXT),
        number=draw(st.from_regex(r"[A-Z]{1,2}[0-9]{3}", fullmatch=True)),
        waiting_ahead=draw(st.integers(0, 999)), est_wait_s=draw(st.integers(0, 36000)),
        issued_at=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8)))
        + timedelta(minutes=draw(st.integers(0, 10**6))),
        qr_url="https://qms.example.gov.cn/t/" + draw(st.from_regex(r"[a-z0-9\-]{1,60}",
                                                                     fullmatch=True)),
        notice=draw(_TEXT), offline=draw(st.booleans()), priority=draw(st.booleans()),
        masked_name=draw(st.none() | _TEXT),
    )


@settings(max_examples=150, deadline=None, database=None)
@given(tickets(), st.integers(1, 16), st.integers(0, 255))
def test_any_ticket_round_trips_through_the_device_side(
        t: TicketPrint, module: int, feed: int) -> None:
    data = build_ticket(t, qr_module=module, feed_dots=feed)
    (got,) = decode_tickets(data)
    assert got.number == t.number
    assert got.qr_data == [t.qr_url]
    assert got.cut_feed == feed
    assert got.raw_bytes == len(data)
    assert got.unknown == 0
    texts = got.texts
    for want in (t.hall_name, t.service_name, t.notice):
        assert want in texts
    assert ("离线取号" in texts) is t.offline
    number_line = next(ln for ln in got.lines if ln.text == t.number)
    assert (number_line.width, number_line.height, number_line.bold) == (4, 4, True)
    assert all(ln.align == 1 for ln in got.lines)


# --------------------------------------------------------------------------- DLE EOT 3, offline


def test_cutter_jam_is_reported_as_the_cutter_not_a_generic_error() -> None:
    # A jammed cutter also sets EOT 2's error bit and EOT 1's offline bit.
    h = PrinterStatus.from_replies({4: 0x12, 2: 0x52, 3: 0x1A, 1: 0x1A}).health()
    assert h.status is Health.FAULT
    assert "cutter error" in h.detail
    assert "printer error" not in h.detail and "offline" not in h.detail


def test_unrecoverable_error_is_said_as_such() -> None:
    h = PrinterStatus.from_replies({4: 0x12, 2: 0x52, 3: 0x32, 1: 0x1A}).health()
    assert h.status is Health.FAULT and "unrecoverable" in h.detail
    assert "offline" not in h.detail


@pytest.mark.parametrize(("replies", "cause"), [
    ({4: 0x12, 2: 0x16, 3: 0x12, 1: 0x1A}, "cover open"),
    ({4: 0x7E, 2: 0x32, 3: 0x12, 1: 0x1A}, "paper end"),
])
def test_offline_while_the_cover_is_open_or_the_paper_is_out_names_the_cause(
        replies: dict[int, int], cause: str) -> None:
    h = PrinterStatus.from_replies(replies).health()
    assert h.status is Health.FAULT and cause in h.detail
    assert "offline" not in h.detail and "power" not in h.detail


def test_offline_with_nothing_else_wrong_is_still_offline() -> None:
    h = PrinterStatus.from_replies({4: 0x12, 2: 0x12, 3: 0x12, 1: 0x1A}).health()
    assert h.status is Health.FAULT and "offline" in h.detail


def test_unconfirmed_status_is_a_fault_even_if_every_answer_says_fine() -> None:
    h = PrinterStatus.from_replies({4: 0x12, 3: 0x12, 1: 0x12}, unconfirmed=True).health()
    assert h.status is Health.FAULT and "did not agree" in h.detail


_FLAGS = ("paper", "cover_open", "offline", "error", "cutter_error", "unrecoverable")


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(["ok", "near_end", "end"]), st.booleans(), st.booleans(), st.booleans(),
       st.booleans(), st.booleans())
def test_any_printer_state_reads_back_as_its_cause(
        paper: str, cover: bool, offline: bool, error: bool, cutter: bool, unrec: bool) -> None:
    """The simulator answers as a real printer would; the host names each cause once."""
    from sim.printer import SimState, status_byte

    state = SimState(paper=paper, cover_open=cover, offline=offline, error=error,  # type: ignore[arg-type]
                     cutter_error=cutter, unrecoverable=unrec)
    replies = {n: status_byte(n, state) for n in (4, 2, 3, 1)}
    h = PrinterStatus.from_replies(replies).health()
    assert (h.status is Health.FAULT) is (not state.can_print)
    assert ("paper end" in h.detail) is (paper == "end")
    assert ("cover open" in h.detail) is cover
    assert ("cutter error" in h.detail) is cutter
    assert ("unrecoverable" in h.detail) is unrec
    # The generic words only when nothing more specific explains them.
    assert ("printer error" in h.detail) is (error and not cutter and not unrec)
    assert ("offline" in h.detail) is (offline and not state.stopped)
    assert h.status is not Health.OK or h.detail == ""


# --------------------------------------------------------------------------- models: GS k QR


def test_snbc_model_sends_gs_k_qr_with_its_module_width() -> None:
    data = URL_60.encode()
    assert qr(data, module=6, model="snbc-btp") == (
        bytes.fromhex("1d7706") + bytes.fromhex("1d6b0b0002") + bytes([60, 0]) + data)
    long = b"x" * 300  # nL nH = 0x2C 0x01
    assert bytes.fromhex("1d6b0b00022c01") + long == qr(long, model="snbc-btp")[3:]


def test_ticket_for_the_snbc_model_has_no_gs_paren_k() -> None:
    data = build_ticket(ticket(), model="snbc-btp")
    assert b"\x1d\x28\x6b" not in data and b"\x1d\x6b\x0b" in data
    assert len(data) < 600
    (got,) = decode_tickets(data)
    assert got.qr_data == [URL_60] and got.unknown == 0
    assert got.texts == decode_tickets(build_ticket(ticket()))[0].texts


@settings(max_examples=150, deadline=None, database=None)
@given(st.binary(min_size=1, max_size=700), st.integers(1, 16),
       st.sampled_from(["epson", "snbc-btp"]), st.lists(st.integers(1, 50), max_size=10))
def test_any_qr_decodes_back_in_either_command_however_it_arrives(
        data: bytes, module: int, model: str, cuts: list[int]) -> None:
    wire = init() + qr(data, module=module, model=model) + feed_and_cut(0)  # type: ignore[arg-type]
    dec = EscPosDecoder()
    ops: list[Op] = []
    i = 0
    for c in cuts:
        ops += dec.feed(wire[i:i + c])
        i += c
    ops += dec.feed(wire[i:])
    printed = [(o.data, o.value) for o in ops if o.kind == "qr_print"]
    assert printed == [(data, module)]
    assert not [o for o in ops if o.kind == "unknown"]


# --------------------------------------------------------------------------- charset


@pytest.mark.parametrize("charset", ["gbk", "gb2312"])
def test_yen_goes_as_the_full_width_yuan_sign_under_both_charsets(charset: str) -> None:
    enc = encode_text("收费 ¥20", charset)  # type: ignore[arg-type]
    assert enc.replaced == []
    assert b"\xa3\xa4" in enc.data and b"?" not in enc.data  # ￥, GB2312 A3A4
    assert "收费 ￥20" in decode_tickets(init() + enc.data + b"\n" + feed_and_cut(0),
                                      font=charset)[0].texts  # type: ignore[arg-type]


def test_euro_is_sent_to_a_gbk_font_and_replaced_for_a_gb2312_font() -> None:
    gbk = encode_text("€5", "gbk")
    assert gbk.replaced == [] and b"\xa2\xe3" in gbk.data
    gb2312 = encode_text("€5", "gb2312")
    assert gb2312.replaced == ["€"] and gb2312.data == b"?5"
    # What each does on a printer with a GB2312 font: garbage, or a plain "?".
    page = init() + gbk.data + b"\n" + feed_and_cut(0)
    assert decode_tickets(page, font="gb2312")[0].texts == ["\ufffd5"]
    assert decode_tickets(page, font="gbk")[0].texts == ["€5"]
    page = init() + gb2312.data + b"\n" + feed_and_cut(0)
    assert decode_tickets(page, font="gb2312")[0].texts == ["?5"]


def test_gb2312_keeps_the_symbols_its_font_has() -> None:
    # Python's gb2312 codec names A1A4 U+30FB, GB18030 U+00B7: the same dot on paper.
    enc = encode_text("张·李—，", "gb2312")
    assert enc.replaced == []
    assert enc.data == b"\x1c\x26" + "张·李—，".encode("gb18030") + b"\x1c\x2e"


def test_a_gb2312_ticket_logs_what_it_replaced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="drivers.escpos_codec"):
        data = build_ticket(ticket(notice="押金 €5，¥20"), charset="gb2312")
    assert "U+20AC" in caplog.text and "U+00A5" not in caplog.text
    (got,) = decode_tickets(data, font="gb2312")
    assert "押金 ?5，￥20" in got.texts and "\ufffd" not in got.text


_ANY_TEXT = st.text(alphabet=st.sampled_from(
    _HANZI + _PUNCT + "¥€•·—–…“”×°℃№※ABCxyz0123 ?-_/\x1b\x10\x00\n😀𠮷é"), max_size=40)


@settings(max_examples=300, deadline=None, database=None)
@given(_ANY_TEXT, st.sampled_from(["gbk", "gb2312"]))
def test_any_text_prints_character_for_character_and_never_as_garbage(
        s: str, charset: str) -> None:
    from drivers.escpos_codec import SUBSTITUTES

    enc = encode_text(s, charset)  # type: ignore[arg-type]
    for run in chinese_runs(enc.data):
        assert len(run) % 2 == 0
    dec = EscPosDecoder(font=charset)  # type: ignore[arg-type]
    ops = dec.feed(init() + enc.data)
    out = "".join(o.text for o in ops if o.kind == "text")
    assert "\ufffd" not in out and not [o for o in ops if o.kind == "unknown"]
    assert len(out) == len(s)
    replaced = iter(enc.replaced)
    for a, b in zip(s, out, strict=True):
        if b == "?" and a != "?":
            assert next(replaced) == a
        elif ord(a) < 0x20:
            assert b == " "
        else:
            assert b in (a, SUBSTITUTES.get(a, a))
    assert next(replaced, None) is None
