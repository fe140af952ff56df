"""The central-mode demo (``scripts/demo --mqtt``): hall-central's pages beside the first
kiosk's simulated hall, a second kiosk agent on the same broker, a demo clerk's login,
and the addresses to open (console, hall TV, a window's screen, a ticket's page)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from hall_agent.contract.config import HallConfig
from sim.broker import free_port
from sim.hall import SimHall
from sim.procs import wait_until

DEMO_CLERK = "demo"
DEMO_PASSWORD = "demo-2026"  # a demo hall only; `hall-central user add` makes real logins


def token_status_url(listen: str) -> str:
    """``http://LISTEN/t/{token}`` when this agent knows ``{token}``, else ``""`` (the
    agent's default QR address)."""
    url = f"http://{listen}/t/{{token}}"
    try:
        HallConfig(id="demo", name="demo", status_url=url)
    except ValidationError:
        return ""
    return url


@dataclass
class CentralDemo:
    hall: SimHall
    listen: str
    web: Any = None
    kiosk2: SimHall | None = None
    agent2: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.listen}"

    def start(self) -> None:
        from central.main import _web

        central = self.hall.central
        assert central is not None and self.hall.broker is not None
        self.web = _web(central.cfg, central)
        if self.web is None:
            self.notes.append("hall-central's pages are not installed: the queue runs without")
        elif not wait_until(self._pages_up, 20):
            self.notes.append(f"hall-central's pages did not answer on {self.base}")
        try:
            from central.auth import add_user

            add_user(central.store, DEMO_CLERK, DEMO_PASSWORD, ["*"])
        except ImportError:
            self.notes.append("no staff logins (central/auth.py) in this build")
        except Exception as e:  # already there (a second run in the same directory)
            self.notes.append(f"demo clerk: {e}")
        self._second_kiosk()

    def _pages_up(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.base}/display", timeout=2).status_code == 200
        return False

    def _second_kiosk(self) -> None:
        assert self.hall.broker is not None
        k = SimHall(self.hall.root / "kiosk-02", api=f"127.0.0.1:{free_port()}",
                    catalog=self.hall.catalog, agent_id="kiosk-02", bus_devices=False,
                    status_url=self.hall.status_url,
                    extra_toml=f'[mqtt]\nhost = "127.0.0.1"\nport = {self.hall.broker.port}\n')
        k.write_config()
        log = (k.root / "agent.log").open("ab")
        self.agent2 = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                                        str(k.config_path)], stdout=log,
                                       stderr=subprocess.STDOUT)
        self.kiosk2 = k
        base = f"http://{k.api}"

        def central_mode() -> bool:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                return bool(httpx.get(f"{base}/v1/health", timeout=2).json()["mode"]
                            == "central")
            return False

        if not wait_until(central_mode, 30):
            self.notes.append(f"kiosk-02 did not reach central mode (log {k.root}/agent.log)")

    def take_at_kiosk2(self, service: str) -> dict[str, Any]:
        assert self.kiosk2 is not None
        r = httpx.post(f"http://{self.kiosk2.api}/v1/tickets", json={"service": service},
                       headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=10)
        return dict(r.json())

    def print_where(self, ticket_url: str | None) -> None:
        print(f"\nhall-central        {self.base}  (two kiosk agents: kiosk-01, kiosk-02 on "
              "the same broker)")
        print(f"  clerks' console   {self.base}/console   login {DEMO_CLERK} / "
              f"{DEMO_PASSWORD} (any window)")
        print(f"  hall TV           {self.base}/display")
        print(f"  window 5's screen {self.base}/display/window/5")
        if ticket_url:
            print(f"  a ticket's page   {ticket_url}")
        print(f"  JSON API          {self.base}/openapi.json")
        for n in self.notes:
            print(f"  note: {n}")

    def close(self) -> None:
        if self.agent2 is not None and self.agent2.poll() is None:
            self.agent2.terminate()
            try:
                self.agent2.wait(10)
            except subprocess.TimeoutExpired:
                self.agent2.kill()
        if self.kiosk2 is not None:
            self.kiosk2.close()
        if self.web is not None:
            # Open live pages (SSE) end first, or the stop waits for their timeout.
            close = getattr(self.web[0].config.app.state, "close_streams", None)
            if close is not None:
                close()
            self.web[0].should_exit = True
            self.web[1].join(10)
