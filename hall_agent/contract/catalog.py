"""The service catalogue (services.toml) as pydantic models; loaded by ``load_catalog``."""

from __future__ import annotations

import itertools
import re
from datetime import time
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from drivers.config_base import Section


class _Model(Section, BaseModel):
    """Section's rules; BaseModel is named again only so ruff sees a pydantic model."""


_HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_hours(spec: str) -> list[tuple[time, time]] | None:
    """``"08:30-12:00,13:30-17:30"`` → spans; ``"24h"`` → None (always open)."""
    if spec.strip() == "24h":
        return None
    spans: list[tuple[time, time]] = []
    for part in spec.split(","):
        m = _HOURS_RE.match(part.strip())
        if not m:
            raise ValueError(f"{part.strip()!r} is not HH:MM-HH:MM; write e.g. "
                             "\"08:30-12:00,13:30-17:30\" or \"24h\"")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r} is not a time of day")
        start = time(h1, m1)
        end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        spans.append((start, end))
    spans.sort()
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        if s2 < e1:
            raise ValueError(f"hours {spec!r} overlap")
    return spans


class Service(_Model):
    id: Annotated[str, Field(pattern=r"^[A-Z]{1,2}$", description=(
        "the ticket prefix: 1–2 capital letters, not I or O (read as 1 and 0 on a ticket)"))]
    name: Annotated[str, Field(min_length=1, max_length=20, description=(
        "the service's name, on the kiosk's button and the ticket"))]
    name_en: Annotated[str, Field(min_length=1, max_length=40, description=(
        "the name in English, for the kiosk in English"))]
    category: Annotated[str, Field(max_length=12, description=(
        "the kiosk's group of services this one is shown under"))] = "综合服务"
    category_en: Annotated[str, Field(max_length=30, description="the group in English")
                           ] = "General"
    hours: str = Field(default="08:30-12:00,13:30-17:30", description=(
        "when tickets are issued, HH:MM-HH:MM[,…] in hall time, or \"24h\""))
    daily_limit: Annotated[int | None, Field(ge=1, le=9999)] = None
    avg_service_s: Annotated[int, Field(ge=10, le=7200, description=(
        "expected service time, in seconds, used for the wait estimate until the "
        "day has measured service times"))] = 300
    promise: Annotated[str, Field(max_length=20, description="time promise, e.g. 60分钟办结")
                       ] = ""
    guide: str = Field(default="", description="the service guide shown on the kiosk "
                                              "(Markdown)")
    guide_en: str = Field(default="", description="the guide in English (Markdown); "
                                                  "empty = the kiosk shows the Chinese one")
    promise_en: Annotated[str, Field(max_length=40, description="the promise in English")
                          ] = ""
    requires_id: Annotated[bool, Field(description=(
        "a real-name service: a ticket needs an ID card on the reader"))] = False
    max_open_per_person: Annotated[int | None, Field(ge=1, le=20, description=(
        "open (waiting or called) tickets one person may hold for this service per day; "
        "counts ID-linked tickets only; none = no limit"))] = 1

    @field_validator("id")
    @classmethod
    def _no_i_or_o(cls, v: str) -> str:
        if "I" in v or "O" in v:
            raise ValueError(f"{v!r}: I and O are not used in ticket prefixes (they read as "
                             "1 and 0 beside the digits); choose other letters")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        parse_hours(v)
        return v

    @property
    def spans(self) -> list[tuple[time, time]] | None:
        return parse_hours(self.hours)


class Window(_Model):
    id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,4}$", description=(
        "the window's number, as on its sign and in calls"))]
    name: str = Field(default="", description="an optional name shown beside the number")
    services: Annotated[list[str], Field(min_length=1, description=(
        "the services this window calls, in order of preference"))]


class Catalog(_Model):
    services: Annotated[list[Service], Field(min_length=1)]
    windows: list[Window] = []

    # Errors about one entry name it as the file does ("[[windows]] #2 (id "5")"), so an
    # administrator finds it; config._format prints them as they are.
    @field_validator("services")
    @classmethod
    def _unique_services(cls, v: list[Service]) -> list[Service]:
        for i, s in enumerate(v):
            first = next(j for j, x in enumerate(v) if x.id == s.id)
            if first < i:
                raise ValueError(f"[[services]] #{i + 1}: id {s.id!r} is already used by "
                                 f"[[services]] #{first + 1}; each ticket prefix must be "
                                 "unique")
        return v

    @model_validator(mode="after")
    def _refs(self) -> Catalog:
        ids = [s.id for s in self.services]
        for i, w in enumerate(self.windows):
            entry = f"[[windows]] #{i + 1} (id {w.id!r})"
            first = next(j for j, x in enumerate(self.windows) if x.id == w.id)
            if first < i:
                raise ValueError(f"{entry}: this id is already used by [[windows]] "
                                 f"#{first + 1}")
            for s in w.services:
                if s not in ids:
                    raise ValueError(f"{entry}: services lists {s!r}, which is not in "
                                     f"[[services]] (known: {', '.join(ids)})")
        return self

    def service(self, sid: str) -> Service | None:
        return next((s for s in self.services if s.id == sid), None)

    def window(self, wid: str) -> Window | None:
        return next((w for w in self.windows if w.id == wid), None)
