"""ESC/POS for the hall's ticket printers: one command table, both directions.

Pure functions, no I/O (STYLE.md: a driver is a codec plus a transport). The
host side builds tickets (:func:`build_ticket`) and reads DLE EOT answers
(:func:`parse_status`, :class:`PrinterStatus`); the device side
(drivers/escpos_decode.py: :class:`EscPosDecoder`, :class:`TicketAssembler`) is what
the simulator and the tests use to read those bytes back. Both sides read
:data:`COMMANDS`, so a command cannot be encoded one way and decoded another.

Every constant below follows docs/protocols/PRINTER.md (★), cited by
section. We build the bytes ourselves instead of using python-escpos' text and
QR helpers: its "magic" encoder picks code pages per character and mangles
full-width punctuation (，：) on Chinese printers, and its ``qr()`` can fall back
to a raster image, which is ~5,700 bytes instead of ~100.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from drivers.types import DeviceHealth, Health, TicketPrint

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- command table

ESC: Final = 0x1B
GS: Final = 0x1D
FS: Final = 0x1C
DLE: Final = 0x10
LF: Final = 0x0A

CommandName = Literal[
    "init", "align", "bold", "size", "chinese_on", "chinese_off", "qr", "cut", "status"
]
#: How the bytes after a command's prefix are laid out: none, one byte ``n``, or
#: a 16-bit little-endian length ``pL pH`` followed by that many bytes.
ArgLayout = Literal["", "n", "pL pH d"]


@dataclass(frozen=True, slots=True)
class Command:
    name: CommandName
    prefix: bytes
    args: ArgLayout
    spec: str  # where PRINTER.md defines it


# PRINTER.md "Commands the agent uses". Nothing else is ever sent by the agent.
COMMANDS: Final[tuple[Command, ...]] = (
    Command("init", b"\x1b\x40", "", "initialise: 1B 40, at the start of every ticket"),
    Command("align", b"\x1b\x61", "n", "align: 1B 61 n, 0 left 1 centre 2 right"),
    Command("bold", b"\x1b\x45", "n", "bold: 1B 45 n"),
    Command("size", b"\x1d\x21", "n", "character size: 1D 21 n, n=((w-1)<<4)|(h-1)"),
    Command("chinese_on", b"\x1c\x26", "", "Chinese mode on: 1C 26"),
    Command("chinese_off", b"\x1c\x2e", "", "Chinese mode off: 1C 2E"),
    Command("qr", b"\x1d\x28\x6b", "pL pH d", "QR code (native): 1D 28 6B pL pH cn fn ..."),
    Command("cut", b"\x1d\x56\x42", "n", "feed and cut: 1D 56 42 n"),
    Command("status", b"\x10\x04", "n", "real-time status: 10 04 n"),
)
_BY_NAME: Final[dict[str, Command]] = {c.name: c for c in COMMANDS}

# PRINTER.md "QR code (native)": cn = 0x31 (QR), then the function byte.
QR_CN: Final = 0x31
QR_FN_MODEL: Final = 0x41  # arg 0x32 0x00: model 2
QR_FN_MODULE: Final = 0x43  # arg n: module size in dots
QR_FN_EC: Final = 0x45  # arg 0x31: error correction level M
QR_FN_STORE: Final = 0x50  # arg 0x30 then the data
QR_FN_PRINT: Final = 0x51  # arg 0x30
QR_MODEL_2: Final = b"\x32\x00"
QR_EC_M: Final = 0x31
QR_MAX_DATA: Final = 7089  # the largest QR symbol; longer data cannot be a QR code

# PRINTER.md "Status (DLE EOT)": every answer matches 0xx1xx10.
STATUS_FIXED_MASK: Final = 0b1001_0011
STATUS_FIXED_BITS: Final = 0b0001_0010

#: Real ESC/POS cell sizes, in dots (font A: 12×24 half-width, 24×24 hanzi).
HALF_CELL_W: Final = 12
FULL_CELL_W: Final = 24
CELL_H: Final = 24
PAPER_DOTS: Final = 576  # 80 mm paper, 72 mm printable at 203 dpi


def command(name: CommandName, *args: int, data: bytes = b"") -> bytes:
    """Bytes of one command of :data:`COMMANDS`; the argument count is checked."""
    c = _BY_NAME[name]
    if c.args == "":
        if args or data:
            raise ValueError(f"{name} takes no arguments")
        return c.prefix
    if c.args == "n":
        if len(args) != 1 or data or not 0 <= args[0] <= 255:
            raise ValueError(f"{name} takes exactly one byte argument")
        return c.prefix + bytes(args)
    body = bytes(args) + data
    if len(body) > 0xFFFF:
        raise ValueError(f"{name}: {len(body)} bytes is too long for pL pH")
    return c.prefix + len(body).to_bytes(2, "little") + body


def init() -> bytes:
    return command("init")


def align(where: Literal["left", "centre", "right"]) -> bytes:
    return command("align", {"left": 0, "centre": 1, "right": 2}[where])


def bold(on: bool) -> bytes:
    return command("bold", 1 if on else 0)


def size(width: int = 1, height: int = 1) -> bytes:
    """``GS !``: PRINTER.md says it applies to hanzi too, unlike ``ESC !``."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError("character magnification is 1…8")
    return command("size", ((width - 1) << 4) | (height - 1))


def feed_and_cut(feed_dots: int) -> bytes:
    return command("cut", feed_dots)


def status_query(n: int) -> bytes:
    if n not in (1, 2, 3, 4):
        raise ValueError("DLE EOT n is 1…4")
    return command("status", n)


def qr(data: bytes, *, module: int = 6) -> bytes:
    """Native QR, model 2, EC level M: 5 commands, ~40 bytes plus the data."""
    if not 1 <= module <= 16:
        raise ValueError("QR module size is 1…16 dots")
    if not 0 < len(data) <= QR_MAX_DATA:
        raise ValueError(f"QR data must be 1…{QR_MAX_DATA} bytes")
    return b"".join((
        command("qr", QR_CN, QR_FN_MODEL, data=QR_MODEL_2),
        command("qr", QR_CN, QR_FN_MODULE, module),
        command("qr", QR_CN, QR_FN_EC, QR_EC_M),
        # pL + 256·pH = len(d) + 3 (cn, fn, m), which command() counts itself.
        command("qr", QR_CN, QR_FN_STORE, 0x30, data=data),
        command("qr", QR_CN, QR_FN_PRINT, 0x30),
    ))


# --------------------------------------------------------------------------- text


@dataclass(frozen=True, slots=True)
class EncodedText:
    data: bytes
    replaced: list[str]  # characters that could not be sent and went out as "?"


def _gbk2(ch: str) -> bytes | None:
    """The 2-byte GB18030 code of ``ch``, or None if it needs 4 bytes (PRINTER.md)."""
    try:
        b = ch.encode("gb18030")
    except UnicodeEncodeError:  # lone surrogates
        return None
    return b if len(b) == 2 else None


def encode_text(s: str) -> EncodedText:
    """ASCII as ASCII; each run of other characters inside ``FS & … FS .`` as 2-byte GB.

    A character outside GBK's 2-byte range is replaced by ``?`` (never sent as
    4 bytes: the printers would print two garbage glyphs). Control characters
    become spaces so text can never smuggle a command (an ``ESC`` or a
    ``DLE EOT``) onto the wire.
    """
    out = bytearray()
    replaced: list[str] = []
    chinese = False
    for ch in s:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or unicodedata.category(ch) == "Cc":
            ch, o = " ", 0x20
        if o < 0x80:
            if chinese:
                out += command("chinese_off")
                chinese = False
            out.append(o)
            continue
        code = _gbk2(ch)
        if code is None:
            replaced.append(ch)
            if chinese:
                out += command("chinese_off")
                chinese = False
            out += b"?"
            continue
        if not chinese:
            out += command("chinese_on")
            chinese = True
        out += code
    if chinese:
        out += command("chinese_off")
    return EncodedText(bytes(out), replaced)


# --------------------------------------------------------------------------- tickets


def wait_lines(waiting_ahead: int, est_wait_s: int) -> list[str]:
    """The queue lines of a ticket; nobody ahead is good news, said as such."""
    if waiting_ahead <= 0:
        return ["前面无人等候，即将为您办理"]
    minutes = max(1, math.ceil(est_wait_s / 60))
    return [f"前面还有 {waiting_ahead} 人等候", f"预计等候约 {minutes} 分钟"]


def wait_line_en(waiting_ahead: int, est_wait_s: int) -> str:
    """The queue line of a ticket taken in English, one line."""
    if waiting_ahead <= 0:
        return "No one ahead of you"
    minutes = max(1, math.ceil(est_wait_s / 60))
    return f"{waiting_ahead} ahead of you, about {minutes} min"


class _Builder:
    """Accumulates ticket bytes and remembers what had to be replaced, per field."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.replaced: dict[str, list[str]] = {}

    def raw(self, b: bytes) -> None:
        self.out += b

    def line(self, text: str, *, what: str) -> None:
        enc = encode_text(text)
        if enc.replaced:
            self.replaced.setdefault(what, []).extend(enc.replaced)
        self.out += enc.data
        self.out.append(LF)


def _log_replaced(number: str, replaced: Mapping[str, list[str]]) -> None:
    for what, chars in replaced.items():
        if what == "masked_name":
            # A rare surname character is personal data: say only how many.
            log.warning("ticket %s: %d character(s) of the name line are outside GBK "
                        "and print as '?'", number, len(chars))
        else:
            log.warning("ticket %s: %s has character(s) outside GBK printed as '?': %s",
                        number, what, " ".join(f"U+{ord(c):04X}" for c in chars))


def build_ticket(t: TicketPrint, *, qr_module: int = 6, feed_dots: int = 80) -> bytes:
    """The ticket of PRINTER.md "A ticket", under 600 bytes for a 60-character URL."""
    b = _Builder()
    b.raw(init())  # PRINTER.md: at the start of every ticket
    b.raw(align("centre"))
    b.raw(bold(True) + size(1, 2))
    b.line(t.hall_name, what="hall_name")
    # The service at double size: the second thing a citizen checks, after the number.
    b.raw(size(2, 2))
    b.line(t.service_name, what="service_name")
    b.raw(size(1, 1))
    en = t.lang == "en"  # a ticket taken in English: its key lines in English too
    if en and t.service_name_en:
        b.line(t.service_name_en, what="service_name_en")
    b.raw(bold(False))
    if t.priority:
        b.raw(bold(True) + size(2, 2))
        b.line("【优先】Priority" if en else "【优先】", what="priority")
        b.raw(size(1, 1) + bold(False))
    b.raw(bold(True) + size(4, 4))
    b.line(t.number, what="number")
    # "How long will I wait" in double height: read from arm's length by elderly eyes.
    b.raw(size(1, 2) + bold(False))
    for text in wait_lines(t.waiting_ahead, t.est_wait_s):
        b.line(text, what="wait")
    if en:
        b.line(wait_line_en(t.waiting_ahead, t.est_wait_s), what="wait_en")
    b.raw(size(1, 1))
    b.line(f"取号时间 {t.issued_at:%Y-%m-%d %H:%M}", what="issued_at")
    if t.masked_name:
        b.line(f"姓名：{t.masked_name}", what="masked_name")
    # A blank line each side of the QR code gives the scanner its quiet zone.
    b.raw(bytes([LF]))
    b.raw(qr(t.qr_url.encode("utf-8"), module=qr_module))
    b.raw(bytes([LF]))
    b.line("扫码查看排队进度" + (" / Scan to follow the queue" if en else ""),
           what="qr_caption")
    b.line(t.notice, what="notice")
    if en:
        b.line("Please listen for your number", what="notice_en")
    if t.offline:
        b.line("离线取号", what="offline")
    b.raw(feed_and_cut(feed_dots))
    if b.replaced:
        _log_replaced(t.number, b.replaced)
    return bytes(b.out)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A self-service result or a booking slip: a title, label/value lines, a QR.

    Only masked personal data belongs here (``3501**********1238``, ``张*``): a
    receipt left in the tray is read by the next person.
    """

    hall_name: str
    title: str
    lines: tuple[tuple[str, str], ...]
    issued_at: datetime
    masked_name: str = ""
    masked_id: str = ""
    qr: str = ""
    qr_caption: str = ""
    footer: str = ""


def build_receipt(r: Receipt, *, qr_module: int = 6, feed_dots: int = 80) -> bytes:
    """A receipt in the ticket's style: centred title, then left-aligned lines."""
    b = _Builder()
    b.raw(init() + align("centre") + bold(True) + size(1, 2))
    b.line(r.hall_name, what="hall_name")
    b.raw(size(1, 1))
    b.line(r.title, what="title")
    b.raw(bold(False) + align("left"))
    if r.masked_name or r.masked_id:
        b.line(f"姓名：{r.masked_name}", what="masked_name")
        b.line(f"证件：{r.masked_id}", what="masked_id")
    b.line("-" * 32, what="rule")
    for label_, value in r.lines:
        b.line(f"{label_}：{value}" if label_ else value, what="line")
    b.line("-" * 32, what="rule")
    b.line(f"打印时间 {r.issued_at:%Y-%m-%d %H:%M}", what="issued_at")
    if r.qr:
        b.raw(align("centre") + bytes([LF]))
        b.raw(qr(r.qr.encode("utf-8"), module=qr_module))
        b.raw(bytes([LF]))
        if r.qr_caption:
            b.line(r.qr_caption, what="qr_caption")
    if r.footer:
        b.raw(align("centre"))
        b.line(r.footer, what="footer")
    b.raw(feed_and_cut(feed_dots))
    if b.replaced:
        _log_replaced(r.title, b.replaced)
    return bytes(b.out)


def build_test_page(*, where: str = "", now: datetime | None = None, qr_module: int = 6,
                    feed_dots: int = 80) -> bytes:
    """A page that shows at a glance whether sizes, bold, alignment, hanzi and QR work."""
    b = _Builder()
    b.raw(init() + align("centre") + bold(True) + size(2, 2))
    b.line("打印机测试页", what="title")
    b.raw(size(1, 1) + bold(False))
    b.line("Printer test page", what="title")
    if where:
        b.line(where, what="where")
    if now is not None:
        b.line(f"{now:%Y-%m-%d %H:%M}", what="time")
    b.raw(align("left"))
    b.line("左对齐 left", what="sample")
    b.raw(align("centre"))
    b.line("居中 centre", what="sample")
    b.raw(align("right"))
    b.line("右对齐 right", what="sample")
    b.raw(align("centre"))
    for w in (1, 2, 3, 4):
        b.raw(size(w, w))
        b.line(f"{w}×中A", what="sample")
    b.raw(size(1, 1) + bold(True))
    b.line("粗体 bold", what="sample")
    b.raw(bold(False))
    b.line("标点：，。；！？（）【】《》", what="sample")
    b.raw(bytes([LF]))
    b.raw(qr(b"hall-edge printer test", module=qr_module))
    b.raw(bytes([LF]))
    b.raw(feed_and_cut(feed_dots))
    return bytes(b.out)


# --------------------------------------------------------------------------- status

StatusFlag = Literal["offline", "cover_open", "paper_end", "paper_near_end", "error",
                     "cutter_error", "unrecoverable"]

# PRINTER.md "Status (DLE EOT)": (query n, bit mask) → flag.
STATUS_BITS: Final[Mapping[int, tuple[tuple[int, StatusFlag], ...]]] = {
    1: ((0x08, "offline"),),
    2: ((0x04, "cover_open"), (0x20, "paper_end"), (0x40, "error")),
    3: ((0x08, "cutter_error"), (0x20, "unrecoverable")),
    4: ((0x0C, "paper_near_end"), (0x60, "paper_end")),
}


def is_status_reply(byte: int) -> bool:
    """True if ``byte`` has the fixed bits ``0xx1xx10`` of every DLE EOT answer."""
    return (byte & STATUS_FIXED_MASK) == STATUS_FIXED_BITS


def parse_status(query_n: int, byte: int) -> dict[StatusFlag, bool] | None:
    """Flags answered by ``10 04 query_n``; None if ``byte`` is not an answer at all.

    Either bit of a two-bit group (``0x0C``, ``0x60``) counts: printers set one
    or both depending on which sensors they have.
    """
    if query_n not in STATUS_BITS:
        raise ValueError(f"DLE EOT n={query_n} is not a status query this driver knows")
    if not 0 <= byte <= 255 or not is_status_reply(byte):
        return None
    return {flag: bool(byte & mask) for mask, flag in STATUS_BITS[query_n]}


# Person-readable reasons, worst first: the English says what to do, the
# Chinese is for hall staff who read the kiosk's status page.
_FAULTS: Final[tuple[tuple[str, str], ...]] = (
    ("paper_end", "paper end — load a new roll（缺纸，请装入新纸卷）"),
    ("cover_open", "cover open — close the printer cover（纸仓盖未关）"),
    ("offline", "offline — check the printer's power and its feed/online button（打印机离线）"),
    ("error", "printer error — open and close the cover, or switch it off and on（打印机故障）"),
    ("cutter_error", "cutter error — clear the paper at the cutter（切刀故障）"),
    ("unrecoverable", "unrecoverable error — switch the printer off and on; call service if "
                      "it stays（严重故障）"),
)
NEAR_END_DETAIL: Final = "paper near end — change the roll soon（纸将用尽，请及时换纸）"


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said (or did not say) to DLE EOT, and what it means."""

    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    error: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False
    no_reply: bool = False
    no_status_channel: bool = False  # transport "file": nothing can answer
    problem: str = ""  # a transport problem, already worded for people
    replies: Mapping[int, int] = field(default_factory=dict)  # query n → answer byte

    @classmethod
    def from_replies(cls, replies: Mapping[int, int | None]) -> PrinterStatus:
        """Combine the answers to several queries; a None answer means "no reply"."""
        flags: dict[str, bool] = {}
        got: dict[int, int] = {}
        no_reply = False
        for n, byte in replies.items():
            parsed = None if byte is None else parse_status(n, byte)
            if parsed is None:
                no_reply = True
                continue
            assert byte is not None
            got[n] = byte
            for k, v in parsed.items():
                flags[k] = flags.get(k, False) or v
        return cls(
            offline=flags.get("offline", False), cover_open=flags.get("cover_open", False),
            paper_end=flags.get("paper_end", False),
            paper_near_end=flags.get("paper_near_end", False), error=flags.get("error", False),
            cutter_error=flags.get("cutter_error", False),
            unrecoverable=flags.get("unrecoverable", False), no_reply=no_reply, replies=got)

    @property
    def reasons(self) -> list[str]:
        return [text for flag, text in _FAULTS if getattr(self, flag)]

    def health(self, *, timeout_ms: int = 500) -> DeviceHealth:
        if self.problem:
            return DeviceHealth(Health.FAULT, self.problem)
        if self.no_reply:
            return DeviceHealth(Health.FAULT, f"no reply to a status query within {timeout_ms} "
                                              "ms — check the printer's power and cable"
                                              "（打印机无应答）")
        reasons = self.reasons
        if reasons:
            return DeviceHealth(Health.FAULT, "; ".join(reasons))
        if self.paper_near_end:
            return DeviceHealth(Health.DEGRADED, NEAR_END_DETAIL)
        if self.no_status_channel:
            return DeviceHealth(Health.OK, "no status channel (file)")
        return DeviceHealth(Health.OK, "")
