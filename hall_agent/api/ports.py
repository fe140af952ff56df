"""What the API routes use of the running agent: its parts, by their public names.

hall_agent/agent.py's ``Agent`` is the one implementation; the API does not import
it (the composition root sits beside the API, not below it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # types only: a kiosk without a reader or scanner loads neither
    from drivers.traffic import TrafficLogs
    from drivers.types import DeviceHealth, Health
    from hall_agent.contract.catalog import Catalog
    from hall_agent.contract.config import Config
    from hall_agent.core.events import EventBus
    from hall_agent.core.idempotency import Idempotency
    from hall_agent.core.queue import QueueEngine
    from hall_agent.core.store import Store
    from hall_agent.services.appointments import AppointmentBook, CheckinService
    from hall_agent.services.boards import BoardService
    from hall_agent.services.calls import CallDesk
    from hall_agent.services.cards import CardService
    from hall_agent.services.evaluators import EvaluatorService
    from hall_agent.services.health import HealthRegistry
    from hall_agent.services.printing import PrintDesk
    from hall_agent.services.scans import ScanRouter
    from hall_agent.services.selfservice import SelfService
    from hall_agent.services.tickets import TicketDesk


class AgentApi(Protocol):
    cfg: Config
    store: Store
    queue: QueueEngine
    idem: Idempotency
    bus: EventBus
    health: HealthRegistry
    traffic: TrafficLogs
    printing: PrintDesk
    tickets: TicketDesk
    calls: CallDesk
    boards: BoardService
    evaluators: EvaluatorService
    book: AppointmentBook
    checkins: CheckinService
    selfservice: SelfService
    cards: CardService | None
    scans: ScanRouter | None

    @property
    def link(self) -> object | None: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def mode(self) -> str: ...
    @property
    def version(self) -> str: ...
    def devices(self) -> dict[str, DeviceHealth]: ...
    def overall(self) -> Health: ...
