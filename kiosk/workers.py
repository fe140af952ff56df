"""The kiosk's threads around the agent client: blocking calls and the event stream run
off the Qt thread and report back on it, so a slow or dead agent never freezes the
screen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from PyQt6.QtCore import QObject, pyqtSignal

from drivers.backoff import Backoff
from hall_agent.contract.client import AgentClient, AgentUnavailable

T = TypeVar("T")


class Runner(QObject):
    """Runs a blocking call on a daemon thread and delivers the outcome on the Qt thread.

    Daemon threads, not a QThreadPool: a call stuck in a dead socket must not
    keep the kiosk from quitting or a test from finishing.
    """

    _done = pyqtSignal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._done.connect(self._deliver)
        self.in_flight = 0

    def run(self, fn: Callable[[], T], on_ok: Callable[[T], None],
            on_err: Callable[[Exception], None]) -> None:
        self.in_flight += 1

        def work() -> None:
            try:
                value: Any = fn()
            except Exception as e:  # delivered to on_err on the Qt thread
                self._done.emit(on_err, e)
            else:
                self._done.emit(on_ok, value)

        threading.Thread(target=work, name="kiosk-http", daemon=True).start()

    def _deliver(self, callback: Callable[[Any], None], value: object) -> None:
        self.in_flight -= 1
        callback(value)


class EventStream(QObject):
    """``GET /v1/events`` on a daemon thread, re-connected with back-off.

    Emits ``received(name, data)`` for each event and ``connected(bool)`` when the
    link comes or goes; :meth:`stop` ends it at the next line (heartbeats included).
    """

    received = pyqtSignal(str, dict)
    connected = pyqtSignal(bool)

    def __init__(self, base_url: str, parent: QObject | None = None, *,
                 read_timeout_s: float = 40.0) -> None:
        super().__init__(parent)
        self.base_url = base_url.rstrip("/")
        self._client = AgentClient(self.base_url)
        self._read_timeout_s = read_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="kiosk-sse", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._client.close_events()  # a read waiting for the next heartbeat ends now

    def _loop(self) -> None:
        back = Backoff(0.5, ceiling=5.0)
        while not self._stop.is_set():
            try:
                self._read_once()
                back.reset()
            except (AgentUnavailable, OSError, ValueError):
                pass
            if self._stop.is_set():
                return
            self.connected.emit(False)
            self._stop.wait(back.delay)
            back.failed()

    def _read_once(self) -> None:
        for name, data in self._client.events(read_timeout_s=self._read_timeout_s,
                                              on_open=lambda: self.connected.emit(True),
                                              stop=self._stop.is_set):
            self.received.emit(name, data)
