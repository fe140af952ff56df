"""Whether to ask the central at all, judged per request type (MQTT.md, Requests and
their extensions).

A central that is connected but does not answer (hung, overloaded) would make every
citizen wait the full request timeout for a lease number. After
:data:`UNANSWERED_LIMIT` unanswered requests of a type in a row, requests of that
type are not sent (the caller falls back at once: the lease for a number, "try later"
for an appointment) and asked again after the pause (one request as a probe), at
the central's first acknowledgement (once per outage), or as soon as the central
comes online anew.

``ticket.number`` is the one request every central answers; an extension may be
unknown to an older central, which then answers ``unsupported`` or nothing. Each type
has its own :class:`Breaker`, so an extension the central does not know never stops
numbering, and a central that does not number never disables an extension.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("hall_agent.mqtt")

UNANSWERED_LIMIT = 3
ASK_AGAIN_AFTER_S = 15.0
# MQTT.md, Requests and their extensions: a central that answers ``unsupported`` does
# not learn the type within seconds; asked again after this long, or when it comes
# online anew (perhaps a newer version).
UNSUPPORTED = "unsupported"
ASK_UNSUPPORTED_AGAIN_AFTER_S = 300.0


class Breaker:
    """One request type's record of the central's answers. Not thread-safe: the link
    calls it with its pending lock held."""

    def __init__(self, rtype: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.rtype = rtype
        self.clock = clock
        self.unanswered = 0  # requests in a row with no answer in time
        self.not_asked = 0  # requests not sent because of the pause
        self.unsupported = False  # the central answered "unsupported"
        self._ask_again_at = 0.0  # clock(); 0 = ask
        self._early_probe = True  # an ack may bring the probe forward, once per outage

    @property
    def answering(self) -> bool:
        """False while requests of this type are not sent."""
        return not self._ask_again_at

    def may_ask(self, timeout_s: float) -> bool:
        """True if this request is to be sent. Once the pause is over, one request goes
        out as the probe; the ones racing it are not sent until it is answered."""
        if self.clock() < self._ask_again_at:
            self.not_asked += 1
            return False
        if self._ask_again_at:
            self._ask_again_at = self.clock() + timeout_s
        return True

    def answered(self, error: str | None) -> None:
        """An answer came in time; ``error`` is its ``error`` (None when ok)."""
        if error == UNSUPPORTED and self.rtype != "ticket.number":
            if not self.unsupported:
                log.warning("central does not support %s requests; asking again in %.0f s",
                            self.rtype, ASK_UNSUPPORTED_AGAIN_AFTER_S)
            self.unsupported = True
            self._early_probe = False  # acks say nothing about an unknown type
            self._ask_again_at = self.clock() + ASK_UNSUPPORTED_AGAIN_AFTER_S
            return
        if self._ask_again_at:
            log.warning("central answers %s requests again", self.rtype)
        self.reset()

    def timed_out(self) -> None:
        self.unanswered += 1
        if self.unanswered >= UNANSWERED_LIMIT:
            if not self._ask_again_at:
                log.warning("central did not answer %d %s requests in a row: not asking "
                            "(falling back at once), asking again every %.0f s",
                            self.unanswered, self.rtype, ASK_AGAIN_AFTER_S)
            self._ask_again_at = self.clock() + ASK_AGAIN_AFTER_S

    def acked(self) -> None:
        """The central acknowledged events: probably back. The next request asks at
        once instead of after the pause (once: a central that acknowledges but answers
        too slowly keeps the pause)."""
        if self._ask_again_at and self._early_probe:
            self._early_probe = False
            self._ask_again_at = min(self._ask_again_at, self.clock())

    def reset(self) -> None:
        """Ask again at once (an answer came, or the central came online anew)."""
        self.unanswered, self._ask_again_at, self._early_probe = 0, 0.0, True
        self.unsupported = False

    def describe(self) -> str:
        """What a technician reads when requests of this type are not sent."""
        what = "number" if self.rtype == "ticket.number" else self.rtype
        if self.unsupported:
            return f"central does not support {what} requests"
        return f"central online but not answering {what} requests"


class Breakers:
    """A :class:`Breaker` per request type, made at its first request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._by_type: dict[str, Breaker] = {}

    def of(self, rtype: str) -> Breaker:
        b = self._by_type.get(rtype)
        if b is None:
            b = self._by_type[rtype] = Breaker(rtype, self.clock)
        return b

    def all(self) -> list[Breaker]:
        return list(self._by_type.values())

    def acked(self) -> None:
        for b in self._by_type.values():
            b.acked()

    def reset(self) -> None:
        for b in self._by_type.values():
            b.reset()
