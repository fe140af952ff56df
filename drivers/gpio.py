"""GPIO devices of the hall (SCANNER.md "GPIO"), as gpiozero nouns.

The pin factory is gpiozero's: chosen by ``[gpio] pin_factory`` or
``$GPIOZERO_PIN_FACTORY``; tests pass ``MockFactory()``. Every device is optional.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from drivers.gpio_config import GpioConfig


def make_factory(name: str) -> Any:
    """A gpiozero pin factory by name; None lets gpiozero choose (or read the env)."""
    if not name:
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    if name == "pigpio":
        from gpiozero.pins.pigpio import PiGPIOFactory

        return PiGPIOFactory()
    from gpiozero.pins.native import NativeFactory

    return NativeFactory()


class HallGpio:
    """The big ticket button, the door relay and contact, the presence sensor, the LED."""

    def __init__(self, cfg: GpioConfig, *, factory: Any = None) -> None:
        from gpiozero import LED, Button, DigitalInputDevice, OutputDevice

        self.cfg = cfg
        f = factory if factory is not None else make_factory(cfg.pin_factory)
        bounce = cfg.bounce_ms / 1000 or None
        self.button = (Button(cfg.ticket_button, pull_up=True, bounce_time=bounce,
                              pin_factory=f) if cfg.ticket_button is not None else None)
        self.relay = (OutputDevice(cfg.door_relay, active_high=cfg.door_relay_active_high,
                                   initial_value=False, pin_factory=f)
                      if cfg.door_relay is not None else None)
        # A closed door closes the reed contact to ground: "pressed" = closed.
        self.contact = (Button(cfg.door_contact, pull_up=True, bounce_time=bounce,
                               pin_factory=f) if cfg.door_contact is not None else None)
        self.presence = (DigitalInputDevice(cfg.presence, pull_up=False, pin_factory=f)
                         if cfg.presence is not None else None)
        self.led = LED(cfg.status_led, pin_factory=f) if cfg.status_led is not None else None
        self._door_timer: threading.Timer | None = None
        self._lock = threading.Lock()

    # -- door

    @property
    def door_closed(self) -> bool | None:
        return None if self.contact is None else bool(self.contact.is_pressed)

    @property
    def relay_open(self) -> bool:
        return bool(self.relay is not None and self.relay.is_active)

    def open_door(self, seconds: float, on_closed: Callable[[], None] | None = None) -> bool:
        """Release the lock for ``seconds``; False when no relay is configured."""
        if self.relay is None:
            return False
        with self._lock:
            if self._door_timer is not None:
                self._door_timer.cancel()
            self.relay.on()

            def lock_again() -> None:
                with self._lock:
                    if self.relay is not None:
                        self.relay.off()
                    self._door_timer = None
                if on_closed is not None:
                    on_closed()

            self._door_timer = threading.Timer(seconds, lock_again)
            self._door_timer.daemon = True
            self._door_timer.start()
        return True

    # -- LED

    def show_status(self, status: str) -> None:
        """ok: steady; degraded: slow blink; fault: fast blink."""
        if self.led is None:
            return
        if status == "ok":
            self.led.on()
        elif status == "degraded":
            self.led.blink(on_time=1, off_time=1)
        else:
            self.led.blink(on_time=0.2, off_time=0.2)

    def close(self) -> None:
        with self._lock:
            if self._door_timer is not None:
                self._door_timer.cancel()
        for d in (self.button, self.relay, self.contact, self.presence, self.led):
            if d is not None:
                d.close()
