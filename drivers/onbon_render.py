"""Text to dots for dot-matrix controllers (the ONBON BX-5E/6E take pixels, not text).

A line is 16 dots high, the row of the common 16×16 hanzi font of these boards;
WenQuanYi Micro Hei drawn at 15 px and cut at a fixed threshold stays legible
there (sim/led.py draws the hall-edge boards the same way). A hanzi takes 16
dots, ASCII 8, so a line of ``width`` dots holds ``width // 8`` half-width
columns, the unit drivers/rs485.py's ``text_width`` counts in.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from drivers.errors import ConfigError
from drivers.rs485 import text_width

LINE_DOTS = 16
CELL = 8  # dots per half-width column
FONT_PX = 15
THRESHOLD = 110
FONT_CANDIDATES = (
    Path(__file__).resolve().parent.parent / "sim" / "fonts" / "wqy-microhei.ttc",
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc"),
)

Rows = list[list[int]]


def font_path() -> Path:
    env = os.environ.get("HALL_EDGE_BOARD_FONT")
    for p in ((Path(env),) if env else ()) + FONT_CANDIDATES:
        if p.is_file():
            return p
    raise ConfigError("no CJK font for the dot-matrix boards: install fonts-wqy-microhei "
                      "(apt-get install fonts-wqy-microhei) or set HALL_EDGE_BOARD_FONT")


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), FONT_PX)


@lru_cache(maxsize=4096)
def _glyph(ch: str) -> tuple[int, tuple[tuple[int, ...], ...]]:
    w = CELL if text_width(ch) == 1 else 2 * CELL
    img = Image.new("L", (w, LINE_DOTS), 0)
    if w == CELL:
        # A wide Latin letter (M, W) is squeezed into its 8 dots rather than cut off.
        wide = Image.new("L", (2 * CELL, LINE_DOTS), 0)
        ImageDraw.Draw(wide).text((CELL, LINE_DOTS - 2), ch, font=_font(), fill=255,
                                  anchor="ms")
        box = wide.getbbox()
        if box is not None:
            glyph = wide.crop((box[0], 0, box[2], LINE_DOTS))
            if glyph.width > CELL - 1:
                glyph = glyph.resize((CELL - 1, LINE_DOTS), Image.Resampling.LANCZOS)
            img.paste(glyph, ((CELL - glyph.width) // 2, 0))
    else:
        ImageDraw.Draw(img).text((w / 2, LINE_DOTS - 2), ch, font=_font(), fill=255,
                                 anchor="ms")
    px = img.load()
    assert px is not None
    return w, tuple(tuple(1 if int(px[x, y]) > THRESHOLD else 0  # type: ignore[arg-type]
                          for x in range(w)) for y in range(LINE_DOTS))


def split_to_fit(text: str, width: int) -> list[str]:
    """``text`` cut into pieces of at most ``width`` dots, at spaces where it can."""
    cols = max(1, width // CELL)
    if text_width(text) <= cols:
        return [text]
    out: list[str] = []
    cur = ""
    for word in text.split(" "):
        cand = f"{cur} {word}" if cur else word
        if text_width(cand) <= cols:
            cur = cand
            continue
        if cur:
            out.append(cur)
        cur = ""
        for ch in word:
            if text_width(cur + ch) > cols:
                out.append(cur)
                cur = ""
            cur += ch
    if cur:
        out.append(cur)
    return out or [""]


def render_line(text: str, width: int, colour: int, *, height: int = LINE_DOTS,
                centre: bool = False) -> Rows:
    """One line of text as ``height`` rows of ``width`` colour values (0 dark)."""
    rows = [[0] * width for _ in range(height)]
    glyphs = [_glyph(ch) for ch in text]
    total = sum(w for w, _ in glyphs)
    x = max(0, (width - total) // 2) if centre else 0
    top = max(0, (height - LINE_DOTS) // 2)
    for w, dots in glyphs:
        if x + w > width:
            break
        for y in range(min(LINE_DOTS, height)):
            r, d = rows[top + y], dots[y]
            for dx in range(w):
                if d[dx]:
                    r[x + dx] = colour
        x += w
    return rows
