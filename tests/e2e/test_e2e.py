"""End to end with real processes: hall-sim, hall-agent, hallctl, over real ptys and HTTP."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, TEST_CATALOG, HallUnderTest, free_port, wait_until
from sim.hall import control

pytestmark = pytest.mark.slow


def hallctl(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hallctl.main", "--config", str(cfg),
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_hall_sim_and_agent_processes_issue_print_and_call(tmp_path: Path) -> None:
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "sim.main", "--dir", str(tmp_path),
                            "--api", f"127.0.0.1:{port}", "run", "--catalog",
                            str(TEST_CATALOG)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, cwd=ROOT)
    agent = None
    try:
        assert wait_until(lambda: (tmp_path / "sim.sock").exists(), 20), "hall-sim did not start"
        cfg = tmp_path / "agent.toml"
        agent = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                                  str(cfg)], stderr=(tmp_path / "agent.log").open("w"),
                                 cwd=ROOT)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, 30), "agent did not start"
        http = httpx.Client(base_url=base, timeout=10)
        t = http.post("/v1/tickets", json={"service": "A"},
                      headers={"Idempotency-Key": str(uuid.uuid4())}).json()
        assert t["printed"] is True, t

        def printed_tickets() -> dict[str, Any]:
            return dict(json.loads(control(tmp_path / "sim.sock", "printer tickets")))

        assert wait_until(lambda: printed_tickets()["count"] == 1, 10)
        printed = printed_tickets()
        assert t["number"] in printed["last_text"]
        assert printed["last_qr"] == [t["status_url"]]
        assert "社保医保" in printed["last_text"]
        assert wait_until(lambda: len(list((tmp_path / "tickets").glob("*.png"))) == 1, 10)

        call = http.post("/v1/calls", json={"window": "5"}).json()
        assert call["ticket"] == t["number"]
        info = http.get(f"/v1/tickets/{t['ticket_id']}").json()
        assert info["status"] == "called" and info["window"] == "5"
        assert http.get("/v1/queue").json()["windows"]["5"]["serving"] == t["number"]
    finally:
        for p in (agent, sim):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(15)


def test_sigkill_after_issue_loses_no_ticket_and_reuses_no_number(hall: HallUnderTest) -> None:
    http = hall.client()
    first = http.post("/v1/tickets", json={"service": "A"}).json()
    # The printer now answers slowly, so the kill lands after the commit, mid-print.
    hall.printer.set_state(delay_ms=400)
    key = str(uuid.uuid4())
    result: dict[str, Any] = {}

    def take() -> None:
        try:
            result["r"] = http.post("/v1/tickets", json={"service": "A"},
                                    headers={"Idempotency-Key": key})
        except httpx.HTTPError as e:
            result["e"] = e

    th = threading.Thread(target=take)
    th.start()
    db = hall.config_path.parent / "data" / "hall-agent.sqlite3"

    def committed() -> bool:
        with sqlite3.connect(db) as c:
            return bool(c.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 2)

    assert wait_until(committed, 10)
    hall.kill()
    th.join(10)
    assert "e" in result, "the kiosk's request was cut off by the kill"

    hall.printer.set_state(delay_ms=0)
    hall.start()
    tickets = {t["number"]: t for t in http.get("/v1/tickets").json()["tickets"]}
    assert set(tickets) == {"A001", "A002"}
    assert tickets["A001"]["ticket_id"] == first["ticket_id"]
    assert tickets["A002"]["status"] == "waiting"

    # The kiosk retries its cut-off request: same ticket, printed now, no new number.
    again = http.post("/v1/tickets", json={"service": "A"}, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json()["number"] == "A002" and again.json()["printed"] is True
    assert http.post("/v1/tickets", json={"service": "A"}).json()["number"] == "A003"
    assert wait_until(lambda: any(t.number == "A002" for t in hall.printer.tickets), 10)


def test_paper_out_still_issues_and_reports_the_fault(hall: HallUnderTest) -> None:
    http = hall.client()
    hall.printer.set_state(paper="end")
    t = http.post("/v1/tickets", json={"service": "B"}).json()
    assert t["printed"] is False and t["number"] == "B001"
    assert "paper" in t["print_detail"].lower() or "纸" in t["print_detail"]
    health = http.get("/v1/health").json()
    assert health["status"] == "fault"
    assert health["devices"]["printer"]["status"] == "fault"
    assert http.get(f"/v1/tickets/{t['ticket_id']}").json()["status"] == "waiting"
    assert not hall.printer.tickets

    # A reload of paper: the reprint prints, and health comes back by itself.
    hall.printer.set_state(paper="ok")
    r = http.post(f"/v1/tickets/{t['ticket_id']}/reprint").json()
    assert r["printed"] is True
    assert wait_until(lambda: http.get("/v1/health").json()["status"] == "ok", 10)
    db = hall.config_path.parent / "data" / "hall-agent.sqlite3"
    with sqlite3.connect(db) as c:
        kinds = [r[0] for r in c.execute("SELECT type FROM outbox ORDER BY seq")]
    assert kinds == ["ticket.issued", "ticket.print_failed", "ticket.printed",
                     "ticket.reprinted"]


def test_paper_near_end_prints_and_degrades(hall: HallUnderTest) -> None:
    http = hall.client()
    hall.printer.set_state(paper="near_end")
    t = http.post("/v1/tickets", json={"service": "A"}).json()
    assert t["printed"] is True
    h = http.get("/v1/health").json()
    assert h["status"] == "degraded" and h["devices"]["printer"]["status"] == "degraded"


def test_events_stream_carries_tickets_and_calls(hall: HallUnderTest) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{hall.url}/v1/events", timeout=20) as r:
            kind = ""
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line[6:])))
                    if kind == "call":
                        return

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    assert ready.wait(10)
    http = hall.client()
    t = http.post("/v1/tickets", json={"service": "A"}).json()
    http.post("/v1/calls", json={"window": "5"})
    th.join(10)
    kinds = [k for k, _ in seen]
    assert "ticket" in kinds and kinds[-1] == "call"
    assert seen[-1][1]["ticket"] == t["number"] and seen[-1][1]["window"] == "5"


def test_a_stop_ends_open_event_streams_instead_of_waiting_for_them(
        hall: HallUnderTest) -> None:
    """A kiosk keeps its stream open for ever: a stop (restart, update) ends it with a
    last resync, rather than waiting out the server's graceful timeout."""
    lines: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{hall.url}/v1/events", timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                lines.append(line)

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    assert ready.wait(10)
    hall.stop()
    th.join(10)
    assert not th.is_alive(), "the stream was not ended by the stop"
    assert "event: resync" in lines and any("agent stopping" in x for x in lines)
    assert "graceful shutdown exceeded" not in hall.log()


def test_hallctl_reports_status_calls_and_printer(hall: HallUnderTest) -> None:
    cfg = hall.config_path
    hall.client().post("/v1/tickets", json={"service": "A"})
    r = hallctl(cfg, "status")
    assert r.returncode == 0, r.stderr
    assert "standalone" in r.stdout and "printer" in r.stdout
    r = hallctl(cfg, "call", "5")
    assert r.returncode == 0 and "A001" in r.stdout
    r = hallctl(cfg, "--json", "tickets")
    assert json.loads(r.stdout)["tickets"][0]["status"] == "called"
    r = hallctl(cfg, "call", "99")
    assert r.returncode == 1 and "window" in r.stderr
    hall.printer.set_state(cover_open=True)
    r = hallctl(cfg, "--json", "printer", "status")
    assert r.returncode == 4
    assert json.loads(r.stdout)["status"] == "fault"
    r = hallctl(cfg, "printer", "test")
    assert r.returncode == 4 and "NOT printed" in r.stdout
    hall.printer.set_state(cover_open=False)
    r = hallctl(cfg, "printer", "test")
    assert r.returncode == 0, r.stdout + r.stderr


def test_hallctl_says_clearly_when_the_agent_is_not_running(tmp_path: Path) -> None:
    h = HallUnderTest(tmp_path / "h")
    try:
        r = hallctl(h.config_path, "status")
        assert r.returncode == 3
        assert "not running" in r.stderr and "Traceback" not in r.stderr
        r = hallctl(h.config_path, "--json", "devices")
        assert r.returncode == 3 and json.loads(r.stdout)["error"] == "agent_down"
    finally:
        h.close()


def test_a_second_agent_on_the_same_data_dir_refuses_to_start(hall: HallUnderTest) -> None:
    r = subprocess.run([sys.executable, "-m", "hall_agent.main", "--config",
                        str(hall.config_path)], capture_output=True, text=True, timeout=60,
                       cwd=ROOT, env={**os.environ})
    assert r.returncode == 3
    assert "already running" in r.stderr and str(hall.proc.pid) in r.stderr  # type: ignore[union-attr]
    time.sleep(0.1)
    assert hall.client().get("/v1/health").status_code == 200
