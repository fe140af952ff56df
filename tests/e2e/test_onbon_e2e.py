"""The real hall-agent process calling onto a simulated ONBON hall board (pty and TCP).

The simulator runs in this process so the test can read the dots the controller
was sent; the agent is the console entry point systemd starts.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conftest import TEST_CATALOG, free_port, wait_until
from drivers.onbon_area import decode_pixels
from drivers.onbon_render import render_line
from drivers.rs485 import Colour
from hall_agent.services.boards import call_text
from sim.hall import SimHall
from sim.onbon import SimOnbon
from sim.procs import AgentProcess

pytestmark = pytest.mark.slow


def shows(ctl: SimOnbon, line: int, text: str) -> bool:
    with ctl.lock:
        a = ctl.areas.get(line)
    return a is not None and decode_pixels(
        ctl.model, a.pages[0].bitmap, a.width, a.height,
        colours=ctl.colours) == render_line(text, ctl.width, Colour.RED)


@pytest.mark.parametrize(("model", "transport"), [("onbon-bx5", "serial"),
                                                  ("onbon-bx6", "tcp")])
def test_agent_process_calls_onto_an_onbon_board(tmp_path: Path, model: str,
                                                 transport: str) -> None:
    voice = '[voice]\noutput = "board"\n' if model == "onbon-bx6" else ""
    sim = SimHall(tmp_path, api=f"127.0.0.1:{free_port()}", catalog=str(TEST_CATALOG),
                  boards=model, board_transport=transport, extra_toml=voice)
    agent = AgentProcess(sim.write_config(), sim.api, tmp_path / "agent.log")
    try:
        agent.start()
        assert sim.onbon is not None
        ctl = sim.onbon
        with agent.client() as http:
            t = http.post("/v1/tickets", json={"service": "A"},
                          headers={"Idempotency-Key": str(uuid.uuid4())}).json()
            called = http.post("/v1/calls", json={"window": "5"}).json()
        assert called["ticket"] == t["number"]
        assert wait_until(lambda: shows(ctl, 0, call_text(t["number"], "5")), 20), (
            ctl.describe(), agent.log()[-2000:])
        assert agent.health()["devices"]["board-hall"]["status"] == "ok"
        if model == "onbon-bx6":
            # [voice] output = "board": the BX-6 says the call (and the agent plays no WAV).
            assert wait_until(lambda: f"请{t['number']}号到5号窗口办理" in ctl.spoken, 10), (
                ctl.describe())
            assert not list((tmp_path / "data" / "voice").glob("*.wav"))
        # Power cut: the controller comes back blank, the agent notices and repaints.
        sim.command("onbon power off")
        assert wait_until(lambda: agent.health()["devices"]["board-hall"]["status"]
                          == "fault", 30)
        sim.command("onbon power on")
        assert wait_until(lambda: shows(ctl, 0, call_text(t["number"], "5")), 30), (
            ctl.describe(), agent.log()[-2000:])
    finally:
        agent.stop()
        sim.close()


def test_hall_sim_switch_puts_an_onbon_board_in_the_hall(tmp_path: Path) -> None:
    """`hall-sim --boards onbon-bx5`: the processes a technician starts."""
    import json
    import subprocess
    import sys

    import httpx

    from conftest import ROOT
    from sim.hall import control

    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "sim.main", "--dir", str(tmp_path),
                            "--api", f"127.0.0.1:{port}", "--boards", "onbon-bx5", "run",
                            "--catalog", str(TEST_CATALOG)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    agent = AgentProcess(tmp_path / "agent.toml", f"127.0.0.1:{port}", tmp_path / "agent.log")
    try:
        assert wait_until(lambda: (tmp_path / "sim.sock").exists(), 20), "hall-sim did not start"
        cfg = (tmp_path / "agent.toml").read_text(encoding="utf-8")
        assert 'protocol = "onbon-bx5"' in cfg and "width = 192" in cfg
        agent.start()
        with httpx.Client(base_url=agent.url, timeout=10) as http:
            http.post("/v1/tickets", json={"service": "A"},
                      headers={"Idempotency-Key": str(uuid.uuid4())})
            called = http.post("/v1/calls", json={"window": "5"}).json()
        assert called["ticket"]

        def areas() -> dict[str, dict[str, int]]:
            return dict(json.loads(control(tmp_path / "sim.sock", "onbon"))["areas"])

        # The fresh call flashes on the top line (display mode 07), the only line lit.
        assert wait_until(lambda: areas().get("0", {}).get("mode") == 0x07
                          and "1" not in areas(), 20), areas()
        png = tmp_path / "boards" / "onbon-1.png"
        assert wait_until(png.exists, 10)
        assert agent.health()["devices"]["board-hall"]["status"] == "ok"
    finally:
        agent.stop()
        sim.terminate()
        sim.wait(15)
