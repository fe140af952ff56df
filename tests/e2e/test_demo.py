"""The README's first command: `scripts/demo` runs `hall-sim demo` — simulated devices, a
real agent process, a scripted morning. Here it runs once, as the README's user would
see it (standalone, and central mode with Mosquitto and the central stand-in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.broker import free_port

pytestmark = pytest.mark.slow


def run_demo(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [sys.executable, "-m", "sim.main", "--dir", str(root), "--api",
         f"127.0.0.1:{free_port()}", "demo", "--once", *extra],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("mode", ["standalone", "central"])
def test_demo_runs_a_morning_and_leaves_what_it_says(tmp_path: Path, mode: str) -> None:
    r = run_demo(tmp_path / "demo", *(["--mqtt"] if mode == "central" else []))
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert f"{mode} mode" in out
    for line in ("取号 A001 社保医保", "叫号 请", "paper out → B00", "printed=False",
                 "paper loaded → printer ok", "reprint → printed=True", "health: "):
        assert line in out, f"{line!r} not in:\n{out}"
    tickets = sorted((tmp_path / "demo" / "tickets").glob("*.png"))
    assert len(tickets) >= 7, out  # six tickets and the reprint
    screens = sorted((tmp_path / "demo" / "screens").glob("*.png"))
    assert len(screens) >= 10, out  # the kiosk rendered offscreen: no display here
    assert "Traceback" not in (tmp_path / "demo" / "agent.log").read_text(encoding="utf-8")
