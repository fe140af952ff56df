"""Every hallctl command and subcommand, run as a technician types it, against a live
agent on simulated devices: its exit code and what it prints.

The commands are enumerated from hallctl's own argparse tree, so a command added
without a line here fails :func:`test_every_command_has_a_case`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from test_hallctl_ops import usb_device

from conftest import ROOT, HallUnderTest, wait_until
from hallctl import main as hallctl

pytestmark = pytest.mark.slow


def commands() -> list[tuple[str, str]]:
    """(command, subcommand) for every leaf of the parser: a subcommand is a choice of
    the command's first positional that has choices ("" when none has)."""
    out: list[tuple[str, str]] = []
    parser = hallctl.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        first = next((a for a in p._actions if not a.option_strings and a.choices), None)
        choices = list(first.choices) if first is not None and first.choices else [""]
        out += [(name, str(c)) for c in choices]
    return out


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # after `hallctl`; the global options go after the command
    code: int
    says: str  # a regular expression the output (stdout + stderr) must match
    as_json: bool = False  # --json after the command: stdout must be one JSON value
    before: str = ""  # "serve": a new ticket is called to window 5 first


OK, REFUSED, USAGE, DEVICE = (hallctl.EXIT_OK, hallctl.EXIT_REFUSED, hallctl.EXIT_USAGE,
                              hallctl.EXIT_DEVICE)

# In order: the earlier ones set the scene for the later ones (a ticket to call…).
CASES: dict[tuple[str, str], list[Case]] = {
    ("status", ""): [Case(("status",), OK, r"status: ok .*\n.*waiting: 1 · serving: -")],
    ("devices", ""): [Case(("devices",), OK, r"printer\s+ok"),
                      Case(("devices",), OK, r'"board-hall"', as_json=True)],
    ("tickets", ""): [Case(("tickets", "--day", "today"), OK, r"A001\s.*waiting"),
                      Case(("tickets", "--day", "2026-13-01"), USAGE, r"--day 2026-13-01")],
    ("call", ""): [Case(("call", "5"), OK, r"window 5: called A001 \(请 A001 号到 5 号窗口\)"),
                   Case(("call", "5"), OK, r"A001 finished.*\n.*nobody is waiting"),
                   Case(("call", "9"), REFUSED, r"refused \(422\) \[window\]")],
    ("window", "pause"): [Case(("window", "5", "pause"), OK,
                               r"window 5: A002 finished \(已办结\)\n.*paused", before="serve")],
    ("window", "resume"): [Case(("window", "5", "resume"), OK, r"window 5: open")],
    ("window", "no_show"): [Case(("window", "5", "no_show"), OK,
                                 r"A003 did not come \(过号\)", before="serve"),
                            Case(("window", "5", "no_show"), REFUSED, r"refused \(409\)")],
    ("window", "finish"): [Case(("window", "5", "finish"), OK,
                                r"A004 finished.*\n.*serving -", before="serve")],
    ("printer", "status"): [Case(("printer", "status"), OK, r"printer: ok")],
    ("printer", "test"): [Case(("printer", "test"), OK, r"test page printed")],
    ("board", "test"): [Case(("board", "test", "--seconds", "2"), OK,
                             r"boards: test for 2 s: .*board-hall ok"),
                        Case(("board", "test", "--address", "1"), USAGE, r"--port"),
                        Case(("board", "test", "--port", "{bus}", "--address", "1"), REFUSED,
                             r"the agent is running")],
    ("board", "show"): [Case(("board", "show", "--seconds", "2", "请", "A001"), OK,
                             r"boards: show for 2 s"),
                        Case(("board", "show", "hello", "--address", "11"), OK,
                             r"board-5 ok"),
                        Case(("board", "show", "hello", "--seconds", "0"), USAGE,
                             r"--seconds")],
    ("bus", "scan"): [Case(("bus", "scan", "{bus}"), REFUSED, r"the agent is running")],
    ("log", "show"): [Case(("log", "show"), OK, r"log level: info")],
    ("log", "level"): [Case(("log", "level", "DEBUG"), OK, r"log level: debug"),
                       Case(("log", "level", "loud"), USAGE, r"debug\|info"),
                       Case(("log", "level", "info"), OK, r"log level: info")],
    ("log", "traffic"): [Case(("log", "traffic", "{bus_device}", "on"), OK,
                              r"raw traffic {bus_device}\s+on")],
    ("bus", "log"): [Case(("bus", "log", "{bus}", "-n", "3"), OK, r"(>>>|<<<)",
                          before="traffic")],
    ("eval", "press"): [Case(("eval", "press", "5", "satisfied"), OK,
                             r"window 5: pressed key 02")],
    ("card", "read"): [Case(("card", "read", "--timeout", "15"), OK,
                            r"card read: .*\*{4}.*valid to \d{4}-\d\d-\d\d"),
                       Case(("card", "read", "--port", "{card}"), REFUSED,
                            r"the agent is running")],
    ("doctor", ""): [Case(("doctor",), -1, r"config"),
                     Case(("doctor",), -1, r'"findings"', as_json=True)],
    ("probe", ""): [Case(("probe", "--port", "{printer}"), REFUSED, r"the agent is running")],
    ("mqtt", "check"): [Case(("mqtt", "check"), REFUSED, r"standalone")],
    ("outbox", ""): [Case(("outbox",), OK, r"standalone mode: no outbox")],
    ("events", ""): [Case(("events", "--limit", "50"), OK,
                          r"\+08:00\s+evaluation\.submitted"),
                     Case(("events", "--limit", "-1"), USAGE, r"--limit")],
    ("export-logs", ""): [Case(("export-logs", "-o", "{tmp}/logs.tar.gz"), OK,
                               r"wrote .*logs\.tar\.gz")],
    ("udev", "suggest"): [Case(("udev", "suggest", "--sysfs", "{sysfs}"), OK,
                               r'SYMLINK\+="hall-')],
    ("completion", "bash"): [Case(("completion", "bash"), OK, r"complete -F")],
}


def fill(text: str, names: dict[str, str], quote: Callable[[str], str] = str) -> str:
    for k, v in names.items():
        text = text.replace("{" + k + "}", quote(v))
    return text


def test_every_command_has_a_case() -> None:
    missing = sorted(set(commands()) - set(CASES))
    assert not missing, f"add a case to CASES for: {missing}"
    assert not set(CASES) - set(commands()), "a case for a command that is gone"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HallUnderTest]:
    h = HallUnderTest(tmp_path_factory.mktemp("every") / "hall", id_devices=True)
    h.sim.serve_control()  # `hallctl eval press` goes through hall-sim's control socket
    try:
        h.start()
        assert wait_until(lambda: all(d["status"] == "ok"
                                      for d in h.health()["devices"].values()), 30)
        yield h
    finally:
        h.close()


def run(live: HallUnderTest, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hallctl.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8",
                               **(env or {})})


def test_every_command_against_a_live_agent(live: HallUnderTest, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (hallctl.main with the argv a technician types): ~40 runs of a
    fresh interpreter each would take minutes on a busy machine."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    sysfs = tmp_path / "sys"
    usb_device(sysfs, "1-1.2", "tty", "ttyUSB1", {"idVendor": "0403", "idProduct": "6001",
                                                  "serial": "A10K1234",
                                                  "bNumInterfaces": " 1"})
    assert live.sim.bus is not None
    bus = str(live.sim.link_of(live.sim.bus))
    names = {"bus": bus, "bus_device": "bus-" + Path(bus).name.replace(".", "-"),
             "printer": str(live.sim.printer_link), "tmp": str(tmp_path),
             "card": str(live.sim.root / "idreader.tty"),
             "sysfs": str(sysfs)}
    traffic = httpx.get(f"http://{live.sim.api}/v1/logging").json()["traffic"]
    names["bus_device"] = next(n for n in traffic if n.startswith("bus-"))
    with live.client() as c:
        assert c.post("/v1/tickets", json={"service": "A"}).status_code == 201
    assert live.sim.command("card resident").startswith("ok")
    seen: list[str] = []
    for key, cases in CASES.items():
        for case in cases:
            args = [fill(a, names) for a in case.args]
            if case.before == "traffic":  # the bus is polled: its log fills at once
                log = live.sim.root / "data" / "logs" / f"traffic-{names['bus_device']}.log"
                assert wait_until(lambda p=log: p.exists() and p.stat().st_size > 0, 15)
            if case.before == "serve":
                with live.client() as c:
                    c.post("/v1/tickets", json={"service": "A"})
                    c.post("/v1/calls", json={"window": "5"})
            extra = ["--config", str(live.config_path)] + (["--json"] if case.as_json else [])
            code = hallctl.main([*args, *extra])
            got = capsys.readouterr()
            out = got.out + got.err
            what = f"hallctl {' '.join(args)}{' --json' if case.as_json else ''}"
            if case.code >= 0:
                assert code == case.code, f"{what}: exit {code}\n{out}"
            else:  # doctor: 0 or 4 depending on this machine's permissions
                assert code in (OK, DEVICE), f"{what}: exit {code}\n{out}"
            assert re.search(fill(case.says, names, re.escape), out, re.S), f"{what}:\n{out}"
            if case.as_json:
                json.loads(got.out)
            seen.append(key[0])
    assert set(seen) == {k for k, _ in CASES}


def test_events_follow_prints_hall_time_and_limit_zero_means_only_new(
        live: HallUnderTest) -> None:
    p = subprocess.Popen([sys.executable, "-m", "hallctl.main", "events", "-f", "--limit",
                          "0", "--count", "1", "--config", str(live.config_path)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        def took_one() -> bool:
            with live.client() as c:
                c.post("/v1/boards/show", json={"text": "hi", "seconds": 1})
                c.post("/v1/tickets", json={"service": "B"})
            return p.poll() is not None
        assert wait_until(took_one, 30, step=0.3)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert re.match(r"live\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00\s+\w+", out), out
    assert "#" not in out  # no past event from the log


def test_refusals_follow_lang_and_global_options_go_anywhere(live: HallUnderTest) -> None:
    cfg = str(live.config_path)
    zh = run(live, "call", "9", "--config", cfg, env={"LANG": "zh_CN.UTF-8"})
    en = run(live, "--lang", "en", "call", "9", "--config", cfg)
    en_env = run(live, "call", "9", "--config", cfg, env={"LANG": "en_US.UTF-8"})
    assert "没有 9 号窗口" in zh.stderr
    assert "no window '9'" in en.stderr and "没有" not in en.stderr
    assert en_env.stderr == en.stderr
    doc = run(live, "call", "--json", "9", "--config", cfg)
    assert json.loads(doc.stdout)["error"] == "unknown_window"


@pytest.mark.parametrize("reader", ["head -2", "true"])
def test_doctor_into_a_reader_that_leaves_early_ends_quietly(live: HallUnderTest,
                                                             reader: str) -> None:
    """`hallctl doctor | head`: the reader may be gone before doctor writes (``true``
    never reads at all), which must not end in a BrokenPipeError traceback."""
    p = subprocess.Popen(f"{sys.executable} -m hallctl.main doctor --config "
                         f"{live.config_path} | {reader}", shell=True, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = p.communicate(timeout=120)
    assert len(out.splitlines()) == (2 if reader.startswith("head") else 0)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_version_and_a_closed_pipe() -> None:
    v = subprocess.run([sys.executable, "-m", "hallctl.main", "--version"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert v.returncode == 0 and re.match(r"hallctl \d+\.\d+", v.stdout)
    # `hallctl completion bash | head -1`: the reader leaves early, no traceback.
    p = subprocess.Popen(f"{sys.executable} -m hallctl.main completion bash | head -1",
                         shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = p.communicate(timeout=60)
    assert len(out.splitlines()) == 1 and "Traceback" not in err and "Broken" not in err


def test_an_unplugged_rs485_adapter_is_said_once(live: HallUnderTest) -> None:
    on_bus = [n for n in live.health()["devices"] if n.startswith(("board", "evaluator"))]
    live.sim.unplug("bus")
    try:
        assert wait_until(lambda: all(
            live.health()["devices"][n]["detail"].startswith("RS-485 adapter")
            for n in on_bus), 30)
        r = run(live, "devices", "--config", str(live.config_path))
        assert r.returncode == DEVICE
        said = [line for line in r.stdout.splitlines() if "RS-485" in line]
        assert len(said) == 1, r.stdout
        assert re.match(rf"RS-485 adapter \S+rs485\.tty (missing|lost): {len(on_bus)} "
                        r"devices unreachable \(board-hall, .*\) — ", said[0]), said[0]
        assert len(said[0]) < 200 + 15 * len(on_bus)
        assert not any(n in r.stdout.replace(said[0], "") for n in on_bus)
    finally:
        live.sim.replug("bus")
    assert wait_until(lambda: all(live.health()["devices"][n]["status"] == "ok"
                                  for n in on_bus), 30)
