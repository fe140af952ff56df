"""From a ticket page's token back to its ticket (hall_agent/contract/ticket_token.py).

The token is derived, not stored by whoever printed it, so hall-central derives it
too: for each of today's tickets it has (numbered here or merged from a kiosk's
lease), once, kept in memory for the day. A token unknown after looking at the
tickets added since the last look is not a ticket of today: yesterday's tokens and
guesses get the same answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hall_agent.contract.ticket_token import ticket_token, well_formed
from hall_agent.core.store import Store


class TokenIndex:
    def __init__(self, store: Store, secret: bytes, today: Callable[[], str]) -> None:
        self.store, self.secret, self.today = store, secret, today
        self._lock = threading.Lock()
        self._day = ""
        self._last = 0
        self._map: dict[str, str] = {}

    def token_of(self, ticket_id: str, day: str) -> str:
        return ticket_token(self.secret, ticket_id, day)

    def lookup(self, token: str) -> str | None:
        """The ticket_id of today's ticket with this token, or None."""
        if not well_formed(token):
            return None
        with self._lock:
            day = self.today()
            if day != self._day:
                self._day, self._last, self._map = day, 0, {}
            tid = self._map.get(token)
            if tid is None:
                self._refresh(day)
                tid = self._map.get(token)
            return tid

    def _refresh(self, day: str) -> None:
        rows = self.store.query("SELECT rowid, ticket_id FROM tickets WHERE day = ? AND "
                                "rowid > ? ORDER BY rowid", (day, self._last))
        for r in rows:
            self._map[ticket_token(self.secret, r["ticket_id"], day)] = r["ticket_id"]
            self._last = int(r["rowid"])
