"""``[gpio]``: the GPIO devices' config section (SCANNER.md "GPIO")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from drivers.config_base import Section

GpioPin = Annotated[int | None, Field(ge=2, le=27, description="BCM pin number")]


class GpioConfig(Section):
    """GPIO devices (SCANNER.md "GPIO"); every pin is optional, BCM numbering."""

    pin_factory: Annotated[Literal["", "lgpio", "rpigpio", "pigpio", "native", "mock"], Field(
        description="gpiozero pin factory; empty = gpiozero's choice or "
                    "$GPIOZERO_PIN_FACTORY")] = ""
    ticket_button: GpioPin = None
    ticket_service: Annotated[str, Field(description=(
        "service the button takes a ticket for; empty = the first of the catalogue"))] = ""
    door_relay: GpioPin = None
    door_relay_active_high: bool = True
    door_open_s: Annotated[float, Field(ge=1, le=60, description=(
        "the door relay stays open this long after a valid card, in seconds"))] = 5
    door_contact: GpioPin = None
    door_held_s: Annotated[float, Field(ge=5, le=600, description=(
        "a door open longer than this is reported, in seconds"))] = 60
    presence: GpioPin = None
    status_led: GpioPin = None
    bounce_ms: Annotated[int, Field(ge=0, le=1000, description="button debounce, in ms")] = 50

    @model_validator(mode="after")
    def _distinct(self) -> GpioConfig:
        used: dict[int, str] = {}
        for name in ("ticket_button", "door_relay", "door_contact", "presence", "status_led"):
            pin = getattr(self, name)
            if pin is None:
                continue
            if pin in used:
                raise ValueError(f"{name} and {used[pin]} both use GPIO{pin}")
            used[pin] = name
        return self
