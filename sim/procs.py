"""A hall-agent process started and stopped on purpose (tests, soak, benchmarks).

It runs the real console entry point with a config file, so whatever is tested
is what systemd would start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def wait_until(pred: Callable[[], object], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


class AgentProcess:
    def __init__(self, config_path: Path, api: str, log_path: Path) -> None:
        self.config_path = config_path
        self.url = f"http://{api}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        # Added to the agent's environment at each start (libfaketime, the clock's state).
        self.env: dict[str, str] = {}

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hall_agent.main", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **self.env})
        if not wait_until(self._healthy, timeout):
            self.kill()
            raise RuntimeError("agent did not start:\n" + self.log()[-4000:])

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log()[-4000:]}")
        try:
            return httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

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

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/v1/health", timeout=5).json())

    def client(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)
