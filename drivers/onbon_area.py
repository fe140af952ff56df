"""ONBON dynamic areas (§5.4), brightness (§5.5.2), BX-6 speech and the dot encodings
(appendix 2): the commands' bytes, built and parsed. Pure, like drivers/onbon.py,
whose frames carry them.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.onbon import Cmd, DisplayMode, Group, Model, OnbonCodecError, Request


def brightness(levels: Sequence[int]) -> bytes:
    """§5.5.2: one brightness 0…15 per half hour from 00:00 (48 values), timed mode."""
    if len(levels) != 48 or any(not 0 <= v <= 15 for v in levels):
        raise OnbonCodecError("the brightness table has 48 half-hours of 0..15")
    # The DataLen field (0x31 = 49) counts the mode byte and the 48 values.
    return Request(Group.CONTROL, Cmd.BRIGHTNESS,
                   (49).to_bytes(2, "little") + bytes([0x01, *levels])).encode()


def parse_brightness(req: Request) -> list[int]:
    b = req.body
    if len(b) != 51 or b[2] not in (0, 1):
        raise OnbonCodecError(f"brightness request of {len(b)} bytes, mode "
                              f"{b[2] if len(b) > 2 else '?'}: want 51 bytes, mode 0 or 1")
    levels = list(b[3:51])
    return [levels[0]] * 48 if b[2] == 0 else levels


def delete_areas(ids: Sequence[int] | None = None) -> bytes:
    """§5.4.2: the areas ``ids``, or every area (``None``, ``FF``)."""
    body = b"\x00\x00" + (b"\xff" if ids is None else bytes([len(ids), *ids]))
    return Request(Group.AREA, Cmd.AREA_DELETE, body).encode()


def parse_delete(req: Request) -> list[int] | None:
    b = req.body
    if len(b) < 3:
        raise OnbonCodecError("delete request without a count")
    if b[2] == 0xFF:
        return None
    if len(b) != 3 + b[2]:
        raise OnbonCodecError(f"delete request names {b[2]} areas, holds {len(b) - 3}")
    return list(b[3:])


@dataclass(frozen=True, slots=True)
class Page:
    bitmap: bytes  # PicPageData, encoded for the model (see encode_pixels)
    mode: int = DisplayMode.STATIC
    stay_10ms: int = 500
    speed: int = 0  # 0 is the fastest speed grade
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class Voice:
    """The BX-6's speech (6th §5.4.1 Sound*, §5.4.4): what to say and how."""

    text: str
    person: int = 0  # 0..5
    volume: int = 5  # 0..10
    speed: int = 5  # 0..10
    replay: int = 0  # spoken 1 + replay times


@dataclass(frozen=True, slots=True)
class Area:
    """One dynamic area (§5.4.1): a rectangle of the screen and its pages."""

    area_id: int
    x: int
    y: int
    width: int
    height: int
    pages: tuple[Page, ...]
    timeout_s: int = 0
    run_mode: int = 0  # cycle through the pages
    imme_play: int = 1  # dynamic areas only (no stored programmes on a calling board)
    voice: Voice | None = None  # BX-6 only


def _area_head(a: Area) -> bytes:
    if not a.pages:
        raise OnbonCodecError("an area needs at least one page (PageNum is never 0)")
    return (struct.pack("<BBHBH", a.area_id, a.run_mode, a.timeout_s, 0, 0)
            + bytes([a.imme_play]) + bytes(4)
            + struct.pack("<BHHHH", 0x10, a.x, a.y, a.width, a.height)
            + b"\x00")  # AreaFFlag 0: no frame, the rest of the frame fields are not sent


VOICE_ENCODING = 0x01  # GBK (6th §5.4.1 SoundDataMode)


def _voice_params(v: Voice) -> bytes:
    return (bytes([v.person, v.volume, v.speed, VOICE_ENCODING])
            + struct.pack("<II", v.replay, 0))


def _voice_tail(v: Voice, reserved_len_size: int) -> bytes:
    text = v.text.encode("gbk")
    # Soundnumdeal 1 (digits read as a number: "A023" → A 零 二 三), languages 1 (Chinese),
    # word style 0 (automatic).
    return ((3).to_bytes(reserved_len_size, "little") + bytes([1, 1, 0])
            + len(text).to_bytes(4, "little") + text)


def update_area(model: Model, a: Area) -> bytes:
    """§5.4.1: one area's data and pages, in the layout of ``model``."""
    for v in (a.voice,):
        if v is not None:
            if model != Model.BX6:
                raise OnbonCodecError("only a BX-6 controller speaks")
            try:
                v.text.encode("gbk")
            except UnicodeEncodeError as e:
                raise OnbonCodecError(f"{v.text!r} cannot be spoken: {e.reason}") from None
    head = _area_head(a)
    pages = struct.pack("<H", len(a.pages))
    if model == Model.BX5:
        for p in a.pages:
            page = (bytes([0x00, p.mode, 0x00, p.speed]) + struct.pack("<HBH", p.stay_10ms,
                                                                        p.repeat, a.width)
                    + bytes(4) + p.bitmap)
            pages += struct.pack("<I", len(page)) + page
        area = head + pages
        body = b"\x00\x00" + struct.pack("<I", len(area)) + area
    else:
        # 6th §5.4.1: background, transparency, equal-size flags; sound; 5 reserved.
        sound = b"\x00\x00\x00"
        if a.voice is None:
            sound += b"\x00"
        else:
            sound += b"\x01" + _voice_params(a.voice) + _voice_tail(a.voice, 1)
        sound += bytes(5)
        params, data, offset = b"", b"", 0
        for p in a.pages:
            page = (bytes([0x00, p.mode, 0x00, p.speed]) + struct.pack("<HBH", p.stay_10ms,
                                                                        p.repeat, a.width)
                    + bytes(9) + struct.pack("<II", offset, len(p.bitmap)))
            params += struct.pack("<I", len(page)) + page
            data += p.bitmap
            offset += len(p.bitmap)
        area = head + sound + pages + params + data
        body = b"\x00\x00" + struct.pack("<HI", 1, len(area)) + area
    return Request(Group.AREA, Cmd.AREA_UPDATE, body).encode()


def insert_voice(v: Voice, *, interrupt: bool = False) -> bytes:
    """6th §5.4.4: say ``v`` now, at the head of the queue (``interrupt``: cut off what
    is being said) — kept in RAM, so a power cut forgets it."""
    try:
        v.text.encode("gbk")
    except UnicodeEncodeError as e:
        raise OnbonCodecError(f"{v.text!r} cannot be spoken: {e.reason}") from None
    params = _voice_params(v) + _voice_tail(v, 4)
    body = (b"\x00\x00" + bytes([0, 0 if interrupt else 1]) + bytes(3)
            + struct.pack("<I", len(params)) + params)
    return Request(Group.AREA, Cmd.VOICE_INSERT, body).encode()


class _Reader:
    def __init__(self, b: bytes, what: str) -> None:
        self.b, self.i, self.what = b, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.i + n > len(self.b):
            raise OnbonCodecError(f"{self.what}: ends after {len(self.b)} bytes, wanted "
                                  f"{n} more at byte {self.i}")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")


def _parse_voice(r: _Reader, reserved_len_size: int) -> Voice:
    person, volume, speed, enc = r.take(4)
    replay, _delay = r.u(4), r.u(4)
    reserved = r.u(reserved_len_size)
    r.take(reserved)
    text = r.take(r.u(4))
    codec = {0: "gb2312", 1: "gbk", 2: "big5", 3: "utf-16-le"}.get(enc)
    if codec is None:
        raise OnbonCodecError(f"unknown voice text encoding {enc}")
    try:
        s = text.decode(codec)
    except UnicodeDecodeError as e:
        raise OnbonCodecError(f"voice text is not {codec}: {e.reason}") from None
    return Voice(s, person, volume, speed, replay)


def parse_update(model: Model, req: Request) -> list[Area]:
    """The areas of an update request (the simulator's side of :func:`update_area`)."""
    r = _Reader(req.body, "area update")
    r.take(2)
    count = 1 if model == Model.BX5 else r.u(2)
    areas = []
    for _ in range(count):
        ar = _Reader(r.take(r.u(4)), "area")
        area_id, run_mode, timeout = ar.u(1), ar.u(1), ar.u(2)
        ar.take(1)  # RelateAllPro; then RelateProNum programme numbers
        ar.take(2 * ar.u(2))
        imme = ar.u(1)
        ar.take(4)
        ar.take(1)  # AreaType
        x, y, w, h = ar.u(2), ar.u(2), ar.u(2), ar.u(2)
        if w == 0 or h == 0:
            raise OnbonCodecError(f"area {area_id} is {w}x{h} pixels")
        if ar.u(1):  # AreaFFlag: a frame's fixed 6 bytes and its unit data
            ar.take(3)
            fw = ar.u(1)
            ar.take(2 + fw)
        voice = None
        if model == Model.BX6:
            ar.take(3)
            if ar.u(1):
                voice = _parse_voice(ar, 1)
            ar.take(5)
        pages: list[Page] = []
        n = ar.u(2)
        if n == 0:
            raise OnbonCodecError(f"area {area_id} has no pages")
        if model == Model.BX5:
            for _ in range(n):
                pr = _Reader(ar.take(ar.u(4)), "page")
                pr.take(1)
                mode, _clear, speed = pr.take(3)
                stay, rep = pr.u(2), pr.u(1)
                pr.take(2 + 4)
                pages.append(Page(pr.b[pr.i:], mode, stay, speed, rep))
        else:
            heads = []
            for _ in range(n):
                pr = _Reader(ar.take(ar.u(4)), "page")
                pr.take(1)
                mode, _clear, speed = pr.take(3)
                stay, rep = pr.u(2), pr.u(1)
                pr.take(2 + 9)
                heads.append((mode, stay, speed, rep, pr.u(4), pr.u(4)))
            data = ar.b[ar.i:]
            for mode, stay, speed, rep, off, ln in heads:
                if off + ln > len(data):
                    raise OnbonCodecError(f"page data at {off}+{ln} beyond {len(data)} bytes")
                pages.append(Page(data[off:off + ln], mode, stay, speed, rep))
        areas.append(Area(area_id, x, y, w, h, tuple(pages), timeout, run_mode, imme, voice))
    return areas


def parse_insert_voice(req: Request) -> Voice:
    r = _Reader(req.body, "voice insert")
    r.take(2 + 2 + 3)
    return _parse_voice(_Reader(r.take(r.u(4)), "voice"), 4)


# --------------------------------------------------------------------------- pixels

RED, GREEN = 1, 2  # §1.5: bit0 red, bit1 green (yellow lights both)


def encode_pixels(model: Model, rows: Sequence[Sequence[int]], *, x0: int = 0,
                  colours: int = 2) -> bytes:
    """An area's dots as PicPageData (appendix 2). ``rows[y][x]`` holds colour bits
    (``RED | GREEN``); a lit dot is a 0 bit, a dark one 1. ``x0`` is the area's left
    edge on the screen: dots before it in its first byte/word are padding (1).

    BX-5E: row by row, each 8 dots a red byte then (dual colour) a green byte.
    BX-6E: the whole red plane, then the green plane, each row in 32-bit words,
    the leftmost dot in bit 31, each word sent low byte first (§1.5's rule).
    """
    if colours not in (1, 2):
        raise OnbonCodecError("a BX-5E/6E board has one or two colours")
    unit = 8 if model == Model.BX5 else 32
    lead = x0 % unit
    planes = [RED] if colours == 1 else [RED, GREEN]

    def row_words(row: Sequence[int], bit: int) -> list[int]:
        n = lead + len(row)
        units = (n + unit - 1) // unit
        v = (1 << (units * unit)) - 1  # all dark, padding included
        top = units * unit - 1
        for x, c in enumerate(row):
            if c & bit:
                v &= ~(1 << (top - lead - x))
        return [(v >> (unit * (units - 1 - k))) & ((1 << unit) - 1) for k in range(units)]

    out = bytearray()
    if model == Model.BX5:
        for row in rows:
            per = [row_words(row, bit) for bit in planes]
            for k in range(len(per[0])):
                for p in per:
                    out.append(p[k])
    else:
        for bit in planes:
            for row in rows:
                for wd in row_words(row, bit):
                    out += wd.to_bytes(4, "little")
    return bytes(out)


def decode_pixels(model: Model, data: bytes, width: int, height: int, *, x0: int = 0,
                  colours: int = 2) -> list[list[int]]:
    """The inverse of :func:`encode_pixels` (the simulator draws what it was sent)."""
    unit = 8 if model == Model.BX5 else 32
    lead = x0 % unit
    units = (lead + width + unit - 1) // unit
    planes = [RED] if colours == 1 else [RED, GREEN]
    ub = unit // 8
    need = units * ub * len(planes) * height
    if len(data) != need:
        raise OnbonCodecError(f"a {width}x{height} area in {colours} colour(s) takes {need} "
                              f"bytes, the page has {len(data)}")
    rows = [[0] * width for _ in range(height)]

    def put(y: int, bit: int, words: list[int]) -> None:
        v = 0
        for w in words:
            v = (v << unit) | w
        top = units * unit - 1
        for x in range(width):
            if not (v >> (top - lead - x)) & 1:
                rows[y][x] |= bit

    if model == Model.BX5:
        i = 0
        for y in range(height):
            per: list[list[int]] = [[] for _ in planes]
            for _ in range(units):
                for p in per:
                    p.append(data[i])
                    i += 1
            for bit, words in zip(planes, per, strict=True):
                put(y, bit, words)
    else:
        i = 0
        for bit in planes:
            for y in range(height):
                words = [int.from_bytes(data[i + 4 * k:i + 4 * k + 4], "little")
                         for k in range(units)]
                i += 4 * units
                put(y, bit, words)
    return rows


def onbon_parse_any(model: Model, data: bytes) -> object:
    """Every parser a controller runs on a request's bytes (the fuzzers' entry point):
    each either returns or raises :class:`OnbonCodecError`."""
    from drivers.onbon import parse_request, parse_response

    req = parse_request(data)
    out: list[object] = []
    for parse in (parse_brightness, parse_delete, parse_insert_voice):
        with contextlib.suppress(OnbonCodecError):
            out.append(parse(req))
    try:
        for area in parse_update(model, req):
            for page in area.pages:
                out.append(decode_pixels(model, page.bitmap, area.width, area.height,
                                         x0=area.x))
    except OnbonCodecError:
        pass
    with contextlib.suppress(OnbonCodecError):
        out.append(parse_response(data))
    return out
