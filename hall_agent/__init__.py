"""hall-edge agent: owns every device, the store and the link to the central queue."""

__version__ = "0.1.0"
