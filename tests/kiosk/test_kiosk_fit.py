"""Every screen fits the kiosk's screen, in both languages and both modes; switching at
run time never grows the window; idle brings back the hall's own language and mode; the
clock is the hall's whatever the machine's zone. In-process (pytest-qt, offscreen);
tests/kiosk/test_kiosk_x11.py does the same through a real X server."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QLabel

from hall_agent.contract.api import CallOut
from kiosk import sample
from kiosk.app import Kiosk
from kiosk.fit import fit_text, layout_problems, pieces, wrap_lines
from kiosk.flows.queue import recent_calls
from kiosk.host import KioskSettings
from kiosk.shots import VARIANTS, each_screen
from kiosk.theme import Theme
from kiosk.widgets import Tile, TileSpec

SCREEN = (1080, 1920)


def settle(k: Kiosk) -> None:
    app = QApplication.instance()
    assert app is not None
    for _ in range(3):
        app.processEvents()


@pytest.fixture
def kiosk(qtbot: Any) -> Iterator[Kiosk]:
    k = Kiosk(KioskSettings(events=False, idle_timeout_s=60), None)
    qtbot.addWidget(k)
    k.set_services(sample.SERVICES)
    k.queue_data = sample.QUEUE
    k.resize(*SCREEN)
    k.show()
    settle(k)
    yield k
    k.stop()


def test_every_screen_fits_in_both_languages_and_modes(qtbot: Any) -> None:
    seen: set[str] = set()
    problems: list[str] = []
    for name, tag, k in each_screen(KioskSettings(), sample.SERVICES, sample.QUEUE,
                                    size=SCREEN):
        seen.add(f"{name}_{tag}")
        problems += [f"{name}_{tag}: {p}" for p in layout_problems(k, SCREEN)]
    assert problems == []
    # the walk did reach every screen in every variant
    assert {"categories_en", "services_elderly_en", "queue_elderly", "rate_level_en",
            "rate_reason_elderly_en", "guide_elderly", "ticket_unprinted_elderly_en",
            "selfservice_slots_elderly"} <= seen
    assert len(seen) >= 25 * len(VARIANTS)


def test_the_check_sees_a_cut_label_and_a_widget_off_the_screen(kiosk: Kiosk) -> None:
    """The check above can fail: a title squeezed into a box too small for it, and a
    window taller than the screen, are both reported."""
    assert layout_problems(kiosk, SCREEN) == []
    kiosk.home.title.setFixedHeight(10)
    settle(kiosk)
    assert any("Title" in p and "text needs" in p for p in layout_problems(kiosk, SCREEN))
    kiosk.home.title.setMinimumHeight(0)
    kiosk.home.title.setMaximumHeight(16_777_215)
    kiosk.setMinimumHeight(2100)
    kiosk.resize(1080, 2100)
    settle(kiosk)
    found = layout_problems(kiosk, SCREEN)
    assert "window is 1080×2100, the screen 1080×1920" in found
    assert any("off the screen" in p for p in found)


def test_switching_mode_and_language_at_run_time_keeps_the_window_the_screens_size(
        qtbot: Any, kiosk: Kiosk) -> None:
    for press, want in ((kiosk.home.elderly_btn, ("zh", True)),
                        (None, ("en", True)), (None, ("en", False)), (None, ("zh", False))):
        button = press or (kiosk.home.lang_btn if want[0] != kiosk.lang
                           else kiosk.home.elderly_btn)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        settle(kiosk)
        assert (kiosk.lang, kiosk.elderly) == want
        assert (kiosk.width(), kiosk.height()) == SCREEN
        assert layout_problems(kiosk, SCREEN) == [], want
        # the buttons back are on the screen and say the way back
        assert kiosk.home.lang_btn.isVisible() and kiosk.home.elderly_btn.isVisible()


def test_idle_returns_to_the_halls_language_and_mode(qtbot: Any, kiosk: Kiosk) -> None:
    kiosk.settings.idle_timeout_s = 0.5
    qtbot.mouseClick(kiosk.home.lang_btn, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(kiosk.home.elderly_btn, Qt.MouseButton.LeftButton)
    assert (kiosk.lang, kiosk.elderly) == ("en", True)
    # on a screen of a flow, and left alone
    kiosk.tickets.start()
    assert kiosk.screen_name == "categories"
    qtbot.waitUntil(lambda: kiosk.screen_name == "home" and kiosk.lang == "zh", timeout=10_000)
    assert not kiosk.elderly and kiosk.home.title.text() == "欢迎办事，请点击所需服务"
    assert (kiosk.width(), kiosk.height()) == SCREEN
    # left in English on the home screen itself (after 完成): that times out too
    qtbot.mouseClick(kiosk.home.lang_btn, Qt.MouseButton.LeftButton)
    assert kiosk.lang == "en" and kiosk.screen_name == "home"
    qtbot.waitUntil(lambda: kiosk.lang == "zh", timeout=10_000)
    # while in the hall's own language and mode, home never times out
    assert kiosk._idle.left() == 0


def test_a_kiosk_that_starts_in_english_returns_to_english(qtbot: Any) -> None:
    k = Kiosk(KioskSettings(events=False, idle_timeout_s=0.5, lang="en"), None)
    qtbot.addWidget(k)
    k.show()
    qtbot.mouseClick(k.home.lang_btn, Qt.MouseButton.LeftButton)
    assert k.lang == "zh"
    qtbot.waitUntil(lambda: k.lang == "en", timeout=10_000)
    k.stop()


@pytest.fixture
def machine_on_london() -> Iterator[None]:
    """The machine's zone as a Raspberry Pi ships it (Europe/London), for this test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/London"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_the_clock_is_the_halls_with_the_machine_on_another_zone(
        machine_on_london: None, kiosk: Kiosk) -> None:
    kiosk._on_tick()
    hall = datetime.now(ZoneInfo("Asia/Shanghai"))
    near = {(hall + timedelta(minutes=d)).strftime("%H:%M") for d in (-1, 0, 1)}
    assert kiosk.header.clock_label.text() in near
    assert kiosk.header.clock_label.text() != time.strftime("%H:%M")  # the machine's
    assert kiosk.header.date_label.text().startswith(f"{hall.month}月")
    # the queue screen's times are the hall's too, not a second clock
    kiosk.open_queue()
    assert kiosk.queue.screen.updated.text().endswith("10:15:00")
    kiosk.settings.timezone = "Europe/London"
    kiosk._on_tick()
    assert kiosk.header.clock_label.text() == datetime.now(
        ZoneInfo("Europe/London")).strftime("%H:%M")


def test_chinese_breaks_only_between_names_and_english_at_spaces(qtbot: Any) -> None:
    th = Theme()
    fm = QFontMetrics(th.font(26))
    text = "户籍办理、出入境、车驾管"
    assert pieces(text) == ["户籍办理、", "出入境、", "车驾管"]
    narrow = fm.horizontalAdvance("户籍办理、出入境、") + 2
    assert wrap_lines(text, fm, narrow) == ["户籍办理、出入境、", "车驾管"]
    assert wrap_lines(text, fm, fm.horizontalAdvance("户籍办理、") + 2) == [
        "户籍办理、", "出入境、", "车驾管"]
    assert wrap_lines(text, fm, fm.horizontalAdvance("出入境、") + 2) is None  # smaller
    # a name wider than the line is set smaller rather than broken inside
    font, lines = fit_text("Vehicles & driving licences", th, 40,
                           QFontMetrics(th.font(40)).horizontalAdvance("Vehicles &") + 4, 3)
    assert lines == ["Vehicles &", "driving", "licences"] or len(lines) < 3
    assert font.pixelSize() <= th.font(40).pixelSize()
    # at the floor a text too long is cut after a whole line, with an ellipsis
    _, cut = fit_text("一、二、三、四、五、六、七、八、九、十" * 3, th, 30, 120, 2)
    assert len(cut) == 2 and cut[-1].endswith("…")
    # no room at all (a tile squeezed by a denser screen): one line, cut, and an answer
    _, one = fit_text("Same day, on the spot", th, 24, 60, 6, max_height=-5)
    assert len(one) == 1 and one[0].endswith("…")


def test_a_tile_keeps_its_title_and_subtitle_inside_in_english(qtbot: Any) -> None:
    spec = TileSpec("cat:公安", "Public security",
                    "Household registration, Exit & entry permits, Vehicles & driving "
                    "licences", badge="7 waiting")
    tile = Tile(spec, Theme(), 200, 470)
    qtbot.addWidget(tile)
    tile.resize(470, 200)
    tile.show()
    for lab in (tile.title_label, tile.sub_label, tile.badge_label):
        assert tile.rect().contains(lab.geometry()), lab.text()
    assert tile.title_label.geometry().bottom() < tile.sub_label.geometry().top()
    assert layout_problems(tile) == []


def test_a_recall_is_one_line_marked_again() -> None:
    def call(cid: str, t: str, kind: str = "call") -> CallOut:
        return CallOut(call_id=cid, ticket=t, window="1", kind=kind,  # type: ignore[arg-type]
                       ts="2024-05-20T10:00:00+08:00")

    calls = [call("3", "A002", "recall"), call("2", "A003"), call("1", "A002")]
    assert [(c.ticket, again) for c, again in recent_calls(calls, 5)] == [
        ("A002", True), ("A003", False)]


def test_the_queue_page_scrolls_by_dragging_it(qtbot: Any) -> None:
    k = Kiosk(KioskSettings(events=False, elderly=True), None)
    qtbot.addWidget(k)
    k.queue_data = sample.QUEUE
    k.resize(*SCREEN)
    k.show()
    k.open_queue()
    settle(k)
    # the calls come first, where a waiting citizen looks
    calls = k.queue.screen.body.itemAt(0)
    assert calls is not None and calls.widget() is not None
    assert "最近叫号" in [w.text() for w in calls.widget().findChildren(QLabel)]
    bar = k.queue.screen.area.verticalScrollBar()
    assert bar is not None and bar.maximum() > 0  # elderly: more than one screen
    vp = k.queue.screen.area.viewport()
    assert vp is not None
    start = vp.rect().center()
    # a finger's drag, in real time: the scroller reads the speed between the events
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dy in range(0, 640, 40):
        qtbot.wait(20)
        QTest.mouseMove(vp, start - QPoint(0, dy))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start - QPoint(0, 640))
    qtbot.waitUntil(lambda: bar.value() > 0, timeout=10_000)
    k.stop()
