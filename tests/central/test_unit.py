"""hall-central under systemd: the unit says what docs/central.md promises, and the
process says READY=1 when it runs and STOPPING=1 on SIGTERM, then publishes itself
offline (a clean stop sends no will)."""

from __future__ import annotations

import configparser
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_process import Listener, P

from conftest import ROOT, TEST_CATALOG, wait_until
from sim.broker import Broker
from sim.central import write_config

pytestmark = pytest.mark.slow


def test_the_unit_is_notify_restarts_after_a_crash_not_after_a_config_error() -> None:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment, method-assign]
    cp.read(ROOT / "systemd" / "hall-central.service")
    s = cp["Service"]
    assert s["Type"] == "notify" and s["Restart"] == "on-failure"
    assert s["RestartPreventExitStatus"] == "2"
    assert s["ExecStart"].split()[:3] == ["/opt/hall-edge/venv/bin/hall-central", "--config",
                                          "/etc/hall-edge/central.toml"]
    assert s["StateDirectory"] == "hall-central" and s["User"] == "hall-central"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    text = (ROOT / "systemd" / "install.sh").read_text()
    assert "hall-central.service" in text and "--central" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "systemd" / "install.sh")],
                          check=False).returncode == 0


def test_ready_then_stopping_then_offline(tmp_path: Path, broker: Broker) -> None:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    got: list[str] = []

    sock.settimeout(0.5)

    def read() -> None:
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=read, daemon=True).start()
    ears = Listener(broker, f"{P}/central/state")
    cfg = write_config(tmp_path / "c", broker_port=broker.port, catalog=TEST_CATALOG)
    log = (tmp_path / "central.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "central.main", "--config", str(cfg)],
                            stdout=log, stderr=log, cwd=ROOT,
                            env={"NOTIFY_SOCKET": str(path), "PATH": "/usr/bin:/bin"})
    try:
        assert wait_until(lambda: "READY=1" in got, 30), (tmp_path / "central.log").read_text()
        assert wait_until(lambda: [s["online"] for s in ears.on(f"{P}/central/state")]
                          == [True], 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "STOPPING=1" in got
        assert wait_until(lambda: [s["online"] for s in ears.on(f"{P}/central/state")]
                          == [True, False], 10)
        assert json.dumps(ears.on(f"{P}/central/state")[-1]) == '{"online": false}'
    finally:
        if proc.poll() is None:
            proc.kill()
        ears.close()
        sock.close()


def test_after_a_sigkill_the_will_says_offline_and_the_restart_republishes_the_truth(
        tmp_path: Path, broker: Broker) -> None:
    from sim.central import CentralProcess

    cfg = write_config(tmp_path / "c", broker_port=broker.port, catalog=TEST_CATALOG)
    c = CentralProcess(cfg, tmp_path / "central.log")
    c.start()
    ears = Listener(broker, f"{P}/central/state", f"{P}/agent/k/reply")
    try:
        ears.send(f"{P}/agent/k/request", json.dumps({"req_id": "r", "ticket_id": "t",
                                                      "service": "B", "ts": 0}))
        assert wait_until(lambda: ears.on(f"{P}/agent/k/reply"), 10)
        c.kill()
        assert wait_until(lambda: ears.on(f"{P}/central/state")[-1:] == [{"online": False}],
                          10), ears.on(f"{P}/central/state")
        c.start()
        fresh = Listener(broker, f"{P}/central/queue", f"{P}/central/state")
        assert wait_until(lambda: [s["online"] for s in fresh.on(f"{P}/central/state")][-1:]
                          == [True], 10)
        assert wait_until(lambda: any(q["services"]["B"]["waiting"] == 1
                                      for q in fresh.on(f"{P}/central/queue")), 10)
        fresh.close()
    finally:
        ears.close()
        c.stop()
