"""``[[boards]]``, ``[[evaluators]]`` and ``[bus]``: the devices on the RS-485 buses (RS485.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config_base import Baudrate, Section, check_port


class BoardConfig(Section):
    port: str
    baudrate: Baudrate = 9600
    address: Annotated[int, Field(ge=1, le=247)]
    role: Literal["hall", "window"]
    window: str | None = None

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))

    @model_validator(mode="after")
    def _window(self) -> BoardConfig:
        if self.role == "window" and not self.window:
            raise ValueError("a board with role = \"window\" needs window = \"5\"")
        return self


class EvaluatorConfig(Section):
    port: str
    baudrate: Baudrate = 9600
    address: Annotated[int, Field(ge=1, le=247)]
    window: str

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))


class BusConfig(Section):
    """Timings of the LED boards and evaluators on the RS-485 buses."""

    call_hold_s: Annotated[float, Field(ge=5, le=600, description=(
        "the hall board shows calls this long after the last one, in seconds"))] = 30
    page_s: Annotated[float, Field(ge=2, le=120, description=(
        "each information page (waiting, satisfaction) stays this long, in seconds"))] = 8
    prompt_timeout_s: Annotated[int, Field(ge=5, le=255, description=(
        "a citizen has this long to rate before `none` is stored, in seconds"))] = 30
