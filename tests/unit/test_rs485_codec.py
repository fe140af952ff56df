"""The RS-485 codec alone: CRC, frames, resync, text, payloads (docs/protocols/RS485.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rs485 import (
    MAX_PAYLOAD,
    SYNC,
    Cmd,
    CodecError,
    Frame,
    FrameDecoder,
    Info,
    KeyEvent,
    TextNotEncodable,
    clip_text,
    crc16_modbus,
    decode_text,
    encode_frame,
    encode_poll_reply,
    fit_text,
    next_event_number,
    parse_info,
    parse_poll_reply,
    parse_text,
    text_payload,
    text_width,
)

frames = st.builds(Frame, st.integers(0, 247), st.integers(0, 255), st.integers(0, 255),
                   st.binary(max_size=64))


def test_crc_is_modbus() -> None:
    # The catalogue check value of CRC-16/MODBUS.
    assert crc16_modbus(b"123456789") == 0x4B37


def test_frame_layout_matches_the_spec() -> None:
    raw = encode_frame(5, Cmd.TEXT, 7, b"\x00\x00\x01AB")
    assert raw[:2] == SYNC
    assert raw[2:7] == bytes([5, 0x01, 7, 5, 0])  # ADDR CMD SEQ LEN(le)
    assert raw[7:12] == b"\x00\x00\x01AB"
    assert int.from_bytes(raw[-2:], "little") == crc16_modbus(raw[2:-2])


def test_payload_over_1024_bytes_is_refused() -> None:
    with pytest.raises(CodecError):
        encode_frame(1, 1, 1, bytes(MAX_PAYLOAD + 1))


@settings(max_examples=200)
@given(st.lists(frames, max_size=6), st.data())
def test_frames_survive_any_chunking(fs: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(f.encode() for f in fs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    dec, out, prev = FrameDecoder(), [], 0
    for c in [*cuts, len(stream)]:
        out += dec.feed(stream[prev:c], now=0.0)
        prev = c
    assert out == fs


@settings(max_examples=200)
@given(st.lists(frames, min_size=1, max_size=4), st.lists(st.binary(max_size=20),
                                                          min_size=1, max_size=4))
def test_noise_between_frames_is_skipped(fs: list[Frame], noise: list[bytes]) -> None:
    # Noise never ending in AA so that it cannot fuse with the next sync.
    stream = b""
    for f, n in zip(fs, noise * len(fs), strict=False):
        stream += n.replace(b"\xaa", b"\x00") + f.encode()
    assert FrameDecoder().feed(stream) == fs


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decoder_never_crashes_on_garbage(junk: bytes) -> None:
    dec = FrameDecoder()
    dec.feed(junk)
    good = Frame(3, Cmd.INFO | 0x80, 9, b"\x01\x04\x20")
    # Whatever came before, a complete good frame after a pause is decoded.
    assert good in dec.feed(good.encode(), now=1.0) + dec.feed(b"", now=1.0)


def test_bad_crc_resyncs_on_the_next_sync_inside_it() -> None:
    good = Frame(1, 0x81, 2, b"")
    broken = bytearray(encode_frame(1, 0x81, 1, b"xyz"))
    broken[-1] ^= 0xFF
    dec = FrameDecoder()
    assert dec.feed(bytes(broken) + good.encode()) == [good]
    assert [d.reason for d in dec.dropped][:1] == ["crc"]


def test_partial_frame_then_gap_is_dropped() -> None:
    good = Frame(2, 0x90, 4, b"\x01\x04\x20SIM")
    dec = FrameDecoder()
    assert dec.feed(good.encode()[:6], now=0.0) == []
    # 30 ms later a new frame starts: the stalled one must not swallow it.
    assert dec.feed(good.encode(), now=0.030) == [good]
    assert any(d.reason == "gap" for d in dec.dropped)


def test_short_pause_inside_a_frame_is_not_a_gap() -> None:
    good = Frame(2, 0x90, 4, b"\x01\x04\x20SIM")
    dec = FrameDecoder()
    raw = good.encode()
    assert dec.feed(raw[:5], now=0.0) == []
    assert dec.feed(raw[5:], now=0.010) == [good]


def test_impossible_length_resyncs() -> None:
    good = Frame(2, 0x81, 4)
    assert FrameDecoder().feed(SYNC + b"\x01\x01\x01\xff\xff" + good.encode()) == [good]


def test_text_is_gb18030_two_byte() -> None:
    p = text_payload(0, "请 A023 号到 5 号窗口", 2, 1)
    assert p[:3] == b"\x00\x02\x01"
    assert p[3:] == "请 A023 号到 5 号窗口".encode("gb18030")
    assert parse_text(p).text == "请 A023 号到 5 号窗口"


def test_four_byte_characters_are_refused_and_replaceable() -> None:
    with pytest.raises(TextNotEncodable):
        text_payload(0, "𠀀")  # CJK Ext. B: a 4-byte GB18030 sequence
    with pytest.raises(TextNotEncodable):
        decode_text("𠀀".encode("gb18030"))
    assert fit_text("张𠀀") == "张?"


def test_width_counts_hanzi_as_two_columns() -> None:
    assert text_width("A023 号") == 7
    assert clip_text("5号窗口", 4) == "5号"


@given(st.lists(st.tuples(st.integers(1, 255), st.integers(0, 255)), max_size=8))
def test_poll_reply_round_trip(evs: list[tuple[int, int]]) -> None:
    events = [KeyEvent(e, k) for e, k in evs]
    assert parse_poll_reply(encode_poll_reply(events)) == events


def test_poll_reply_with_event_zero_is_refused() -> None:
    with pytest.raises(CodecError):
        parse_poll_reply(b"\x01\x00\x01")


def test_event_numbers_wrap_to_one_never_zero() -> None:
    assert next_event_number(254) == 255
    assert next_event_number(255) == 1
    assert next_event_number(0) == 1


def test_info_round_trip() -> None:
    i = Info(1, 4, 32, "BX-5.2")
    assert parse_info(i.encode()) == i
