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


def _dot_mask(w: int, h: int) -> Image.Image:
    """A round-LED mask for ``w``×``h`` dots: one circle per dot cell."""
    cell = Image.new("L", (PITCH, PITCH), 0)
    r = PITCH * 0.42
    c = PITCH / 2
    ImageDraw.Draw(cell).ellipse([c - r - 0.5, c - r - 0.5, c + r - 0.5, c + r - 0.5],
                                 fill=255)
    return _tiled(cell.tobytes(), w, h)


@lru_cache(maxsize=16)
def _tiled(cell: bytes, w: int, h: int) -> Image.Image:
    tile = Image.frombytes("L", (PITCH, PITCH), cell)
    out = Image.new("L", (w * PITCH, h * PITCH), 0)
    row = Image.new("L", (w * PITCH, PITCH), 0)
    for x in range(w):
        row.paste(tile, (x * PITCH, 0))
    for y in range(h):
        out.paste(row, (0, y * PITCH))
    return out


def _leds(dots: Image.Image) -> Image.Image:
    """Dot colours (one pixel per LED, black = unlit) drawn as round LEDs on black.

    Whole-image operations only: the simulators draw a board in a few milliseconds,
    so a PNG being written does not hold up the bytes of the next frame (the
    benchmarks run the simulators in the agent's process)."""
    w, h = dots.size
    lit_mask = dots.convert("L").point(lambda v: 255 if v else 0)
    base = Image.composite(dots, Image.new("RGB", (w, h), UNLIT), lit_mask)
    big = base.resize((w * PITCH, h * PITCH), Image.Resampling.NEAREST)
    return Image.composite(big, Image.new("RGB", big.size, (0, 0, 0)), _dot_mask(w, h))


def _framed(leds: Image.Image, title: str) -> Image.Image:
    margin = 3 * PITCH
    img = Image.new("RGB", (leds.width + 2 * margin, leds.height + 2 * margin), FRAME)
    d = ImageDraw.Draw(img)
    d.rectangle([margin - PITCH, margin - PITCH, margin + leds.width + PITCH - 1,
                 margin + leds.height + PITCH - 1], fill=(0, 0, 0))
    img.paste(leds, (margin, margin))
    if title:
        d.text((margin, 2), title, font=_font(12), fill=(120, 120, 120))
    return img


def render_board(lines: list[tuple[str, int, int]], columns: int, *,
                 title: str = "") -> Image.Image:
    """``lines``: (text, effect, colour) per line. Scrolling lines are drawn at their
    start; flashing ones lit (a still image cannot blink)."""
    dots_w = columns * DOTS_PER_COLUMN
    dots = Image.new("RGB", (dots_w, max(1, len(lines)) * DOTS_PER_LINE), (0, 0, 0))
    for row, (text, _effect, colour) in enumerate(lines):
        bm = _line_bitmap(text, columns).convert("1")
        lit = Image.new("RGB", bm.size, COLOURS.get(colour, COLOURS[1]))
        dots.paste(lit, (0, row * DOTS_PER_LINE), bm)
    return _framed(_leds(dots), title)


DOT_COLOURS = {1: COLOURS[1], 2: COLOURS[2], 3: COLOURS[3]}


def render_dots(rows: list[list[int]], *, title: str = "", on: bool = True) -> Image.Image:
    """A dot-matrix controller's screen (an ONBON board): ``rows[y][x]`` colour bits
    (1 red, 2 green, 3 both), drawn as :func:`render_board` draws a board."""
    h = max(1, len(rows))
    w = max(1, len(rows[0]) if rows else 1)
    black = (0, 0, 0)
    data = b"".join(bytes(DOT_COLOURS.get(c, black) if on else black) for r in rows for c in r)
    dots = Image.frombytes("RGB", (w, h), data) if rows else Image.new("RGB", (w, h))
    return _framed(_leds(dots), title)
