"""Building blocks shared by the screens: big tiles, a paged tile grid, a letter keyboard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QFont, QFontMetrics, QResizeEvent
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


def nav_button(text: str, theme: Theme, on_click: Callable[[], None], *,
               name: str = "Nav") -> QPushButton:
    b = QPushButton(text)
    b.setObjectName(name)
    b.setFont(theme.font(30, bold=True))
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


def fit_font(theme: Theme, text: str, size: float, width: int, lines: int,
             bold: bool = True) -> QFont:
    """The largest font, from ``size`` down to 60 % of it, that sets ``text`` in
    ``lines`` lines of ``width`` pixels: long English names shrink instead of clipping."""
    floor = size * 0.6
    while True:
        f = theme.font(size, bold)
        fm = QFontMetrics(f)
        rect = fm.boundingRect(QRect(0, 0, max(width, 50), 100_000),
                               Qt.TextFlag.TextWordWrap, text)
        if rect.height() <= fm.lineSpacing() * lines + 2 or size <= floor:
            return f
        size -= 2


class Tile(QPushButton):
    """A large touch target: a title, a line under it, and a badge on that line's right."""

    def __init__(self, spec: TileSpec, theme: Theme, height: int, width: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.key = spec.key
        self.setObjectName("Tile")
        if spec.variant:
            self.setProperty("variant", spec.variant)
        self.setEnabled(spec.enabled)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(height)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName(spec.title)
        fg = theme.blue if spec.variant == "light" else "#ffffff"
        if not spec.enabled:
            fg = "#eef1f6"
        col = QVBoxLayout(self)
        col.setContentsMargins(36, 14, 32, 14)
        col.setSpacing(4)
        big = height >= 200
        base = 72 if spec.hero else 50 if big else 40
        sub_size = 30 if spec.hero else 26 if big else 24
        text_w = (width or 420) - 68
        has_sub = bool(spec.subtitle or spec.badge)
        room = height - 28 - (theme.px(sub_size) * 1.5 if has_sub else 0)
        lines = max(1, int(room // (theme.px(base) * 1.3)))
        self.title_label = QLabel(spec.title)
        self.title_label.setWordWrap(True)
        self.title_label.setFont(fit_font(theme, spec.title, base, text_w, min(lines, 2)))
        col.addStretch(1)
        col.addWidget(self.title_label)
        if has_sub:
            row = QHBoxLayout()
            row.setSpacing(16)
            self.sub_label = label(spec.subtitle, theme, sub_size)
            row.addWidget(self.sub_label, 1)
            if spec.badge:
                row.addWidget(label(spec.badge, theme, sub_size + 2, bold=True, wrap=False,
                                    align=Qt.AlignmentFlag.AlignRight))
            col.addLayout(row)
        col.addStretch(1)
        for child in self.findChildren(QLabel):
            child.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            child.setStyleSheet(f"color: {fg}; background: transparent;")
        if spec.on_click is not None:
            # clicked(bool) would fill the first default argument of a lambda(c=cat)
            cb = spec.on_click
            self.clicked.connect(lambda _checked=False: cb())


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
        for i in range(cols):
            self._grid.setColumnStretch(i, 1)
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
