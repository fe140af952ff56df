"""A real agent under libfaketime whose wall clock steps (an RTC in local time corrected
by NTP, a restart 100 days ahead on a clock NTP never confirmed): no number twice on a
real day, no history deleted, a kiosk's retry still gets its first ticket."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from conftest import TZ, HallUnderTest, wait_until

pytestmark = pytest.mark.slow

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def under_faketime(h: HallUnderTest, offset: Path, synced: bool) -> None:
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is not installed (Debian: faketime)")
    h.env = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset),
             "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
             "HALL_EDGE_CLOCK_SYNCED": "1" if synced else "0"}


def take(c: httpx.Client, key: str | None = None) -> dict[str, object]:
    r = c.post("/v1/tickets", json={"service": "A"},
               headers={"Idempotency-Key": key or str(uuid.uuid4())})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_clock_stepped_back_over_midnight_repeats_no_number(tmp_path: Path) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    h = HallUnderTest(tmp_path / "hall")
    under_faketime(h, offset, synced=True)
    try:
        h.start()
        with h.client() as c:
            first = [take(c)["number"] for _ in range(3)]
            # The clock steps back to 23:00 yesterday (hall time): an RTC kept in local
            # time, read as UTC, then "corrected" by a confused time source.
            now = datetime.now(TZ)
            since_midnight = now.hour * 3600 + now.minute * 60 + now.second
            offset.write_text(f"-{since_midnight + 3600}\n")  # read at every call
            again = [take(c)["number"] for _ in range(3)]
            assert not set(first) & set(again), (first, again)
            clock = c.get("/v1/health").json()["devices"].get("clock", {})
            assert clock.get("status") == "degraded" and "behind" in clock["detail"]
    finally:
        h.close()


def test_restart_100_days_ahead_deletes_nothing(tmp_path: Path) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    h = HallUnderTest(tmp_path / "hall")
    under_faketime(h, offset, synced=True)
    key = str(uuid.uuid4())
    try:
        h.start()
        with h.client() as c:
            first = take(c, key)
            take(c)
        h.stop()
        offset.write_text("+100d\n")
        under_faketime(h, offset, synced=False)  # fake-hwclock far ahead, no NTP yet
        h.start()
        assert wait_until(lambda: "retention:" in h.log(), 20), h.log()[-2000:]
        h.stop()
        offset.write_text("+0\n")
        under_faketime(h, offset, synced=True)
        h.start()
        with h.client() as c:
            assert take(c, key)["ticket_id"] == first["ticket_id"]
            assert take(c)["number"] == "A003"
    finally:
        h.close()
