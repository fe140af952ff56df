"""The ID-card reader: the SAM host protocol of docs/protocols/IDCARD.md (GA/T 467, chapter 7).

Codec (pure, no I/O, fuzzed): frames both ways (:func:`encode_command`,
:func:`encode_reply`, :class:`FrameParser`), the SW3 status words, the 256-byte
UCS-2 text block of the four card types, and the ISO 7064 MOD 11-2 check digit.

Transport: drivers/idcard_reader.py (:class:`~drivers.idcard_reader.IdCardReader`).

Personal data: a :class:`CardText` holds a name and an ID number in clear, so its
``repr`` shows only masked forms; nothing here logs a field of a card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

from drivers.errors import HallEdgeError
from drivers.personal import mask_id, mask_name

log = logging.getLogger(__name__)

# IDCARD.md, "Frames".
PREAMBLE: Final = b"\xaa\xaa\xaa\x96\x69"
# The longest frame the protocol has is the read reply of readers with a
# fingerprint module: LEN 09 0A (2314: SW1-3, three lengths, 256 text, 1024
# photo, 1024 fingerprint, CHK); without one it is LEN 05 08 (1288). A LEN beyond
# it is line noise that happened to follow a preamble: resynchronise.
MAX_LEN: Final = 0x090A
MIN_LEN: Final = 3  # a command: CMD PARA CHK

TEXT_LEN: Final = 256
PHOTO_LEN: Final = 1024
FINGERPRINT_LEN: Final = 1024

#: GB 3304 nation codes: 01–56 the 56 nationalities, 97 其他 (other), 98
#: 外国血统中国籍人士 (Chinese citizens of foreign origin). Anything else in a
#: resident card's nation field is a bad read.
NATION_CODES: Final = frozenset({f"{n:02d}" for n in range(1, 57)} | {"97", "98"})


RESET_SAM: Final = (0x10, 0xFF)
SAM_ID: Final = (0x12, 0xFF)
FIND_CARD: Final = (0x20, 0x01)
SELECT_CARD: Final = (0x20, 0x02)
READ_TEXT_PHOTO: Final = (0x30, 0x01)
COMMANDS: Final[dict[tuple[int, int], str]] = {
    RESET_SAM: "reset SAM", SAM_ID: "SAM id", FIND_CARD: "find card",
    SELECT_CARD: "select card", READ_TEXT_PHOTO: "read text + photo",
}

# IDCARD.md, "SW3 codes": what a person is shown (never the hex alone).
SW3_OK: Final = 0x90
SW3_FOUND: Final = 0x9F
SW3_NO_CARD: Final = 0x80
SW3_SELECT_FAILED: Final = 0x81
SW3_WORDS: Final[dict[int, tuple[str, str]]] = {
    0x90: ("成功", "OK"),
    0x9F: ("找到证件", "card found"),
    0x80: ("未放证件", "no card on the reader"),
    0x81: ("选卡失败", "card select failed — lift the card and place it again"),
    0x91: ("证件无此内容", "the card has no such content"),
    0x10: ("校验和错误", "checksum error in the command"),
    0x11: ("长度错误", "length error in the command"),
    0x21: ("参数错误", "bad command parameter"),
    0x31: ("证件与安全模块认证失败", "card–SAM authentication failed"),
    0x32: ("证件与安全模块认证失败", "card–SAM authentication failed"),
    0x33: ("信息验证错误", "verification failed"),
    0x40: ("无法识别的证件类型", "unknown card type"),
    0x41: ("读证件失败", "card read failed — hold the card still and try again"),
    0x47: ("取随机数失败", "random-number failure"),
    0x60: ("安全模块自检失败", "SAM self-test failed — power-cycle the reader"),
    0x66: ("安全模块未经授权", "SAM not authorised — the reader needs its licence"),
    0x23: ("越权操作", "permission error"),
    0x24: ("无法识别的错误", "unknown error"),
}


def sw3_words(sw3: int, lang: str = "en") -> str:
    """SW3 as words, e.g. ``0x41`` → "card read failed — …" (unknown codes say so)."""
    zh, en = SW3_WORDS.get(sw3, (f"未知状态 {sw3:02X}", f"unknown status {sw3:02X}"))
    return zh if lang == "zh" else en


# --------------------------------------------------------------------------- frames


def checksum(body: bytes) -> int:
    """XOR of every byte from LEN up to the end of DATA."""
    c = 0
    for b in body:
        c ^= b
    return c


def _frame(payload: bytes) -> bytes:
    n = len(payload) + 1
    head = n.to_bytes(2, "big") + payload
    return PREAMBLE + head + bytes([checksum(head)])


def encode_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    """``AA AA AA 96 69 | LEN | CMD | PARA | DATA | CHK``."""
    return _frame(bytes([cmd, para]) + data)


def encode_reply(sw3: int, data: bytes = b"", sw1: int = 0x00, sw2: int = 0x00) -> bytes:
    """``AA AA AA 96 69 | LEN | SW1 SW2 SW3 | DATA | CHK`` (the reader's side)."""
    return _frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, slots=True)
class Frame:
    """One well-formed frame: the bytes between LEN and CHK."""

    body: bytes

    # command view
    @property
    def cmd(self) -> tuple[int, int]:
        return (self.body[0], self.body[1]) if len(self.body) >= 2 else (-1, -1)

    @property
    def cmd_data(self) -> bytes:
        return self.body[2:]

    # reply view
    @property
    def sw3(self) -> int:
        return self.body[2] if len(self.body) >= 3 else -1

    @property
    def data(self) -> bytes:
        return self.body[3:]


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame whose LEN or CHK was wrong: discarded (IDCARD.md: retried once)."""

    reason: str


class FrameParser:
    """Bytes in, frames out, like pyserial's ``FramedPacket``: feed what arrives.

    Garbage before a preamble is skipped; a frame whose CHK is wrong or whose LEN
    is impossible is reported as :class:`BadFrame` and parsing resynchronises on
    the next preamble.
    """

    def __init__(self, *, max_len: int = MAX_LEN) -> None:
        self.buf = bytearray()
        self.max_len = max_len
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        self.buf += data
        out: list[Frame | BadFrame] = []
        while True:
            i = self.buf.find(PREAMBLE)
            if i < 0:
                # keep a tail that may be the start of a preamble
                keep = next((k for k in range(min(len(PREAMBLE) - 1, len(self.buf)), 0, -1)
                             if PREAMBLE.startswith(bytes(self.buf[-k:]))), 0)
                self.skipped += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                return out
            if i:
                self.skipped += i
                del self.buf[:i]
            if len(self.buf) < len(PREAMBLE) + 2:
                return out
            n = int.from_bytes(self.buf[5:7], "big")
            if n < MIN_LEN or n > self.max_len:
                out.append(BadFrame(f"impossible LEN {n}"))
                del self.buf[:1]  # not a frame: look for the next preamble
                continue
            end = len(PREAMBLE) + 2 + n
            if len(self.buf) < end:
                return out
            head = bytes(self.buf[5:end - 1])
            chk = self.buf[end - 1]
            if checksum(head) != chk:
                out.append(BadFrame(f"CHK {chk:02X}, expected {checksum(head):02X}"))
                del self.buf[:1]
                continue
            out.append(Frame(head[2:]))
            del self.buf[:end]


# --------------------------------------------------------------------------- check digit

_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of 17 digits (``X`` stands for 10)."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("need exactly 17 digits")
    s = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    v = (12 - s % 11) % 11
    return "X" if v == 10 else str(v)


def valid_id_number(number: str) -> bool:
    """An 18-character number whose last character is its MOD 11-2 check digit."""
    if len(number) != 18 or not number[:17].isdigit() or not number[:17].isascii():
        return False
    return check_digit(number[:17]) == number[17].upper()


# --------------------------------------------------------------------------- text block


class CardType(StrEnum):
    RESIDENT = "resident"            # type flag " "
    HMT_PERMIT = "hmt_permit"        # "J": Hong Kong/Macau/Taiwan residence permit
    FOREIGNER_2017 = "foreigner_2017"  # "I": foreigner permanent residence, 2017
    FOREIGNER_2023 = "foreigner_2023"  # "Y": foreigner permanent residence, 2023


TYPE_FLAGS: Final[dict[str, CardType]] = {
    " ": CardType.RESIDENT, "J": CardType.HMT_PERMIT,
    "I": CardType.FOREIGNER_2017, "Y": CardType.FOREIGNER_2023,
}
FLAG_OF: Final = {v: k for k, v in TYPE_FLAGS.items()}
TYPE_FLAG_OFFSET: Final = 248

# (offset, bytes) of each field, per type. The resident layout is IDCARD.md's;
# the others follow the readers' vendor documentation of GA/T 467's annex (same
# frame, the type flag at 248 tells them apart). Keep each layout one table, so a
# correction is one line.
Layout = dict[str, tuple[int, int]]
LAYOUTS: Final[dict[CardType, Layout]] = {
    CardType.RESIDENT: {
        "name": (0, 30), "sex": (30, 2), "nation": (32, 4), "birth": (36, 16),
        "address": (52, 70), "number": (122, 36), "authority": (158, 30),
        "valid_from": (188, 16), "valid_to": (204, 16),
    },
    CardType.HMT_PERMIT: {
        "name": (0, 30), "sex": (30, 2), "birth": (36, 16), "address": (52, 70),
        "number": (122, 36), "authority": (158, 30), "valid_from": (188, 16),
        "valid_to": (204, 16), "pass_number": (220, 18), "issue_count": (238, 4),
    },
    CardType.FOREIGNER_2017: {
        "name_en": (0, 120), "sex": (120, 2), "number": (122, 30), "nationality": (152, 6),
        "name": (158, 30), "valid_from": (188, 16), "valid_to": (204, 16),
        "birth": (220, 16), "version": (236, 4), "authority": (240, 8),
    },
    CardType.FOREIGNER_2023: {
        "name_en": (0, 120), "sex": (120, 2), "number": (122, 36), "nationality": (158, 6),
        "name": (164, 30), "valid_from": (194, 16), "valid_to": (210, 16),
        "birth": (226, 16), "version": (242, 4),
    },
}
# An 18-character number carries a MOD 11-2 check digit; the 15-character number of
# the 2017 foreigner card has its own scheme and is checked for shape only.
NUMBER_LENGTH: Final = {CardType.RESIDENT: 18, CardType.HMT_PERMIT: 18,
                        CardType.FOREIGNER_2017: 15, CardType.FOREIGNER_2023: 18}


class CardDataError(HallEdgeError, ValueError):
    """The text block cannot be used (bad check digit, unknown type, garbled dates)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code




@dataclass(frozen=True, slots=True)
class CardText:
    """The text of one card. Personal data: kept in memory for one flow only.

    ``repr`` shows masked forms, so a stray log line leaks nothing.
    """

    card_type: CardType
    name: str = field(repr=False)
    number: str = field(repr=False)
    sex: str = ""
    birth: str = field(default="", repr=False)
    valid_from: str = ""
    valid_to: str = ""  # YYYYMMDD, or 长期 (no end)
    name_en: str = field(default="", repr=False)
    nation: str = ""
    nationality: str = ""
    address: str = field(default="", repr=False)
    authority: str = ""
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (f"CardText({self.card_type.value}, {mask_name(self.name or self.name_en)}, "
                f"{mask_id(self.number)}, valid to {self.valid_to})")

    __str__ = __repr__

    def valid_on(self, day: date) -> bool:
        """False once the card has expired (``长期`` never does)."""
        if self.valid_to.startswith("长期") or not self.valid_to:
            return True
        try:
            end = date(int(self.valid_to[:4]), int(self.valid_to[4:6]), int(self.valid_to[6:8]))
        except ValueError:
            return False
        return day <= end


def _field(block: bytes, off: int, n: int) -> str:
    return block[off:off + n].decode("utf-16-le", errors="replace").rstrip(" \x00")


def parse_text(block: bytes) -> CardText:
    """The 256-byte UCS-2 text block → :class:`CardText`; refuses a bad card."""
    if len(block) != TEXT_LEN:
        raise CardDataError(f"text block of {len(block)} bytes, expected {TEXT_LEN}",
                            code="length")
    flag = block[TYPE_FLAG_OFFSET:TYPE_FLAG_OFFSET + 2].decode("utf-16-le", errors="replace")
    # A resident card leaves the flag as spaces (or zeros on some older cards).
    flag = " " if flag in ("\x00", " ", "") else flag
    ctype = TYPE_FLAGS.get(flag)
    if ctype is None:
        raise CardDataError(f"unknown card type flag {flag!r}", code="unknown_type")
    f = {k: _field(block, off, n) for k, (off, n) in LAYOUTS[ctype].items()}
    number = f.get("number", "").upper()
    want = NUMBER_LENGTH[ctype]
    if len(number) != want:
        raise CardDataError(f"{ctype.value}: number has {len(number)} characters, "
                            f"expected {want}", code="bad_number")
    if want == 18 and not valid_id_number(number):
        raise CardDataError(f"{ctype.value}: the number's check digit is wrong "
                            "(ISO 7064 MOD 11-2): a bad read", code="bad_check_digit")
    if want == 15 and not (number[:3].isalpha() and number[3:].isdigit()):
        raise CardDataError(f"{ctype.value}: the number is not 3 letters + 12 digits",
                            code="bad_number")
    nation = f.get("nation", "")
    if nation and nation not in NATION_CODES:
        raise CardDataError(f"{ctype.value}: nation code is not one of GB 3304",
                            code="bad_nation")
    for key in ("valid_from", "valid_to"):
        v = f.get(key, "")
        if v and not v.startswith("长期") and not (len(v) == 8 and v.isdigit()):
            raise CardDataError(f"{ctype.value}: {key} is not YYYYMMDD", code="bad_date")
    known = {"name", "number", "sex", "birth", "valid_from", "valid_to", "name_en", "nation",
             "nationality", "address", "authority"}
    return CardText(card_type=ctype, name=f.get("name", ""), number=number,
                    sex=f.get("sex", ""), birth=f.get("birth", ""),
                    valid_from=f.get("valid_from", ""), valid_to=f.get("valid_to", ""),
                    name_en=f.get("name_en", ""), nation=f.get("nation", ""),
                    nationality=f.get("nationality", ""), address=f.get("address", ""),
                    authority=f.get("authority", ""),
                    extra={k: v for k, v in f.items() if k not in known})


def build_text(card: CardText) -> bytes:
    """The reader's side: a :class:`CardText` as its 256-byte block (simulator, tests)."""
    block = bytearray(" ".encode("utf-16-le") * (TEXT_LEN // 2))
    values = {"name": card.name, "number": card.number, "sex": card.sex, "birth": card.birth,
              "valid_from": card.valid_from, "valid_to": card.valid_to,
              "name_en": card.name_en, "nation": card.nation,
              "nationality": card.nationality, "address": card.address,
              "authority": card.authority, **card.extra}
    for key, (off, n) in LAYOUTS[card.card_type].items():
        raw = values.get(key, "").encode("utf-16-le")[:n]
        block[off:off + len(raw)] = raw
    block[TYPE_FLAG_OFFSET:TYPE_FLAG_OFFSET + 2] = FLAG_OF[card.card_type].encode("utf-16-le")
    return bytes(block)
