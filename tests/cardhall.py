"""Shared helpers of the ID-card, scanner, appointment and self-service tests: an
in-process agent with a simulated printer and ID-card reader on real ptys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hall_agent.agent import Agent
from hall_agent.api.app import create_app
from hall_agent.contract.config import Config
from hall_agent.core.events import Event
from sim.idcard import SimIdReader
from sim.printer import SimPrinter

ROOT = Path(__file__).resolve().parent.parent
CARD_CATALOG = ROOT / "tests" / "data" / "services_idcard.toml"


def wait_for(pred: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


class CardHall:
    """Agent + SimPrinter + SimIdReader; ``events`` collects every bus event."""

    def __init__(self, root: Path, *, extra: dict[str, Any] | None = None,
                 reader: bool = True, clock: Callable[[], float] = time.time,
                 gpio_factory: Any = None) -> None:
        self.root = root
        self.printer = SimPrinter(out_dir=root / "tickets")
        self.reader = SimIdReader() if reader else None
        data: dict[str, Any] = {
            "hall": {"id": "fz-citizen", "name": "福州市市民服务中心",
                     "catalog": str(CARD_CATALOG)},
            "agent": {"data_dir": str(root / "data"), "health_interval_ms": 500},
            "printer": {"transport": "serial", "port": self.printer.port},
            "voice": {"enabled": False},
        }
        if self.reader is not None:
            data["id_reader"] = {"port": self.reader.port, "poll_ms": 100, "fast_poll_ms": 50,
                                 "timeout_ms": 1000}
        for k, v in (extra or {}).items():
            data[k] = v
        self.cfg = Config.model_validate(data)
        if gpio_factory is not None:
            from gpiozero import Device
            Device.pin_factory = gpio_factory
        self.agent = Agent(self.cfg, clock=clock)
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self.agent.bus.listen(self._on_event)
        self.api = TestClient(create_app(self.agent))

    def _on_event(self, ev: Event) -> None:
        with self._lock:
            self.events.append(ev)

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e.data for e in self.events if e.kind == kind]

    def start(self) -> CardHall:
        self.agent.start()
        return self

    def place(self, card: str, timeout: float = 5.0) -> dict[str, Any]:
        """Put a card on the reader and wait for its ``card`` event."""
        assert self.reader is not None
        n = len(self.of("card"))
        self.reader.put(card)
        assert wait_for(lambda: len(self.of("card")) > n, timeout), "no card event"
        return self.of("card")[-1]

    def lift(self) -> None:
        """Take the card off and wait until the agent counts it removed (debounced)."""
        assert self.reader is not None
        self.reader.put(None)
        cards = self.agent.cards
        assert cards is None or wait_for(lambda: not cards.holding_a_card), "never removed"

    def close(self) -> None:
        self.agent.close()
        self.printer.close()
        if self.reader is not None:
            self.reader.close()
