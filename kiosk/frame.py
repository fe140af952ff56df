"""The shell's frame around the screens: the header (hall name, clock) and the saver."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, tzinfo

from PyQt6.QtCore import QObject, Qt, QTimer
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from kiosk.strings import Lang, tr
from kiosk.theme import Theme
from kiosk.widgets import label, nav_button

_WEEKDAYS = "一二三四五六日"


class Header(QWidget):
    """The hall's name on the left, the time and the date on the right."""

    def __init__(self, theme: Theme, hall_name: str) -> None:
        super().__init__()
        self.setObjectName("Header")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        h = QHBoxLayout(self)
        h.setContentsMargins(40, 22, 40, 22)
        self.hall_label = label(hall_name, theme, 44, bold=True)
        clock = QVBoxLayout()
        clock.setSpacing(0)
        self.clock_label = label("", theme, 44, bold=True, wrap=False,
                                 align=Qt.AlignmentFlag.AlignRight)
        self.date_label = label("", theme, 22, wrap=False, align=Qt.AlignmentFlag.AlignRight)
        clock.addWidget(self.clock_label)
        clock.addWidget(self.date_label)
        h.addWidget(self.hall_label, 1)
        h.addLayout(clock)

    def tick(self, lang: Lang, tz: tzinfo) -> None:
        """The hall's time, whatever zone the machine is set to (a Pi ships on
        Europe/London, a server on UTC): the same time the ticket prints."""
        now = datetime.now(tz)
        self.clock_label.setText(now.strftime("%H:%M"))
        if lang == "zh":
            self.date_label.setText(f"{now.month}月{now.day}日 星期{_WEEKDAYS[now.weekday()]}")
        else:
            self.date_label.setText(now.strftime("%a %d %b"))


class Footer(QWidget):
    """Back on the left, home on the right, the idle countdown between them."""

    def __init__(self, theme: Theme, lang: Lang, *, on_back: Callable[[], None],
                 on_home: Callable[[], None]) -> None:
        super().__init__()
        self.setObjectName("Footer")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        f = QHBoxLayout(self)
        f.setContentsMargins(40, 16, 40, 20)
        f.setSpacing(24)
        self.back_btn = nav_button(tr("back", lang), theme, on_back)
        self.home_btn = nav_button(tr("home", lang), theme, on_home)
        self.countdown = label("", theme, 26, name="Muted", wrap=False,
                               align=Qt.AlignmentFlag.AlignCenter)
        f.addWidget(self.back_btn, 1)
        f.addWidget(self.countdown, 1)
        f.addWidget(self.home_btn, 1)


class IdleTimer(QObject):
    """One countdown to ``on_due``; :meth:`left` is what the footer counts down."""

    def __init__(self, parent: QObject, on_due: Callable[[], None]) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(on_due)
        self._deadline = 0.0

    def start(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._timer.start(max(1, round(seconds * 1000)))

    def stop(self) -> None:
        self._timer.stop()
        self._deadline = 0.0

    def left(self) -> float:
        """Seconds until due; 0 when stopped."""
        return max(0.0, self._deadline - time.monotonic()) if self._deadline else 0.0


class Saver(QLabel):
    """A dark cover over the whole window. ``on_due`` runs when the time set by
    :meth:`arm` has passed untouched; it decides whether to :meth:`dim`."""

    def __init__(self, parent: QWidget, on_due: Callable[[], None]) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("background: #000; color: #7f8fa6;")
        self.hide()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(on_due)

    def arm(self, seconds: float) -> None:
        """Count down afresh; 0 or less: never."""
        if seconds > 0:
            self._timer.start(max(1, round(seconds * 1000)))
        else:
            self._timer.stop()

    def dim(self, theme: Theme, text: str) -> None:
        parent = self.parentWidget()
        self.setFont(theme.font(44))
        self.setText(text)
        if parent is not None:
            self.setGeometry(parent.rect())
        self.raise_()
        self.show()
