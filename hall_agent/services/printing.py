"""The ticket printer, as the agent uses it: tickets, receipts, test pages, status.

Every print goes through the device supervisor, so it is answered within a
deadline whatever the printer does; the result updates the printer's health.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from drivers.escpos_codec import Receipt
from drivers.printer_config import PrinterConfig
from drivers.types import DeviceHealth, Health, PrintResult, TicketPrint
from hall_agent.core.supervisor import DeviceSupervisor, DeviceTimeout, node_identity
from hall_agent.services.ports import HealthSink

log = logging.getLogger("hall_agent")

NO_PRINTER = "本机未配置打印机 (no printer configured)"


class Printer(Protocol):
    """What the agent needs of a ticket printer (drivers.printer.TicketPrinter)."""

    @property
    def health(self) -> DeviceHealth: ...
    def print_ticket(self, t: TicketPrint) -> PrintResult: ...
    def test_print(self) -> PrintResult: ...
    def print_receipt(self, r: Receipt) -> PrintResult: ...
    def refresh(self) -> DeviceHealth: ...
    def close(self) -> None: ...


def print_deadline_s(cfg: PrinterConfig) -> float:
    """How long a ticket may take before it is answered ``printed: false``.

    The status queries take at most drivers.printer.status_budget_s (each asked
    until two answers agree), the ticket (< 600 bytes) twice its time on the
    wire; a health check may be holding the printer when the ticket comes, hence
    twice the status; plus a second of slack.
    """
    from drivers.printer import status_budget_s

    status = status_budget_s(cfg)
    wire = 2 * 600 * 10 / cfg.baudrate if cfg.transport == "serial" else 0.0
    return 2 * status + max(cfg.status_timeout_ms / 1000, wire) + 1.0


def _absent() -> PrintResult:
    return PrintResult(False, NO_PRINTER, DeviceHealth(Health.ABSENT, "not configured"))


class PrintDesk:
    """The printer behind its deadline; ``printer`` is None when none is configured."""

    def __init__(self, printer: Printer | None, cfg: PrinterConfig | None,
                 supervisor: DeviceSupervisor, health: HealthSink) -> None:
        self.printer = printer
        self._supervisor = supervisor
        self._health = health
        if printer is not None and cfg is not None:
            from drivers.printer import describe

            path = (cfg.port if cfg.transport == "serial" and cfg.port and "://" not in cfg.port
                    else None)
            supervisor.add("printer", printer.refresh, deadline_s=print_deadline_s(cfg),
                           where=describe(cfg),
                           identity=(lambda: node_identity(path)) if path else None,
                           reset=printer.close)

    def _call(self, what: str, fn: Callable[[Printer], PrintResult]) -> PrintResult:
        printer = self.printer
        if printer is None:
            return _absent()
        try:
            result = self._supervisor.call("printer", lambda: fn(printer))
        except DeviceTimeout as e:
            result = PrintResult(False, str(e), DeviceHealth(Health.FAULT, str(e)))
        except Exception as e:  # a driver bug must not fail (or lose) what asked
            log.exception("printer driver failed on %s", what)
            result = PrintResult(False, f"printer driver error: {e}",
                                 DeviceHealth(Health.FAULT, f"driver error: {e}"))
        self._health.set_health("printer", result.health)
        return result

    def print_ticket(self, tp: TicketPrint) -> PrintResult:
        result = self._call(f"ticket {tp.number}", lambda p: p.print_ticket(tp))
        if not result.printed:
            log.warning("ticket %s issued but not printed: %s — it is shown on screen",
                        tp.number, result.detail)
        return result

    def print_receipt(self, r: Receipt) -> PrintResult:
        """A self-service result or a booking slip on the ticket printer."""
        return self._call("a receipt", lambda p: p.print_receipt(r))

    def test_print(self) -> PrintResult:
        return self._call("the test page", lambda p: p.test_print())

    def status(self) -> DeviceHealth:
        if self.printer is None:
            return DeviceHealth(Health.ABSENT, "not configured")
        try:
            h = self._supervisor.call("printer", self.printer.refresh)
        except DeviceTimeout as e:
            h = DeviceHealth(Health.FAULT, str(e))
        self._health.set_health("printer", h)
        return h

    def fill_health(self, out: dict[str, DeviceHealth]) -> None:
        """Before its first check, the printer's health is what the driver knows."""
        if self.printer is not None and "printer" not in out:
            out["printer"] = self.printer.health

    def close(self) -> None:
        if self.printer is None:
            return
        try:  # a printer stuck in a write must not hold up the stop
            self._supervisor.close_device("printer", self.printer.close)
        except DeviceTimeout as e:
            log.warning("%s; stopping without closing it", e)
