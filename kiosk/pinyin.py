"""Pinyin initials for searching the service guides ("sb" finds 社保医保).

GB2312 sorts its 3,755 level-1 hanzi by pinyin, so the initial of a common
hanzi is where its GB2312 code falls between the first codes of each letter;
no table of 20,000 readings is needed. Level-2 hanzi (sorted by radical) and
the polyphones that matter in a service hall's catalogue (银行 yínháng,
重新 chóngxīn …) come from a short table below. A hanzi we do not know has no
initial: it still matches itself when typed in Chinese.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import cache

# First GB2312 code of each initial in the level-1 block (B0A1–D7F9).
_BOUNDS: tuple[tuple[int, str], ...] = (
    (0xB0A1, "A"), (0xB0C5, "B"), (0xB2C1, "C"), (0xB4EE, "D"), (0xB6EA, "E"),
    (0xB7A2, "F"), (0xB8C1, "G"), (0xB9FE, "H"), (0xBBF7, "J"), (0xBFA6, "K"),
    (0xC0AC, "L"), (0xC2E8, "M"), (0xC4C3, "N"), (0xC5B6, "O"), (0xC5BE, "P"),
    (0xC6DA, "Q"), (0xC8BB, "R"), (0xC8F6, "S"), (0xCBFA, "T"), (0xCDDA, "W"),
    (0xCEF4, "X"), (0xD1B9, "Y"), (0xD4D1, "Z"),
)
_CODES = [b for b, _ in _BOUNDS]
_LEVEL1_END = 0xD7F9

# Polyphones (every reading's initial) and level-2 / non-GB2312 hanzi seen in
# hall catalogues. Keep it short: add a hanzi when a catalogue needs it.
_EXTRA: dict[str, str] = {
    "行": "XH", "长": "CZ", "重": "ZC", "单": "DS", "参": "CS", "会": "HK",
    "调": "DT", "省": "SX", "藏": "CZ", "乐": "LY", "还": "HX", "称": "C",
    "系": "XJ", "给": "GJ", "都": "DD", "地": "D", "区": "QO", "厦": "XS",
    "闽": "M", "榕": "R", "莆": "P", "邵": "S", "婺": "W", "珏": "J",
    "瑞": "R", "逾": "Y", "祇": "Q", "粤": "Y", "沪": "H", "渝": "Y",
    "冀": "J", "皖": "W", "赣": "G", "苏": "S", "浙": "Z", "琼": "Q",
    "胥": "X", "褚": "CZ", "侨": "Q", "籍": "J", "赡": "S", "瞻": "Z",
    "骥": "J", "筠": "JY", "琦": "Q", "殡": "B", "瑕": "X", "垦": "K",
}


@cache
def initials_of(ch: str) -> str:
    """Possible initials of one character, upper case; "" when unknown.

    A Latin letter or digit is its own initial so mixed names ("ETC办理")
    still match.
    """
    if ch in _EXTRA:
        return _EXTRA[ch]
    if ch.isascii():
        return ch.upper() if ch.isalnum() else ""
    try:
        raw = ch.encode("gb2312")
    except UnicodeEncodeError:
        return ""
    if len(raw) != 2:
        return ""
    code = (raw[0] << 8) | raw[1]
    if code < _CODES[0] or code > _LEVEL1_END:
        return ""
    return _BOUNDS[bisect_right(_CODES, code) - 1][1]


def initials(text: str) -> str:
    """The first reading's initial of each hanzi: ``initials("社保医保") == "SBYB"``."""
    return "".join(i[0] for i in map(initials_of, text) if i)


def matches_initials(query: str, text: str) -> bool:
    """Whether ``query`` (letters) is the initials of a run of consecutive characters.

    Any reading of a polyphone counts, so "yh" finds 银行 and "zx" finds 重新.
    """
    q = [c for c in query.upper() if c.isalnum()]
    if not q:
        return False
    sets = [s for s in map(initials_of, text) if s]
    for start in range(len(sets) - len(q) + 1):
        if all(q[i] in sets[start + i] for i in range(len(q))):
            return True
    return False
