"""hall-central's pages in a real browser (Debian's chromium): how soon the TV shows a
clerk's call, and how long a ticket page takes to load.

The real web app (central/web) over the real desk and store is served by uvicorn on
127.0.0.1 in this process; the browser runs the real pages.

1. Console action → TV shows it: from the clerk's ``POST …/call-next`` (sent from here,
   with the session and CSRF token the console page uses) to the moment the TV page's
   big number changes (a MutationObserver in the page notes ``Date.now()``; same
   machine, same clock). The floor, measured in the same run: a bare SSE round trip —
   a POST to a route that only puts a line on an open EventSource in the same
   browser, noted the same way (no desk, no store, no rendering).
2. Ticket page load: ``/t/{token}`` opened in a fresh page until its ``load`` event
   (navigation timing), beside a bare HTML page of the same server loaded the same way.

Run: ``.venv/bin/python bench/bench_pages.py [--calls 60] [--loads 40]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from fastapi.responses import HTMLResponse, StreamingResponse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.auth import add_user  # noqa: E402
from central.config import CentralConfig, QueueRules  # noqa: E402
from central.desk import Desk  # noqa: E402
from central.schema import migrate  # noqa: E402
from central.web.app import create_app  # noqa: E402
from hall_agent.contract.config import HallConfig, load_catalog  # noqa: E402
from hall_agent.contract.ticket_token import ticket_token  # noqa: E402
from hall_agent.core.queue import QueueEngine  # noqa: E402
from hall_agent.core.store import Store  # noqa: E402
from sim.broker import free_port  # noqa: E402

CATALOG = ROOT / "tests" / "data" / "services.toml"
SECRET = b"bench-pages-hall-secret-0123456789abcdef"
PASSWORD = "bench password"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OBSERVE = """() => { window.__seen = {}; const e = document.getElementById('now-number');
  new MutationObserver(() => { window.__seen[e.textContent] = Date.now(); })
    .observe(e, {childList: true, characterData: true, subtree: true}); }"""
BARE = """<!doctype html><html><head><meta charset="utf-8"></head><body><p id="x">0</p>
<script src="/bare/bare.js"></script></body></html>"""
BARE_JS = """window.__seen = {}; const es = new EventSource('/bare/events');
es.addEventListener('ping', ev => { window.__seen[ev.data] = Date.now();
  document.getElementById('x').textContent = ev.data; });
es.onopen = () => { window.__open = true; };"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def build(root: Path, tickets: int) -> tuple[Any, Desk, list[str]]:
    store = Store(root)
    migrate(store)
    catalog = load_catalog(CATALOG)
    tz = ZoneInfo("Asia/Shanghai")
    engine = QueueEngine(store, catalog, tz)
    desk = Desk(store, engine, catalog, QueueRules(recall_min_interval_s=0))
    cfg = CentralConfig(hall=HallConfig(id="fz-citizen", name="福州市市民服务中心",
                                        catalog=str(CATALOG)), central={"data_dir": str(root)})
    app = create_app(desk, cfg, secret=SECRET)
    add_user(store, "clerk-005", PASSWORD, ["5"])
    tokens = []
    for _ in range(tickets):
        t = engine.issue("A").ticket
        tokens.append(ticket_token(SECRET, t.ticket_id, t.day))
    queues: set[asyncio.Queue[str]] = set()

    async def bare_events() -> StreamingResponse:
        q: asyncio.Queue[str] = asyncio.Queue()
        queues.add(q)

        async def gen() -> AsyncIterator[str]:
            try:
                yield ": connected\n\n"
                while True:
                    yield f"event: ping\ndata: {await q.get()}\n\n"
            finally:
                queues.discard(q)
        return StreamingResponse(gen(), media_type="text/event-stream")

    async def bare_ping(n: str) -> dict[str, int]:
        for q in list(queues):
            q.put_nowait(n)
        return {"sent": len(queues)}

    app.add_api_route("/bare/events", bare_events, methods=["GET"])
    app.add_api_route("/bare/ping/{n}", bare_ping, methods=["POST"])
    app.add_api_route("/bare/page", lambda: HTMLResponse(BARE), methods=["GET"])
    app.add_api_route("/bare/bare.js", lambda: HTMLResponse(BARE_JS, media_type="text/javascript"),
                      methods=["GET"])
    return app, desk, tokens


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    # critical: the streams cut at the end are not worth a traceback each
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical", lifespan="on"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.05)
    return server, t, f"http://127.0.0.1:{port}"


def seen(page: Any, key: str) -> float:
    page.wait_for_function(f"() => window.__seen && window.__seen[{key!r}]", timeout=20_000)
    return float(page.evaluate(f"() => window.__seen[{key!r}]"))


def main() -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--loads", type=int, default=40)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    app, desk, tokens = build(root, a.calls + a.loads)
    server, thread, url = serve(app)
    call_ms: list[float] = []
    floor_ms: list[float] = []
    load_ms: list[float] = []
    bare_load_ms: list[float] = []
    try:
        with sync_playwright() as p, httpx.Client(base_url=url, timeout=20,
                                                  follow_redirects=True) as clerk:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            r = clerk.post("/console/login", data={"staff": "clerk-005", "password": PASSWORD,
                                                   "window": "5"})
            m = re.search(r'"csrf": "([^"]+)"', r.text)
            assert m, "login failed"
            headers = {"X-CSRF-Token": m.group(1)}
            tv = b.new_page(viewport={"width": 1920, "height": 1080})
            tv.goto(url + "/display")
            tv.wait_for_function("() => document.getElementById('lost').hidden")
            tv.evaluate(OBSERVE)
            bare = b.new_page()
            bare.goto(url + "/bare/page")
            bare.wait_for_function("() => window.__open === true")
            for i in range(a.calls + 3):
                t0 = time.time() * 1000
                body = clerk.post("/api/v1/windows/5/call-next", headers=headers).json()
                number = body["serving"]["number"]
                got = seen(tv, number) - t0
                t0 = time.time() * 1000
                clerk.post(f"/bare/ping/{i}")
                floor = seen(bare, str(i)) - t0
                if i >= 3:  # the first calls warm up the page and the server
                    call_ms.append(got)
                    floor_ms.append(floor)
            for token in tokens[a.calls:a.calls + a.loads]:
                for path, out in ((f"/t/{token}", load_ms), ("/bare/page", bare_load_ms)):
                    pg = b.new_page(viewport={"width": 390, "height": 844})
                    pg.goto(url + path, wait_until="load")
                    out.append(float(pg.evaluate(
                        "() => performance.getEntriesByType('navigation')[0].loadEventEnd")))
                    pg.close()
            b.close()
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(10)
        desk.store.close()
    print("## hall-central's pages in chromium (console → TV, ticket page)\n")
    print("| measure | n | p50 | p99 | floor p50 (same run) | ratio p50 |")
    print("|---|---|---|---|---|---|")
    f50 = pct(floor_ms, .5)
    print(f"| console call → TV shows it | {len(call_ms)} | {pct(call_ms, .5):.0f} ms | "
          f"{pct(call_ms, .99):.0f} ms | {f50:.1f} ms (bare SSE round trip) | "
          f"{pct(call_ms, .5) / f50:.2f} |")
    b50 = pct(bare_load_ms, .5)
    print(f"| ticket page /t/… load | {len(load_ms)} | {pct(load_ms, .5):.0f} ms | "
          f"{pct(load_ms, .99):.0f} ms | {b50:.1f} ms (bare page + script) | "
          f"{pct(load_ms, .5) / b50:.2f} |")
    print(f"\nThe call is timed from the clerk's POST to the TV's DOM change; the floor's p99 "
          f"was {pct(floor_ms, .99):.1f} ms. Page loads are a fresh tab each, to its load "
          "event (navigation timing).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
