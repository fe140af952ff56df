"""hall-central's pages in a real browser (Debian's chromium through Playwright), against
the real hall-central process (``python -m central.main``, which serves these pages),
a real Mosquitto and a real kiosk agent numbering through it: a clerk logs in, calls,
recalls, transfers, pauses; the TV shows each call; a citizen's phone follows its
ticket from waiting to called; the TV says when its link is lost and comes back.

Screenshots go to the test's tmp dir (``shots/``); the README's copies are in
docs/screenshots/. Nothing here asserts a time: waits are for conditions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from webhall import PASSWORD

from conftest import ROOT, TEST_CATALOG, HallUnderTest, free_port, wait_until
from hall_agent.contract.ticket_token import well_formed
from sim.broker import Broker
from sim.central import CentralProcess, write_config

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "5f0c1e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100"
HALL_TZ = ZoneInfo("Asia/Shanghai")
WAIT_MS = 15_000  # a generous bound for a slow, shared machine; not a measurement


@dataclass
class Site:
    url: str
    central: CentralProcess
    kiosk: HallUnderTest
    shots: Path

    def take(self, service: str = "A") -> dict[str, Any]:
        r = self.kiosk.client().post("/v1/tickets", json={"service": service},
                                     headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def audit(self) -> list[tuple[str, str, str, str | None]]:
        with self.central.db() as db:
            return [tuple(r) for r in db.execute(
                "SELECT staff, channel, action, window FROM audit ORDER BY id")]


def _secret_file(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    p = data_dir / "hall.secret"
    p.write_text(SECRET + "\n")
    p.chmod(0o600)


def add_clerk(config: Path, staff: str, windows: str) -> None:
    """Through the CLI the technicians use: ``hall-central user add``."""
    r = subprocess.run([sys.executable, "-m", "central.main", "--config", str(config), "user",
                        "add", staff, "--windows", windows, "--password-stdin"],
                       input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                       cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr


def settled(clerk: Any) -> None:
    """The console has its last answer: it takes one action at a time (a key pressed
    while an answer is awaited is refused, and says so; a second Enter never calls a
    second citizen). The view can arrive by the live stream before the answer does."""
    expect(clerk.locator("body")).not_to_have_class(re.compile(r"\bbusy\b"), timeout=WAIT_MS)


def press(clerk: Any, key: str) -> None:
    settled(clerk)
    clerk.keyboard.press(key)


def click(clerk: Any, selector: str) -> None:
    settled(clerk)
    clerk.click(selector)


@pytest.fixture
def site(broker: Broker, tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = write_config(tmp_path / "central", broker_port=broker.port, catalog=TEST_CATALOG,
                       listen=f"127.0.0.1:{port}", rules={"recall_min_interval_s": 0})
    _secret_file(tmp_path / "central" / "data")
    add_clerk(cfg, "clerk-005", "5")
    central = CentralProcess(cfg, tmp_path / "central.log")
    central.start()
    kiosk = HallUnderTest(tmp_path / "kiosk", extra_toml=(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive_s = 5\n'))
    try:
        assert wait_until(lambda: _up(url), 30), central.log()
        kiosk.sim.status_url = f"{url}/t/{{token}}"
        kiosk.sim.write_config()
        _secret_file(tmp_path / "kiosk" / "data")
        kiosk.start()
        assert wait_until(lambda: kiosk.health()["mode"] == "central", 30), kiosk.health()
        shots = tmp_path / "shots"
        shots.mkdir()
        yield Site(url, central, kiosk, shots)
    finally:
        kiosk.close()
        central.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/hall", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_a_clerk_calls_recalls_transfers_pauses_and_the_tv_and_phone_follow(
        site: Site, browser: Any) -> None:
    tickets = [site.take("A") for _ in range(3)]
    for t in tickets:  # the agent prints the same token hall-central answers
        assert t["status_url"].startswith(site.url + "/t/")
        assert well_formed(t["status_url"].rsplit("/", 1)[1])
    first, second = tickets[0]["number"], tickets[1]["number"]
    api = site.url + "/api/v1/tickets/" + tickets[1]["status_url"].rsplit("/", 1)[1]
    assert wait_until(lambda: httpx.get(api, timeout=5).status_code == 200, 20)

    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone.goto(tickets[1]["status_url"])
    expect(phone.locator("#number")).to_have_text(second)
    expect(phone.locator("#ahead")).to_have_text("1", timeout=WAIT_MS)
    expect(phone.locator("#state-main")).to_have_text("请耐心等候")
    phone.screenshot(path=site.shots / "ticket-waiting.png")

    tv = browser.new_page(viewport={"width": 1920, "height": 1080})
    tv.goto(site.url + "/display")
    expect(tv.locator("#services .svc").first).to_contain_text("3")

    clerk = browser.new_page(viewport={"width": 1366, "height": 768})
    clerk.goto(site.url + "/console")
    clerk.fill("#staff", "clerk-005")
    clerk.fill("#password", "wrong password")
    clerk.select_option("#window", "5")
    clerk.click("#login")
    expect(clerk.locator("#login-error")).to_contain_text("工号或密码不对")
    clerk.screenshot(path=site.shots / "console-login.png")
    clerk.fill("#password", PASSWORD)
    clerk.click("#login")
    expect(clerk.locator("#waiting tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(clerk.locator("#serving-number")).to_have_text("—")
    clerk.screenshot(path=site.shots / "console-waiting.png")

    # call: the Enter key (the big button's shortcut)
    press(clerk, "Enter")
    expect(clerk.locator("#serving-number")).to_have_text(first, timeout=WAIT_MS)
    expect(tv.locator("#now-number")).to_have_text(first, timeout=WAIT_MS)
    expect(tv.locator("#now-window")).to_have_text("5")
    expect(tv.locator("#now-recall")).to_be_hidden()
    expect(tv.locator("#latest")).to_have_class("latest flash")  # highlighted
    assert tv.evaluate("Hall.chimed") == ["call"]  # and chimed (WebAudio, made in the page)
    expect(phone.locator("#ahead")).to_have_text("0", timeout=WAIT_MS)
    expect(clerk.locator("#timer")).not_to_have_text("00:00", timeout=WAIT_MS)  # it runs

    # recall: R
    press(clerk, "r")
    expect(clerk.locator("#serving-detail")).to_contain_text("已重呼 1 次", timeout=WAIT_MS)
    expect(tv.locator("#now-recall")).to_be_visible(timeout=WAIT_MS)
    assert tv.evaluate("Hall.chimed") == ["call", "recall"]  # a recall chimes its own way
    tv.screenshot(path=site.shots / "display-recall.png")

    # transfer through the dialog: to service C (window 8's)
    clerk.click("#btn-transfer")
    expect(clerk.locator("#dlg-transfer")).to_be_visible()
    clerk.check("input[value='s:C']")
    clerk.screenshot(path=site.shots / "console-transfer.png")
    clerk.click("#transfer-ok")
    expect(clerk.locator("#serving-number")).to_have_text("—", timeout=WAIT_MS)
    expect(clerk.locator("[data-tally='转移']")).to_have_text("1")
    expect(clerk.locator("#waiting tbody tr")).to_have_count(2)

    # the next call reaches the citizen's phone
    click(clerk, "#btn-next")
    expect(clerk.locator("#serving-number")).to_have_text(second, timeout=WAIT_MS)
    expect(tv.locator("#now-number")).to_have_text(second, timeout=WAIT_MS)
    expect(tv.locator("#now-recall")).to_be_hidden()
    expect(phone.locator("#state-main")).to_have_text("请到 5 号窗口", timeout=WAIT_MS)
    expect(phone.locator("#state-en")).to_have_text("Please go to window 5")
    phone.screenshot(path=site.shots / "ticket-called.png")
    tv.screenshot(path=site.shots / "display-call.png")
    clerk.screenshot(path=site.shots / "console-serving.png")

    window = browser.new_page(viewport={"width": 1280, "height": 720})
    window.goto(site.url + "/display/window/5")
    expect(window.locator("#w-number")).to_have_text(second, timeout=WAIT_MS)
    window.screenshot(path=site.shots / "window-serving.png")

    # pause: Z, then the first reason's key
    press(clerk, "z")
    expect(clerk.locator("#dlg-pause")).to_be_visible()
    press(clerk, "1")
    expect(clerk.locator("#paused")).to_be_visible(timeout=WAIT_MS)
    expect(clerk.locator("#paused-reason")).to_have_text("午休")
    expect(clerk.locator("#btn-next")).to_be_disabled()
    expect(window.locator("#w-number")).to_have_text("暂停服务", timeout=WAIT_MS)
    expect(window.locator("#w-reason")).to_contain_text("午休")
    expect(tv.locator(".win[data-window='5']")).to_contain_text("暂停服务", timeout=WAIT_MS)
    clerk.screenshot(path=site.shots / "console-paused.png")
    window.screenshot(path=site.shots / "window-paused.png")

    # a rating on the kiosk reaches the TV's satisfaction figures
    r = site.kiosk.client().post("/v1/evaluations", json={"window": "5", "level": "satisfied"},
                                 headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    expect(tv.locator(".win[data-window='5'] .w-sat")).to_have_text("满意 100%（1/1）",
                                                                    timeout=WAIT_MS)
    tv.screenshot(path=site.shots / "display-paused.png")

    mine = [(a, w) for staff, ch, a, w in site.audit() if staff == "clerk-005"]
    assert mine == [("login_refused", None), ("login", "5"), ("call_next", "5"),
                    ("recall", "5"), ("transfer", "5"), ("call_next", "5"), ("pause", "5")]
    assert all(ch == "console" for staff, ch, _, _ in site.audit() if staff == "clerk-005")

    # the TV's link drops: it says since when, shows nothing as live, and comes back
    before = datetime.now(HALL_TZ).strftime("%H:%M")  # hall time; the machine runs UTC
    site.central.stop()
    expect(tv.locator("#lost")).to_be_visible(timeout=WAIT_MS)
    after = datetime.now(HALL_TZ).strftime("%H:%M")
    lost = tv.locator("#lost").inner_text()
    assert "连接已断开" in lost and "Connection lost since" in lost
    assert any(f"since {hm}" in lost and f"（{hm} 起）" in lost for hm in {before, after}), lost
    expect(tv.locator("body")).to_have_class("page-display stale")
    tv.screenshot(path=site.shots / "display-lost.png")
    site.central.start()
    expect(tv.locator("#lost")).to_be_hidden(timeout=30_000)
    expect(tv.locator("#now-number")).to_have_text(second)

    # the console came back too: resume (Z), call (Enter), set aside (P), call back, no-show (X)
    expect(clerk.locator("#link")).to_have_text("● 在线", timeout=30_000)
    press(clerk, "z")
    expect(clerk.locator("#paused")).to_be_hidden(timeout=WAIT_MS)
    press(clerk, "Enter")
    third = tickets[2]["number"]
    expect(clerk.locator("#serving-number")).to_have_text(third, timeout=WAIT_MS)
    press(clerk, "p")
    expect(clerk.locator(f"#parked li[data-ticket='{third}']")).to_be_visible(timeout=WAIT_MS)
    expect(clerk.locator("#serving-number")).to_have_text("—")
    click(clerk, f"#parked li[data-ticket='{third}'] button")
    expect(clerk.locator("#serving-number")).to_have_text(third, timeout=WAIT_MS)
    press(clerk, "x")
    expect(clerk.locator("[data-tally='过号']")).to_have_text("1", timeout=WAIT_MS)
    expect(clerk.locator("#serving-number")).to_have_text("—")
    assert [a for staff, _, a, _ in site.audit() if staff == "clerk-005"][-5:] == [
        "resume", "call_next", "park", "call_back", "no_show"]


def test_a_ticket_numbered_offline_has_its_page_once_hall_central_knows_it(
        site: Site) -> None:
    """The kiosk prints the token without asking anyone (a lease number while
    hall-central is down); the page works as soon as the ticket reaches hall-central."""
    site.central.stop()
    assert wait_until(lambda: site.kiosk.health()["mode"] == "offline", 30), site.kiosk.health()
    t = site.take("A")
    assert t["offline"] is True
    token = t["status_url"].rsplit("/", 1)[1]
    assert t["status_url"] == f"{site.url}/t/{token}" and well_formed(token)
    site.central.start()
    assert wait_until(lambda: _up(site.url), 30)
    api = f"{site.url}/api/v1/tickets/{token}"
    assert wait_until(lambda: httpx.get(api, timeout=5).status_code == 200, 30)
    j = httpx.get(api, timeout=5).json()
    assert (j["number"], j["state"]) == (t["number"], "waiting")
    page = httpx.get(t["status_url"], timeout=5)
    assert page.status_code == 200 and t["number"] in page.text
