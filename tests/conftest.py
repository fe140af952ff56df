"""Shared fixtures: a real agent process on simulated hardware."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.hall import SimHall
from sim.printer import SimPrinter

ROOT = Path(__file__).resolve().parent.parent
TEST_CATALOG = ROOT / "tests" / "data" / "services.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: object, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


class HallUnderTest:
    """An agent process (started by the test) driving a simulated printer in this process."""

    def __init__(self, root: Path, catalog: Path = TEST_CATALOG, extra_toml: str = "") -> None:
        self.sim = SimHall(root, api=f"127.0.0.1:{free_port()}", catalog=str(catalog),
                           health_interval_ms=1000, extra_toml=extra_toml)
        self.sim.write_config()
        self.url = f"http://{self.sim.api}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "agent.log"

    @property
    def printer(self) -> SimPrinter:
        return self.sim.printer

    @property
    def config_path(self) -> Path:
        return self.sim.config_path

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hall_agent.main", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        ok = wait_until(self._healthy, timeout)
        if not ok:
            self.kill()
            raise AssertionError("agent did not start:\n" + self.log())

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def health(self) -> dict[str, object]:
        return dict(httpx.get(f"{self.url}/v1/health", timeout=5).json())

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def close(self) -> None:
        self.stop()
        self.sim.close()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[HallUnderTest]:
    h = HallUnderTest(tmp_path / "hall")
    try:
        h.start()
        yield h
    finally:
        with contextlib.suppress(Exception):
            h.close()
