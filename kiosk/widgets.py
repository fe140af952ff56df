"""Building blocks shared by the screens: big tiles, a paged tile grid, a letter keyboard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QRectF, QSize, Qt
from PyQt6.QtGui import (
    QColor,
    QFontMetrics,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PyQt6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.fit import FLOOR, block_height, fit_one_line, fit_text
from kiosk.strings import Lang, tr
from kiosk.theme import Theme


def label(text: str, theme: Theme, size: float, *, bold: bool = False, name: str = "",
          wrap: bool = True, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft) -> QLabel:
    w = QLabel(text)
    w.setFont(theme.font(size, bold))
    w.setWordWrap(wrap)
    w.setAlignment(align | Qt.AlignmentFlag.AlignVCenter)
    if name:
        w.setObjectName(name)
    return w


class FitButton(QPushButton):
    """A button whose one-line text is set smaller, never cut, when the button is
    narrower than the text at its design size (English, elderly mode)."""

    def __init__(self, text: str, theme: Theme, size: float, *, pad: int = 62) -> None:
        super().__init__(text)
        self.theme = theme
        self._size = size
        self._pad = pad  # the style's padding and border, both sides
        self.setFont(theme.font(size, bold=True))

    def minimumSizeHint(self) -> QSize:
        return QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self.refit()

    def refit(self) -> None:
        self.setFont(fit_one_line(self.text(), self.theme, self._size,
                                  self.width() - self._pad, bold=True))


def nav_button(text: str, theme: Theme, on_click: Callable[[], None], *,
               name: str = "Nav") -> FitButton:
    b = FitButton(text, theme, 30)
    b.setObjectName(name)
    b.setMinimumHeight(theme.target(96))
    b.setMinimumWidth(theme.touch_px * 2)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    b.clicked.connect(lambda _checked=False: on_click())
    return b


@dataclass
class TileSpec:
    """One choice on a screen. ``key`` lets tests and callers find it without its text."""

    key: str
    title: str
    subtitle: str = ""
    badge: str = ""
    variant: str = ""            # "", "priority", "closed", "light"
    enabled: bool = True
    wide: bool = False           # spans the whole row
    hero: bool = False           # the screen's main action: taller, larger type
    on_click: Callable[[], None] | None = None
    face: int | None = None      # a drawn face, -2 (frowning) … 2 (smiling), on the left


# the ink on a rating level's tile (the tile's own colour is in kiosk/theme.py)
LEVEL_INK = {"lvl_basic": "#1a1a1a"}


class Face(QWidget):
    """A face drawn, not a font's emoji (the kiosk font has none): a circle, two eyes
    and a mouth that curves up for a good mood and down for a bad one."""

    def __init__(self, mood: int, color: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.mood = mood
        self.color = QColor(color)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def paintEvent(self, event: QPaintEvent | None) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height())
        pen = QPen(self.color, max(3.0, side / 14))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        r = QRectF(0, 0, side, side).adjusted(side / 12, side / 12, -side / 12, -side / 12)
        r.moveCenter(QRectF(self.rect()).center())
        p.drawEllipse(r)
        cx, cy, u = r.center().x(), r.center().y(), r.width() / 10
        p.setBrush(self.color)
        for dx in (-1.6, 1.6):
            p.drawEllipse(QRectF(cx + dx * u - u * 0.6, cy - 2.2 * u, u * 1.2, u * 1.2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        mouth = QPainterPath()
        y = cy + 2.0 * u
        mouth.moveTo(cx - 2.6 * u, y - self.mood * 0.5 * u)
        mouth.quadTo(cx, y + self.mood * 1.1 * u, cx + 2.6 * u, y - self.mood * 0.5 * u)
        p.drawPath(mouth)
        p.end()


class Tile(QPushButton):
    """A large touch target: a title, a line under it, and a badge on that line's right.

    The texts are set by :mod:`kiosk.fit` each time the tile gets its size, so a
    long English name shrinks or wraps at a word, never runs out of the tile."""

    def __init__(self, spec: TileSpec, theme: Theme, height: int, width: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.key = spec.key
        self.theme = theme
        self.setObjectName("Tile")
        if spec.variant:
            self.setProperty("variant", spec.variant)
        self.setEnabled(spec.enabled)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(height)
        self.setMinimumWidth(theme.touch_px)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName(spec.title)
        fg = theme.blue if spec.variant == "light" else LEVEL_INK.get(spec.variant, "#ffffff")
        if not spec.enabled:
            fg = "#eef1f6"
        big = height >= 200
        self._title_size = 72 if spec.hero else 50 if big else 40
        self._sub_size = 30 if spec.hero else 26 if big else 24
        self.face = Face(spec.face, fg, self) if spec.face is not None else None
        self.title_label = QLabel(spec.title, self)
        self.sub_label = QLabel(spec.subtitle, self)
        self.badge_label = QLabel(spec.badge, self)
        self.badge_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.sub_label.setVisible(bool(spec.subtitle))
        self.badge_label.setVisible(bool(spec.badge))
        for child in (self.title_label, self.sub_label, self.badge_label):
            child.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            child.setStyleSheet(f"color: {fg}; background: transparent;")
        self._laid_for: tuple[int, int] = (0, 0)
        self.resize(width or 420, height)
        self._lay_out()
        if spec.on_click is not None:
            # clicked(bool) would fill the first default argument of a lambda(c=cat)
            cb = spec.on_click
            self.clicked.connect(lambda _checked=False: cb())

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._lay_out()

    def _lay_out(self) -> None:
        """Title over subtitle, the pair centred in the tile; the badge on the right."""
        if self._laid_for == (self.width(), self.height()):
            return
        self._laid_for = (self.width(), self.height())
        th, spec = self.theme, self.spec
        left, right, top, bottom = 36, 32, 12, 12
        if self.face is not None:
            side = round(self.height() * 0.72)
            self.face.setGeometry(left - 8, (self.height() - side) // 2, side, side)
            left += side + 16
        w = self.width() - left - right
        h = self.height() - top - bottom
        badge_w = 0
        if spec.badge:
            bf = th.font(self._sub_size + 2, True)
            self.badge_label.setFont(bf)
            badge_w = QFontMetrics(bf).horizontalAdvance(spec.badge) + 4
        sub_w = w - (badge_w + 16 if badge_w else 0)
        beside = badge_w and not spec.subtitle  # a badge alone sits beside the title
        tw = sub_w if beside else w
        # shrink the title first (two lines at most), then the subtitle, until both fit
        sub_lines: list[str] = []
        sub_h = gap = 0
        size = float(self._title_size)
        while True:
            tf, t_lines = fit_text(spec.title, th, size, tw, 2, bold=True, max_height=h)
            t_h = block_height(tf, t_lines)
            if not spec.subtitle:
                break
            gap = 4
            room = h - t_h - gap
            sf, sub_lines = fit_text(spec.subtitle, th, self._sub_size, sub_w, 6,
                                     max_height=room)
            sub_h = max(block_height(sf, sub_lines),
                        QFontMetrics(self.badge_label.font()).height() if badge_w else 0)
            if t_h + gap + sub_h <= h or size <= self._title_size * FLOOR:
                self.sub_label.setFont(sf)
                break
            size = max(self._title_size * FLOOR, size - 2)
        self.title_label.setFont(tf)
        self.title_label.setText("\n".join(t_lines))
        self.sub_label.setText("\n".join(sub_lines))
        y = top + max(0, (h - t_h - gap - sub_h) // 2)
        self.title_label.setGeometry(left, y, tw, t_h)
        if beside:
            self.badge_label.setGeometry(left + w - badge_w, top, badge_w, h)
            return
        y += t_h + gap
        self.sub_label.setGeometry(left, y, sub_w, sub_h)
        if badge_w:
            self.badge_label.setGeometry(left + w - badge_w, y, badge_w, sub_h)


class TileGrid(QWidget):
    """Tiles in rows of one to three columns (by width), paged so a screen never scrolls."""

    def __init__(self, theme: Theme, lang: Lang, *, tile_height: int = 170,
                 page_size: int | None = None, max_cols: int = 3) -> None:
        super().__init__()
        self.theme = theme
        self.lang = lang
        self.tile_height = theme.target(tile_height)
        self.page_size = page_size or theme.page_size
        self.max_cols = max_cols
        self.specs: list[TileSpec] = []
        self.page = 0
        self._cols = 0
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(24)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(24)
        outer.addWidget(self._grid_host)
        outer.addStretch(1)
        pager = QHBoxLayout()
        self.prev_btn = nav_button(tr("prev_page", lang), theme, self.prev_page)
        self.next_btn = nav_button(tr("next_page", lang), theme, self.next_page)
        self.page_label = label("", theme, 28, align=Qt.AlignmentFlag.AlignCenter)
        pager.addWidget(self.prev_btn)
        pager.addWidget(self.page_label, 1)
        pager.addWidget(self.next_btn)
        self._pager = QWidget()
        self._pager.setLayout(pager)
        outer.addWidget(self._pager)
        self.tiles: list[Tile] = []

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.specs) // self.page_size))

    def set_tiles(self, specs: list[TileSpec]) -> None:
        self.specs = specs
        self.page = 0
        self._render()

    def next_page(self) -> None:
        if self.page + 1 < self.pages:
            self.page += 1
            self._render()

    def prev_page(self) -> None:
        if self.page > 0:
            self.page -= 1
            self._render()

    def _columns(self) -> int:
        w = self.width() or 1000
        cols = 4 if w >= 1800 else 3 if w >= 1500 else 2 if w >= 760 else 1
        if self.theme.elderly:
            cols = max(1, cols - 1)
        return min(cols, self.max_cols)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        if self._columns() != self._cols:
            self._render()

    def _render(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.setParent(None)
                w.deleteLater()
        self.tiles = []
        self._cols = cols = self._columns()
        shown = self.specs[self.page * self.page_size:(self.page + 1) * self.page_size]
        spacing = self._grid.spacing()
        col_w = ((self.width() or 984) - spacing * (cols - 1)) // cols
        r = c = 0
        for spec in shown:
            span_w = (self.width() or 984) if spec.wide else col_w
            height = round(self.tile_height * 1.45) if spec.hero else self.tile_height
            tile = Tile(spec, self.theme, height, span_w)
            if spec.wide and c:
                r, c = r + 1, 0
            span = cols if spec.wide else 1
            self._grid.addWidget(tile, r, c, 1, span)
            tile.show()  # now, not on the next event-loop turn: a fast tap must find it
            self.tiles.append(tile)
            c += span
            if c >= cols:
                r, c = r + 1, 0
        for i in range(max(cols, self._grid.columnCount())):
            # a column left from a wider page would keep its share of the width
            self._grid.setColumnStretch(i, 1 if i < cols else 0)
        many = self.pages > 1
        self._pager.setVisible(many)
        self.prev_btn.setEnabled(self.page > 0)
        self.next_btn.setEnabled(self.page + 1 < self.pages)
        self.page_label.setText(tr("page", self.lang, n=self.page + 1, total=self.pages))


class Card(QFrame):
    """A white panel with a border, for groups of facts (ticket, queue, guide header)."""

    def __init__(self, spacing: int = 12) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(32, 24, 32, 24)
        self.box.setSpacing(spacing)


class LetterKeyboard(QWidget):
    """A–Z, delete and clear: pinyin initials are how people search on a touch screen."""

    def __init__(self, theme: Theme, lang: Lang, on_key: Callable[[str], None]) -> None:
        super().__init__()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(10)
        cols = 7
        keys = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
        h = theme.target(84)
        for i, k in enumerate(keys):
            b = QPushButton(k)
            b.setObjectName("Key")
            b.setFont(theme.font(34, bold=True))
            b.setFixedHeight(h)
            b.setMinimumWidth(theme.touch_px)
            b.clicked.connect(lambda _=False, k=k: on_key(k))
            grid.addWidget(b, i // cols, i % cols)
        for j, (name, code) in enumerate((("search_delete", "\b"), ("search_clear", ""))):
            b = QPushButton(tr(name, lang))
            b.setObjectName("Key")
            b.setFont(theme.font(28, bold=True))
            b.setFixedHeight(h)
            b.clicked.connect(lambda _=False, code=code: on_key(code))
            pos = len(keys) + j
            grid.addWidget(b, pos // cols, pos % cols)


class Flip(QWidget):
    """Two halves stacked in portrait and side by side in landscape."""

    def __init__(self, first: QWidget, second: QWidget, *, ratio: tuple[int, int] = (1, 1),
                 spacing: int = 32) -> None:
        super().__init__()
        self.box = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(spacing)
        self.box.addWidget(first, ratio[0])
        self.box.addWidget(second, ratio[1])

    def set_wide(self, wide: bool) -> None:
        """Side by side on a landscape screen; the window tells, not this widget's shape."""
        want = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.box.direction() != want:
            self.box.setDirection(want)
