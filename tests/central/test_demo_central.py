"""``scripts/demo --mqtt`` (``hall-sim demo --mqtt``): hall-central with two kiosk agents
numbering through it, and the addresses a person opens, with the demo clerk's login."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.broker import free_port

pytestmark = pytest.mark.slow


def test_demo_mqtt_runs_central_with_two_kiosks_and_prints_where_to_look(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "-m", "sim.main", "--dir", str(tmp_path / "demo"),
                        "--api", f"127.0.0.1:{free_port()}", "demo", "--once", "--mqtt"],
                       capture_output=True, text=True, timeout=300, env=env,
                       stdin=subprocess.DEVNULL)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "central mode" in out
    numbers = re.findall(r"取号 ([A-Z]\d{3})", out)
    assert len(numbers) == 8 and len(set(numbers)) == 8, out  # two kiosks, one numbering
    assert re.search(r"kiosk-02 取号 A004 ", out), out
    for page in ("/console   login demo / demo-2026", "/display", "/display/window/5"):
        assert page in out, out
    assert "Traceback" not in (tmp_path / "demo" / "kiosk-02" / "agent.log").read_text()
