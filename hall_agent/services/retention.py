"""Retention (``[agent] retention_days``): at start, then every six hours.

Never on a clock in doubt (core/clock.py): a restart 100 days ahead on a clock NTP has
not confirmed would otherwise delete every ticket, call, counter and idempotency key,
and after the correction A001 would come again and a kiosk's retry would make a second
ticket. The store itself never deletes the newest numbering day (Store.prune).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hall_agent.core.clock import ClockGuard
from hall_agent.core.store import Store

log = logging.getLogger("hall_agent")

EVERY_S = 6 * 3600


class Retention:
    def __init__(self, store: Store, retention_days: int, guard: ClockGuard | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._days = retention_days
        self._guard = guard
        self._clock = clock
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="housekeeping", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> dict[str, int] | None:
        """Prune once; None when the clock is in doubt and nothing was looked at."""
        now = self._clock()
        if self._guard is not None:
            state = self._guard.state(now)
            if not state.trusted:
                log.warning("retention: skipped, the clock is in doubt (%s)", state.detail)
                return None
        gone = self._store.prune(now, self._days)
        if gone:
            log.info("retention: deleted %s", ", ".join(
                f"{n} {table}" for table, n in gone.items()))
        return gone

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:
                log.exception("retention: pruning the store failed; will retry")
            if self._stop.wait(EVERY_S):
                return
