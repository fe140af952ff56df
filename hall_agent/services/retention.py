"""Retention (``[agent] retention_days``): at start, then every six hours."""

from __future__ import annotations

import logging
import threading
import time

from hall_agent.core.store import Store

log = logging.getLogger("hall_agent")

EVERY_S = 6 * 3600


class Retention:
    def __init__(self, store: Store, retention_days: int) -> None:
        self._store = store
        self._days = retention_days
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="housekeeping", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                gone = self._store.prune(time.time(), self._days)
                if gone:
                    log.info("retention: deleted %s", ", ".join(
                        f"{n} {table}" for table, n in gone.items()))
            except Exception:
                log.exception("retention: pruning the store failed; will retry")
            if self._stop.wait(EVERY_S):
                return
