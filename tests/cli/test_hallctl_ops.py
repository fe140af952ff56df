"""hallctl's operations commands: udev suggest, completion, probe, logs, outbox, events,
export-logs."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import HallUnderTest, free_port, rule_ok, wait_until
from hall_agent.logs import export_logs, redact
from hallctl import main as hallctl
from hallctl.completion import bash_completion
from hallctl.udev import find_device, list_devices, suggest_rule
from sim.printer import SimPrinter


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = hallctl.main(list(args))
    return code, capsys.readouterr().out


# ---------------------------------------------------------------------------- udev suggest

def usb_device(sysfs: Path, path: str, cls: str, node: str, attrs: dict[str, str],
               iface: str = "1.0", sub: str = "") -> None:
    """A USB device at bus path ``path`` (e.g. 1-1.3) with one node in class ``cls``."""
    dev = sysfs / "devices/platform/scb/fd500000.pcie/pci0000:00/0000:01:00.0/usb1/1-1" / path
    dev.mkdir(parents=True, exist_ok=True)
    for k, v in attrs.items():
        (dev / k).write_text(v + "\n")
    intf = dev / f"{path}:{iface}"
    intf.mkdir(exist_ok=True)
    (intf / "bInterfaceNumber").write_text(iface.split(".")[1].zfill(2) + "\n")
    target = intf / (sub or node) / cls / node
    target.mkdir(parents=True)
    (target / "dev").write_text("188:0\n")
    (sysfs / "class" / cls).mkdir(parents=True, exist_ok=True)
    (sysfs / "class" / cls / node).symlink_to(target)


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    s = tmp_path / "sys"
    # A CH340 RS-485 adapter: no serial number at all.
    usb_device(s, "1-1.3", "tty", "ttyUSB0", {"idVendor": "1a86", "idProduct": "7523",
                                              "product": "USB Serial", "bNumInterfaces": " 1"})
    # An FTDI adapter on the printer, with its own serial number.
    usb_device(s, "1-1.2", "tty", "ttyUSB1", {"idVendor": "0403", "idProduct": "6001",
                                              "serial": "A10K1234", "manufacturer": "FTDI",
                                              "bNumInterfaces": " 1"})
    # A QR scanner in keyboard mode: an input event node under the HID interface.
    usb_device(s, "1-1.4", "input", "event3",
               {"idVendor": "0c2e", "idProduct": "0b61", "serial": "0",
                "bNumInterfaces": " 1"}, sub="0003:0C2E:0B61.0001/input/input7")
    return s


def test_udev_suggest_matches_by_serial_number_when_there_is_one(sysfs: Path) -> None:
    rule, why = suggest_rule(find_device("ttyUSB1", sysfs), "printer")
    assert rule == ('SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", '
                    'ATTRS{serial}=="A10K1234", SYMLINK+="hall-printer", GROUP="dialout", '
                    'MODE="0660"')
    assert "serial number A10K1234" in why and rule_ok(rule)


def test_udev_suggest_falls_back_to_the_usb_port_without_a_serial(sysfs: Path) -> None:
    rule, why = suggest_rule(find_device("/dev/ttyUSB0", sysfs), "rs485")
    assert 'KERNELS=="1-1.3"' in rule and 'SYMLINK+="hall-rs485"' in rule
    assert "serial" not in rule and "keep it plugged into this port" in why
    assert rule_ok(rule)


def test_udev_suggest_for_the_scanner_ignores_a_placeholder_serial(sysfs: Path) -> None:
    rule, _ = suggest_rule(find_device("event3", sysfs), "scanner")
    assert rule.startswith('SUBSYSTEM=="input", KERNEL=="event*", ATTRS{idVendor}=="0c2e"')
    assert 'KERNELS=="1-1.4"' in rule and 'SYMLINK+="input/hall-scanner"' in rule
    assert 'GROUP="input"' in rule and rule_ok(rule)


def test_udev_suggest_command_lists_every_plugged_device(
        sysfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [d.name for d in list_devices(sysfs)] == ["ttyUSB0", "ttyUSB1", "event3"]
    code, out = run(capsys, "--api", "127.0.0.1:9", "--json", "udev", "suggest",
                    "--sysfs", str(sysfs))
    assert code == hallctl.EXIT_OK
    rows = json.loads(out)["devices"]
    assert [r["usb_path"] for r in rows] == ["1-1.3", "1-1.2", "1-1.4"]
    code, out = run(capsys, "--api", "127.0.0.1:9", "udev", "suggest", "ttyUSB9",
                    "--sysfs", str(sysfs))
    assert code == hallctl.EXIT_DEVICE


# ---------------------------------------------------------------------------- completion

def complete(script: Path, *words: str) -> list[str]:
    cword = len(words) - 1
    arr = " ".join(f"'{w}'" for w in words)
    out = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({arr}); "
                                        f"COMP_CWORD={cword}; _hallctl; "
                                        'printf "%s\\n" "${COMPREPLY[@]}"'],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_bash_completion_is_generated_from_the_parser(tmp_path: Path) -> None:
    script = tmp_path / "hallctl.bash"
    script.write_text(bash_completion(hallctl.build_parser()))
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert complete(script, "hallctl", "pr") == ["printer", "probe"]
    assert set(complete(script, "hallctl", "--json", "printer", "")) >= {"status", "test"}
    assert "suggest" in complete(script, "hallctl", "udev", "")
    assert "--role" in complete(script, "hallctl", "udev", "suggest", "--r")
    assert "--follow" in complete(script, "hallctl", "events", "--f")


# ---------------------------------------------------------------------------- probe

@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    s = SimPrinter(tmp_path / "out")
    yield s
    s.close()


def test_probe_asks_a_printer_directly_when_the_agent_is_stopped(
        sim: SimPrinter, capsys: pytest.CaptureFixture[str]) -> None:
    api = f"127.0.0.1:{free_port()}"
    code, out = run(capsys, "--api", api, "--json", "probe", "--port", sim.port)
    assert code == hallctl.EXIT_OK and json.loads(out)["status"] == "ok"
    sim.set_state(paper="end")
    code, out = run(capsys, "--api", api, "probe", "--port", sim.port)
    assert code == hallctl.EXIT_DEVICE and "paper end" in out


# ---------------------------------------------------------------------------- export

def test_export_leaves_out_the_store_keys_and_id_numbers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "agent.log").write_text(
        "level=info msg=\"card read for 350102199001011234, phone 13812345678\"\n")
    (data / "logs" / "traffic-printer.log").write_text("09:00:00.000 >>> 1b 40\n")
    (data / "logs" / "traffic-id_reader.log").write_text("never exported\n")
    (data / "hall-agent.sqlite3").write_bytes(b"tickets")
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[hall]\nid = "t"\nname = "x"\n[mqtt]\npassword_file = "/etc/p"\n'
                   'password = "hunter2"\n')
    out = tmp_path / "support.tar.gz"
    names = export_logs(out, data_dir=data, config_path=cfg, extra={"doctor": {"ok": True}},
                        journal=lambda days: f"journal for {days} days\n")
    assert "logs/agent.log" in names and "logs/traffic-printer.log" in names
    assert not any("sqlite" in n or "id_reader" in n for n in names)
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                 for m in tar.getmembers()}
    assert "350102199001011234" not in files["logs/agent.log"]
    assert "[id-number removed]" in files["logs/agent.log"]
    assert "[phone removed]" in files["logs/agent.log"]
    assert "hunter2" not in files["config/agent.toml"]
    assert 'password_file = "/etc/p"' in files["config/agent.toml"]
    assert json.loads(files["doctor.json"]) == {"ok": True}
    assert out.stat().st_mode & 0o077 == 0


def test_redact_removes_a_first_generation_15_digit_id_number() -> None:
    line = "card read for 350102900101123 (old card), boot 17"
    assert redact(line) == "card read for [id-number removed] (old card), boot 17"


def test_redact_keeps_ticket_numbers_and_timestamps() -> None:
    line = "2026-11-30T09:12:03 ticket A023 seq 1234567 boot 17"
    assert redact(line) == line


# ---------------------------------------------------------------------------- with the agent

@pytest.mark.slow
def test_ops_commands_against_a_running_agent(
        hall: HallUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(hall.config_path)
    code, out = run(capsys, "--config", cfg, "log", "traffic", "printer", "on")
    assert code == hallctl.EXIT_OK and "raw traffic printer    on" in out
    code, out = run(capsys, "--config", cfg, "log", "traffic", "id_reader", "on")
    assert code == hallctl.EXIT_REFUSED
    with hall.client() as c:
        assert c.post("/v1/tickets", json={"service": "A"}).json()["printed"] is True
    traffic = hall.sim.root / "data" / "logs" / "traffic-printer.log"
    text = traffic.read_text()
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} >>> 1b 40", text, re.M)  # ESC @: a ticket
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} <<< 12$", text, re.M)  # a status answer
    code, _ = run(capsys, "--config", cfg, "log", "traffic", "printer", "off")
    code, out = run(capsys, "--config", cfg, "--json", "log", "level", "debug")
    assert json.loads(out)["level"] == "debug"

    code, out = run(capsys, "--config", cfg, "--json", "outbox")
    assert code == 0 and json.loads(out)["mqtt"] is False  # standalone: nothing to relay

    code, out = run(capsys, "--config", cfg, "events")
    assert code == 0 and "ticket.issued" in out and "number=A001" in out

    # The boards through the agent (the agent's models take whole seconds: a float was
    # refused with a 422 before).
    code, out = run(capsys, "--config", cfg, "--json", "board", "test", "--seconds", "2")
    assert code == hallctl.EXIT_OK, out
    code, out = run(capsys, "--config", cfg, "board", "show", "测试", "--seconds", "2")
    assert code == hallctl.EXIT_OK, out

    def take_one() -> None:
        time.sleep(1.0)
        httpx.post(f"{hall.url}/v1/tickets", json={"service": "A"}, timeout=10)

    threading.Thread(target=take_one, daemon=True).start()
    code, out = run(capsys, "--config", cfg, "--json", "events", "--follow", "--count", "1",
                    "--limit", "1")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and lines[-1]["event"] == "ticket" and lines[-1]["data"]["number"] == "A002"

    tarball = tmp_path / "support.tar.gz"
    code, out = run(capsys, "--config", cfg, "--json", "export-logs", "-o", str(tarball))
    assert code == 0
    names = json.loads(out)["files"]
    assert {"logs/agent.log", "logs/traffic-printer.log", "health.json",
            "doctor.json"} <= set(names)
    assert not any(n.endswith(".sqlite3") for n in names)
    assert wait_until(lambda: hall.health()["status"] in ("ok", "degraded"), 5)



# ---------------------------------------------------------------------------- mqtt check

@pytest.mark.slow
def test_mqtt_check_connects_and_reports_the_central(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import paho.mqtt.publish as publish

    from sim.broker import Broker

    b = Broker()
    b.start()
    try:
        cfg = tmp_path / "agent.toml"
        cfg.write_text(f'[hall]\nid = "fz"\nname = "x"\n[agent]\napi = "127.0.0.1:'
                       f'{free_port()}"\ndata_dir = "{tmp_path / "d"}"\n'
                       f'[mqtt]\nhost = "127.0.0.1"\nport = {b.port}\n')
        code, out = run(capsys, "--config", str(cfg), "--json", "mqtt", "check",
                        "--timeout", "2")
        steps = {s["name"]: s for s in json.loads(out)["steps"]}
        assert steps["tcp"]["ok"] and steps["connect"]["ok"]
        assert not steps["central"]["ok"] and "never connected" in steps["central"]["detail"]
        assert code == hallctl.EXIT_DEVICE
        publish.single("qms/v1/fz/central/state", '{"online":true,"ts":"x"}', qos=1,
                       retain=True, hostname="127.0.0.1", port=b.port)
        code, out = run(capsys, "--config", str(cfg), "mqtt", "check")
        assert code == hallctl.EXIT_OK and "central online" in out
    finally:
        b.close()
    code, out = run(capsys, "--config", str(cfg), "mqtt", "check", "--timeout", "1")
    assert code == hallctl.EXIT_DEVICE and "[FAIL] tcp" in out
