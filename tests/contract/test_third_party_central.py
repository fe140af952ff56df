"""The agent against a central written from ``docs/protocols/MQTT.md`` alone (issue 12): every
variant the page says is *read*, sent by hand with ``mosquitto_pub`` or raw paho to a
real agent process on a real Mosquitto, and what the agent does with it: shown on the
hall's board, spoken, numbered online, answered with a ``cmd_result``, or counted
malformed in its health."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from contract.thirdparty import ThirdPartyCentral, today

from conftest import HallUnderTest, wait_until
from sim.broker import Broker
from sim.bus import HALL_BOARD

pytestmark = pytest.mark.slow
HALL = "fz-citizen"
AGENT = "kiosk-01"


# ---------------------------------------------------------------- the rig

@pytest.fixture(scope="module")
def mosquitto() -> Iterator[Broker]:
    b = Broker()
    b.start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def central(mosquitto: Broker) -> Iterator[ThirdPartyCentral]:
    c = ThirdPartyCentral(mosquitto.port, HALL, AGENT)
    c.start()
    c.lease()
    c.online()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def hall(mosquitto: Broker, central: ThirdPartyCentral,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[HallUnderTest]:
    """One agent for the module: each variant is an independent message."""
    h = HallUnderTest(tmp_path_factory.mktemp("contract") / "hall", extra_toml=(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        "request_timeout_ms = 2000\nkeepalive_s = 5\n"))
    h.start()
    try:
        assert wait_until(lambda: h.health()["mode"] == "central", 15), h.health()
        yield h
    finally:
        h.close()


@pytest.fixture
def agent(hall: HallUnderTest, central: ThirdPartyCentral) -> Iterator[HallUnderTest]:
    """The module's agent, the central online and answering before and after each test."""
    central.reply = central.number_reply
    central.online()
    assert wait_until(lambda: hall.health()["mode"] == "central", 15), hall.health()
    yield hall
    central.reply = central.number_reply
    central.online()


def malformed(h: HallUnderTest) -> int:
    m = re.search(r"(\d+) malformed", str(h.health()["devices"]["mqtt"]["detail"]))
    return int(m.group(1)) if m else 0


def board_shows(h: HallUnderTest, text: str) -> bool:
    """Somewhere on the hall's LED board (what the simulated board was sent)."""
    assert h.sim.bus is not None
    return any(text in line for line in h.sim.bus.board(HALL_BOARD).text())


def spoken(h: HallUnderTest) -> list[str]:
    """What the voice said, from its WAV log: ``TICKET-wWINDOW`` (``-recall``)."""
    log = h.config_path.parent / "data" / "voice" / "announcements.jsonl"
    if not log.exists():
        return []
    return [json.loads(line)["label"] for line in log.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def take(h: HallUnderTest, service: str = "A") -> dict[str, Any]:
    r = h.client().post("/v1/tickets", json={"service": service},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return dict(r.json())


def seen_offline(h: HallUnderTest, central: ThirdPartyCentral) -> None:
    """A marker: the central says offline; once the agent shows it, everything published
    before it has been handled."""
    central.state('{"online": false}')
    assert wait_until(lambda: h.health()["mode"] == "offline", 15), h.health()


# ---------------------------------------------------------------- retained state

def test_satisfaction_with_a_figure_we_do_not_know_reaches_the_hall_board(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    """First in the module: the board shows figures only while no call is on it."""
    central.pub(f"{central.p}/central/satisfaction", json.dumps({
        "day": today(), "windows": {"5": {
            "very_satisfied": 40, "satisfied": 12, "basic": 1, "unsatisfied": 0,
            "very_unsatisfied": 0, "none": 3, "total": 56}}}), retain=True)
    assert wait_until(lambda: board_shows(agent, "共53评"), 40), \
        agent.sim.bus.board(HALL_BOARD).text() if agent.sim.bus else None
    assert malformed(agent) == 0


@pytest.mark.parametrize("ts", ["1764465123", "1764465123412", "1764465123.25"])
def test_central_state_with_a_numeric_ts_keeps_the_hall_online(
        agent: HallUnderTest, central: ThirdPartyCentral, ts: str) -> None:
    before = malformed(agent)
    seen_offline(agent, central)
    central.state(f'{{"online": true, "ts": {ts}}}')  # retained: what a restart reads too
    assert wait_until(lambda: agent.health()["mode"] == "central", 15), agent.health()
    assert malformed(agent) == before


def test_an_unusable_ts_is_dropped_with_one_warning_and_the_state_used(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    seen_offline(agent, central)
    mark = len(agent.log())
    central.state('{"online": true, "ts": "half past nine", "region": {"zone": 3}}')
    assert wait_until(lambda: agent.health()["mode"] == "central", 15), agent.health()
    warned = [line for line in agent.log()[mark:].splitlines() if "without ts" in line]
    assert len(warned) == 1, agent.log()[mark:]


def test_a_queue_snapshot_with_numeric_ts_and_loose_counts_is_used(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    before = malformed(agent)
    central.pub(f"{central.p}/central/queue", json.dumps({
        "ts": 1764465123412,
        "services": {"A": {"waiting": 12.0, "est_wait_s": "540", "trend": "up"}},
        "windows": {"5": {"open": True, "serving": "a023", "staff": {"id": 7}},
                    "12-1": {"open": False}}}), retain=True)
    seen_offline(agent, central)
    assert malformed(agent) == before, agent.log()[-2000:]


def test_clearing_retained_topics_is_not_an_error(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    before = malformed(agent)
    for topic in (f"{central.p}/central/queue", f"{central.p}/central/satisfaction",
                  f"{central.a}/cmd"):
        central.pub(topic, "", retain=True)
    central.state("")  # nothing known about the central: numbering from the lease
    assert wait_until(lambda: agent.health()["mode"] == "offline", 15), agent.health()
    assert malformed(agent) == before


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize(("reply", "number", "ahead", "wait"), [
    ('{{"req_id": "{r}", "ok": true, "number": "A201", "waiting_ahead": 3, '
     '"est_wait_s": 537.5}}', "A201", 3, 538),
    ('{{"req_id": "{r}", "ok": true, "number": "a202", "waiting_ahead": "4", '
     '"est_wait_s": "600", "ts": 1764465123, "detail": {{"counter": 2}}}}', "A202", 4, 600),
    ('{{"req_id": "{r}", "ok": true, "number": "A7", "waiting_ahead": -1}}', "A007", None,
     None),
])
def test_a_number_answered_in_time_is_used_whatever_its_informational_fields(
        agent: HallUnderTest, central: ThirdPartyCentral, reply: str, number: str,
        ahead: int | None, wait: int | None) -> None:
    central.reply = lambda req: reply.format(r=req["req_id"])
    t = take(agent)
    assert (t["number"], t["offline"]) == (number, False), t
    if ahead is not None:
        assert (t["waiting_ahead"], t["est_wait_s"]) == (ahead, wait)


def test_a_lease_block_with_a_label_and_string_bounds_numbers_offline(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    central.pub(f"{central.a}/lease", json.dumps({"day": today(), "issued_by": "ops", "blocks": [
        {"service": "C", "from": "950", "to": 959, "label": "afternoon"}]}), retain=True)
    central.state('{"online": false}')
    assert wait_until(lambda: agent.health()["mode"] == "offline", 15)
    t = take(agent, "C")
    assert (t["number"], t["offline"]) == ("C950", True), t
    central.lease()


# ---------------------------------------------------------------- calls

CALLS = [  # (what the central sends, the ticket and window the hall shows, spoken label)
    ('{"call_id": "k-ts", "ticket": "A301", "window": "5", "kind": "call", '
     '"ts": 1764465123}', "A301", "A301-w5"),
    ('{"call_id": "k-ms", "ticket": "A302", "window": "5", "ts": 1764465123412}',
     "A302", "A302-w5"),
    ('{"call_id": "k-short", "ticket": "A23", "window": "12-1"}', "A23", "A23-w12-1"),
    ('{"call_id": "k-hao", "ticket": "a304", "window": "5号", "service": "A"}',
     "A304", "A304-w5号"),
    ('{"call_id": "k-num", "ticket": "A305", "window": 5}', "A305", "A305-w5"),
    ('{"call_id": 90210, "ticket": "A306", "window": "6"}', "A306", "A306-w6"),
    ('{"call_id": "k-recall", "ticket": "A307", "window": "8", "kind": "RECALL"}',
     "A307", "A307-w8-recall"),
    ('{"call_id": "k-extra", "ticket": "A308", "window": "6", "kind": "Call", '
     '"service": 5, "ts": "soon", "staff": {"name": "x", "desk": [1, 2]}}', "A308",
     "A308-w6"),
]


@pytest.mark.parametrize(("text", "ticket", "label"), CALLS,
                         ids=[c[2] for c in CALLS])
def test_a_call_the_page_allows_is_shown_and_spoken(
        agent: HallUnderTest, central: ThirdPartyCentral, text: str, ticket: str,
        label: str) -> None:
    before = malformed(agent)
    central.call(text)
    assert wait_until(lambda: board_shows(agent, ticket), 15), \
        agent.sim.bus.board(HALL_BOARD).text() if agent.sim.bus else None
    assert wait_until(lambda: label in spoken(agent), 30), spoken(agent)
    assert malformed(agent) == before


def test_a_call_without_a_usable_ticket_is_rejected_and_counted(
        agent: HallUnderTest, central: ThirdPartyCentral) -> None:
    before = malformed(agent)
    central.call('{"call_id": "k-bad", "ticket": "023", "window": "5"}')
    assert wait_until(lambda: malformed(agent) == before + 1, 15)
    assert "023-w5" not in spoken(agent)


# ---------------------------------------------------------------- commands

@pytest.mark.parametrize(("text", "cmd_id", "ok", "detail"), [
    ('{"cmd_id": "k-null", "name": "sync", "args": null}', "k-null", True, "pending"),
    ('{"cmd_id": 4711, "name": "sync"}', "4711", True, "pending"),
    ('{"cmd_id": "k-new", "name": "restart", "args": {}}', "k-new", False,
     "unknown command restart"),
    ('{"cmd_id": "k-args", "name": "reprint", "args": "t-1"}', "k-args", False, "args"),
    ('{"cmd_id": "k-deep", "name": "rebirth", "args": {"why": {"by": "ops"}}, "by": 3}',
     "k-deep", True, "republished"),
])
def test_every_command_with_an_id_gets_exactly_one_result(
        agent: HallUnderTest, central: ThirdPartyCentral, text: str, cmd_id: str, ok: bool,
        detail: str) -> None:
    before = malformed(agent)
    central.cmd(text)
    marker = f"k-after-{uuid.uuid4()}"
    central.cmd(json.dumps({"cmd_id": marker, "name": "sync"}))
    assert wait_until(lambda: any(r["cmd_id"] == marker for r in central.cmd_results), 15), \
        central.cmd_results
    mine = [r for r in central.cmd_results if r["cmd_id"] == cmd_id]
    assert len(mine) == 1, central.cmd_results
    assert mine[0]["ok"] is ok and detail in mine[0]["detail"], mine[0]
    assert malformed(agent) == before
