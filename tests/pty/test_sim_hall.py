"""hall-sim as a person runs it: the prompt, the board PNGs, the broker's port."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_boards_pty import HALL, AgentOnBus, wait

from drivers.types import Health
from sim.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[AgentOnBus]:
    h = AgentOnBus(tmp_path / "hall")
    try:
        h.start()
        yield h
    finally:
        h.close()


def test_board_pngs_follow_the_boards_after_the_adapter_is_replugged(
        hall: AgentOnBus) -> None:
    assert hall.agent is not None
    png = hall.bus.png_path(HALL)
    assert png is not None and wait(png.exists, 5.0)
    hall.sim.unplug("bus")
    # Out long enough for the agent to notice, as a technician takes a while.
    assert wait(lambda: hall.health("board-hall") is Health.FAULT, 10.0)
    hall.sim.replug("bus")
    before = png.stat().st_mtime_ns
    hall.issue("C")
    hall.agent.calls.call("8", "call")
    assert hall.bus.wait_for(lambda: "C001" in hall.bus.board(HALL).text()[0], 10.0)
    assert wait(lambda: png.stat().st_mtime_ns > before, 10.0)


def _read_until(fd: int, want: bytes, timeout: float) -> bytes:
    buf, deadline = b"", time.monotonic() + timeout
    while want not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_ctrl_c_at_the_prompt_stops_hall_sim(tmp_path: Path) -> None:
    """On a terminal: Ctrl-C at ``hall-sim>`` ends hall-sim, and its devices with it."""
    done = (0, 0)
    pid, fd = pty.fork()
    if pid == 0:  # the child: hall-sim on the pty, as in a terminal
        os.chdir(ROOT)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "sim.main", "--dir",
                                  str(tmp_path / "sim"), "--api", f"127.0.0.1:{free_port()}"])
    try:
        out = _read_until(fd, b"hall-sim> ", 60)
        assert b"hall-sim> " in out, out
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the foreground group
        out += _read_until(fd, b"stopping", 20)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = os.waitpid(pid, os.WNOHANG)
            if done[0]:
                break
            _read_until(fd, b"\n", 0.2)
        assert done[0] == pid, f"hall-sim still runs after Ctrl-C: {out!r}"
        assert os.waitstatus_to_exitcode(done[1]) == 0
        assert not (tmp_path / "sim" / "sim.sock").exists()
    finally:
        if not done[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_the_broker_port_can_be_chosen(tmp_path: Path) -> None:
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "sim.main", "--dir", str(tmp_path / "sim"),
                          "--api", f"127.0.0.1:{free_port()}", "run", "--mqtt-port",
                          str(port)], cwd=ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        cfg = tmp_path / "sim" / "agent.toml"
        assert wait(lambda: cfg.exists() and "[mqtt]" in cfg.read_text(), 60.0)
        assert f"port = {port}\n" in cfg.read_text()
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert f"mosquitto           127.0.0.1:{port}" in out
