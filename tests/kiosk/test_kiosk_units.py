"""Kiosk pieces that need no agent: search, wording, fonts, and --screenshot with the agent down."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PyQt6.QtGui import QFontMetrics

from kiosk import sample
from kiosk.app import Kiosk
from kiosk.host import KioskSettings
from kiosk.main import main
from kiosk.pinyin import initials, matches_initials
from kiosk.strings import TEXT, duration, promise_text, tr, when_text
from kiosk.theme import Theme

TZ = ZoneInfo("Asia/Shanghai")


def test_pinyin_initials_of_common_service_names() -> None:
    assert initials("社保医保") == "SBYB"
    assert initials("住房公积金") == "ZFGJJ"
    assert initials("不动产登记") == "BDCDJ"
    assert initials("出入境") == "CRJ"


def test_polyphones_match_any_reading() -> None:
    assert matches_initials("yh", "中国银行")
    assert matches_initials("zx", "重新申领")
    assert matches_initials("cx", "重新申领")
    assert not matches_initials("gjj", "社保医保")


def test_guide_search_finds_by_initials_chinese_and_english(qtbot: Any) -> None:
    k = Kiosk(KioskSettings(), None)
    qtbot.addWidget(k)
    k.set_services(sample.SERVICES)
    k.guides.open()
    g = k.guides.list
    assert [s.id for s in g.matching("GJJ")] == ["B"]
    assert [s.id for s in g.matching("公积金")] == ["B"]
    assert [s.id for s in g.matching("provident")] == ["B"]
    assert "A" in [s.id for s in g.matching("sb")]
    # the on-screen keyboard types initials into the search
    for key in "BDC":
        g._key(key)
    assert g.search.text() == "BDC"
    # C 不动产登记 by its name's initials, B 住房公积金 by its category's (住房不动产)
    assert sorted(t.key for t in g.results.tiles) == ["B", "C"]
    g._key("\b")
    assert g.search.text() == "BD"
    g._key("")
    assert g.search.text() == ""


def test_waits_and_openings_read_naturally() -> None:
    assert duration(30, "zh") == "不到 1 分钟"
    assert duration(900, "zh") == "15 分钟"
    assert duration(3780, "en") == "1 h 3 min"
    now = datetime(2024, 5, 20, 18, 0, tzinfo=TZ)
    assert when_text("2024-05-21T08:30:00+08:00", "zh", now) == "明天 08:30"
    assert when_text("2024-05-20T19:00:00+08:00", "en", now) == "today at 19:00"
    assert when_text("2024-05-23T08:30:00+08:00", "zh", now) == "5月23日 08:30"
    assert promise_text("60分钟办结", "en") == "Done within 60 min"
    assert promise_text("60分钟办结", "zh") == "60分钟办结"


def test_every_string_has_both_languages_and_glyphs_in_the_kiosk_font(qtbot: Any) -> None:
    fm = QFontMetrics(Theme().font(30))
    missing = set()
    for key, (zh, en) in TEXT.items():
        assert zh and en, key
        for ch in zh + en:
            if not ch.isspace() and not fm.inFontUcs4(ord(ch)):
                missing.add(ch)
    assert not missing, f"these would show as boxes: {''.join(sorted(missing))}"
    assert tr("ahead", "zh", n=3) == "前面还有 3 人等候"


def test_touch_targets_are_at_least_15_mm(qtbot: Any) -> None:
    th = Theme(dpi=160)  # a dense panel: 15 mm is 94 px
    assert th.touch_px == 94
    assert th.target(60) == 94


def test_screenshot_renders_every_screen_with_the_agent_down(tmp_path: Path,
                                                              qtbot: Any) -> None:
    out = tmp_path / "shots"
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[hall]\nid = "fz-test"\nname = "测试服务中心"\ncatalog = "none.toml"\n'
                   '[agent]\napi = "127.0.0.1:9"\n', encoding="utf-8")
    assert main(["--screenshot", str(out), "--config", str(cfg)]) == 0
    names = {p.name for p in out.glob("*.png")}
    for screen in ("home", "categories", "services", "priority", "ticket", "ticket_unprinted",
                   "closed", "guides", "guide", "queue", "rate_window", "rate_level",
                   "rate_done", "checkin", "out_of_service"):
        for variant in ("zh", "en", "elderly"):
            assert f"{screen}_{variant}.png" in names


def test_the_kiosk_knows_every_storage_fault_the_agent_answers() -> None:
    """The kiosk goes out of service on exactly the codes the agent's store refuses
    with, and its sample staff line is the agent's own text."""
    from hall_agent.contract.api import STORAGE_FAULTS
    from hall_agent.core.storage import FULL, IO, READONLY
    from kiosk import sample

    assert {c.code for c in (FULL, READONLY, IO)} == STORAGE_FAULTS
    assert (FULL.zh, FULL.en) == sample.STORAGE_FULL
