"""The composition root: builds the agent's parts, starts them, stops them.

Nothing here decides anything about tickets, calls or devices: each part lives
in its room (docs/architecture.md) and is given the narrow interfaces it needs
(hall_agent/services/ports.py). Device code is imported only when its device is
configured, so a kiosk without a reader, a scanner or GPIO does not load them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from drivers.printer_config import PrinterConfig
from drivers.traffic import RawTraffic, TrafficLink, TrafficLogs
from drivers.types import DeviceHealth, Health
from hall_agent import __version__
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import Config, load_catalog
from hall_agent.core import damage
from hall_agent.core.clock import ClockGuard
from hall_agent.core.events import EventBus
from hall_agent.core.idempotency import Idempotency
from hall_agent.core.personal import load_secret, secret_path
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import DB_NAME, Store
from hall_agent.core.supervisor import DeviceSupervisor
from hall_agent.services.appointments import AppointmentBook, CheckinNeeds, CheckinService
from hall_agent.services.calls import CallDesk, CallNeeds
from hall_agent.services.central import CentralNeeds, CentralState
from hall_agent.services.health import HealthRegistry
from hall_agent.services.printing import PrintDesk, Printer
from hall_agent.services.retention import Retention
from hall_agent.services.selfservice import SelfService, SelfServiceNeeds
from hall_agent.services.tickets import TicketDesk, TicketNeeds

log = logging.getLogger("hall_agent")


STORAGE_PROBE_S = 2.0  # how often health tries a write while the card refuses them


def make_printer(cfg: PrinterConfig, traffic: RawTraffic | None = None) -> Printer:
    from drivers.printer import _LINKS, TicketPrinter

    if traffic is None:
        return TicketPrinter(cfg)
    base = _LINKS[cfg.transport]
    # The raw-traffic log (switched at run time) sees every byte of every link.
    return TicketPrinter(cfg, link_factory=lambda c, t: TrafficLink(base(c, t), traffic))


class Modes:
    """Who numbers and how the agent runs now (services/ports.ModeView)."""

    def __init__(self, cfg: Config, store: Store) -> None:
        self._cfg = cfg
        self._store = store
        self.link: Any = None

    @property
    def numbering(self) -> str:
        """``central`` (with [mqtt]) unless the central itself switched this agent to
        ``standalone`` (``set_mode``); persisted."""
        if self._cfg.mqtt is None:
            return "standalone"
        return self._store.meta_get("numbering") or "central"

    @property
    def mode(self) -> str:
        if self.numbering == "standalone" or self.link is None:
            return "standalone"
        return "central" if self.link.central_available else "offline"


class Agent:
    def __init__(self, cfg: Config, *, catalog: Catalog | None = None,
                 printer: Printer | None = None, clock: Any = time.time) -> None:
        self.cfg = cfg
        data = Path(cfg.agent.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        # A store back damaged or empty never silently starts over at A001 (core/damage.py).
        self.recovery = damage.check(data, DB_NAME)
        self.store = Store(data)
        self._storage_probed = 0.0
        if self.recovery is not None:
            with self.store.tx() as db:
                damage.seed(db, self.recovery.salvage)
        self.boot = self.store.next_boot()
        self._mark()
        self.store.on_events.append(self._mark)
        # Numbering and retention ask whether the clock may be believed (core/clock.py).
        self.clock_guard = ClockGuard(self.store, clock)
        self.queue = QueueEngine(self.store, catalog or load_catalog(cfg.catalog_path),
                                 cfg.hall.tz, clock=clock, guard=self.clock_guard)
        self.idem = Idempotency(self.store)
        self.bus = EventBus()
        self.health = HealthRegistry(self.bus)
        self.modes = Modes(cfg, self.store)
        self.traffic = TrafficLogs(data)
        # Health checks, reopening lost devices, and a deadline on every device call.
        self.supervisor = DeviceSupervisor(
            self.health.set_health, healthy_interval_s=cfg.agent.health_interval_ms / 1000)
        if printer is None and cfg.printer is not None:
            printer = make_printer(cfg.printer, self.traffic.get("printer"))
        self.printing = PrintDesk(printer, cfg.printer, self.supervisor, self.health)
        self.health.extras.append(self.printing.fill_health)
        self.health.extras.append(self._clock_health)
        self.health.extras.append(self._storage_health)
        self.calls = CallDesk(CallNeeds(self.store, self.queue, self.bus))
        self.queue.on_finished = self.calls.finished
        self.secret = load_secret(secret_path(cfg.hall.secret_file, cfg.agent.data_dir))
        self.cards = None
        if cfg.id_reader is not None:
            from hall_agent.services.cards import CardNeeds, CardService
            self.cards = CardService(CardNeeds(self.bus, cfg, self.health), cfg.id_reader,
                                     self.secret, clock=clock)
        self.link = None
        if cfg.mqtt is not None:
            from hall_agent.link.mqtt import LinkHandlers, MqttLink
            self.link = MqttLink(cfg, self.store, self.boot, __version__, LinkHandlers(),
                                 lambda: self.modes.mode)
            self.modes.link = self.link
            self.store.on_events.append(self.link.wake)
            self.health.on_change.append(self.link.set_device)
            link = self.link
            self.health.extras.append(lambda out: out.__setitem__("mqtt", link.describe()))
        self.tickets = TicketDesk(TicketNeeds(cfg, self.store, self.queue, self.idem, self.bus,
                                              self.modes, self.printing, self.link, self.cards,
                                              self.secret))
        self.central = CentralState(CentralNeeds(
            cfg, self.store, self.queue, self.idem, self.bus, self.health, self.modes,
            self.tickets.reprint, self.printing.test_print,
            self.link.publish_birth if self.link is not None else (lambda: None)))
        if self.link is not None:
            h = self.link.h
            h.on_call = self.calls.on_central_call
            h.on_lease = self.central.on_lease
            h.on_queue = self.central.on_queue
            h.on_satisfaction = self.central.on_satisfaction
            h.on_command = self.central.on_command
            h.on_mode = self.central.on_mode
        self._build_bus()
        self._build_devices(clock)
        self.retention = Retention(self.store, cfg.agent.retention_days, self.clock_guard,
                                   clock)
        pending = self.store.one("SELECT COUNT(*) FROM tickets WHERE print_state = 'pending'")
        if pending and pending[0]:
            log.warning("%d ticket(s) were issued but not printed before the last stop; they "
                        "stay in the queue and print if the kiosk asks again", pending[0])

    def _build_bus(self) -> None:
        """The RS-485 bus (one master per port, shared by boards and evaluators), voice."""
        from drivers.bus import BusPool
        from hall_agent.services.boards import BoardNeeds, BoardService
        from hall_agent.services.evaluators import EvaluatorNeeds, EvaluatorService

        cfg = self.cfg
        self.buses = BusPool(self.traffic)
        self.boards = BoardService(
            BoardNeeds(self.bus, cfg, self.queue, self.modes, self.health,
                       self.central.satisfaction),
            self.buses, call_hold_s=cfg.bus.call_hold_s, page_s=cfg.bus.page_s)
        self.queue.on_calling = self.boards.calling
        self.evaluators = EvaluatorService(
            EvaluatorNeeds(self.bus, cfg, self.store, self.queue, self.modes, self.health,
                           self.calls.call, self.boards.refresh),
            self.buses, prompt_timeout_s=cfg.bus.prompt_timeout_s)
        self.evaluators.on_staff_key = self.calls.on_staff_key
        self.voice = None
        if cfg.voice.enabled:
            from hall_agent.services.voice import make_announcer
            self.voice = make_announcer(
                self.bus, Path(cfg.agent.data_dir), engine=cfg.voice.engine,
                output=None if cfg.voice.output == "auto" else cfg.voice.output,
                english=cfg.voice.english)

    def _build_devices(self, clock: Any) -> None:
        """Appointments, the scanner, GPIO and the 24-hour area. The hall secret keys the
        HMAC of ID numbers (core/personal.py): nothing else is kept."""
        cfg = self.cfg
        self.book = AppointmentBook(self.store, self.queue.catalog, cfg.appointments,
                                    cfg.hall.tz, self.secret, clock=clock)
        self.checkins = CheckinService(
            CheckinNeeds(cfg, self.store, self.queue, self.modes, self.tickets, self.link),
            self.book)
        self.scans = None
        if cfg.scanner is not None:
            from hall_agent.services.scans import ScanNeeds, ScanRouter
            self.scans = ScanRouter(ScanNeeds(self.bus, self.queue, self.health,
                                              self.checkins.checkin, self.secret), cfg.scanner)
        self.gpio = None
        if cfg.gpio is not None:
            from hall_agent.services.gpio import GpioNeeds, GpioService
            self.gpio = GpioService(GpioNeeds(self.bus, self.queue, self.health, self.tickets),
                                    cfg.gpio)
        self.selfservice = SelfService(SelfServiceNeeds(
            cfg, self.store, self.queue, self.printing, self.cards, self.gpio,
            self.checkins.book_slot))
        if self.cards is not None:
            self.cards.handlers.append(self.selfservice.on_card)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.supervisor.start()
        self.boards.start()
        self.evaluators.start()
        if self.voice is not None:
            self.voice.start()
        if self.link is not None:
            self.link.start()
        self.book.import_dir(Path(self.cfg.agent.data_dir))
        for dev in (self.cards, self.scans, self.gpio):
            if dev is not None:
                dev.start()
        self.retention.start()

    def close(self) -> None:
        self.retention.stop()
        for dev in (self.cards, self.scans, self.gpio):
            if dev is not None:
                dev.close()
        if self.link is not None:
            self.link.stop()
        self.supervisor.close()
        self.printing.close()
        self.traffic.close()
        self.evaluators.close()
        self.boards.close()
        if self.voice is not None:
            self.voice.close()
        self.buses.close()
        self.store.close()

    # ------------------------------------------------------------------ views

    @property
    def catalog(self) -> Catalog:
        return self.queue.catalog

    @property
    def mode(self) -> str:
        return self.modes.mode

    @property
    def numbering(self) -> str:
        return self.modes.numbering

    @property
    def version(self) -> str:
        return __version__

    def _clock_health(self, out: dict[str, DeviceHealth]) -> None:
        """A clock in doubt is said in health (``clock``), with what the agent does."""
        state = self.clock_guard.state()
        if not state.trusted:
            out["clock"] = DeviceHealth(Health.DEGRADED, state.detail)

    def _mark(self) -> None:
        try:
            damage.write_marker(Path(self.cfg.agent.data_dir), self.store)
        except OSError as e:  # a full card: the store says so (storage fault)
            log.debug("store marker not written: %s", e)

    def _storage_health(self, out: dict[str, DeviceHealth]) -> None:
        """The card refusing writes (core/storage.py) is a fault, with its cause; a
        store found damaged at start (core/damage.py) is said until its copy is gone."""
        if self.store.fault is not None:
            # Nobody may write while the kiosk is out of service: try one small write now
            # and then (it clears the fault once the card takes writes and has room).
            now = time.monotonic()
            if now - self._storage_probed >= STORAGE_PROBE_S:
                self._storage_probed = now
                self.store.probe_write()
        cause = self.store.fault
        if cause is not None:
            out["storage"] = DeviceHealth(Health.FAULT, f"{cause.zh} / {cause.en}")
            return
        kept = damage.damaged_dirs(Path(self.cfg.agent.data_dir))
        if kept:
            detail = (self.recovery.detail() if self.recovery is not None else
                      f"存储数据库曾损坏，副本在 {kept[-1]}；请运行 hallctl doctor / a damaged "
                      f"store is kept at {kept[-1]} (hallctl doctor says what to do)")
            out["storage"] = DeviceHealth(Health.DEGRADED, detail)

    def devices(self) -> dict[str, DeviceHealth]:
        return self.health.devices()

    def overall(self) -> Health:
        return self.health.overall()


