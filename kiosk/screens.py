"""The screens the shell and several flows share: home, a page of choices, a message,
the ticket, out of service. Each one only draws what it is given and reports taps
upward; the shell (:mod:`kiosk.app`) and the flows (:mod:`kiosk.flows`) decide what
happens next. A flow's own screens live with it."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from hall_agent.contract.api import TicketOut
from kiosk.qr import qr_pixmap
from kiosk.strings import Lang, duration, tr
from kiosk.theme import Theme
from kiosk.widgets import Card, Tile, TileGrid, TileSpec, label, nav_button

Center = Qt.AlignmentFlag.AlignCenter


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
        self.grid = TileGrid(theme, lang, tile_height=200 if theme.elderly else 300, page_size=8,
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
        side = round(side * (1.15 if self.theme.elderly else 1) * (0.55 if self.theme.compact
                                                                   else 1))
        self.qr.setPixmap(qr_pixmap(payload, side))

    def set_printed(self, printed: bool, message: str = "") -> None:
        self.status.setObjectName("Notice" if printed else "Warn")
        self.status.setStyle(self.status.style())
        self.status.setText(message or (self.t("take_printed") if printed
                                        else self.t("not_printed")))
        self.reprint_btn.setVisible(not printed)


class OutOfServiceScreen(Screen):
    def __init__(self, theme: Theme, lang: Lang) -> None:
        super().__init__(theme, lang)
        self.box.insertStretch(0, 2)
        # Both languages at once: nobody toggles a language on a dead kiosk.
        self.title.setText(f"{tr('oos_title', 'zh')}\n{tr('oos_title', 'en')}")
        self.title.setFont(theme.font(84, bold=True))
        self.title.setAlignment(Center)
        self.body_zh = label(tr("oos_body", "zh"), theme, 44, bold=True, align=Center)
        self.body_en = label(tr("oos_body", "en"), theme, 30, name="Muted", align=Center)
        self.box.addWidget(self.body_zh)
        self.box.addWidget(self.body_en)
        self.retry = label(self.t("oos_retry"), theme, 28, name="Muted", align=Center)
        self.box.addSpacing(40)
        self.box.addWidget(self.retry)
        # What a technician needs, small: the agent's own words (it answers; its storage
        # does not take a ticket).
        self.staff = label("", theme, 24, name="Muted", align=Center)
        self.staff.setVisible(False)
        self.box.addSpacing(24)
        self.box.addWidget(self.staff)
        self.box.addStretch(3)
        self.reason: tuple[str, str] | None = None

    def set_reason(self, reason: tuple[str, str] | None) -> None:
        """``None``: the agent does not answer. Else (Chinese, English) of why it cannot
        issue (a storage fault): the citizen is sent elsewhere, the staff told why."""
        self.reason = reason
        key = "oos_storage" if reason else "oos_body"
        self.body_zh.setText(tr(key, "zh"))
        self.body_en.setText(tr(key, "en"))
        self.staff.setVisible(reason is not None)
        if reason:
            zh, en = reason
            lines = [tr("oos_staff", "zh", detail=zh)]
            if en and en != zh:
                lines.append(tr("oos_staff", "en", detail=en))
            self.staff.setText("\n".join(lines))
