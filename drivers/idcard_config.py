"""``[id_reader]``: the ID-card reader's config section (IDCARD.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from drivers.config_base import Baudrate, Section, check_port


class IdReaderConfig(Section):
    port: str
    baudrate: Baudrate = 115200
    poll_ms: Annotated[int, Field(ge=100, le=10_000, description=(
        "find-card poll while no flow waits for a card, in milliseconds"))] = 1000
    fast_poll_ms: Annotated[int, Field(ge=50, le=5000, description=(
        "find-card poll while a flow waits for a card, in milliseconds"))] = 300
    timeout_ms: Annotated[int, Field(ge=100, le=10_000, description=(
        "wait for one reply (a read takes the SAM up to ~1 s), in milliseconds"))] = 2000
    removal_ms: Annotated[int, Field(ge=0, le=10_000, description=(
        "a card counts as removed after two 'no card' answers at least this far apart, "
        "in milliseconds (a card at the edge of the field flickers)"))] = 600

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))
