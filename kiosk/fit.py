"""Text that fits its box, in both languages and both modes, and the check that it does.

Qt's own word wrap breaks Chinese between any two characters ("车驾" / "管", a lone
"员" on a line of its own) and never shrinks a font. Short texts on the kiosk (tile
titles and subtitles, buttons) are set here instead: broken only after 、·/，and at
spaces, and set one step smaller, down to a floor, until they fit the lines they
have. :func:`layout_problems` is what the tests (and ``hall-kiosk``'s probe) use to
say that nothing on a screen is cut: every visible widget inside its parent and the
window, every label's text inside its box by the font's own metrics.
"""

from __future__ import annotations

import re

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QFont, QFontMetrics
from PyQt6.QtWidgets import QAbstractScrollArea, QLabel, QLineEdit, QPushButton, QWidget

from kiosk.theme import Theme

# A line may end after one of these (kept on the line) or at a space (dropped).
_BREAK_AFTER = "、·，,;；/"
_PIECE = re.compile(rf"[^\s{re.escape(_BREAK_AFTER)}]*[{re.escape(_BREAK_AFTER)}]?\s*")
FLOOR = 0.6  # a text shrinks to 60 % of its design size, never smaller


def pieces(text: str) -> list[str]:
    """``"户籍办理、出入境、车驾管"`` → ``["户籍办理、", "出入境、", "车驾管"]``."""
    return [p for p in _PIECE.findall(text) if p]


def wrap_lines(text: str, fm: QFontMetrics, width: int) -> list[str] | None:
    """Lines no wider than ``width``, broken only between pieces; None when a piece
    alone is wider (the caller sets it smaller)."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        for p in pieces(para):
            if fm.horizontalAdvance((cur + p).rstrip()) <= width:
                cur += p
                continue
            if fm.horizontalAdvance(p.rstrip()) > width:
                return None
            if cur.strip():
                lines.append(cur.rstrip())
            cur = p
        lines.append(cur.rstrip())
    return lines


def _hard_wrap(text: str, fm: QFontMetrics, width: int) -> list[str]:
    """The last resort at the floor size: break anywhere."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        for ch in para:
            if cur and fm.horizontalAdvance(cur + ch) > width:
                lines.append(cur.rstrip())
                cur = ch.lstrip()
            else:
                cur += ch
        lines.append(cur)
    return lines


def _elide(lines: list[str], fm: QFontMetrics, width: int, max_lines: int) -> list[str]:
    kept = lines[:max_lines]
    last = kept[-1].rstrip("、·，,;； ") + "…"
    while last != "…" and fm.horizontalAdvance(last) > width:
        last = last[:-2].rstrip("、·，,;； ") + "…"
    return [*kept[:-1], last]


def fit_text(text: str, theme: Theme, size: float, width: int, max_lines: int, *,
             bold: bool = False, floor: float = FLOOR,
             max_height: int | None = None) -> tuple[QFont, list[str]]:
    """The largest font from ``size`` down to ``floor`` × ``size`` that sets ``text`` in
    at most ``max_lines`` lines of ``width`` pixels (and ``max_height`` pixels), and
    those lines. At the floor a text still too long is cut after its last whole line
    that fits, with "…"."""
    width = max(width, 1)
    max_lines = max(max_lines, 1)
    s = size
    while True:
        font = theme.font(s, bold)
        fm = QFontMetrics(font)
        lines = wrap_lines(text, fm, width)
        if lines is not None and len(lines) <= max_lines and (
                max_height is None or block_height(font, lines) <= max_height):
            return font, lines
        if s <= size * floor:
            break
        s = max(size * floor, s - 1)
    lines = lines if lines is not None else _hard_wrap(text, fm, width)
    if max_height is not None:  # keep the lines that fit the height; one at least
        max_lines = min(max_lines, len(lines))
        while max_lines > 1 and block_height(font, lines[:max_lines]) > max_height:
            max_lines -= 1
    if len(lines) > max_lines:
        lines = _elide(lines, fm, width, max_lines)
    return font, lines


def block_height(font: QFont, lines: list[str]) -> int:
    """Pixels that ``lines`` take, set one under the other in ``font``."""
    if not lines:
        return 0
    fm = QFontMetrics(font)
    return fm.boundingRect(QRect(0, 0, 100_000, 100_000), 0, "\n".join(lines)).height()


def fit_one_line(text: str, theme: Theme, size: float, width: int, *,
                 bold: bool = False) -> QFont:
    """A button's label: one line, set smaller until it fits ``width``."""
    return fit_text(text, theme, size, width, 1, bold=bold)[0]


# ---------------------------------------------------------------- the check

def _inside(inner: QRect, outer: QRect, slack: int = 1) -> bool:
    return (inner.left() >= outer.left() - slack and inner.top() >= outer.top() - slack
            and inner.right() <= outer.right() + slack
            and inner.bottom() <= outer.bottom() + slack)


def _name(w: QWidget) -> str:
    text = ""
    if isinstance(w, QLabel | QPushButton):
        text = w.text().replace("\n", "⏎")[:30]
    return f"{type(w).__name__}#{w.objectName() or '-'} {text!r}"


def _label_problem(w: QLabel) -> str:
    text = w.text()
    if not text or (w.pixmap() is not None and not w.pixmap().isNull()):
        return ""
    cr = w.contentsRect()
    fm = QFontMetrics(w.font())
    flags = Qt.TextFlag.TextWordWrap if w.wordWrap() else Qt.TextFlag(0)
    # a word wider than the whole label wraps nowhere: the rectangle is wider then
    need = fm.boundingRect(QRect(0, 0, cr.width(), 100_000), flags, text)
    if need.height() > cr.height() + 2 or need.width() > cr.width() + 2:
        return (f"{_name(w)}: text needs {need.width()}×{need.height()} px, "
                f"the box is {cr.width()}×{cr.height()}")
    return ""


def _button_problem(w: QPushButton) -> str:
    text = w.text()
    if not text:
        return ""
    fm = QFontMetrics(w.font())
    need = max(fm.horizontalAdvance(line) for line in text.split("\n"))
    room = w.width() - 12  # the border and a little air on each side
    if need > room:
        return f"{_name(w)}: text needs {need} px, the button has {room}"
    return ""


def layout_problems(root: QWidget, size: tuple[int, int] | None = None) -> list[str]:
    """What is cut or off-screen in ``root`` as shown now; empty when all fits.

    ``size``: the window must be exactly this size (the screen's)."""
    problems: list[str] = []
    if size is not None and (root.width(), root.height()) != size:
        problems.append(f"window is {root.width()}×{root.height()}, the screen "
                        f"{size[0]}×{size[1]}")
    screen = QRect(0, 0, *(size or (root.width(), root.height())))
    scrolled: set[int] = set()
    for area in root.findChildren(QAbstractScrollArea):
        if area.isVisible() and (vp := area.viewport()) is not None:
            scrolled.update(id(c) for c in vp.children())
    for w in root.findChildren(QWidget):
        if not w.isVisible() or w.isWindow():
            continue
        parent = w.parentWidget()
        rect = QRect(w.mapTo(root, w.rect().topLeft()), w.size())
        in_scroll = _in_scroll_content(w, scrolled)
        if id(w) not in scrolled:  # a scroll area's content is larger than its view
            if not in_scroll and not _inside(rect, screen):
                problems.append(f"{_name(w)} at {rect.x()},{rect.y()} {rect.width()}×"
                                f"{rect.height()} is off the screen")
            elif parent is not None and not _inside(w.geometry(), parent.rect()):
                problems.append(f"{_name(w)} sticks out of its "
                                f"{type(parent).__name__}#{parent.objectName() or '-'}")
        if isinstance(w, QLabel):
            p = _label_problem(w)
        elif isinstance(w, QPushButton):
            p = _button_problem(w)
        elif isinstance(w, QLineEdit) and w.placeholderText() and not w.text():
            need = QFontMetrics(w.font()).horizontalAdvance(w.placeholderText())
            p = (f"{_name(w)}: placeholder needs {need} px of {w.width() - 40}"
                 if need > w.width() - 40 else "")
        else:
            p = ""
        if p:
            problems.append(p)
    return problems


def _in_scroll_content(w: QWidget, scrolled: set[int]) -> bool:
    p = w.parentWidget()
    while p is not None:
        if id(p) in scrolled:
            return True
        p = p.parentWidget()
    return False
