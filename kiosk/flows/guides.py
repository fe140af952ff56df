"""Service guides: search by name, initials or words of the guide; one guide; take from it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QTextBlockFormat, QTextCharFormat, QTextCursor
from PyQt6.QtWidgets import QGridLayout, QLineEdit, QTextBrowser, QVBoxLayout, QWidget

from hall_agent.contract.api import ServiceOut
from kiosk.host import KioskHost
from kiosk.pinyin import matches_initials
from kiosk.screens import Screen
from kiosk.strings import Lang, closed_text, hours_text, promise_text, service_name, tr
from kiosk.theme import Theme
from kiosk.widgets import Card, Flip, LetterKeyboard, TileGrid, TileSpec, label, nav_button

Center = Qt.AlignmentFlag.AlignCenter


class GuideListScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang, *,
                 on_pick: Callable[[ServiceOut], None]) -> None:
        super().__init__(theme, lang, tr("guide_title", lang))
        self.on_pick = on_pick
        self.services: list[ServiceOut] = []
        self.search = QLineEdit()
        self.search.setFont(theme.font(36))
        self.search.setPlaceholderText(self.t("search_hint"))
        self.search.setMinimumHeight(theme.target(90))
        self.search.textChanged.connect(self._refresh)
        self.box.addWidget(self.search)
        self.keyboard = LetterKeyboard(theme, lang, self._key)
        self.results = TileGrid(theme, lang, tile_height=130,
                                page_size=3 if theme.elderly else 6)
        self.empty = label(self.t("no_match"), theme, 32, name="Muted", align=Center)
        self.empty.hide()
        right = QWidget()
        rbox = QVBoxLayout(right)
        rbox.setContentsMargins(0, 0, 0, 0)
        rbox.addWidget(self.empty)
        rbox.addWidget(self.results, 1)
        self.box.addWidget(Flip(self.keyboard, right, ratio=(0, 1)), 1)

    def _key(self, k: str) -> None:
        if k == "\b":
            self.search.setText(self.search.text()[:-1])
        elif k == "":
            self.search.clear()
        else:
            self.search.setText(self.search.text() + k)

    def set_services(self, services: list[ServiceOut]) -> None:
        self.services = services
        self._refresh()

    def matching(self, query: str) -> list[ServiceOut]:
        q = query.strip()
        if not q:
            return list(self.services)
        ql = q.lower()
        direct = [s for s in self.services
                  if ql in s.name.lower() or ql in s.name_en.lower()
                  or ql in s.category.lower() or ql in s.category_en.lower()]
        initials = [s for s in self.services if s not in direct
                    and (matches_initials(q, s.name) or matches_initials(q, s.category))]
        in_guide = [s for s in self.services if s not in direct and s not in initials
                    and (ql in s.guide.lower() or ql in s.guide_en.lower())]
        return direct + initials + in_guide

    def _refresh(self) -> None:
        found = self.matching(self.search.text())
        self.empty.setVisible(not found)
        self.results.set_tiles([
            TileSpec(s.id, service_name(s, self.lang),
                     promise_text(s.promise, self.lang, s.promise_en),
                     badge=s.category if self.lang == "zh" else s.category_en,
                     variant="light", on_click=partial(self.on_pick, s))
            for s in found])


class GuideScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang, *,
                 on_take: Callable[[ServiceOut], None]) -> None:
        super().__init__(theme, lang)
        self.svc: ServiceOut | None = None
        card = Card()
        self.facts = QGridLayout()
        self.facts.setHorizontalSpacing(24)
        self.facts.setVerticalSpacing(8)
        self.promise = label("", theme, 32, bold=True)
        self.hours = label("", theme, 30)
        self.state = label("", theme, 30, bold=True)
        for r, (key, w) in enumerate((("promise", self.promise), ("hours", self.hours))):
            self.facts.addWidget(label(self.t(key), theme, 30, name="Muted", wrap=False), r, 0)
            self.facts.addWidget(w, r, 1)
        self.facts.addWidget(self.state, 2, 0, 1, 2)
        self.facts.setColumnStretch(1, 1)
        card.box.addLayout(self.facts)
        self.box.addWidget(card)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.setFont(theme.font(32))
        self.box.addWidget(self.text, 1)
        self._on_take = on_take
        self.take_btn = nav_button(self.t("take_this"), theme, self._take, name="Primary")
        self.box.addWidget(self.take_btn)

    def _take(self) -> None:
        if self.svc is not None:
            self._on_take(self.svc)

    def show_service(self, s: ServiceOut) -> None:
        self.svc = s
        self.title.setText(service_name(s, self.lang))
        self.promise.setText(promise_text(s.promise, self.lang, s.promise_en) or "—")
        self.hours.setText(hours_text(s.hours, self.lang))
        self.state.setText(self.t("open_now") if s.open_now else closed_text(s, self.lang))
        self.state.setStyleSheet(f"color: {'#0a7a32' if s.open_now else self.theme.accent};")
        # Headings in the guide are sized from the body font, so scale the body only.
        doc = self.text.document()
        assert doc is not None
        doc.setDefaultFont(self.theme.font(32))
        guide = s.guide
        if self.lang == "en":
            # A guide not yet translated is still shown, with a word about it.
            guide = s.guide_en or (f"*{self.t('guide_in_chinese')}*\n\n{s.guide}"
                                   if s.guide else "")
        self.text.setMarkdown(guide or "—")
        self._space_out()
        self.take_btn.setEnabled(s.open_now)


    def _space_out(self) -> None:
        """Markdown comes out dense: open up the lines and colour the headings."""
        doc = self.text.document()
        assert doc is not None
        cursor = QTextCursor(doc)
        cursor.select(QTextCursor.SelectionType.Document)
        fmt = QTextBlockFormat()
        fmt.setLineHeight(135, 1)  # 1 = LineHeightTypes.ProportionalHeight (an int in Qt 6)
        fmt.setBottomMargin(10)
        cursor.mergeBlockFormat(fmt)
        block = doc.begin()
        while block.isValid():
            if block.blockFormat().headingLevel():
                c = QTextCursor(block)
                c.select(QTextCursor.SelectionType.BlockUnderCursor)
                cf = QTextCharFormat()
                cf.setForeground(QColor(self.theme.blue))
                c.mergeCharFormat(cf)
                bf = QTextBlockFormat()
                bf.setTopMargin(18)
                c.mergeBlockFormat(bf)
            block = block.next()




class GuideFlow:
    """``on_take`` is the ticket flow's: "take a ticket for this" on a guide."""

    def __init__(self, k: KioskHost, *, on_take: Callable[[ServiceOut], None]) -> None:
        self.k = k
        self.list = GuideListScreen(k.theme, k.lang, on_pick=self.open_guide)
        self.page = GuideScreen(k.theme, k.lang, on_take=on_take)
        for s in (self.list, self.page):
            k.add_screen(s)

    def open(self) -> None:
        self.k.refresh_services()
        self.k.go(self.render_list)

    def render_list(self) -> None:
        self.list.set_services(self.k.service_list())
        self.k.show_screen("guides", self.list)

    def open_guide(self, svc: ServiceOut) -> None:
        def render() -> None:
            self.page.show_service(svc)
            self.k.show_screen("guide", self.page)
        self.k.go(render)
