"""The ONBON BX-5E/BX-6E codec (drivers/onbon.py) against the vendor's manual."""

from __future__ import annotations

import contextlib
from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import onbon as o
from drivers import onbon_area as a
from drivers.onbon_render import render_line, split_to_fit
from drivers.rs485 import text_width
from hall_agent.services.boards_onbon import DAY_LEVEL, NIGHT_LEVEL, brightness_table

# §5.5.1 of both manuals: the whole ping frame, to the wildcard screen address.
MANUAL_PING = bytes.fromhex(
    "a5 a5 a5 a5 a5 a5 a5 a5 fe ff 00 80 f0 00 fe ff 00 00 00 00 05 00 00 00 01 A2 00 00 00 "
    "C6 86 5a")


def test_ping_frame_is_the_manuals_sample_byte_for_byte() -> None:
    assert o.encode_frame(o.ANY_ADDRESS, o.ping()) == MANUAL_PING


def test_the_manuals_ping_decodes_to_a_ping_request() -> None:
    (p,) = o.FrameDecoder().feed(MANUAL_PING)
    assert (p.dst, p.src, p.protocol, p.device_type) == (0xFFFE, 0x8000, 0xF0, 0xFFFE)
    req = o.parse_request(p.data)
    assert (req.group, req.cmd, req.reply) == (o.Group.CONTROL, o.Cmd.PING, True)


def test_crc_table_matches_the_appendix() -> None:
    # Entries of appendix 1's table, first row, middle and last.
    spot = {0: 0x0000, 1: 0xC0C1, 2: 0xC181, 3: 0x0140, 7: 0xC241, 64: 0xF001,
            100: 0xEB01, 128: 0xA001, 129: 0x60C0, 191: 0xB041, 200: 0x9601,
            254: 0x8081, 255: 0x4040}
    for i, v in spot.items():
        assert o.CRC_TABLE[i] == v, i
    # The CRC of the manual's ping (header + data) is the C6 86 it carries.
    assert o.crc16(MANUAL_PING[8:29]) == 0x86C6
    # CRC-16/ARC's standard check value: the same polynomial, reflected, init 0.
    assert o.crc16(b"123456789") == 0xBB3D


@pytest.mark.parametrize(("raw", "wire"), [
    (b"\xa5", b"\xa6\x02"), (b"\xa6", b"\xa6\x01"), (b"\x5a", b"\x5b\x02"),
    (b"\x5b", b"\x5b\x01"), (b"\x00\xa5\x5a\x01", b"\x00\xa6\x02\x5b\x02\x01")])
def test_escaping_follows_section_2_3(raw: bytes, wire: bytes) -> None:
    assert o.escape(raw) == wire
    assert o.unescape(wire) == raw


@given(st.binary(max_size=300))
def test_escaping_round_trips_and_leaves_no_frame_bytes(data: bytes) -> None:
    wire = o.escape(data)
    assert 0xA5 not in wire and 0x5A not in wire
    assert o.unescape(wire) == data


@given(st.integers(0, 0xFFFF), st.binary(max_size=200))
def test_frames_round_trip_through_the_decoder(dst: int, data: bytes) -> None:
    (p,) = o.FrameDecoder().feed(o.encode_frame(dst, data))
    assert (p.dst, p.data) == (dst, data)


@given(st.binary(max_size=64), st.integers(0, 40), st.integers(0, 255))
@settings(max_examples=500)
def test_a_damaged_frame_is_dropped_and_the_next_one_decodes(data: bytes, pos: int,
                                                             flip: int) -> None:
    good = o.encode_frame(1, data)
    bad = bytearray(good)
    i = 8 + pos % (len(good) - 9)
    bad[i] ^= flip or 1
    dec = o.FrameDecoder()
    got = dec.feed(bytes(bad) + good)
    # A CRC-16 catches every error burst of up to 16 bits, and a flip that makes or
    # breaks an escape changes the length the header states: only the good frame is left.
    assert [p.data for p in got] == [data]
    assert dec.dropped


def test_bad_crc_and_bad_escape_are_reported() -> None:
    good = o.encode_frame(1, b"\x01\xa2\x00\x00\x00")
    dec = o.FrameDecoder()
    assert dec.feed(good[:-3] + bytes([good[-3] ^ 1]) + good[-2:]) == []
    assert dec.dropped[-1].reason == "crc"
    assert dec.feed(o.HEAD + b"\x01\xa6\x07\x5a") == []
    assert dec.dropped[-1].reason == "escape"
    assert dec.feed(b"\x00\x11" + good)[0].data == b"\x01\xa2\x00\x00\x00"


@given(st.integers(1, 70), st.integers(1, 5), st.integers(0, 40), st.sampled_from(list(o.Model)),
       st.sampled_from([1, 2]), st.data())
@settings(max_examples=60)
def test_dots_round_trip_in_both_models(width: int, height: int, x0: int, model: o.Model,
                                        colours: int, data: st.DataObject) -> None:
    top = 1 if colours == 1 else 3
    rows = [data.draw(st.lists(st.integers(0, top), min_size=width, max_size=width))
            for _ in range(height)]
    enc = a.encode_pixels(model, rows, x0=x0, colours=colours)
    assert a.decode_pixels(model, enc, width, height, x0=x0, colours=colours) == rows


def test_bx5_dots_are_a_red_then_a_green_byte_per_8_and_lit_is_zero() -> None:
    # Appendix 2: (0,0) is bit 7 of the first (red) byte, its green is the second byte.
    rows = [[a.RED, a.GREEN, a.RED | a.GREEN, 0, 0, 0, 0, 0, a.RED]]
    assert a.encode_pixels(o.Model.BX5, rows) == bytes([0b01011111, 0b10011111,
                                                        0b01111111, 0b11111111])
    # An area starting at x = 35 pads its first byte's top 3 bits with 1.
    assert a.encode_pixels(o.Model.BX5, [[0] * 5], x0=35, colours=1) == b"\xff"
    assert a.encode_pixels(o.Model.BX5, [[a.RED] * 5], x0=35, colours=1) == b"\xe0"


def test_bx6_dots_are_a_red_plane_then_a_green_plane_of_32_bit_words() -> None:
    rows = [[a.RED] + [0] * 31, [a.GREEN] + [0] * 31]
    enc = a.encode_pixels(o.Model.BX6, rows)
    words = [int.from_bytes(enc[i:i + 4], "little") for i in range(0, 16, 4)]
    assert words == [0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0x7FFFFFFF]


@pytest.mark.parametrize("model", list(o.Model))
def test_area_update_round_trips(model: o.Model) -> None:
    rows = render_line("请 A001 号到 5 号窗口", 192, a.RED)
    page = a.Page(a.encode_pixels(model, rows), o.DisplayMode.FLASH, 100)
    voice = a.Voice("请A001号到5号窗口办理") if model == o.Model.BX6 else None
    area = a.Area(1, 0, 16, 192, 16, (page, page), voice=voice)
    req = o.parse_request(a.update_area(model, area))
    assert (req.group, req.cmd) == (o.Group.AREA, o.Cmd.AREA_UPDATE)
    assert a.parse_update(model, req) == [area]


def test_only_a_bx6_speaks() -> None:
    page = a.Page(b"\xff" * 2)
    with pytest.raises(o.OnbonCodecError, match="BX-6"):
        a.update_area(o.Model.BX5, a.Area(0, 0, 0, 8, 1, (page,), voice=a.Voice("请")))
    v = a.Voice("请 A023 号到 5 号窗口办理", volume=7)
    assert a.parse_insert_voice(o.parse_request(a.insert_voice(v))) == v


def test_delete_brightness_and_answers() -> None:
    assert a.parse_delete(o.parse_request(a.delete_areas([0, 2]))) == [0, 2]
    assert a.parse_delete(o.parse_request(a.delete_areas(None))) is None
    levels = [15] * 16 + [4] * 32
    assert a.parse_brightness(o.parse_request(a.brightness(levels))) == levels
    with pytest.raises(o.OnbonCodecError):
        a.brightness([16] * 48)
    assert o.parse_response(o.ACK.encode()) == o.ACK and not o.ACK.nack
    n = o.parse_response(o.nack(o.Error.CHECKSUM).encode())
    assert n.nack and n.error == o.Error.CHECKSUM
    assert o.error_text(n.error) == "bad CRC"


def test_night_dimming_follows_the_halls_hours() -> None:
    table = brightness_table([(time(8, 30), time(12, 0)), (time(13, 30), time(17, 30))])
    assert table[16] == NIGHT_LEVEL  # 08:00-08:29
    assert table[17] == DAY_LEVEL  # 08:30-08:59
    assert table[24] == NIGHT_LEVEL  # 12:00-12:29, the lunch break
    assert table[34] == DAY_LEVEL and table[35] == NIGHT_LEVEL  # 17:00 / 17:30
    assert table[0] == NIGHT_LEVEL and NIGHT_LEVEL > 0  # the 24-hour area stays readable
    assert brightness_table(None) == [DAY_LEVEL] * 48


def test_text_is_rendered_16_dots_high_and_split_to_fit() -> None:
    rows = render_line("请 A001 号到 5 号窗口", 192, a.RED)
    assert len(rows) == 16 and all(len(r) == 192 for r in rows)
    lit = sum(1 for r in rows for c in r if c)
    assert 200 < lit < 1500  # text, not a blank or a filled block
    assert sum(1 for r in rows for c in r[176:] if c) == 0  # 21 columns of 24 used
    parts = split_to_fit("当前等候人数 01 社保业务 等候12人 02 医保业务", 192)
    assert len(parts) > 1 and all(text_width(p) <= 24 for p in parts)
    assert "".join(parts).replace(" ", "") == "当前等候人数01社保业务等候12人02医保业务"


@given(st.binary(max_size=400), st.sampled_from(list(o.Model)))
@settings(max_examples=300)
def test_parsers_reject_garbage_with_a_codec_error_only(data: bytes, model: o.Model) -> None:
    with contextlib.suppress(o.OnbonCodecError):
        a.onbon_parse_any(model, data)
    dec = o.FrameDecoder()
    dec.feed(data)
    dec.feed(o.encode_frame(3, b"\x01\xa2\x00\x00\x00"))  # and it still finds the next frame


@given(st.binary(min_size=1, max_size=100))
def test_noise_before_a_frame_does_not_hide_it(noise: bytes) -> None:
    frame = o.encode_frame(7, b"\x01\xa2\x00\x00\x00")
    got = o.FrameDecoder().feed(noise + frame)
    assert got and got[-1].dst == 7
