"""Log lines carry the hall's time with its offset, whatever the machine's zone."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hall_agent import logs


@pytest.mark.parametrize("kind", ["text", "kv", "json"])
def test_a_log_line_is_stamped_in_hall_time(kind: str) -> None:
    when = datetime(2026, 11, 30, 1, 12, 3, 412000, tzinfo=ZoneInfo("UTC"))
    record = logging.LogRecord("hall_agent", logging.INFO, __file__, 1, "hello", None, None)
    record.created = when.timestamp()
    record.msecs = 412.0
    try:
        logs.set_timezone(ZoneInfo("Asia/Shanghai"))
        line = logs.make_formatter(kind).format(record)
        assert "2026-11-30T09:12:03.412+08:00" in line
        logs.set_timezone(ZoneInfo("Asia/Urumqi"))
        assert "2026-11-30T07:12:03.412+06:00" in logs.make_formatter(kind).format(record)
    finally:
        logs.set_timezone(ZoneInfo("Asia/Shanghai"))
