"""What every device's config section shares: the strict base model and serial-port checks.

Each driver owns its section (``drivers/printer_config.py`` …); the agent's
``Config`` (hall_agent/contract/config.py) composes them. A section forbids
unknown keys, so a typo (``baudrat = 9600``) is an error naming the key.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A serial port is a device path or one of pyserial's URL handlers.
_PORT_RE = re.compile(r"^(/dev/\S+|/\S+|(socket|rfc2217|loop|spy|alt|hwgrep)://\S*)$")


class Section(BaseModel):
    """A config section: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_port(value: str) -> str:
    if not _PORT_RE.match(value):
        raise ValueError(
            f"{value!r} is not a serial port: give a device path such as /dev/ttyUSB0 "
            "(or /dev/serial/by-id/…), or a pyserial URL such as socket://host:port"
        )
    return value


Baudrate = Annotated[int, Field(ge=1200, le=921600, description="line speed, in bit/s")]
