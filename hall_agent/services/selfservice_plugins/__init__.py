"""Self-service plugins of the 24-hour area (docs/selfservice.md).

A plugin is a small object with ``id``, ``name``, ``name_en``, ``kind`` and
``run(person, now) -> Result``; it asks its back end about the card holder and
returns label/value lines, which the agent shows on the kiosk and prints. The
back ends here are simulated (deterministic figures derived from the person's
``id_hash``), so every flow can be tested and shown without a real system; a
hall's integrator replaces :func:`backend` of a plugin with the real client.

Rules for a plugin: use ``person.id_number``/``person.name`` only to ask the back
end, never log, store or return them; put only masked forms on a result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from drivers.errors import HallEdgeError
from hall_agent.core.personal import Person


@dataclass(frozen=True, slots=True)
class Result:
    title: str
    title_en: str
    lines: tuple[tuple[str, str], ...]
    note: str = ""
    ok: bool = True
    extra: dict[str, str] = field(default_factory=dict)


class Plugin(Protocol):
    id: str
    name: str
    name_en: str
    kind: Literal["query", "print"]

    def run(self, person: Person, now: datetime) -> Result: ...


class BackendError(HallEdgeError, RuntimeError):
    """The back end could not answer; the message is for the citizen."""


def seeded(person: Person, salt: str) -> Callable[[int, int], int]:
    """Deterministic numbers per person and plugin: the simulated back ends' data."""
    digest = hashlib.sha256(f"{salt}:{person.id_hash}".encode()).digest()
    pos = [0]

    def draw(lo: int, hi: int) -> int:
        b = digest[pos[0] % len(digest)] * 256 + digest[(pos[0] + 1) % len(digest)]
        pos[0] += 2
        return lo + b % (hi - lo + 1)

    return draw


def registry() -> dict[str, Plugin]:
    from hall_agent.services.selfservice_plugins.housing_fund import HousingFund
    from hall_agent.services.selfservice_plugins.property import PropertyRecord
    from hall_agent.services.selfservice_plugins.social_insurance import SocialInsurance

    plugins: list[Plugin] = [SocialInsurance(), HousingFund(), PropertyRecord()]
    return {p.id: p for p in plugins}
