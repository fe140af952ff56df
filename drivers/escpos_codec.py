"""ESC/POS for the hall's ticket printers: one command table, both directions.

Pure functions, no I/O (STYLE.md: a driver is a codec plus a transport). The
host side builds tickets (:func:`build_ticket`) and reads DLE EOT answers
(drivers/escpos_status.py: :func:`parse_status`, :class:`PrinterStatus`); the device side
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
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from drivers.types import TicketPrint

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- command table

ESC: Final = 0x1B
GS: Final = 0x1D
FS: Final = 0x1C
DLE: Final = 0x10
LF: Final = 0x0A

CommandName = Literal[
    "init", "align", "bold", "size", "chinese_on", "chinese_off", "qr", "cut", "status",
    "module_width", "qr_gs_k",
]
#: How the bytes after a command's prefix are laid out: none, one byte ``n``, a
#: 16-bit little-endian length ``pL pH`` followed by that many bytes, or (SNBC's
#: ``GS k`` QR) two bytes ``v r`` then ``nL nH`` and that many bytes.
ArgLayout = Literal["", "n", "pL pH d", "v r nL nH d"]


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
    # model "snbc-btp" only (see MODELS): SNBC BTP programming manuals, "GS w" and
    # "GS k" with m = 11 (QR code).
    Command("module_width", b"\x1d\x77", "n", "module width: 1D 77 n, in dots"),
    Command("qr_gs_k", b"\x1d\x6b\x0b", "v r nL nH d",
            "QR code (SNBC): 1D 6B 0B v r nL nH d..., v version (0 auto), r EC level"),
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
# SNBC "GS k" QR (m = 11): v = 0 lets the printer pick the smallest version; r is
# the error correction level, 1…4 for L, M, Q, H.
QR_GS_K_AUTO_VERSION: Final = 0
QR_GS_K_EC_M: Final = 2

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
    if c.args == "v r nL nH d":
        if len(args) != 2 or not all(0 <= a <= 255 for a in args) or len(data) > 0xFFFF:
            raise ValueError(f"{name} takes v, r and at most 65535 bytes of data")
        return c.prefix + bytes(args) + len(data).to_bytes(2, "little") + data
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


# --------------------------------------------------------------------------- printer models

ModelName = Literal["epson", "snbc-btp"]
QrCommand = Literal["gs ( k", "gs k"]


@dataclass(frozen=True, slots=True)
class PrinterModel:
    """What differs between the printers a hall buys (``[printer] model``).

    Shaped like python-escpos' capability profiles (a vendor, a name, features),
    kept here because its profile table has no SNBC printer and importing
    python-escpos costs the agent ~8 MB for bytes we build ourselves.
    """

    name: ModelName
    vendor: str
    description: str
    qr: QrCommand  # how a QR code is sent


MODELS: Final[Mapping[str, PrinterModel]] = {
    "epson": PrinterModel("epson", "Epson and compatibles",
                          "ESC/POS as Epson documents it: QR with GS ( k", "gs ( k"),
    "snbc-btp": PrinterModel("snbc-btp", "SNBC (新北洋)",
                             "BTP kiosk printers: QR with GS k (m = 11), module via GS w",
                             "gs k"),
}


def printer_model(name: str) -> PrinterModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown printer model {name!r}; known: "
                         + ", ".join(MODELS)) from None


def qr(data: bytes, *, module: int = 6, model: ModelName = "epson") -> bytes:
    """A QR code in the model's command: ``GS ( k`` (5 commands, ~40 bytes plus the
    data) or SNBC's ``GS k`` (``GS w`` for the module, then one command)."""
    if not 1 <= module <= 16:
        raise ValueError("QR module size is 1…16 dots")
    if not 0 < len(data) <= QR_MAX_DATA:
        raise ValueError(f"QR data must be 1…{QR_MAX_DATA} bytes")
    if MODELS[model].qr == "gs k":
        return (command("module_width", module)
                + command("qr_gs_k", QR_GS_K_AUTO_VERSION, QR_GS_K_EC_M, data=data))
    return b"".join((
        command("qr", QR_CN, QR_FN_MODEL, data=QR_MODEL_2),
        command("qr", QR_CN, QR_FN_MODULE, module),
        command("qr", QR_CN, QR_FN_EC, QR_EC_M),
        # pL + 256·pH = len(d) + 3 (cn, fn, m), which command() counts itself.
        command("qr", QR_CN, QR_FN_STORE, 0x30, data=data),
        command("qr", QR_CN, QR_FN_PRINT, 0x30),
    ))


# --------------------------------------------------------------------------- text


Charset = Literal["gbk", "gb2312"]

#: Characters sent as another that looks the same and has a 2-byte GB code: ``¥``
#: is 4 bytes in GB18030 (printed as "?"), the full-width ``￥`` is GB2312 A3A4.
SUBSTITUTES: Final[Mapping[str, str]] = {"¥": "￥", "•": "·"}


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


def gb_code(ch: str, charset: Charset = "gbk") -> bytes | None:
    """The 2-byte code the printer's font has for ``ch``, or None.

    ``gbk``: GB18030's 2-byte range. ``gb2312``: only the codes a GB2312 font
    has (a printer with one prints garbage for the rest, e.g. ``€`` A2E3). The
    test is on the code, not the character: Python's gb2312 codec maps A1A4 to
    U+30FB where GB18030 has ``·`` U+00B7, and both are the same glyph on paper.
    """
    code = _gbk2(SUBSTITUTES.get(ch, ch))
    if code is None or charset == "gbk":
        return code
    try:
        code.decode("gb2312")
    except UnicodeDecodeError:
        return None
    return code


def encode_text(s: str, charset: Charset = "gbk") -> EncodedText:
    """ASCII as ASCII; each run of other characters inside ``FS & … FS .`` as 2-byte GB.

    A character the printer's font lacks (outside GBK's 2-byte range, or outside
    GB2312 with ``charset="gb2312"``) is replaced by ``?``: never sent as 4 bytes
    (the printers would print two garbage glyphs). :data:`SUBSTITUTES` first turns
    a few into look-alikes that have a code. Control characters become spaces so
    text can never smuggle a command (an ``ESC`` or a ``DLE EOT``) onto the wire.
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
        code = gb_code(ch, charset)
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

    def __init__(self, charset: Charset = "gbk") -> None:
        self.out = bytearray()
        self.replaced: dict[str, list[str]] = {}
        self.charset: Charset = charset

    def raw(self, b: bytes) -> None:
        self.out += b

    def line(self, text: str, *, what: str) -> None:
        enc = encode_text(text, self.charset)
        if enc.replaced:
            self.replaced.setdefault(what, []).extend(enc.replaced)
        self.out += enc.data
        self.out.append(LF)


def _log_replaced(number: str, replaced: Mapping[str, list[str]]) -> None:
    for what, chars in replaced.items():
        if what == "masked_name":
            # A rare surname character is personal data: say only how many.
            log.warning("ticket %s: %d character(s) of the name line are not in the "
                        "printer's font and print as '?'", number, len(chars))
        else:
            log.warning("ticket %s: %s has character(s) not in the printer's font printed "
                        "as '?': %s",
                        number, what, " ".join(f"U+{ord(c):04X}" for c in chars))


def build_ticket(t: TicketPrint, *, qr_module: int = 6, feed_dots: int = 80,
                 model: ModelName = "epson", charset: Charset = "gbk") -> bytes:
    """The ticket of PRINTER.md "A ticket", under 600 bytes for a 60-character URL."""
    b = _Builder(charset)
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
    b.raw(qr(t.qr_url.encode("utf-8"), module=qr_module, model=model))
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


def build_receipt(r: Receipt, *, qr_module: int = 6, feed_dots: int = 80,
                  model: ModelName = "epson", charset: Charset = "gbk") -> bytes:
    """A receipt in the ticket's style: centred title, then left-aligned lines."""
    b = _Builder(charset)
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
        b.raw(qr(r.qr.encode("utf-8"), module=qr_module, model=model))
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
                    feed_dots: int = 80, model: ModelName = "epson",
                    charset: Charset = "gbk") -> bytes:
    """A page that shows at a glance whether sizes, bold, alignment, hanzi and QR work."""
    b = _Builder(charset)
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
    b.raw(qr(b"hall-edge printer test", module=qr_module, model=model))
    b.raw(bytes([LF]))
    b.raw(feed_and_cut(feed_dots))
    return bytes(b.out)
