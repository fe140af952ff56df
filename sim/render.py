"""Draw a decoded ticket the way an 80 mm thermal printer puts it on paper.

576 dots wide (72 mm printable at 203 dpi), ESC/POS font A cells (12×24 dots
half-width, 24×24 hanzi) multiplied by ``GS !``, the printer's own line wrap,
and the QR code as a real symbol so tests can scan it back with pyzbar.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from drivers.escpos_codec import CELL_H, FULL_CELL_W, HALF_CELL_W, PAPER_DOTS
from drivers.escpos_decode import DecodedTicket, Line, QrBlock

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

LINE_SPACING = 30  # ESC/POS default line feed, in dots (≈3.75 mm)
LINE_GAP = 6  # what that default leaves between 24-dot rows; kept for taller rows
TOP_MARGIN = 24  # paper before the first line: where the last cut left off
WHITE, BLACK = 255, 0

Font = ImageFont.FreeTypeFont


@lru_cache(maxsize=32)
def _font(path: str, px: int) -> Font:
    return ImageFont.truetype(path, px)


def _cell_width(ch: str) -> int:
    # In Chinese mode every 2-byte GB character takes a full cell, punctuation
    # included (，：×); only single-byte ASCII is half-width.
    return HALF_CELL_W if ord(ch) < 0x80 else FULL_CELL_W


@lru_cache(maxsize=4096)
def _glyph(path: str, ch: str, w: int, h: int, bold: bool) -> Image.Image:
    """One character cell (black on white) at magnification ``w``×``h``.

    Drawn at height ``h`` and then stretched sideways when ``w != h``, as the
    printer stretches its dot patterns.
    """
    base_w = _cell_width(ch)
    cell = Image.new("L", (base_w * h, CELL_H * h), WHITE)
    d = ImageDraw.Draw(cell)
    px = CELL_H * h
    font = _font(path, int(px * 0.92))
    # Baseline a little above the cell bottom leaves room for descenders (g, y)
    # and lines hanzi up with Latin the way printer fonts do.
    x, y = cell.width / 2, px * 0.84
    d.text((x, y), ch, font=font, fill=BLACK, anchor="ms")
    if bold:  # ESC E: double strike shifted one dot
        d.text((x + max(1, h // 2), y), ch, font=font, fill=BLACK, anchor="ms")
    if w != h:
        cell = cell.resize((base_w * w, CELL_H * h), Image.Resampling.LANCZOS)
    return cell


def _line_rows(line: Line) -> list[list[tuple[str, int, int, bool]]]:
    """Split a line into printed rows: the printer wraps at the paper edge."""
    rows: list[list[tuple[str, int, int, bool]]] = [[]]
    x = 0
    for span in line.spans:
        for ch in span.text:
            cw = _cell_width(ch) * span.width
            if x + cw > PAPER_DOTS and rows[-1]:
                rows.append([])
                x = 0
            rows[-1].append((ch, span.width, span.height, span.bold))
            x += cw
    return rows


def _render_line(line: Line, font_path: str) -> Image.Image:
    parts: list[Image.Image] = []
    for row in _line_rows(line):
        if not row:
            parts.append(Image.new("L", (PAPER_DOTS, LINE_SPACING), WHITE))
            continue
        height = max(CELL_H * h for _, _, h, _ in row)
        img = Image.new("L", (PAPER_DOTS, max(LINE_SPACING, height + LINE_GAP)), WHITE)
        glyphs = [_glyph(font_path, ch, w, h, b) for ch, w, h, b in row]
        total = sum(g.width for g in glyphs)
        x = [0, (PAPER_DOTS - total) // 2, PAPER_DOTS - total][line.align]
        for g in glyphs:
            # Characters of one row share a baseline, as on paper.
            img.paste(g, (x, height - g.height))
            x += g.width
        parts.append(img)
    return _stack(parts)


def _render_qr(block: QrBlock) -> Image.Image:
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M,
                      box_size=block.module, border=0)
    q.add_data(block.data)
    q.make(fit=True)
    sym = q.make_image(fill_color="black", back_color="white").get_image().convert("L")
    if sym.width > PAPER_DOTS:  # a printer would not print it at all
        return Image.new("L", (PAPER_DOTS, LINE_SPACING), WHITE)
    img = Image.new("L", (PAPER_DOTS, sym.height), WHITE)
    x = [0, (PAPER_DOTS - sym.width) // 2, PAPER_DOTS - sym.width][block.align]
    img.paste(sym, (x, 0))
    return img


def _stack(parts: list[Image.Image]) -> Image.Image:
    out = Image.new("L", (PAPER_DOTS, max(1, sum(p.height for p in parts))), WHITE)
    y = 0
    for p in parts:
        out.paste(p, (0, y))
        y += p.height
    return out


def render_ticket(ticket: DecodedTicket, *, font_path: Path = FONT_PATH) -> Image.Image:
    """The ticket as a 576-dot-wide greyscale image, ending where the cutter cut."""
    parts = [Image.new("L", (PAPER_DOTS, TOP_MARGIN), WHITE)]
    for block in ticket.blocks:
        if isinstance(block, QrBlock):
            parts.append(_render_qr(block))
        else:
            parts.append(_render_line(block, str(font_path)))
    if ticket.cut_feed:
        parts.append(Image.new("L", (PAPER_DOTS, ticket.cut_feed), WHITE))
    return _stack(parts)
