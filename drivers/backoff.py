"""The one back-off of hall-edge: how long to wait after the n-th failure in a row.

The delay is ``initial`` for the first ``free + 1`` waits, then grows by ``factor``
per failure up to ``ceiling``; a success resets it. Nothing here sleeps: callers
wait on their own event (so a stop wakes them at once) and ask only for the delay.

A serial port whose name is gone (an unplugged USB device) is looked for again
every :data:`~drivers.types.PORT_ABSENT_RETRY_S` instead (:meth:`Backoff.for_port`):
looking costs nothing, and the device is back within a second of the replug.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.types import PORT_ABSENT_RETRY_S, port_absent


@dataclass
class Backoff:
    """Delays ``initial``, … (``free`` more times), then × ``factor`` up to ``ceiling``."""

    initial: float
    ceiling: float
    factor: float = 2.0
    free: int = 0
    failures: int = 0

    def delay_after(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (for a caller that counts)."""
        grow = max(0, failures - self.free)
        return float(min(self.ceiling, self.initial * self.factor ** grow))

    @property
    def delay(self) -> float:
        return self.delay_after(self.failures)

    def failed(self) -> float:
        """Count one more failure; returns the wait before the next try."""
        self.failures += 1
        return self.delay

    def reset(self) -> None:
        self.failures = 0

    def for_port(self, port: str) -> float:
        """:attr:`delay`, or the short look-again wait while ``port`` names nothing."""
        return PORT_ABSENT_RETRY_S if port_absent(port) else self.delay
