"""What the core answers when the hall's rules say no.

The core speaks the hall's language, not HTTP: a refusal says *why* in domain
terms (:class:`Why`), and only the API (hall_agent/api) turns that into a status
code. A refusal also names the request field at fault and carries a message a
citizen or a clerk can read, in Chinese and in English.
"""

from __future__ import annotations

from enum import StrEnum

from drivers.errors import HallEdgeError


class Why(StrEnum):
    INVALID = "invalid"          # the request itself is wrong (a field, a value)
    CONFLICT = "conflict"        # valid, but the rules forbid it now (paused, closed…)
    NOT_FOUND = "not_found"      # it names something that does not exist
    UNAVAILABLE = "unavailable"  # something it needs is down (central, lease, backend)


class Refused(HallEdgeError, ValueError):
    """A queue, card or booking operation that the rules forbid.

    ``code`` is a stable machine-readable reason, ``field`` the request field at
    fault, ``message`` (``str(e)``) the Chinese text and ``message_en`` the English.
    """

    def __init__(self, message: str, *, code: str, field: str | None = None,
                 why: Why = Why.CONFLICT, en: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.why = why
        self.message_en = en or message

    @property
    def message(self) -> str:
        return str(self)
