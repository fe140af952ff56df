"""What a self-service plugin is (docs/selfservice.md): its result, its back end's error,
and the simulated back ends' numbers."""

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
