"""``[printer]``: the ticket printer's config section (PRINTER.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from drivers.config_base import Baudrate, Section, check_port
from drivers.escpos_codec import Charset, ModelName


class PrinterConfig(Section):
    transport: Literal["serial", "usb", "network", "file"] = Field(
        default="serial", description="how the printer is reached")
    port: str | None = Field(default=None, description="serial port (transport serial) or "
                                                       "file path (transport file)")
    baudrate: Baudrate = 115200
    host: str | None = Field(default=None, description="printer address (transport network)")
    tcp_port: Annotated[int, Field(ge=1, le=65535)] = 9100
    usb_vendor: Annotated[int | None, Field(ge=0, le=0xFFFF)] = None
    usb_product: Annotated[int | None, Field(ge=0, le=0xFFFF)] = None
    status_timeout_ms: Annotated[int, Field(ge=50, le=5000,
                                            description="wait for a DLE EOT answer, in ms")] = 500
    qr_module: Annotated[int, Field(ge=1, le=16, description="QR module size, in dots")] = 6
    feed_dots: Annotated[int, Field(ge=0, le=255, description="feed before the cut, in dots")
                         ] = 80
    model: ModelName = Field(
        default="epson", description=(
            "command set: epson (Epson-style, QR with GS ( k) or snbc-btp (SNBC/新北洋 BTP "
            "kiosk printers, QR with GS k)"))
    charset: Charset = Field(
        default="gbk", description=(
            "the printer's Chinese font: gbk, or gb2312 (characters outside GB2312, such as "
            "€, print as ?)"))

    @model_validator(mode="after")
    def _transport_needs(self) -> PrinterConfig:
        if self.transport in ("serial", "file"):
            if not self.port:
                raise ValueError(f"transport {self.transport!r} needs port = \"/dev/…\"")
            if self.transport == "serial":
                check_port(self.port)
        if self.transport == "network" and not self.host:
            raise ValueError("transport 'network' needs host = \"192.0.2.10\"")
        if self.transport == "usb" and (self.usb_vendor is None or self.usb_product is None):
            raise ValueError("transport 'usb' needs usb_vendor and usb_product (see lsusb)")
        return self
