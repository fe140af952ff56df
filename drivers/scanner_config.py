"""``[scanner]``: the QR/barcode scanner's config section (SCANNER.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator

from drivers.config_base import Baudrate, Section, check_port


def _check_pattern(v: str, *groups: str) -> str:
    try:
        rx = re.compile(v)
    except re.error as e:
        raise ValueError(f"{v!r} is not a regular expression: {e}") from None
    if not any(g in rx.groupindex for g in groups):
        raise ValueError(f"{v!r} needs a named group " + " or ".join(
            f"(?P<{g}>…)" for g in groups))
    return v


class ScannerConfig(Section):
    """A QR/barcode scanner (SCANNER.md): a keyboard wedge (``device``) or serial (``port``)."""

    device: Annotated[str | None, Field(description=(
        "evdev node of a keyboard-wedge scanner, e.g. /dev/input/by-id/…-event-kbd"))] = None
    port: Annotated[str | None, Field(description="serial port of a serial scanner")] = None
    baudrate: Baudrate = 9600
    grab: Annotated[bool, Field(description=(
        "grab the wedge exclusively, so scans never type into the kiosk"))] = True
    appointment_pattern: Annotated[str, Field(description=(
        "regular expression of an appointment QR, with a group (?P<code>…)"))] = (
        r"^(?:YY|APPT)[-:]?(?P<code>[A-Z0-9]{6,32})$")
    ticket_pattern: Annotated[str, Field(description=(
        "regular expression of a ticket's own QR, with a group (?P<ticket_id>…) or "
        "(?P<token>…) (the ticket page's token, status_url's {token})"))] = (
        r"/t/(?:[^/]+/(?P<ticket_id>[0-9a-f-]{36})|(?P<token>[A-Za-z0-9_-]{22}))$")

    @model_validator(mode="after")
    def _one_source(self) -> ScannerConfig:
        if (self.device is None) == (self.port is None):
            raise ValueError("give either device = \"/dev/input/…\" (USB keyboard wedge) or "
                             "port = \"/dev/ttyACM0\" (serial scanner), not both or neither")
        if self.port is not None:
            check_port(self.port)
        if self.device is not None and not self.device.startswith("/"):
            raise ValueError(f"device {self.device!r} is not a path such as "
                             "/dev/input/by-id/…-event-kbd")
        _check_pattern(self.appointment_pattern, "code")
        _check_pattern(self.ticket_pattern, "ticket_id", "token")
        return self
