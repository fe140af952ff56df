"""ESC/POS for the hall's ticket printers: one command table, both directions.

Pure functions, no I/O (STYLE.md: a driver is a codec plus a transport). The
host side builds tickets (:func:`build_ticket`) and reads DLE EOT answers
(:func:`parse_status`, :class:`PrinterStatus`); the device side
(:class:`EscPosDecoder`, :class:`TicketAssembler`) is what the simulator and the
tests use to read those bytes back. Both sides read :data:`COMMANDS`, so a
command cannot be encoded one way and decoded another.

Every constant below follows /work/shared/protocols/PRINTER.md (★), cited by
section. We build the bytes ourselves instead of using python-escpos' text and
QR helpers: its "magic" encoder picks code pages per character and mangles
full-width punctuation (，：) on Chinese printers, and its ``qr()`` can fall back
to a raster image, which is ~5,700 bytes instead of ~100.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    b.raw(size(1, 1) + bold(False))
    if t.priority:
        b.raw(bold(True) + size(2, 2))
        b.line("【优先】", what="priority")
        b.raw(size(1, 1) + bold(False))
    b.raw(bold(True) + size(4, 4))
    b.line(t.number, what="number")
    # "How long will I wait" in double height: read from arm's length by elderly eyes.
    b.raw(size(1, 2) + bold(False))
    for text in wait_lines(t.waiting_ahead, t.est_wait_s):
        b.line(text, what="wait")
    b.raw(size(1, 1))
    b.line(f"取号时间 {t.issued_at:%Y-%m-%d %H:%M}", what="issued_at")
    if t.masked_name:
        b.line(f"姓名：{t.masked_name}", what="masked_name")
    # A blank line each side of the QR code gives the scanner its quiet zone.
    b.raw(bytes([LF]))
    b.raw(qr(t.qr_url.encode("utf-8"), module=qr_module))
    b.raw(bytes([LF]))
    b.line("扫码查看排队进度", what="qr_caption")
    b.line(t.notice, what="notice")
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


# --------------------------------------------------------------------------- device side

OpKind = Literal[
    "text", "newline", "init", "align", "bold", "size", "chinese_on", "chinese_off",
    "qr_model", "qr_module", "qr_ec", "qr_store", "qr_print", "cut", "status_query", "unknown",
]


@dataclass(frozen=True, slots=True)
class TextStyle:
    width: int = 1
    height: int = 1
    bold: bool = False
    align: int = 0  # 0 left, 1 centre, 2 right


@dataclass(frozen=True, slots=True)
class Op:
    """One operation the printer carries out, as :class:`EscPosDecoder` read it."""

    kind: OpKind
    value: int = 0  # align/bold/size/qr_module/cut feed/status n
    text: str = ""
    data: bytes = b""  # qr_store / qr_print data; the skipped bytes of "unknown"
    style: TextStyle = TextStyle()  # for "text": the style it prints in
    nbytes: int = 0  # how many wire bytes this op took


class EscPosDecoder:
    """The printer's side of :data:`COMMANDS`, fed bytes as they arrive.

    It never raises on input: bytes it does not understand come out as
    ``unknown`` ops and are skipped, so a simulator keeps running whatever the
    host sends. A command split across :meth:`feed` calls waits in a buffer.
    Like a real printer it starts in Chinese mode (PRINTER.md, first paragraph).
    ``10 04 n`` is recognised between commands only; PRINTER.md forbids sending
    it inside another one, and none of our data bytes (ASCII, GB pairs) is 0x10.
    """

    def __init__(self, *, chinese_default: bool = True) -> None:
        self._chinese_default = chinese_default
        self._buf = bytearray()
        self.reset()

    def reset(self) -> None:
        """What ``ESC @`` does: back to power-on state (the buffer is kept)."""
        self.style = TextStyle()
        self.chinese = self._chinese_default
        self.qr_data = b""
        self.qr_module = 3
        self.qr_model = 2
        self.qr_ec = 0x30

    @property
    def pending(self) -> int:
        """Bytes held back because they may be the start of a command or a hanzi."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Op]:
        self._buf += data
        ops: list[Op] = []
        i = 0
        buf = self._buf
        text: list[str] = []
        text_start = 0

        def flush_text(end: int) -> None:
            if text:
                ops.append(Op("text", text="".join(text), style=self.style,
                              nbytes=end - text_start))
                text.clear()

        while i < len(buf):
            b = buf[i]
            if b in (ESC, GS, FS, DLE):
                flush_text(i)
                res = self._command(buf, i)
                if res is None:
                    break  # incomplete: wait for more bytes
                op, i = res
                ops.append(op)
                text_start = i
                continue
            if b == LF:
                flush_text(i)
                ops.append(Op("newline", nbytes=1))
                i += 1
                text_start = i
                continue
            ch, n = self._char(buf, i)
            if n == 0:
                break  # a lead byte without its trail byte yet
            if ch is None:
                flush_text(i)
                ops.append(Op("unknown", data=bytes(buf[i:i + n]), nbytes=n))
                i += n
                text_start = i
                continue
            if not text:
                text_start = i
            text.append(ch)
            i += n
        flush_text(i)
        del buf[:i]
        return ops

    def _char(self, buf: bytearray, i: int) -> tuple[str | None, int]:
        """(character, bytes used); (None, n) for n bytes of nonsense; (_, 0) to wait."""
        b = buf[i]
        if 0x20 <= b < 0x7F:
            return chr(b), 1
        if b < 0x20 or b == 0x7F:
            return None, 1
        if not self.chinese:
            return bytes([b]).decode("cp437"), 1  # code page 0, the ESC/POS default
        if not 0x81 <= b <= 0xFE:
            return None, 1
        if i + 1 >= len(buf):
            return None, 0
        t = buf[i + 1]
        if not (0x40 <= t <= 0xFE and t != 0x7F):
            return None, 1  # not a GBK pair: drop the lead byte, read on from the next
        try:
            return bytes(buf[i:i + 2]).decode("gb18030"), 2
        except UnicodeDecodeError:
            return "\ufffd", 2

    def _command(self, buf: bytearray, i: int) -> tuple[Op, int] | None:
        avail = bytes(buf[i:i + 3])
        for c in COMMANDS:
            p = c.prefix
            if avail[:len(p)] == p:
                return self._args(c, buf, i)
            if len(avail) < len(p) and p.startswith(avail):
                return None  # could still become this command
        # Not in the table: skip the introducer and the function byte (or just
        # DLE, which is also an ordinary data byte on some commands).
        if buf[i] == DLE:
            return Op("unknown", data=bytes(buf[i:i + 1]), nbytes=1), i + 1
        if len(avail) < 2:
            return None
        return Op("unknown", data=bytes(buf[i:i + 2]), nbytes=2), i + 2

    def _args(self, c: Command, buf: bytearray, i: int) -> tuple[Op, int] | None:
        j = i + len(c.prefix)
        if c.args == "":
            end = j
            if c.name == "init":
                self.reset()
                return Op("init", nbytes=end - i), end
            self.chinese = c.name == "chinese_on"
            return Op("chinese_on" if self.chinese else "chinese_off", nbytes=end - i), end
        if c.args == "n":
            if j >= len(buf):
                return None
            n = buf[j]
            end = j + 1
            nb = end - i
            if c.name == "align":
                a = n & 0x0F if n in (0, 1, 2, 0x30, 0x31, 0x32) else self.style.align
                self.style = replace(self.style, align=a if a <= 2 else 0)
                return Op("align", value=n, nbytes=nb), end
            if c.name == "bold":
                self.style = replace(self.style, bold=bool(n & 1))
                return Op("bold", value=n, nbytes=nb), end
            if c.name == "size":
                w, h = (n >> 4) + 1, (n & 0x0F) + 1
                if w <= 8 and h <= 8:
                    self.style = replace(self.style, width=w, height=h)
                return Op("size", value=n, nbytes=nb), end
            if c.name == "cut":
                return Op("cut", value=n, nbytes=nb), end
            return Op("status_query", value=n, nbytes=nb), end
        # "pL pH d": GS ( k
        if j + 2 > len(buf):
            return None
        length = buf[j] | (buf[j + 1] << 8)
        end = j + 2 + length
        if end > len(buf):
            return None
        body = bytes(buf[j + 2:end])
        return self._qr(body, end - i), end

    def _qr(self, body: bytes, nb: int) -> Op:
        if len(body) < 3 or body[0] != QR_CN:
            return Op("unknown", data=body, nbytes=nb)
        fn, arg = body[1], body[2]
        if fn == QR_FN_MODEL:
            self.qr_model = arg - 0x30
            return Op("qr_model", value=self.qr_model, nbytes=nb)
        if fn == QR_FN_MODULE:
            self.qr_module = arg
            return Op("qr_module", value=arg, nbytes=nb)
        if fn == QR_FN_EC:
            self.qr_ec = arg
            return Op("qr_ec", value=arg, nbytes=nb)
        if fn == QR_FN_STORE:
            self.qr_data = body[3:]
            return Op("qr_store", data=self.qr_data, nbytes=nb)
        if fn == QR_FN_PRINT:
            return Op("qr_print", value=self.qr_module, data=self.qr_data, nbytes=nb)
        return Op("unknown", data=body, nbytes=nb)


# --------------------------------------------------------------------------- assembled tickets


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    width: int
    height: int
    bold: bool


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line (up to LF); the printer wraps it if it is wider than the paper."""

    spans: tuple[Span, ...]
    align: int  # 0 left, 1 centre, 2 right

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)

    @property
    def height(self) -> int:
        return max((s.height for s in self.spans), default=1)

    @property
    def width(self) -> int:
        return max((s.width for s in self.spans), default=1)

    @property
    def bold(self) -> bool:
        return any(s.bold for s in self.spans)


@dataclass(frozen=True, slots=True)
class QrBlock:
    data: bytes
    module: int
    align: int

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


_NUMBER_RE = re.compile(r"^[A-Z]{0,2}\d{1,4}$")


@dataclass(frozen=True, slots=True)
class DecodedTicket:
    """One ticket as the printer put it on paper, from ``ESC @`` to the cut."""

    blocks: tuple[Line | QrBlock, ...]
    cut_feed: int | None  # dots fed before the cut; None if never cut
    raw_bytes: int
    unknown: int = 0  # ops the decoder did not understand

    @property
    def lines(self) -> list[Line]:
        return [b for b in self.blocks if isinstance(b, Line)]

    @property
    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines]

    @property
    def qr_data(self) -> list[str]:
        return [b.text for b in self.blocks if isinstance(b, QrBlock)]

    @property
    def text(self) -> str:
        """All printed lines, one per row of text, as a person would read them."""
        return "\n".join(self.texts)

    @property
    def qr(self) -> str | None:
        """The (first) QR code's content, or None."""
        q = self.qr_data
        return q[0] if q else None

    @property
    def number(self) -> str | None:
        """The queue number: the biggest line that looks like ``A023``."""
        best: Line | None = None
        for ln in self.lines:
            if _NUMBER_RE.match(ln.text.strip()) and (
                    best is None or ln.width * ln.height > best.width * best.height):
                best = ln
        return best.text.strip() if best else None


class TicketAssembler:
    """Turns decoded ops into :class:`DecodedTicket` objects, one per cut."""

    def __init__(self) -> None:
        self._blocks: list[Line | QrBlock] = []
        self._spans: list[Span] = []
        self._align: int | None = None  # ESC a counts at the start of a line only
        self._cur_align = 0
        self._bytes = 0
        self._unknown = 0

    def feed(self, ops: Iterable[Op]) -> list[DecodedTicket]:
        done: list[DecodedTicket] = []
        for op in ops:
            self._bytes += op.nbytes
            if op.kind == "init":
                self._blocks.clear()
                self._spans.clear()
                self._align = None
                self._cur_align = 0
                self._bytes = op.nbytes
                self._unknown = 0
            elif op.kind == "text":
                if not self._spans:
                    self._align = op.style.align
                self._cur_align = op.style.align
                st = op.style
                last = self._spans[-1] if self._spans else None
                if last and (last.width, last.height, last.bold) == (st.width, st.height,
                                                                     st.bold):
                    # "前面还有" + " 12 " + "人等候" is one run to whoever reads it
                    self._spans[-1] = Span(last.text + op.text, st.width, st.height, st.bold)
                else:
                    self._spans.append(Span(op.text, st.width, st.height, st.bold))
            elif op.kind == "align":
                self._cur_align = op.value & 0x0F if (op.value & 0x0F) <= 2 else 0
            elif op.kind == "newline":
                self._end_line()
            elif op.kind == "qr_print" and op.data:
                self._end_line(if_any=True)
                self._blocks.append(QrBlock(op.data, max(1, op.value), self._cur_align))
            elif op.kind == "cut":
                self._end_line(if_any=True)
                done.append(DecodedTicket(tuple(self._blocks), op.value, self._bytes,
                                          self._unknown))
                self._blocks.clear()
                self._bytes = 0
                self._unknown = 0
            elif op.kind == "unknown":
                self._unknown += 1
        return done

    def _end_line(self, *, if_any: bool = False) -> None:
        if if_any and not self._spans:
            return
        align = self._align if self._align is not None else self._cur_align
        self._blocks.append(Line(tuple(self._spans), align))
        self._spans.clear()
        self._align = None


def decode_tickets(data: bytes) -> list[DecodedTicket]:
    """Every ticket in ``data`` (a convenience for tests and spool files)."""
    return TicketAssembler().feed(EscPosDecoder().feed(data))
