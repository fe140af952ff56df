"""The SAM frame codec, the text block of every card type and the check digit (pure)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.idcard import (
    FIND_CARD,
    MAX_LEN,
    NATION_CODES,
    PREAMBLE,
    READ_TEXT_PHOTO,
    RESET_SAM,
    SAM_ID,
    SELECT_CARD,
    SW3_WORDS,
    BadFrame,
    CardDataError,
    CardType,
    Frame,
    FrameParser,
    build_text,
    check_digit,
    encode_command,
    encode_reply,
    parse_text,
    sw3_words,
    valid_id_number,
)
from sim.idcard import CARDS, RESIDENT_NUMBER


def test_commands_are_the_bytes_of_the_spec() -> None:
    assert encode_command(*RESET_SAM) == PREAMBLE + bytes.fromhex("000310FFEC")
    assert encode_command(*SAM_ID) == PREAMBLE + bytes.fromhex("000312FFEE")
    assert encode_command(*FIND_CARD) == PREAMBLE + bytes.fromhex("0003200122")
    assert encode_command(*SELECT_CARD) == PREAMBLE + bytes.fromhex("0003200221")
    assert encode_command(*READ_TEXT_PHOTO) == PREAMBLE + bytes.fromhex("0003300132")


def test_read_reply_has_len_0508() -> None:
    r = encode_reply(0x90, b"\x01\x00\x04\x00" + bytes(256 + 1024))
    assert r[5:7] == b"\x05\x08"
    [f] = FrameParser().feed(r)
    assert isinstance(f, Frame) and f.sw3 == 0x90 and len(f.data) == 4 + 1280


def test_the_fingerprint_readers_read_reply_len_090a_is_a_frame() -> None:
    data = b"\x01\x00\x04\x00\x04\x00" + bytes(256 + 1024 + 1024)
    r = encode_reply(0x90, data)
    assert r[5:7] == b"\x09\x0a"
    [f] = FrameParser().feed(r)
    assert isinstance(f, Frame) and f.data == data


def test_a_len_beyond_the_fingerprint_reply_is_noise() -> None:
    out = FrameParser().feed(PREAMBLE + (MAX_LEN + 1).to_bytes(2, "big") + encode_reply(0x80))
    assert isinstance(out[0], BadFrame) and "LEN" in out[0].reason
    assert isinstance(out[-1], Frame) and out[-1].sw3 == 0x80


def test_garbage_before_the_preamble_is_skipped() -> None:
    p = FrameParser()
    out = p.feed(b"\x00\xaa\x12\xaa\xaa" + encode_reply(0x9F, b"\x00" * 4))
    assert [type(x) for x in out] == [Frame] and out[0].sw3 == 0x9F  # type: ignore[union-attr]
    assert p.skipped == 5


def test_bad_checksum_is_reported_and_parsing_resynchronises() -> None:
    bad = bytearray(encode_reply(0x90))
    bad[-1] ^= 0xFF
    out = FrameParser().feed(bytes(bad) + encode_reply(0x80))
    assert isinstance(out[0], BadFrame) and "CHK" in out[0].reason
    assert isinstance(out[-1], Frame) and out[-1].sw3 == 0x80


def test_impossible_len_is_not_waited_for() -> None:
    out = FrameParser().feed(PREAMBLE + b"\xff\xff" + encode_reply(0x90))
    assert isinstance(out[0], BadFrame)
    assert isinstance(out[-1], Frame) and out[-1].sw3 == 0x90


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_parser_never_raises_on_noise(chunks: list[bytes]) -> None:
    p = FrameParser()
    for c in chunks:
        for item in p.feed(c):
            assert isinstance(item, Frame | BadFrame)
    assert len(p.buf) <= 7 + MAX_LEN


@given(st.integers(0, 255), st.binary(max_size=2310),  # up to the fingerprint reply
       st.binary(max_size=40).filter(lambda g: b"\xaa" not in g),
       st.integers(1, 17))
def test_reply_roundtrips_through_any_split(sw3: int, data: bytes, garbage: bytes,
                                            step: int) -> None:
    wire = garbage + encode_reply(sw3, data)
    p = FrameParser()
    got: list[Frame | BadFrame] = []
    for i in range(0, len(wire), step):
        got += p.feed(wire[i:i + step])
    assert got == [Frame(bytes([0, 0, sw3]) + data)]


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=64))
def test_command_roundtrips(cmd: int, para: int, data: bytes) -> None:
    [f] = FrameParser().feed(encode_command(cmd, para, data))
    assert isinstance(f, Frame) and f.cmd == (cmd, para) and f.cmd_data == data


@given(st.binary(min_size=8, max_size=200), st.integers(0, 10_000))
def test_a_flipped_byte_never_yields_a_wrong_frame(data: bytes, where: int) -> None:
    wire = bytearray(encode_reply(0x90, data))
    i = 5 + where % (len(wire) - 5)
    wire[i] ^= 0x5A
    for item in FrameParser().feed(bytes(wire)):
        if isinstance(item, Frame):
            # XOR catches every single-byte error in LEN..DATA and in CHK
            pytest.fail(f"corrupted frame accepted: {item}")


def test_check_digit_iso7064() -> None:
    assert check_digit("11010519491231002") == "X"  # GB 11643's own example
    assert valid_id_number("11010519491231002X")
    assert valid_id_number("11010519491231002x")
    assert not valid_id_number("110105194912310021")
    assert not valid_id_number("1101051949123100")
    assert valid_id_number(RESIDENT_NUMBER)


@given(st.text("0123456789", min_size=17, max_size=17))
def test_every_number_has_exactly_one_check_digit(first17: str) -> None:
    good = first17 + check_digit(first17)
    assert valid_id_number(good)
    assert sum(valid_id_number(first17 + c) for c in "0123456789X") == 1


def test_every_code_has_words() -> None:
    for code in (0x90, 0x9F, 0x80, 0x81, 0x91, 0x10, 0x11, 0x21, 0x31, 0x32, 0x33, 0x40,
                 0x41, 0x47, 0x60, 0x66, 0x23, 0x24):
        assert code in SW3_WORDS
        assert sw3_words(code) and sw3_words(code, "zh")
        assert f"{code:02x}" not in sw3_words(code).lower().split()
    assert sw3_words(0x77) == "unknown status 77"


@pytest.mark.parametrize("name,ctype", [
    ("resident", CardType.RESIDENT), ("hmt", CardType.HMT_PERMIT),
    ("foreigner2017", CardType.FOREIGNER_2017), ("foreigner2023", CardType.FOREIGNER_2023)])
def test_text_block_of_each_card_type(name: str, ctype: CardType) -> None:
    card = CARDS[name]
    block = build_text(card)
    assert len(block) == 256
    got = parse_text(block)
    assert got.card_type is ctype
    assert got.name == card.name and got.number == card.number
    assert got.valid_to == card.valid_to and got.birth == card.birth
    if ctype in (CardType.FOREIGNER_2017, CardType.FOREIGNER_2023):
        assert got.name_en == card.name_en and got.nationality == "GBR"
    if ctype is CardType.HMT_PERMIT:
        assert got.extra["pass_number"] == "H12345678"


def test_resident_field_offsets_are_the_spec_ones() -> None:
    block = build_text(CARDS["resident"])
    assert block[0:6].decode("utf-16-le") == "测试甲"
    assert block[122:158].decode("utf-16-le") == RESIDENT_NUMBER
    assert block[30:32].decode("utf-16-le") == "1"
    assert block[248:250] == b" \x00"


def test_bad_check_digit_is_a_bad_read() -> None:
    with pytest.raises(CardDataError) as e:
        parse_text(build_text(CARDS["bad_check"]))
    assert e.value.code == "bad_check_digit"


def test_unknown_type_flag_is_refused() -> None:
    block = bytearray(build_text(CARDS["resident"]))
    block[248:250] = "Z".encode("utf-16-le")
    with pytest.raises(CardDataError) as e:
        parse_text(bytes(block))
    assert e.value.code == "unknown_type"


def test_expiry() -> None:
    assert not CARDS["expired"].valid_on(date(2024, 1, 1))
    assert CARDS["resident"].valid_on(date(2024, 1, 1))
    assert CARDS["resident2"].valid_on(date(2099, 1, 1))  # 长期


def test_repr_leaks_nothing() -> None:
    c = parse_text(build_text(CARDS["resident"]))
    text = repr(c) + str(c) + f"{c}"
    assert "测试甲" not in text and RESIDENT_NUMBER not in text
    assert "3501**********1238" in text and "测*" in text


@pytest.mark.parametrize("nation", ["01", "56", "97", "98"])
def test_every_gb3304_nation_code_is_accepted(nation: str) -> None:
    from dataclasses import replace

    card = replace(CARDS["resident"], nation=nation)
    assert parse_text(build_text(card)).nation == nation


@pytest.mark.parametrize("nation", ["00", "57", "96", "99", "1", "ab"])
def test_a_nation_code_outside_gb3304_is_a_bad_read(nation: str) -> None:
    from dataclasses import replace

    card = replace(CARDS["resident"], nation=nation)
    with pytest.raises(CardDataError) as e:
        parse_text(build_text(card))
    assert e.value.code == "bad_nation"


@given(st.text(alphabet="0123456789", min_size=2, max_size=2))
def test_nation_codes_are_exactly_gb3304(code: str) -> None:
    assert (code in NATION_CODES) is (1 <= int(code) <= 56 or code in ("97", "98"))
