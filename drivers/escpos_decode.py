"""ESC/POS, the printer's side: bytes back into operations and tickets.

What the simulator (sim/printer.py) and the tests use to read the host's bytes,
with the same :data:`~drivers.escpos_codec.COMMANDS` table the host encodes with
(drivers/escpos_codec.py), so a command cannot be encoded one way and decoded
another. Pure, no I/O; it never raises on input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from drivers.escpos_codec import (
    COMMANDS,
    DLE,
    ESC,
    FS,
    GS,
    LF,
    QR_CN,
    QR_FN_EC,
    QR_FN_MODEL,
    QR_FN_MODULE,
    QR_FN_PRINT,
    QR_FN_STORE,
    Command,
)

OpKind = Literal[
    "text", "newline", "init", "align", "bold", "size", "chinese_on", "chinese_off",
    "qr_model", "qr_module", "qr_ec", "qr_store", "qr_print", "cut", "status_query", "unknown",
    "module_width",
]
#: The character set of the printer's font: ``gb2312`` fonts print garbage for a
#: GBK code outside GB2312 (decoded as U+FFFD).
Font = Literal["gbk", "gb2312"]


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

    def __init__(self, *, chinese_default: bool = True, font: Font = "gbk") -> None:
        self._chinese_default = chinese_default
        self.font: Font = font
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
        self.module_width = 3  # GS w: the module of SNBC's GS k QR, in dots

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
        pair = bytes(buf[i:i + 2])
        try:
            if self.font == "gb2312":
                pair.decode("gb2312")  # not in the font: garbage on paper
            return pair.decode("gb18030"), 2
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
            if c.name == "module_width":
                self.module_width = n
                return Op("module_width", value=n, nbytes=nb), end
            return Op("status_query", value=n, nbytes=nb), end
        if c.args == "v r nL nH d":  # SNBC GS k QR: printed at once
            if j + 4 > len(buf):
                return None
            length = buf[j + 2] | (buf[j + 3] << 8)
            end = j + 4 + length
            if end > len(buf):
                return None
            data = bytes(buf[j + 4:end])
            if not data:
                return Op("unknown", nbytes=end - i), end
            return Op("qr_print", value=self.module_width, data=data, nbytes=end - i), end
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


def decode_tickets(data: bytes, *, font: Font = "gbk") -> list[DecodedTicket]:
    """Every ticket in ``data`` (a convenience for tests and spool files)."""
    return TicketAssembler().feed(EscPosDecoder(font=font).feed(data))
