"""A hall-central web side under test, in this process: the real desk on a real store
(central/desk.py), the real app (central/web/app.py), a clock the test moves for the
logins, and helpers to log in and act like the console's page does."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from central.auth import Auth, add_user
from central.config import CentralConfig, QueueRules
from central.desk import Desk
from central.schema import migrate
from central.web.app import create_app
from conftest import TEST_CATALOG, TZ, free_port, wait_until
from hall_agent.contract.config import HallConfig, load_catalog
from hall_agent.contract.ticket_token import ticket_token
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store

SECRET = b"0123456789abcdef0123456789abcdef-test-hall-secret"
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class WebHall:
    def __init__(self, root: Path, **rules: Any) -> None:
        self.store = Store(root)
        migrate(self.store)
        self.catalog = load_catalog(TEST_CATALOG)
        self.engine = QueueEngine(self.store, self.catalog, TZ)
        self.desk = Desk(self.store, self.engine, self.catalog,
                         QueueRules(**({"recall_min_interval_s": 0} | rules)))
        self.cfg = CentralConfig(hall=HallConfig(id="fz-citizen", name="福州市市民服务中心",
                                                 catalog=str(TEST_CATALOG)),
                                 central={"data_dir": str(root)})
        self.clock = Clock()
        self.app = create_app(self.desk, self.cfg, secret=SECRET, clock=self.clock)
        self.auth: Auth = self.app.state.web.auth
        add_user(self.store, "clerk-005", PASSWORD, ["5"])
        add_user(self.store, "clerk-006", PASSWORD, ["6"])
        add_user(self.store, "boss", PASSWORD, ["*"])

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://hall.test")

    def issue(self, service: str = "A", **kw: Any) -> tuple[str, str]:
        """A ticket: (its number, its page's token)."""
        t = self.engine.issue(service, **kw).ticket
        return t.number, ticket_token(SECRET, t.ticket_id, t.day)

    def login(self, c: TestClient, staff: str = "clerk-005", window: str = "5") -> str:
        """Log in through the form, as a browser does; returns the session's CSRF token."""
        r = c.post("/console/login", data={"staff": staff, "password": PASSWORD,
                                           "window": window}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = c.get("/console").text
        m = re.search(r'"csrf": "([^"]+)"', page)
        assert m, page[:500]
        return m.group(1)

    def audit(self) -> list[Any]:
        return self.store.query("SELECT * FROM audit ORDER BY id")

    def close(self) -> None:
        self.store.close()


class Served:
    """The app on a real socket (uvicorn in a thread, 127.0.0.1 only): for SSE and
    browsers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_until(lambda: self.server.started, 20)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def app_close(self) -> None:
        """Stop as hall-central does: the live streams end, then the server (which
        would otherwise wait for them without end)."""
        self.app.state.close_streams()
        self.server.should_exit = True
        self.thread.join(20)
