"""``[[boards]]``, ``[[evaluators]]`` and ``[bus]``: the devices on the RS-485 buses (RS485.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config_base import Baudrate, Section, check_port

Protocol = Literal["hall-edge", "onbon-bx5", "onbon-bx6"]


class BoardConfig(Section):
    """One LED board (DESIGN.md "LED board models"): the hall-edge frame of RS485.md, or
    an ONBON BX-5E/BX-6E controller (drivers/onbon.py) on a serial line or TCP."""

    protocol: Annotated[Protocol, Field(description=(
        "what the board speaks: hall-edge (RS485.md), onbon-bx5 or onbon-bx6"))] = "hall-edge"
    transport: Annotated[Literal["serial", "tcp"], Field(description=(
        "serial (port, baudrate) or tcp (host, tcp_port); tcp is for ONBON controllers"))] = (
        "serial")
    port: str = ""
    baudrate: Baudrate = 9600
    host: Annotated[str, Field(description="the controller's IP address or name (tcp)")] = ""
    tcp_port: Annotated[int, Field(ge=1, le=65535, description=(
        "the controller's TCP port (ONBON: 5005)"))] = 5005
    address: Annotated[int, Field(ge=1, le=0xFFFD, description=(
        "the screen address: 1-247 on a hall-edge bus, the controller's 屏号 for ONBON"))]
    width: Annotated[int, Field(ge=8, le=4096, description=(
        "dot-matrix width, in pixels (ONBON controllers)"))] = 192
    height: Annotated[int, Field(ge=16, le=1024, description=(
        "dot-matrix height, in pixels; one line of text per 16 (ONBON controllers)"))] = 32
    colours: Annotated[Literal[1, 2], Field(description=(
        "1: single colour (red), 2: dual colour red/green (ONBON controllers)"))] = 2
    role: Literal["hall", "window"]
    window: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _tcp_port_name(cls, data: Any) -> Any:
        # A TCP controller is named socket://host:port, so the per-port address check
        # of the agent's config tells two controllers apart and messages say where.
        if isinstance(data, dict) and data.get("transport") == "tcp":
            if data.get("port"):
                raise ValueError("a board with transport = \"tcp\" takes host and tcp_port, "
                                 "not port")
            if not data.get("host"):
                raise ValueError("a board with transport = \"tcp\" needs host = "
                                 "\"192.168.1.50\" (the controller's address)")
            data = {**data, "port": f"socket://{data['host']}:{data.get('tcp_port', 5005)}"}
        return data

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))

    @model_validator(mode="after")
    def _window(self) -> BoardConfig:
        if self.role == "window" and not self.window:
            raise ValueError("a board with role = \"window\" needs window = \"5\"")
        if self.protocol == "hall-edge":
            if self.transport != "serial":
                raise ValueError("a hall-edge board is on the RS-485 bus: transport = "
                                 "\"serial\" (tcp is for ONBON controllers)")
            if self.address > 247:
                raise ValueError(f"address {self.address}: a hall-edge bus has 1-247")
        elif self.protocol.startswith("onbon") and self.transport == "serial" and (
                self.baudrate not in (9600, 57600)):
            raise ValueError(f"baudrate {self.baudrate}: ONBON controllers take 9600 or 57600")
        if self.protocol != "hall-edge" and self.height > 4 * 16:
            raise ValueError(f"height {self.height}: at most 4 lines of 16 dots (an ONBON "
                             "controller has 4 dynamic areas)")
        return self

    @property
    def where(self) -> str:
        return f"{self.host}:{self.tcp_port}" if self.transport == "tcp" else self.port


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
