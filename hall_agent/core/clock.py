"""Whether the wall clock may be believed, and what the agent does while it may not.

A Pi has no battery clock: at boot fake-hwclock restores the time it saved at the last
shutdown (a Sunday maintenance boot, say), and NTP steps it to the real time later; an
x86 box whose RTC keeps local time starts 8 h off. Numbers are per hall-local day, so a
clock that says "a new day" when it is not would issue A001 a second time on one real
day. Until the clock is known good — the kernel says NTP has synchronised it (adjtimex,
what ``timedatectl`` reports), and it is not behind the newest ticket in the store —
the agent opens no new numbering day of its own: it continues the newest day, and the
numbers it gave meanwhile are carried into the next day it opens (:meth:`carry`), so a
ticket numbered during the doubt is never numbered again after the correction.
Retention does not act on such a clock either (services/retention.py).

``HALL_EDGE_CLOCK_SYNCED=1`` in the agent's environment says the clock is good without
NTP (a hall with no time server whose clock a technician set by hand, and the tests);
``=0`` says it is not.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hall_agent.core.store import Store

ENV_SYNCED = "HALL_EDGE_CLOCK_SYNCED"
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
# How far behind the newest ticket the clock may be before it is not believed: the
# small steps NTP makes while slewing are no reason to stop opening days.
BEHIND_SLACK_S = 120.0


def ntp_synchronised() -> bool | None:
    """The kernel's answer (adjtimex, read only), unless ``HALL_EDGE_CLOCK_SYNCED`` says;
    None when it cannot tell (not Linux)."""
    env = os.environ.get(ENV_SYNCED, "").strip()
    if env in ("0", "1"):
        return env == "1"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


@dataclass(frozen=True, slots=True)
class ClockState:
    trusted: bool
    detail: str = ""  # Chinese, then English, for health and doctor
    code: str = ""  # clock.unsynced | clock.behind


class ClockGuard:
    """Judges the wall clock for the queue engine and retention."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 synced: Callable[[], bool | None] = ntp_synchronised) -> None:
        self.store = store
        self.clock = clock
        self.synced = synced
        self._lock = threading.Lock()
        # The newest ticket numbered with a good clock (one numbered in doubt may carry
        # a time 8 h ahead, which must not hold the clock in doubt for 8 h after).
        kept = store.meta_get("clock_good_ts")
        if kept is None:
            row = store.one("SELECT MAX(issued_at) FROM tickets")
            kept = None if row is None or row[0] is None else str(row[0])
        self._newest = float(kept) if kept is not None else 0.0

    def saw_ticket(self, db: sqlite3.Connection, issued_at: float) -> None:
        """A ticket numbered with a good clock, in the caller's transaction."""
        db.execute("INSERT INTO meta (key, value) VALUES ('clock_good_ts', ?) ON CONFLICT "
                   "(key) DO UPDATE SET value = MAX(CAST(value AS REAL), excluded.value)",
                   (issued_at,))
        with self._lock:
            self._newest = max(self._newest, issued_at)

    @property
    def newest(self) -> float:
        """The newest ``issued_at`` in the store (unix seconds; 0 for none)."""
        return self._newest

    def state(self, now: float | None = None) -> ClockState:
        now = self.clock() if now is None else now
        if self.synced() is False:
            return ClockState(False, "系统时钟未经 NTP 同步，本机不会自行开始新的取号日，继续当前"
                              "号段；请检查网络与时间服务器 / the system clock is not NTP-"
                              "synchronised: no new numbering day is opened, numbering "
                              "continues the newest day; check the network and the time "
                              "server (hallctl doctor)", "clock.unsynced")
        if self._newest and now < self._newest - BEHIND_SLACK_S:
            behind = (self._newest - now) / 60
            return ClockState(False, f"系统时钟比最新一张票早 {behind:.0f} 分钟，继续当前号段；"
                              f"请校准时钟 / the clock is {behind:.0f} min behind the newest "
                              "ticket: numbering continues the newest day; correct the "
                              "clock (hallctl doctor)", "clock.behind")
        return ClockState(True)

    # ------------------------------------------------------------------ numbering

    def numbering_day(self, db: sqlite3.Connection, local_day: str, prefix: str,
                      trusted: bool) -> tuple[str, int]:
        """The day to number ``prefix`` under now, and the number the new day's counter
        starts after (0 but for a new day opened after numbers given in doubt)."""
        if not trusted:
            row = db.execute("SELECT MAX(day) FROM counters").fetchone()
            newest = row[0] if row is not None else None
            return (newest if newest is not None else local_day), 0
        have = db.execute("SELECT 1 FROM counters WHERE day = ? AND service = ?",
                          (local_day, prefix)).fetchone()
        carried = db.execute("SELECT value FROM meta WHERE key = ?",
                             (f"carry:{prefix}",)).fetchone()
        if carried is None:
            return local_day, 0
        day, _, seq = str(carried[0]).partition(" ")
        if have is not None or day == local_day:
            # The day numbered in doubt is today after all: its counter goes on.
            db.execute("DELETE FROM meta WHERE key = ?", (f"carry:{prefix}",))
            return local_day, 0
        db.execute("DELETE FROM meta WHERE key = ?", (f"carry:{prefix}",))
        return local_day, int(seq)

    @staticmethod
    def carry(db: sqlite3.Connection, day: str, prefix: str, seq: int) -> None:
        """Remember a number given while the clock was in doubt: the next day opened
        with a good clock starts after it (that day may be the real one it was given on)."""
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                   "SET value = excluded.value", (f"carry:{prefix}", f"{day} {seq}"))
