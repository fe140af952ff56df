"""One root exception for hall-edge; each subclass also inherits the builtin it resembles.

Messages are read by people at a kiosk or a technician's terminal: they say what
happened, where (device, file, key) and what to do.
"""

from __future__ import annotations


class HallEdgeError(Exception):
    """Root of every error hall-edge raises on purpose."""


class ConfigError(HallEdgeError, ValueError):
    """The configuration or the catalogue is wrong; the agent must not start."""


class StoreError(HallEdgeError, RuntimeError):
    """The SQLite store cannot be opened or written."""


class QueueError(HallEdgeError, ValueError):
    """A queue operation that the rules forbid (closed service, paused window, …).

    ``field`` names the request field at fault (for the API's 4xx body) and
    ``code`` is a stable machine-readable reason.
    """

    def __init__(self, message: str, *, code: str, field: str | None = None,
                 status: int = 409, en: str = "") -> None:
        super().__init__(message)
        self.en = en or message
        self.code = code
        self.field = field
        self.status = status


class DeviceError(HallEdgeError, OSError):
    """A device could not be reached or refused a command."""
