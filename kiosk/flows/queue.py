"""The queue as it stands: waiting per service, windows serving, recent calls.

The shell keeps the latest answer (``queue_data``, the rating flow lists windows
from it too) and refreshes it when a call or a ticket event arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QScrollArea,
    QScroller,
    QVBoxLayout,
    QWidget,
)

from hall_agent.contract.api import CallOut, QueueOut
from kiosk.host import KioskHost
from kiosk.screens import Screen
from kiosk.strings import Lang, duration, tr
from kiosk.theme import Theme
from kiosk.widgets import Card, label


class QueueScreen(Screen):
    """The calls first (what a waiting citizen looks for), then the windows, then the
    waiting per service; the whole page scrolls by dragging it, as a phone does."""

    def __init__(self, theme: Theme, lang: Lang, tz: tzinfo) -> None:
        super().__init__(theme, lang, tr("queue_title", lang))
        self.tz = tz
        self.updated = label("", theme, 26, name="Muted")
        self.box.addWidget(self.updated)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # a finger drags the page (touch screens send it as a left-button drag)
        QScroller.grabGesture(scroll.viewport(),
                              QScroller.ScrollerGestureType.LeftMouseButtonGesture)
        body = QWidget()
        body.setObjectName("Screen")
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(24)
        scroll.setWidget(body)
        self.area = scroll
        self.box.addWidget(scroll, 1)
        self.last: QueueOut | None = None

    def hall_time(self, iso: str, fmt: str = "%H:%M") -> str:
        """An agent's timestamp as the hall's clock shows it."""
        try:
            at = datetime.fromisoformat(iso)
        except ValueError:
            return ""
        return (at.astimezone(self.tz) if at.tzinfo else at).strftime(fmt)

    def show_queue(self, q: QueueOut) -> None:
        self.last = q
        while self.body.count():
            item = self.body.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.setParent(None)
                w.deleteLater()
        th = self.theme
        self.updated.setText(f"{self.t('live')} · {self.hall_time(q.ts, '%H:%M:%S')}")
        calls = recent_calls(q.recent_calls, 3 if th.elderly else 5)
        if calls:
            ccard = Card(spacing=6)
            ccard.box.addWidget(label(self.t("recent_calls"), th, 32, bold=True, name="Title"))
            for call, again in calls:
                win = call.window.removesuffix("号")  # a central's "5号": said once
                row = QHBoxLayout()
                line = self.t("call_line", t=call.ticket, w=win)
                if again:
                    line += f"（{self.t('called_again')}）" if self.lang == "zh" \
                        else f" ({self.t('called_again')})"
                row.addWidget(label(line, th, 32), 1)
                row.addWidget(label(self.hall_time(call.ts), th, 28, name="Muted", wrap=False,
                                    align=Qt.AlignmentFlag.AlignRight))
                ccard.box.addLayout(row)
            self.body.addWidget(ccard)
        self.body.addWidget(self._windows(q))
        self.body.addWidget(self._services(q))
        self.body.addStretch(1)

    def _services(self, q: QueueOut) -> Card:
        th = self.theme
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
        return card

    def _windows(self, q: QueueOut) -> Card:
        th = self.theme
        wcard = Card(spacing=6)
        wcard.box.addWidget(label(self.t("windows_serving"), th, 32, bold=True, name="Title"))
        wgrid = QGridLayout()
        wgrid.setHorizontalSpacing(24)
        wgrid.setVerticalSpacing(8)
        cols = 1 if th.elderly else 2
        windows = sorted(q.windows.items(), key=lambda kv: window_order(kv[0]))
        for i, (wid, wq) in enumerate(windows):
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
        return wcard


def recent_calls(calls: list[CallOut], most: int) -> list[tuple[CallOut, bool]]:
    """Newest first, each ticket once: a recall is the same citizen called again, so it
    marks the line ``again`` and moves it up, it does not add a second line."""
    out: list[tuple[CallOut, bool]] = []
    seen: dict[str, int] = {}
    for call in calls:
        if not call.ticket:
            continue
        if call.ticket in seen:  # an older call of a ticket already listed
            out[seen[call.ticket]] = (out[seen[call.ticket]][0], True)
            continue
        seen[call.ticket] = len(out)
        out.append((call, call.kind == "recall"))
    return out[:most]


def window_order(wid: str) -> tuple[int, str]:
    """Windows in the hall's order: 1, 2, … 10, then the named ones."""
    return (int(wid), "") if wid.isdigit() else (10_000, wid)




class QueueFlow:
    def __init__(self, k: KioskHost) -> None:
        self.k = k
        self.screen = QueueScreen(k.theme, k.lang, k.settings.tz)
        k.add_screen(self.screen)

    def refresh(self, *, on_rate_window: Callable[[], None]) -> None:
        """Ask the agent for the queue now; the screen on show follows the answer."""
        k, c = self.k, self.k.client
        if c is None:
            return

        def ok(q: QueueOut) -> None:
            k.queue_data = q
            if k.screen_name == "queue":
                self.screen.show_queue(q)
            elif k.screen_name == "rate_window":
                on_rate_window()

        k.call(c.queue, ok, flow_bound=False)

    def open(self) -> None:
        """Show the queue known so far; the caller asks the agent for the current one."""
        self.k.go(self.render)

    def render(self) -> None:
        if self.k.queue_data is not None:
            self.screen.show_queue(self.k.queue_data)
        self.k.show_screen("queue", self.screen)
