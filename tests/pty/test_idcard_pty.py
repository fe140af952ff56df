"""The reader driver against the simulated reader on a real pty: every card, every SW3."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from drivers.idcard import SW3_WORDS, CardDataError, CardType
from drivers.idcard_reader import CardReaderError, IdCardReader
from sim.idcard import CARDS, RESIDENT_NUMBER, SimIdReader


@pytest.fixture
def sim() -> Iterator[SimIdReader]:
    s = SimIdReader()
    yield s
    s.close()


@pytest.fixture
def reader(sim: SimIdReader) -> Iterator[IdCardReader]:
    r = IdCardReader(sim.port, timeout_s=1.0)
    yield r
    r.close()


@pytest.mark.parametrize("name,ctype", [
    ("resident", CardType.RESIDENT), ("resident2", CardType.RESIDENT),
    ("hmt", CardType.HMT_PERMIT), ("foreigner2017", CardType.FOREIGNER_2017),
    ("foreigner2023", CardType.FOREIGNER_2023), ("expired", CardType.RESIDENT)])
def test_each_card_type_reads_over_the_pty(sim: SimIdReader, reader: IdCardReader,
                                           name: str, ctype: CardType) -> None:
    assert not reader.find()
    sim.put(name)
    assert reader.find()
    card = reader.read_card()
    assert card.card_type is ctype
    assert card.number == CARDS[name].number and card.name == CARDS[name].name


def test_a_reader_with_a_fingerprint_module_reads_and_drops_the_fingerprint(
        sim: SimIdReader, reader: IdCardReader) -> None:
    sim.set("fingerprint", "true")
    sim.put("resident")
    raw = reader.read_raw()
    assert len(raw.text) == 256 and raw.photo.startswith(b"WLT") and len(raw.photo) == 1024
    sim.put("hmt")
    card = reader.read_card()
    assert card.card_type is CardType.HMT_PERMIT and card.number == CARDS["hmt"].number
    assert reader.retries == 0


def test_sam_commands(reader: IdCardReader) -> None:
    reader.reset_sam()
    assert len(reader.sam_id()) == 32


def test_bad_check_digit_card_is_a_bad_read(sim: SimIdReader, reader: IdCardReader) -> None:
    sim.put("bad_check")
    assert reader.find()
    with pytest.raises(CardDataError):
        reader.read_card()


@pytest.mark.parametrize("sw3", sorted(set(SW3_WORDS) - {0x90, 0x9F}))
def test_every_error_code_reaches_the_host_as_words(sim: SimIdReader, reader: IdCardReader,
                                                    sw3: int) -> None:
    sim.put("resident")
    sim.fail("read", sw3)
    with pytest.raises(CardReaderError) as e:
        reader.read_card()
    assert e.value.sw3 == sw3
    assert SW3_WORDS[sw3][1] in str(e.value)
    assert sim.port in str(e.value)


def test_no_card_on_select(sim: SimIdReader, reader: IdCardReader) -> None:
    with pytest.raises(CardReaderError) as e:
        reader.select()
    assert e.value.sw3 == 0x81 and "select failed" in str(e.value)


def test_one_bad_checksum_is_retried(sim: SimIdReader, reader: IdCardReader) -> None:
    sim.put("resident")
    sim.set("bad_chk", "1")
    assert reader.find()
    assert reader.retries == 1
    sim.set("bad_len", "1")
    assert reader.read_card().number == RESIDENT_NUMBER
    assert reader.retries == 2


def test_two_bad_checksums_fail_with_words(sim: SimIdReader, reader: IdCardReader) -> None:
    sim.set("bad_chk", "2")
    with pytest.raises(CardReaderError) as e:
        reader.find()
    assert "CHK" in str(e.value) and "cable" in str(e.value)


def test_garbage_before_each_reply_is_skipped(sim: SimIdReader, reader: IdCardReader) -> None:
    sim.set("garbage", "00ffaa1296")
    sim.put("foreigner2023")
    assert reader.find()
    assert reader.read_card().card_type is CardType.FOREIGNER_2023


def test_slow_sam_within_the_timeout_still_reads(sim: SimIdReader,
                                                 reader: IdCardReader) -> None:
    sim.put("resident")
    sim.set("delay_ms", "400")
    t = time.monotonic()
    assert reader.read_card().number == RESIDENT_NUMBER
    assert time.monotonic() - t >= 0.4


def test_sam_slower_than_the_timeout_is_a_clear_error(sim: SimIdReader) -> None:
    sim.put("resident")
    sim.set("delay_ms", "800")
    r = IdCardReader(sim.port, timeout_s=0.3)
    with pytest.raises(CardReaderError) as e:
        r.read_card()
    assert "no answer" in str(e.value)
    r.close()


def test_silent_reader(sim: SimIdReader) -> None:
    sim.set("reply", "false")
    r = IdCardReader(sim.port, timeout_s=0.2)
    with pytest.raises(CardReaderError) as e:
        r.find()
    assert "find card: no answer" in str(e.value)
    r.close()


def test_missing_port_says_what_to_do() -> None:
    r = IdCardReader("/dev/ttyNOPE9", timeout_s=0.2)
    with pytest.raises(CardReaderError) as e:
        r.find()
    assert "/dev/ttyNOPE9" in str(e.value) and "cable" in str(e.value)
