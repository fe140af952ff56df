"""The real hall-central (central/service.py) with fault knobs around it, for tests and
the simulator: it can be told to go silent, answer slowly, drop acks, or not know a
request type, so the agent's hard paths can be exercised against the real central.

Nothing here implements the central: :class:`Central` only overrides the service's
``fault_*`` hooks and adds a few conveniences (``call``, ``control``). Run in this
process (``Central(...).start()``) or as its own process
(``python -m sim.central --config PATH``, control lines on stdin: see
:class:`sim.procs.CentralProcess`), which is what SIGKILL tests kill.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.config import CentralConfig
from central.service import HallCentral
from central.views import Actor
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import AppointmentsConfig
from hall_agent.contract.mqtt import CentralCall
from hall_agent.core.refusal import Refused
from sim.procs import ROOT, wait_until

log = logging.getLogger("sim.central")

CENTRAL_HELP = """central commands:
  silent on|off        stop/resume answering requests and storing/acknowledging events
  slow MS              answer number requests after MS milliseconds
  drop_acks on|off     store events but send no acknowledgements
  call WINDOW          call the next ticket to a window
  recall WINDOW        call the window's ticket again
  stats                events received, unique, duplicates; tickets; requests answered
  lease AGENT          publish the agent's lease again
"""
SIM_ACTOR = Actor("hall-sim", "api")
DEFAULT_SECRET = b"central-stand-in-secret-0123456789abcdef"


@dataclass
class Faults:
    silent: bool = False
    delay_ms: int = 0
    drop_acks: bool = False
    # Request types not answered (an older central that does not know an extension,
    # MQTT.md "Requests and their extensions"), or answered "unsupported".
    ignore: set[str] = field(default_factory=set)
    unsupported: set[str] = field(default_factory=set)


def sim_config(host: str, port: int, hall: str, data_dir: Path, tz: Any, *,
               lease_size: int = 200, username: str | None = None,
               tls_ca: str | None = None, appointments: AppointmentsConfig | None = None,
               rules: dict[str, Any] | None = None,
               listen: str = "127.0.0.1:8780") -> CentralConfig:
    """A hall-central config for a test hall. Recalls are not spaced by default: tests
    recall at once (``rules`` sets any ``[central.queue]`` key)."""
    return CentralConfig.model_validate({
        "hall": {"id": hall, "name": "模拟大厅", "timezone": str(tz)},
        "central": {"data_dir": str(data_dir), "lease_size": lease_size,
                    "listen": listen, "public_url": f"http://{listen}",
                    "queue": {"recall_min_interval_s": 0, **(rules or {})}},
        "mqtt": {"host": host, "port": port, "username": username, "tls_ca": tls_ca},
        "appointments": appointments})


class FaultyCentral(HallCentral):
    """The service with :class:`Faults` consulted at its hooks."""

    faults: Faults

    def fault_request(self, rtype: str) -> str:
        if self.faults.silent or rtype in self.faults.ignore:
            return "ignore"
        return "unsupported" if rtype in self.faults.unsupported else "answer"

    def fault_delay_s(self) -> float:
        return self.faults.delay_ms / 1000

    def fault_store_events(self) -> bool:
        return not self.faults.silent

    def fault_send_acks(self) -> bool:
        return not self.faults.drop_acks

    def call(self, window: str, kind: str = "call") -> CentralCall | None:
        """Call (or recall) at ``window`` as a clerk would; the call sent, or None when
        nobody was waiting."""
        view = (self.desk.recall(window, SIM_ACTOR) if kind == "recall"
                else self.desk.call_next(window, SIM_ACTOR))
        if view.serving is None:
            return None
        r = self.store.one("SELECT * FROM calls WHERE window = ? ORDER BY rowid DESC LIMIT 1",
                           (window,))
        assert r is not None
        return CentralCall(call_id=r["call_id"], ticket=r["number"], window=window,
                           service=r["service"], kind=r["kind"], ts=self.engine.iso(r["ts"]))

    def control(self, line: str) -> str:
        w = line.split()
        if not w or w[0] == "help":
            return CENTRAL_HELP
        on = {"on": True, "off": False}
        try:
            if w[0] == "silent":
                self.faults.silent = on[w[1]]
            elif w[0] == "slow":
                self.faults.delay_ms = int(w[1])
            elif w[0] == "drop_acks":
                self.faults.drop_acks = on[w[1]]
            elif w[0] in ("call", "recall"):
                c = self.call(w[1], w[0])
                return json.dumps(c.model_dump() if c else {"ticket": None})
            elif w[0] == "stats":
                return json.dumps(self.stats(), ensure_ascii=False)
            elif w[0] == "lease":
                self.publish_lease(w[1])
            else:
                return f"error: unknown command {line.strip()!r}; try help"
        except (IndexError, KeyError, ValueError) as e:
            return f"error: {e}"
        except Refused as e:
            return f"error: {e}"
        return "ok " + json.dumps({k: sorted(v) if isinstance(v, set) else v
                                   for k, v in vars(self.faults).items()})


class Central(FaultyCentral):
    """The test-facing constructor the e2e tests and the simulator use."""

    def __init__(self, host: str, port: int, hall: str, catalog: Catalog, data_dir: Path,
                 tz: ZoneInfo, lease_size: int = 200, username: str | None = None,
                 password: str | None = None, tls_ca: str | None = None,
                 faults: Faults | None = None, secret: bytes = DEFAULT_SECRET,
                 appointments: AppointmentsConfig | None = None,
                 rules: dict[str, Any] | None = None, listen: str = "127.0.0.1:8780") -> None:
        self.faults = faults or Faults()
        self.secret = secret
        cfg = sim_config(host, port, hall, data_dir, tz, lease_size=lease_size,
                         username=username, tls_ca=tls_ca, appointments=appointments,
                         rules=rules, listen=listen)
        super().__init__(cfg, catalog, password=password, secret=secret)


def write_config(root: Path, *, broker_port: int, catalog: Path, hall: str = "fz-citizen",
                 listen: str = "127.0.0.1:8780", lease_size: int = 200,
                 rules: dict[str, Any] | None = None, extra: str = "") -> Path:
    """A hall-central config file under ``root`` (data in ``root/data``)."""
    q = "".join(f"{k} = {json.dumps(v)}\n" for k, v in (rules or {}).items())
    path = root / "central.toml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by hall-sim for a test hall.\n"
        f'[hall]\nid = "{hall}"\nname = "福州市市民服务中心"\ncatalog = "{catalog}"\n\n'
        f'[central]\nlisten = "{listen}"\ndata_dir = "{root / "data"}"\n'
        f'public_url = "http://{listen}"\nlease_size = {lease_size}\n\n'
        f"[central.queue]\n{q}\n"
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nkeepalive_s = 5\n{extra}',
        encoding="utf-8")
    return path


class CentralProcess:
    """hall-central as its own process, started and killed on purpose.

    ``faults=False`` runs the console entry point itself (``python -m central.main``),
    exactly what systemd starts; ``faults=True`` runs the same service through
    :func:`main` here, with :meth:`control` lines (``silent on``…) on its stdin.
    Its log (stderr) goes to ``log_path``; it is up when it says it is online.
    """

    ONLINE = "hall-central online"

    def __init__(self, config_path: Path, log_path: Path, *, faults: bool = False) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.faults = faults
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self._log_from = 0

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        module = "sim.central" if self.faults else "central.main"
        seen = self.log().count(self.ONLINE)
        self._log_from = len(self.log())
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(self.config_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE if self.faults else log,
            stderr=log, text=True, cwd=ROOT)
        self.starts += 1
        if not wait_until(lambda: self._up(seen) and self._pages(), timeout):
            self.kill()
            raise RuntimeError("hall-central did not start:\n" + self.log()[-4000:])

    def _pages(self) -> bool:
        """The pages listen (or hall-central said it runs without them)."""
        if "running the queue only" in self.log()[self._log_from:]:
            return True
        from central.config import load_central_config

        c = load_central_config(self.config_path).central
        try:
            socket.create_connection((c.host, c.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _up(self, seen: int) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"hall-central exited {self.proc.returncode}:\n"
                               + self.log()[-4000:])
        return self.log().count(self.ONLINE) > seen

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def control(self, line: str) -> str:
        """One fault command (see CENTRAL_HELP); its one-line answer."""
        assert self.faults and self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line.strip() + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: no clean stop, no offline message (the broker sends the will)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def db(self) -> sqlite3.Connection:
        """The store, read-only (safe beside the running service: WAL)."""
        from hall_agent.core.store import DB_NAME

        path = self.config_path.parent / "data" / DB_NAME
        c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        c.row_factory = sqlite3.Row
        return c


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.central --config PATH``: the real service as hall-central runs
    it (central/main.py), faults set by lines on stdin (``silent on`` …); each line is
    answered by one line on stdout."""
    import threading

    from central.main import load, serve

    args = list(sys.argv[1:] if argv is None else argv)
    cfg, catalog = load(args[args.index("--config") + 1])
    logging.basicConfig(level=cfg.central.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    svc = FaultyCentral(cfg, catalog)
    svc.faults = Faults()

    def commands() -> None:
        for line in sys.stdin:
            print(svc.control(line), flush=True)

    threading.Thread(target=commands, name="sim-control", daemon=True).start()
    return serve(cfg, svc)


if __name__ == "__main__":
    sys.exit(main())
