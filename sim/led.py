"""Render an LED calling board's lines as a PNG that looks like the real matrix.

Each half-width column is 8 dots wide and each line 16 dots high (the common
16×16 hanzi font of these boards); every lit dot is a round red, green or yellow
LED on black, with unlit dots faintly visible, so a screenshot reads like a photo
of the board and shows at once whether text fits its columns.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DOTS_PER_COLUMN = 8
DOTS_PER_LINE = 16
PITCH = 6  # pixels per dot in the PNG
COLOURS = {1: (255, 40, 30), 2: (40, 235, 60), 3: (255, 200, 20)}
UNLIT = (38, 12, 10)
FRAME = (24, 24, 24)


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), px)


def _line_bitmap(text: str, columns: int) -> Image.Image:
    """The line's dots (mode "1"): the text drawn at 16 dots high, clipped like the board."""
    w, h = columns * DOTS_PER_COLUMN, DOTS_PER_LINE
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    x = 0
    font = _font(15)
    for ch in text:
        cw = DOTS_PER_COLUMN if ord(ch) < 0x80 else 2 * DOTS_PER_COLUMN
        if x + cw > w:
            break
        d.text((x + cw / 2, h - 2), ch, font=font, fill=255, anchor="ms")
        x += cw
    return img.point(lambda v: 255 if v > 110 else 0)


def render_board(lines: list[tuple[str, int, int]], columns: int, *,
                 title: str = "") -> Image.Image:
    """``lines``: (text, effect, colour) per line. Scrolling lines are drawn at their
    start; flashing ones lit (a still image cannot blink)."""
    rows = len(lines)
    dots_w, dots_h = columns * DOTS_PER_COLUMN, rows * DOTS_PER_LINE
    margin = 3 * PITCH
    title_h = 0
    img = Image.new("RGB", (dots_w * PITCH + 2 * margin,
                            dots_h * PITCH + 2 * margin + title_h), FRAME)
    d = ImageDraw.Draw(img)
    d.rectangle([margin - PITCH, margin - PITCH, margin + dots_w * PITCH + PITCH - 1,
                 margin + dots_h * PITCH + PITCH - 1], fill=(0, 0, 0))
    r = PITCH * 0.42
    for row, (text, _effect, colour) in enumerate(lines):
        bm = _line_bitmap(text, columns)
        px = bm.load()
        lit = COLOURS.get(colour, COLOURS[1])
        oy = margin + row * DOTS_PER_LINE * PITCH
        for y in range(DOTS_PER_LINE):
            for x in range(dots_w):
                cx = margin + x * PITCH + PITCH / 2
                cy = oy + y * PITCH + PITCH / 2
                on = px[x, y] if px is not None else 0
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=lit if on else UNLIT)
    if title:
        small = _font(12)
        d.text((margin, 2), title, font=small, fill=(120, 120, 120))
    return img


DOT_COLOURS = {1: COLOURS[1], 2: COLOURS[2], 3: COLOURS[3]}


def render_dots(rows: list[list[int]], *, title: str = "", on: bool = True) -> Image.Image:
    """A dot-matrix controller's screen (an ONBON board): ``rows[y][x]`` colour bits
    (1 red, 2 green, 3 both), drawn dot for dot as :func:`render_board` draws text."""
    h = len(rows)
    w = len(rows[0]) if rows else 0
    margin = 3 * PITCH
    img = Image.new("RGB", (w * PITCH + 2 * margin, h * PITCH + 2 * margin), FRAME)
    d = ImageDraw.Draw(img)
    d.rectangle([margin - PITCH, margin - PITCH, margin + w * PITCH + PITCH - 1,
                 margin + h * PITCH + PITCH - 1], fill=(0, 0, 0))
    r = PITCH * 0.42
    for y, row in enumerate(rows):
        cy = margin + y * PITCH + PITCH / 2
        for x, c in enumerate(row):
            cx = margin + x * PITCH + PITCH / 2
            fill = DOT_COLOURS.get(c, UNLIT) if on else UNLIT
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    if title:
        d.text((margin, 2), title, font=_font(12), fill=(120, 120, 120))
    return img
