"""The real ``hall-kiosk`` in a real X window, tapped with xdotool as a person taps.

An Xvfb of the kiosk's portrait 1080×1920, the xcb platform (not offscreen), a real
agent on simulated devices, the machine's clock on Europe/London. After every step
the kiosk's probe (kiosk/probe.py) says which screen is on show and that nothing on
it is off the screen or cut (kiosk/fit.py); the X server's own picture of the
screen is saved next to the test's files (``x11/*.png``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                 reason="needs Xvfb and xdotool (scripts/bootstrap)")]

HALL_TZ = ZoneInfo("Asia/Shanghai")
IDLE_S = 15  # long enough that a slow machine between two taps never meets it


@pytest.fixture
def xserver(tmp_path: Path) -> Iterator[str]:
    """A private X server; its display number comes back on a pipe (-displayfd)."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1080x1920x24",
                             "-nolisten", "tcp", "-noreset"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "xvfb.log").open("wb"))
    os.close(w)
    try:
        number = b""
        with os.fdopen(r, "rb") as pipe:
            while not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    raise RuntimeError("Xvfb did not start: "
                                       + (tmp_path / "xvfb.log").read_text(errors="replace"))
                number += chunk
        yield f":{number.decode().strip()}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class RunningKiosk:
    def __init__(self, proc: subprocess.Popen[bytes], probe_dir: Path, display: str,
                 shots: Path, log: Path) -> None:
        self.proc, self.dir, self.display = proc, probe_dir, display
        self.shots, self.log = shots, log
        self.seq = 0
        self.last: dict[str, Any] = {}

    def probe(self) -> dict[str, Any]:
        """Ask the kiosk what it shows now (SIGUSR1) and wait for the answer."""
        assert self.proc.poll() is None, "hall-kiosk exited:\n" + self.log.read_text()
        want = self.seq + 1
        os.kill(self.proc.pid, signal.SIGUSR1)

        def answered() -> bool:
            try:
                data = json.loads((self.dir / "probe.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False
            if data["seq"] >= want:
                self.last = data
                return True
            return False

        assert wait_until(answered, 30), "the kiosk did not answer its probe"
        self.seq = self.last["seq"]
        return self.last

    def wait_for(self, timeout: float = 60, **want: object) -> dict[str, Any]:
        ok = wait_until(lambda: all(self.probe().get(k) == v for k, v in want.items()),
                        timeout, step=0.2)
        assert ok, f"wanted {want}, the kiosk shows {self.summary()}"
        return self.last

    def summary(self) -> dict[str, Any]:
        return {k: self.last.get(k) for k in ("screen", "lang", "elderly", "width", "height")}

    def button(self, *, key: str = "", text: str = "") -> dict[str, Any]:
        for b in self.last["buttons"]:
            if (key and b["key"] == key) or (text and b["text"] == text):
                return dict(b)
        raise AssertionError(f"no button {key or text!r} on {self.summary()}: "
                             f"{[(b['key'], b['text']) for b in self.last['buttons']]}")

    def tap(self, *, key: str = "", text: str = "") -> None:
        """A finger on the button's centre: X pointer events through the X server."""
        self.probe()
        b = self.button(key=key, text=text)
        subprocess.run(["xdotool", "mousemove", "--sync", str(b["x"]), str(b["y"]),
                        "click", "1"], env=os.environ | {"DISPLAY": self.display},
                       check=True, timeout=30)

    def fits(self, name: str) -> None:
        """Nothing off the screen, nothing cut; the picture kept as ``name``."""
        data = self.probe()
        self.x_screenshot(name)
        assert (data["width"], data["height"]) == (1080, 1920), self.summary()
        assert data["problems"] == [], f"{name}: {data['problems']}"

    def x_screenshot(self, name: str) -> Path:
        """The X server's root window, read back by a separate Qt client on xcb."""
        path = self.shots / f"{name}.png"
        code = ("from PyQt6.QtWidgets import QApplication; import sys; "
                "app = QApplication(sys.argv[:1]); "
                "assert app.primaryScreen().grabWindow(0).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60,
                       env=os.environ | {"DISPLAY": self.display, "QT_QPA_PLATFORM": "xcb"})
        return path


@pytest.fixture
def kiosk(xserver: str, hall: Any, tmp_path: Path) -> Iterator[RunningKiosk]:
    exe = Path(sys.executable).with_name("hall-kiosk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "kiosk.main"]
    log = tmp_path / "kiosk.log"
    env = os.environ | {"DISPLAY": xserver, "QT_QPA_PLATFORM": "xcb",
                        "TZ": "Europe/London", "HALL_KIOSK_PROBE": str(tmp_path / "probe"),
                        "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "--config", str(hall.config_path),
                             "--idle-timeout", str(IDLE_S)], env=env, cwd=ROOT,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    shots = tmp_path / "x11"
    shots.mkdir()
    k = RunningKiosk(proc, tmp_path / "probe", xserver, shots, log)
    try:
        assert wait_until(lambda: (tmp_path / "probe").is_dir() or proc.poll() is not None,
                          60), "hall-kiosk never came up"
        k.wait_for(screen="home")
        yield k
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()


def hall_minutes() -> set[str]:
    """The hall's HH:MM now and a minute either side (the probe may straddle one)."""
    now = datetime.now(HALL_TZ)
    return {(now + timedelta(minutes=d)).strftime("%H:%M") for d in (-1, 0, 1)}


def test_kiosk_in_a_real_x_window(kiosk: RunningKiosk, hall: Any) -> None:
    k = kiosk
    home = k.wait_for(screen="home", lang="zh", elderly=False)
    k.fits("01_home_zh")
    # the machine is on Europe/London: the header still shows the hall's time
    assert home["clock"] in hall_minutes()
    london = datetime.now(ZoneInfo("Europe/London")).strftime("%H:%M")
    assert home["clock"] != london
    hall_now = datetime.now(HALL_TZ)
    assert home["date"].startswith(f"{hall_now.month}月") or home["date"].startswith(
        f"{(hall_now - timedelta(minutes=1)).month}月")

    # switching at run time, there and back: the window stays the screen's size
    k.tap(text="长者模式")
    k.wait_for(elderly=True)
    k.fits("02_home_elderly")
    k.tap(text="English")
    k.wait_for(lang="en", elderly=True)
    k.fits("03_home_elderly_en")
    k.tap(text="Standard text")
    k.wait_for(lang="en", elderly=False)
    k.fits("04_home_en")
    k.tap(text="中文")
    k.wait_for(lang="zh", elderly=False)
    k.fits("05_home_zh_again")

    # an English, elderly citizen walks away mid-flow: the next one meets the hall's kiosk
    k.tap(text="English")
    k.wait_for(lang="en")
    k.tap(text="Large text")
    k.wait_for(lang="en", elderly=True)
    k.tap(key="take_ticket")
    k.wait_for(screen="categories")
    k.fits("06_categories_elderly_en")
    k.wait_for(timeout=IDLE_S + 60, screen="home", lang="zh", elderly=False)
    k.fits("07_home_after_idle")

    # an English ticket, in three taps
    k.tap(text="English")
    k.wait_for(lang="en")
    k.tap(key="take_ticket")
    k.wait_for(screen="categories")
    k.fits("08_categories_en")
    k.tap(key="cat:社会保障")
    k.wait_for(screen="services")
    k.fits("09_services_en")
    k.tap(key="A")
    ticket = k.wait_for(screen="ticket")
    k.fits("10_ticket_en")
    assert "Social & medical insurance" in ticket["texts"]
    assert hall.printer.wait_for_tickets(1)
    paper = hall.printer.tickets[0].text  # taken in English: printed in English too
    assert "Social & medical insurance" in paper and "ahead of you" in paper
    k.tap(text="Done")
    k.wait_for(screen="home", lang="en")

    # a rating of the visit just called at window 5
    with hall.client() as c:
        assert c.post("/v1/calls", json={"window": "5"}).status_code in (200, 201)
    k.tap(key="rate")
    k.wait_for(screen="rate_window")
    assert wait_until(lambda: any(b["key"] == "window:5" for b in k.probe()["buttons"]), 30)
    k.fits("11_rate_window_en")
    k.tap(key="window:5")
    k.wait_for(screen="rate_level")
    k.fits("12_rate_level_en")
    k.tap(key="level:satisfied")
    k.wait_for(screen="rate_done")
    k.fits("13_rate_done_en")
    # and home again in the hall's language once nobody touches it
    k.wait_for(timeout=IDLE_S + 60, screen="home", lang="zh", elderly=False)
    k.fits("14_home_end")
