"""The systemd side: the units say what the brief promises, the agent speaks sd_notify
(READY, WATCHDOG, STOPPING) and logs for journald, the udev rules are well formed."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, TEST_CATALOG, free_port, rule_ok, wait_until
from hall_agent.contract.config import AgentConfig
from hall_agent.sdnotify import Notifier, Watchdog
from sim.hall import SimHall

SYSTEMD = ROOT / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment, method-assign]
    cp.read(SYSTEMD / name)
    return cp


def test_agent_unit_is_notify_with_a_watchdog_restart_and_hardening() -> None:
    s = unit("hall-agent.service")["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert int(s["WatchdogSec"]) >= 15
    assert s["Restart"] == "on-failure"
    assert s["RestartPreventExitStatus"] == "2"  # a config error is not retried in a loop
    assert s["User"] == "hall-edge"
    for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
        assert s[key] == value, key
    # The store must stay writable under ProtectSystem=strict, where the config says.
    assert s["ReadWritePaths"] == AgentConfig().data_dir
    # Device access must survive the hardening.
    assert "PrivateDevices" not in s and "DevicePolicy" not in s and "ProtectClock" not in s
    assert s["ExecStart"].startswith("/opt/hall-edge/venv/bin/hall-agent --config "
                                     "/etc/hall-edge/agent.toml")


def test_kiosk_unit_restarts_on_crash_in_the_graphical_session() -> None:
    k = unit("hall-kiosk.service")
    assert k["Service"]["Restart"] == "always"
    assert k["Install"]["WantedBy"] == "graphical-session.target"
    desktop = (SYSTEMD / "hall-kiosk.desktop").read_text()
    assert "Exec=/opt/hall-edge/bin/hall-kiosk-session" in desktop
    session = (SYSTEMD / "hall-kiosk-session").read_text()
    assert "systemctl --user start hall-kiosk.service" in session
    assert os.access(SYSTEMD / "hall-kiosk-session", os.X_OK)


def test_udev_rules_are_well_formed_including_the_commented_examples() -> None:
    lines = (SYSTEMD / "99-hall-edge.rules").read_text().splitlines()
    active = [x for x in lines if x.strip() and not x.startswith("#")]
    examples = [x[1:] for x in lines if x.startswith("#SUBSYSTEM")]
    assert active and len(examples) == 4
    for line in active + examples:
        assert rule_ok(line), line
    names = {m for x in examples for m in re.findall(r'SYMLINK\+="([^"]+)"', x)}
    assert names == {"hall-printer", "hall-rs485", "hall-idreader", "input/hall-scanner"}
    # The example config uses the same names.
    cfg = (ROOT / "config" / "agent.toml").read_text()
    assert "/dev/hall-printer" in cfg and "/dev/hall-rs485" in cfg


def test_install_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SYSTEMD / "install.sh")], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-S", "warning", str(SYSTEMD / "install.sh")],
                       check=True)


# ---------------------------------------------------------------------------- sd_notify

class NotifySocket:
    """systemd's side of NOTIFY_SOCKET: collects every datagram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def has(self, field: str) -> bool:
        return any(field in m.split("\n") for _, m in self.messages)

    def count(self, field: str) -> int:
        return sum(field in m.split("\n") for _, m in self.messages)

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.sock.close()


def test_watchdog_pings_only_while_every_check_passes(tmp_path: Path) -> None:
    ns = NotifySocket(tmp_path / "notify")
    store_ok = threading.Event()
    store_ok.set()
    n = Notifier({"NOTIFY_SOCKET": str(ns.path), "WATCHDOG_USEC": "300000"})
    wd = Watchdog(n, lambda: True, [lambda: None if store_ok.is_set() else "store wedged"])
    wd.start()
    try:
        assert wait_until(lambda: ns.count("WATCHDOG=1") >= 3, 3)
        assert ns.messages[0][1].startswith("READY=1")
        store_ok.clear()
        time.sleep(0.3)
        before = ns.count("WATCHDOG=1")
        time.sleep(0.6)
        assert ns.count("WATCHDOG=1") == before  # wedged: systemd will restart us
        assert any("STATUS=unhealthy: store wedged" in m for _, m in ns.messages)
        store_ok.set()
        assert wait_until(lambda: ns.count("WATCHDOG=1") > before, 2)
    finally:
        wd.stop()
        ns.close()


def test_notifier_is_a_no_op_outside_systemd() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    assert n.ready() is False and n.watchdog() is False


def test_watchdog_meant_for_another_pid_is_ignored() -> None:
    n = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000",
                  "WATCHDOG_PID": str(os.getpid() + 1)})
    assert n.watchdog_s is None


@pytest.mark.slow
def test_agent_says_ready_once_the_api_listens_pings_and_says_stopping(tmp_path: Path) -> None:
    sim = SimHall(tmp_path / "hall", api=f"127.0.0.1:{free_port()}", catalog=str(TEST_CATALOG),
                  bus_devices=False)
    sim.write_config()
    ns = NotifySocket(tmp_path / "notify")
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        st = os.fstat(log.fileno())
        env = {**os.environ, "NOTIFY_SOCKET": str(ns.path), "WATCHDOG_USEC": "900000",
               "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                                 str(sim.config_path)], stdout=log, stderr=log, env=env,
                                cwd=ROOT)
    try:
        assert wait_until(lambda: ns.has("READY=1"), 30), log_path.read_text()
        # READY came after the API listens: it answers at once.
        assert httpx.get(f"http://{sim.api}/v1/health", timeout=2).status_code == 200
        assert wait_until(lambda: ns.count("WATCHDOG=1") >= 3, 5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert ns.has("STOPPING=1")
        # Under journald: one key=value line per record, with the <priority> prefix.
        lines = [x for x in log_path.read_text().splitlines() if x.strip()]
        assert lines and all(re.match(r"^<\d>level=\w+ logger=\S+ msg=", x) for x in lines), \
            lines[:5]
        assert any(x.startswith("<6>level=info logger=hall_agent msg=\"hall-agent ")
                   for x in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        ns.close()
        sim.close()
