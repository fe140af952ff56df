"""Run a private Mosquitto broker on loopback (for hall-sim, the tests and the benchmarks).

Mosquitto started as root drops to the ``mosquitto`` user, so its directory,
config, keys and password file are made readable by that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """One mosquitto process; ``extra`` lines go into its config (TLS, ACL …)."""

    port: int = field(default_factory=free_port)
    extra: str = ""
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hall-mqtt-")))
    anonymous: bool = True
    listener_extra: str = ""  # lines for the listener itself: cafile, certfile, keyfile
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        os.chmod(self.root, 0o755)
        (self.root / "data").mkdir(exist_ok=True)
        self.conf = self.root / "mosquitto.conf"
        self.log = self.root / "mosquitto.log"
        self.write_conf()

    def write_conf(self) -> None:
        self.conf.write_text(
            "per_listener_settings false\n"
            f"listener {self.port} 127.0.0.1\n{self.listener_extra}\n"
            f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {self.root / 'data'}/\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\nset_tcp_nodelay true\n"
            f"{self.extra}\n", encoding="utf-8")
        self.own()

    def own(self) -> None:
        """Let the ``mosquitto`` user read what it needs when we run as root."""
        if os.geteuid() != 0:
            return
        try:
            uid = pwd.getpwnam("mosquitto").pw_uid
        except KeyError:
            return
        for p in [self.root, *self.root.rglob("*")]:
            os.chown(p, uid, -1)

    def start(self, timeout: float = 10.0) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
