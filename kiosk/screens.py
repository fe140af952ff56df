"""The kiosk's screens. Each one only draws what it is given and reports taps upward;
the :class:`kiosk.app.Kiosk` controller decides what happens next."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import partial

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QFontMetrics, QTextBlockFormat, QTextCharFormat, QTextCursor
from PyQt6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from hall_agent.contract.api import QueueOut, ServiceOut, TicketOut
from kiosk.pinyin import matches_initials
from kiosk.qr import qr_pixmap
from kiosk.strings import Lang, duration, tr
from kiosk.theme import Theme
from kiosk.widgets import (
    Card,
    Flip,
    LetterKeyboard,
    Tile,
    TileGrid,
    TileSpec,
    label,
    nav_button,
)

Center = Qt.AlignmentFlag.AlignCenter


def service_name(s: ServiceOut, lang: Lang) -> str:
    return s.name if lang == "zh" else s.name_en


_PROMISE_EN = (
    (re.compile(r"^(\d+)\s*分钟(内)?办结$"), "Done within {0} min"),
    (re.compile(r"^(\d+)\s*小时(内)?办结$"), "Done within {0} h"),
    (re.compile(r"^(\d+)\s*个?工作日(内)?(办结)?$"), "{0} working days"),
    (re.compile(r"^即时办结|即办$"), "Done on the spot"),
    (re.compile(r"^当日办结$"), "Done the same day"),
)


def promise_text(promise: str, lang: Lang, promise_en: str = "") -> str:
    """The catalogue's promise ("60分钟办结") in the kiosk's language."""
    if lang == "zh" or not promise:
        return promise
    if promise_en:
        return promise_en
    for pattern, english in _PROMISE_EN:
        m = pattern.match(promise.strip())
        if m:
            return english.format(*m.groups())
    return promise


def hours_text(hours: str, lang: Lang) -> str:
    if hours.strip() == "24h":
        return tr("hours_24h", lang)
    return "  ".join(p.strip() for p in hours.split(","))


def when_text(iso: str | None, lang: Lang, now: datetime | None = None) -> str:
    """``2024-05-21T08:30+08:00`` → "明天 08:30" / "tomorrow 08:30", for "opens at"."""
    if not iso:
        return ""
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    now = now or datetime.now(at.tzinfo)
    days = (at.date() - now.date()).days
    hm = at.strftime("%H:%M")
    if days == 0:
        return f"今天 {hm}" if lang == "zh" else f"today at {hm}"
    if days == 1:
        return f"明天 {hm}" if lang == "zh" else f"tomorrow at {hm}"
    if lang == "zh":
        return f"{at.month}月{at.day}日 {hm}"
    return f"{at.day} {at.strftime('%b')} at {hm}"


def closed_text(s: ServiceOut, lang: Lang) -> str:
    reason = (s.closed_reason if lang == "zh" else s.closed_reason_en or s.closed_reason) or ""
    opens = when_text(s.opens_at, lang)
    parts = [reason or tr("closed", lang)]
    if opens:
        parts.append(tr("closed_opens", lang, when=opens))
    return "，".join(parts) if lang == "zh" else ". ".join(parts)


class Screen(QWidget):
    def __init__(self, theme: Theme, lang: Lang, title: str = "") -> None:
        super().__init__()
        self.setObjectName("Screen")
        self.theme = theme
        self.lang = lang
        self.box = QVBoxLayout(self)
        m = 40 if theme.elderly else 48
        self.box.setContentsMargins(m, 36, m, 28)
        self.box.setSpacing(24)
        self.title = label(title, theme, 48, bold=True, name="Title")
        self.box.addWidget(self.title)

    def t(self, key: str, **kw: object) -> str:
        return tr(key, self.lang, **kw)


class HomeScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang, *,
                 on_action: Callable[[str], None], on_toggle_elderly: Callable[[], None],
                 on_toggle_lang: Callable[[], None], checkin_enabled: bool,
                 selfservice: bool = False) -> None:
        super().__init__(theme, lang, tr("welcome", lang))
        self.title.setAlignment(Center)
        self.banner = label(self.t("printer_down_banner"), theme, 28, name="Notice")
        self.banner.hide()
        self.box.addWidget(self.banner)
        self.grid = TileGrid(theme, lang, tile_height=200 if theme.elderly else 250, page_size=8,
                             max_cols=4 if theme.compact else 2)

        def act(key: str) -> Callable[[], None]:
            return lambda: on_action(key)

        specs = [
            TileSpec("take_ticket", self.t("take_ticket"), self.t("take_ticket_sub"),
                     wide=True, hero=True, on_click=act("take_ticket")),
            TileSpec("checkin", self.t("checkin"),
                     self.t("checkin_sub") if checkin_enabled else self.t("checkin_off"),
                     enabled=checkin_enabled, on_click=act("checkin")),
            TileSpec("guides", self.t("guides"), self.t("guides_sub"), on_click=act("guides")),
            TileSpec("queue", self.t("queue"), self.t("queue_sub"), on_click=act("queue")),
            TileSpec("rate", self.t("rate"), self.t("rate_sub"), on_click=act("rate")),
        ]
        if selfservice:
            specs.append(TileSpec("selfservice", self.t("selfservice"),
                                  on_click=act("selfservice")))
        self.grid.set_tiles(specs)
        self.box.addWidget(self.grid, 1)
        card = Card(spacing=4)
        self.waiting = label("", theme, 40, bold=True, name="Title", align=Center)
        card.box.addWidget(self.waiting)
        card.box.addWidget(label(self.t("home_rule"), theme, 28, name="Muted", align=Center))
        self.summary = card
        card.hide()
        self.box.addWidget(card)
        row = QHBoxLayout()
        row.setSpacing(24)
        self.elderly_btn = nav_button(
            self.t("elderly_off") if theme.elderly else self.t("elderly_on"), theme,
            on_toggle_elderly, name="Toggle")
        self.lang_btn = nav_button(self.t("lang_other"), theme, on_toggle_lang, name="Toggle")
        row.addWidget(self.elderly_btn, 1)
        row.addWidget(self.lang_btn, 1)
        self.box.addLayout(row)
        self.box.addWidget(label(self.t("help_desk"), theme, 26, name="Muted", align=Center))

    def set_printer_down(self, down: bool) -> None:
        self.banner.setVisible(down)

    def set_waiting(self, n: int | None) -> None:
        """How busy the hall is, so people can decide to come back at a quiet time."""
        # elderly mode spends its height on larger tiles: fewer things per screen
        self.summary.setVisible(n is not None and not self.theme.elderly)
        if n is not None:
            self.waiting.setText(self.t("home_waiting", n=n))


class ChoiceScreen(Screen):
    """A title and a page of tiles: categories, services, priority reasons, windows, levels."""

    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang)
        self.banner = label("", theme, 30, bold=True, name="Warn")
        self.banner.hide()
        self.box.addWidget(self.banner)
        self.note = label("", theme, 28, name="Muted")
        self.note.hide()
        self.box.addWidget(self.note)
        self.grid = TileGrid(theme, lang)
        self.box.addWidget(self.grid, 1)
        self.extra_host = QVBoxLayout()
        self.box.addLayout(self.extra_host)
        self.extra: Tile | None = None

    def set_choices(self, title: str, specs: list[TileSpec], *, banner: str = "",
                    note: str = "", page_size: int | None = None, tile_height: int = 170,
                    max_cols: int = 3, extra: TileSpec | None = None) -> None:
        """``extra`` is a tile kept apart under the grid (the priority lane)."""
        self.title.setText(title)
        if self.extra is not None:
            self.extra.setParent(None)
            self.extra.deleteLater()
            self.extra = None
        if extra is not None:
            self.extra = Tile(extra, self.theme, self.theme.target(150))
            self.extra_host.addWidget(self.extra)
            self.extra.show()
        self.banner.setText(banner)
        self.banner.setVisible(bool(banner))
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.grid.page_size = page_size or self.theme.page_size
        self.grid.tile_height = self.theme.target(tile_height)
        self.grid.max_cols = max_cols
        self.grid.set_tiles(specs)


class MessageScreen(Screen):
    """A plain statement with up to two buttons: closed service, errors, thanks, busy."""

    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang)
        self.title.setAlignment(Center)
        self.box.insertStretch(0, 1)
        self.body = label("", theme, 40, align=Center)
        self.box.addWidget(self.body)
        self.detail = label("", theme, 30, name="Muted", align=Center)
        self.box.addWidget(self.detail)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(24)
        self.box.addLayout(self.buttons)
        self.box.addStretch(2)
        self.kind = ""

    def show_message(self, kind: str, title: str, body: str = "", detail: str = "",
                     buttons: list[tuple[str, Callable[[], None]]] | None = None,
                     warn: bool = False) -> None:
        self.kind = kind
        self.title.setText(title)
        self.title.setObjectName("Number" if warn else "Title")
        self.title.setStyle(self.title.style())  # re-apply the style sheet for the new name
        self.body.setText(body)
        self.body.setVisible(bool(body))
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        while self.buttons.count():
            item = self.buttons.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.setParent(None)
                w.deleteLater()
        for text, cb in buttons or []:
            self.buttons.addWidget(nav_button(text, self.theme, cb))


class TicketScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang, *, on_done: Callable[[], None],
                 on_reprint: Callable[[], None]) -> None:
        super().__init__(theme, lang, tr("ticket_title", lang))
        self.title.setAlignment(Center)
        self.ticket: TicketOut | None = None
        # One column, no nested widgets: a wrapped status line in a nested layout was
        # measured stale and slid into the number.
        self.service = label("", theme, 44, bold=True, align=Center)
        self.priority = label(self.t("priority_banner"), theme, 30, bold=True, name="Warn",
                              align=Center)
        self.number = label("", theme, 200 if not theme.elderly else 160, bold=True,
                            name="Number", wrap=False, align=Center)
        # never squeeze the number: it is the one thing on this screen that must be read
        self.number.setMinimumHeight(QFontMetrics(self.number.font()).height())
        self.ahead = label("", theme, 40, bold=True, align=Center)
        self.wait = label("", theme, 34, align=Center)
        self.status = label("", theme, 32, align=Center)
        self.qr = QLabel()
        self.qr.setAlignment(Center)
        self.qr_hint = label(self.t("scan_hint"), theme, 28, name="Muted", align=Center)
        self.offline = label(self.t("offline_note"), theme, 24, name="Muted", align=Center)
        self.box.addStretch(1)
        for w in (self.service, self.priority, self.number, self.ahead, self.wait,
                  self.status, self.qr, self.qr_hint, self.offline):
            self.box.addWidget(w)
        self.box.addStretch(2)
        row = QHBoxLayout()
        row.setSpacing(24)
        self.reprint_btn = nav_button(self.t("reprint"), theme, on_reprint)
        self.done_btn = nav_button(self.t("done"), theme, on_done)
        row.addWidget(self.reprint_btn, 1)
        row.addWidget(self.done_btn, 1)
        self.box.addLayout(row)

    def show_ticket(self, t: TicketOut) -> None:
        self.ticket = t
        name = t.service_name if self.lang == "zh" else t.service_name_en or t.service_name
        self.service.setText(name)
        self.service.setVisible(bool(name))
        self.priority.setVisible(t.priority)
        self.number.setText(t.number)
        self.ahead.setText(self.t("ahead", n=t.waiting_ahead) if t.waiting_ahead
                           else self.t("ahead_zero"))
        self.wait.setText(self.t("est_wait", t=duration(t.est_wait_s, self.lang)))
        self.wait.setVisible(t.waiting_ahead > 0)
        self.set_printed(t.printed)
        self.offline.setVisible(t.offline)
        payload = t.status_url or t.number
        side = 440 if not t.printed else 340
        side = round(side * (1.15 if self.theme.elderly else 1) * (0.7 if self.theme.compact
                                                                   else 1))
        self.qr.setPixmap(qr_pixmap(payload, side))

    def set_printed(self, printed: bool, message: str = "") -> None:
        self.status.setObjectName("Notice" if printed else "Warn")
        self.status.setStyle(self.status.style())
        self.status.setText(message or (self.t("take_printed") if printed
                                        else self.t("not_printed")))
        self.reprint_btn.setVisible(not printed)


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


class QueueScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang, tr("queue_title", lang))
        self.updated = label("", theme, 26, name="Muted")
        self.box.addWidget(self.updated)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("Screen")
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(24)
        scroll.setWidget(body)
        self.box.addWidget(scroll, 1)
        self.last: QueueOut | None = None

    def show_queue(self, q: QueueOut) -> None:
        self.last = q
        while self.body.count():
            item = self.body.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.setParent(None)
                w.deleteLater()
        th = self.theme
        ts = q.ts[11:19] if len(q.ts) >= 19 else q.ts
        self.updated.setText(f"{self.t('live')} · {ts}")
        # waiting per service
        card = Card(spacing=6)
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(10)
        for c, key in enumerate(("col_service", "col_waiting", "col_est")):
            grid.addWidget(label(self.t(key), th, 28, name="Muted", wrap=False,
                                 align=Qt.AlignmentFlag.AlignLeft if c == 0
                                 else Qt.AlignmentFlag.AlignRight), 0, c)
        for r, (sid, sq) in enumerate(sorted(q.services.items()), start=1):
            name = sq.name if self.lang == "zh" else sq.name_en
            grid.addWidget(label(f"{sid}  {name}", th, 34, bold=True), r, 0)
            grid.addWidget(label(str(sq.waiting), th, 40, bold=True, wrap=False,
                                 align=Qt.AlignmentFlag.AlignRight), r, 1)
            est = duration(sq.est_wait_s, self.lang) if sq.waiting else "—"
            grid.addWidget(label(est, th, 30, wrap=False, align=Qt.AlignmentFlag.AlignRight),
                           r, 2)
        grid.setColumnStretch(0, 1)
        card.box.addLayout(grid)
        self.body.addWidget(card)
        # windows now serving
        wcard = Card(spacing=6)
        wcard.box.addWidget(label(self.t("windows_serving"), th, 32, bold=True, name="Title"))
        wgrid = QGridLayout()
        wgrid.setHorizontalSpacing(24)
        wgrid.setVerticalSpacing(8)
        cols = 1 if th.elderly else 2
        for i, (wid, wq) in enumerate(sorted(q.windows.items(), key=lambda kv: _wkey(kv[0]))):
            if wq.paused or not wq.open:
                what, color = self.t("window_paused"), th.muted
            else:
                # A number being served stands out; an idle window is no alarm.
                what = wq.serving or self.t("window_idle")
                color = th.accent if wq.serving else th.muted
            cell = QHBoxLayout()
            cell.addWidget(label(self.t("window_n", w=wid), th, 32, wrap=False))
            v = label(what, th, 36, bold=True, wrap=False, align=Qt.AlignmentFlag.AlignRight)
            v.setStyleSheet(f"color: {color};")
            cell.addWidget(v, 1)
            wgrid.addLayout(cell, i // cols, i % cols)
        wcard.box.addLayout(wgrid)
        self.body.addWidget(wcard)
        if q.recent_calls:
            ccard = Card(spacing=6)
            ccard.box.addWidget(label(self.t("recent_calls"), th, 32, bold=True, name="Title"))
            for call in q.recent_calls[:3 if th.elderly else 5]:
                if call.ticket:
                    ccard.box.addWidget(label(self.t("call_line", t=call.ticket, w=call.window),
                                              th, 32))
            self.body.addWidget(ccard)
        self.body.addStretch(1)


def _wkey(wid: str) -> tuple[int, str]:
    return (int(wid), "") if wid.isdigit() else (10_000, wid)


class CheckinScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang, tr("checkin_title", lang))
        self.box.addStretch(1)
        self.prompt = label(self.t("checkin_prompt"), theme, 40, align=Center)
        self.box.addWidget(self.prompt)
        self.result = label("", theme, 34, bold=True, name="Notice", align=Center)
        self.result.hide()
        self.box.addWidget(self.result)
        self.box.addStretch(2)

    def show_read(self) -> None:
        self.result.setText(self.t("checkin_read"))
        self.result.show()


class OutOfServiceScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang)
        self.box.insertStretch(0, 2)
        # Both languages at once: nobody toggles a language on a dead kiosk.
        self.title.setText(f"{tr('oos_title', 'zh')}\n{tr('oos_title', 'en')}")
        self.title.setFont(theme.font(84, bold=True))
        self.title.setAlignment(Center)
        self.box.addWidget(label(tr("oos_body", "zh"), theme, 44, bold=True, align=Center))
        self.box.addWidget(label(tr("oos_body", "en"), theme, 30, name="Muted", align=Center))
        self.retry = label(self.t("oos_retry"), theme, 28, name="Muted", align=Center)
        self.box.addSpacing(40)
        self.box.addWidget(self.retry)
        self.box.addStretch(3)
