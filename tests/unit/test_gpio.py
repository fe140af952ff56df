"""GPIO with gpiozero's MockFactory: the ticket button, the door relay and contact, the
presence sensor and the status LED."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cardhall import CardHall, wait_for

from drivers.types import Health

PINS = {"pin_factory": "mock", "ticket_button": 17, "ticket_service": "B", "door_relay": 22,
        "door_contact": 23, "presence": 24, "status_led": 25, "door_open_s": 1,
        "door_held_s": 5, "bounce_ms": 0}


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[CardHall]:
    h = CardHall(tmp_path, reader=False, extra={"gpio": PINS}).start()
    yield h
    h.close()


def pin(h: CardHall, n: int) -> Any:
    assert h.agent.gpio is not None
    return h.agent.gpio.hw.relay.pin_factory.pin(n)  # type: ignore[union-attr]


def test_big_button_prints_a_ticket_of_the_default_service(hall: CardHall) -> None:
    p = pin(hall, 17)
    p.drive_low()
    p.drive_high()
    assert hall.printer.wait_for_tickets(1)
    t = hall.agent.queue.tickets()[0]
    assert t.service == "B" and t.channel == "button"


def test_door_relay_opens_for_n_seconds(hall: CardHall) -> None:
    assert hall.agent.gpio is not None
    relay = pin(hall, 22)
    assert relay.state is False
    assert hall.agent.gpio.open_door()
    assert relay.state is True
    assert wait_for(lambda: relay.state is False, 3)


def test_door_held_open_is_a_fault(hall: CardHall) -> None:
    assert hall.agent.gpio is not None
    contact = pin(hall, 23)
    contact.drive_low()   # closed
    contact.drive_high()  # opened
    gpio = hall.agent.gpio
    assert wait_for(lambda: gpio._door_opened_at is not None)
    gpio.cfg = gpio.cfg.model_copy(update={"door_held_s": 0.1})
    time.sleep(0.2)
    gpio.check()
    h = hall.agent.devices()["door"]
    assert h.status is Health.FAULT and "open for more than" in h.detail
    contact.drive_low()
    assert wait_for(lambda: hall.agent.devices()["door"].status is Health.OK)


def test_presence_wakes_the_screen(hall: CardHall) -> None:
    pin(hall, 24).drive_high()
    assert wait_for(lambda: any(e.get("device") == "presence" for e in hall.of("device")))


def test_status_led_follows_health(hall: CardHall) -> None:
    assert hall.agent.gpio is not None
    hall.agent.gpio.hw.show_status("ok")
    assert pin(hall, 25).state is True
    hall.agent.gpio.hw.show_status("fault")
    assert hall.agent.gpio.hw.led is not None and hall.agent.gpio.hw.led.is_lit in (True, False)


def test_pins_must_differ() -> None:
    from pydantic import ValidationError

    from drivers.gpio_config import GpioConfig
    with pytest.raises(ValidationError, match="both use GPIO17"):
        GpioConfig(ticket_button=17, door_relay=17)
