"""``hallctl doctor``: what it finds on a broken kiosk, and the fix it prints for it."""

from __future__ import annotations

import grp
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, TEST_CATALOG, free_port
from hallctl import doctor
from hallctl import main as hallctl
from hallctl.doctor import checks as doctor_checks
from sim.printer import SimPrinter


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    s = SimPrinter(tmp_path / "out")
    yield s
    s.close()


def write(tmp_path: Path, printer_port: str, extra: str = "") -> Path:
    # The printer's answer waited for as in the field (1.5 s, not 100 ms): a working one
    # answers at once, and a busy test machine must not make it look silent.
    p = tmp_path / "agent.toml"
    p.write_text(f'[hall]\nid = "t"\nname = "测试"\ncatalog = "{TEST_CATALOG}"\n\n'
                 f'[agent]\napi = "127.0.0.1:{free_port()}"\ndata_dir = "{tmp_path / "data"}"\n'
                 f'\n[printer]\nport = "{printer_port}"\nstatus_timeout_ms = 1500\n{extra}',
                 encoding="utf-8")
    (tmp_path / "data").mkdir(exist_ok=True)
    return p


def run_hallctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = hallctl.main(list(args))
    return code, capsys.readouterr().out


def findings(out: str) -> dict[str, list[dict[str, str]]]:
    by: dict[str, list[dict[str, str]]] = {}
    for f in json.loads(out)["findings"]:
        by.setdefault(f["check"], []).append(f)
    return by


def test_broken_config_names_the_key_and_the_fix(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "/dev/hall-printer", "baudrat = 9600\n")
    code, out = run_hallctl(capsys, "--config", str(cfg), "doctor")
    assert code == hallctl.EXIT_DEVICE
    assert "[FAIL] config" in out
    assert "[printer] baudrat: unknown key: remove it or check its spelling" in out
    assert f"fix: edit the key named in the message in {cfg}, then `hall-agent --check " \
           f"--config {cfg}`" in out
    assert "problem(s) to fix" in out.splitlines()[-1]


def test_missing_config_says_where_it_belongs(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_hallctl(capsys, "--json", "--config", str(tmp_path / "nope.toml"), "doctor")
    assert code == hallctl.EXIT_DEVICE
    f = findings(out)["config"][0]
    assert f["status"] == "fail" and f["code"] == "config.missing"
    assert "/etc/hall-edge/agent.toml" in f["fix"]


def test_missing_permissions_say_which_group_to_join(
        tmp_path: Path, sim: SimPrinter, capsys: pytest.CaptureFixture[str]) -> None:
    port = os.path.realpath(sim.port)  # a real character device, like /dev/ttyUSB0
    os.chmod(port, 0o660)
    group = "dialout"
    try:
        os.chown(port, -1, grp.getgrnam(group).gr_gid)
    except (PermissionError, KeyError):
        group = grp.getgrgid(os.stat(port).st_gid).gr_name
    cfg = write(tmp_path, port)
    os.chmod(tmp_path / "data", 0o700)
    code, out = run_hallctl(capsys, "--json", "--config", str(cfg), "doctor", "--user",
                            "nobody")
    assert code == hallctl.EXIT_DEVICE
    by = findings(out)
    ports = by["ports"][0]
    assert ports["status"] == "fail" and ports["code"] == "ports.permission"
    assert f"printer on {port}: nobody may not open it" in ports["message"]
    assert f"group {group}" in ports["message"]
    assert ports["fix"].startswith(f"`sudo usermod -aG {group} nobody`, then `sudo systemctl "
                                   "restart hall-agent`")
    data = by["data_dir"][0]
    assert data["code"] == "data_dir.not_writable"
    assert data["fix"] == f"`sudo chown -R nobody: {tmp_path / 'data'}`"
    # The agent is not running: the printer itself was probed directly, and works.
    assert by["devices"][0]["status"] == "ok"
    assert by["agent"][0]["code"] == "agent.down"


def test_healthy_setup_passes_the_device_and_config_checks(
        tmp_path: Path, sim: SimPrinter, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, sim.port)
    ctx = doctor.make_context(str(cfg))
    by: dict[str, list[doctor.Finding]] = {}
    for f in doctor.run(ctx):
        by.setdefault(f.check, []).append(f)
    for check in ("config", "data_dir", "ports", "devices"):
        assert [f.status for f in by[check]] == ["ok"], by[check]
    assert by["broker"][0].status == "skip"


def test_full_disk_and_unsynced_clock(tmp_path: Path, sim: SimPrinter) -> None:
    ctx = doctor.make_context(str(write(tmp_path, sim.port)))
    ctx.disk_free = lambda _p: (10_000_000, 16_000_000_000)
    ctx.clock_synced = lambda: False
    got = {f.check: f for f in doctor.run(ctx)}
    assert got["disk"].status == "fail" and "10 MB free" in got["disk"].message
    assert "journalctl --vacuum-size" in got["disk"].fix
    assert got["clock"].status == "warn" and "timedatectl set-ntp true" in got["clock"].fix
    ctx.now = lambda: 0.0  # 1970: a Pi that booted without network or RTC
    assert {f.check: f for f in doctor.run(ctx)}["clock"].code == "clock.wrong"


def test_unreachable_broker_and_missing_tls_files(tmp_path: Path, sim: SimPrinter) -> None:
    cfg = write(tmp_path, sim.port, f'\n[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                                    f'tls_ca = "{tmp_path / "ca.crt"}"\n')
    got = {f.check: f for f in doctor.run(doctor.make_context(str(cfg)))}
    assert got["broker"].code == "broker.unreachable"
    assert "ping 127.0.0.1" in got["broker"].fix
    assert got["tls"].code == "tls.missing"


def test_every_problem_a_check_reports_is_declared() -> None:
    src = Path(doctor_checks.__file__).read_text()
    used = set(re.findall(r'bad\(spec, "([a-z_]+\.[a-z_]+)"', src))
    declared = {p.code for spec, _ in doctor.CHECKS for p in spec.problems}
    assert used <= declared
    assert len(used) >= 20


def test_troubleshooting_doc_is_generated_from_the_checks() -> None:
    doc = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert doc == doctor.markdown(), "regenerate: python -m hallctl.doctor --markdown " \
                                     "> docs/troubleshooting.md"


def test_clock_in_doubt_storage_fault_and_a_damaged_store_are_explained(
        tmp_path: Path, sim: SimPrinter) -> None:
    ctx = doctor.make_context(str(write(tmp_path, sim.port)))
    ctx.clock_synced = lambda: True
    kept = tmp_path / "data" / "damaged-20261130T091200"
    kept.mkdir()
    (kept / "WHAT-HAPPENED.txt").write_text("2026-11-30 09:12:00: the store file is "
                                            "truncated.\n", encoding="utf-8")
    ctx.agent_health = {"status": "fault", "mode": "standalone", "devices": {
        "clock": {"status": "degraded", "detail": "the clock is 600 min behind the newest "
                                                  "ticket"},
        "storage": {"status": "fault", "detail": "disk full: the storage card has no space"}}}
    got: dict[str, list[doctor.Finding]] = {}
    for f in doctor.run(ctx):
        got.setdefault(f.check, []).append(f)
    clock = {f.code: f for f in got["clock"]}
    assert "behind the newest ticket" in clock["clock.doubt"].message
    assert "HALL_EDGE_CLOCK_SYNCED=1" in clock["clock.doubt"].fix
    store = {f.code: f for f in got["store"]}
    assert store["store.fault"].status == "fail" and "disk full" in store["store.fault"].message
    assert "truncated" in store["store.damaged"].message
    assert f"{kept}/WHAT-HAPPENED.txt" in store["store.damaged"].fix


def test_a_pipe_in_a_fix_reaches_the_table_as_typed() -> None:
    doc = doctor.markdown()
    assert "`du -xh / \\| sort -h`" in doc  # GFM shows \| as |; `/` would be another command
    for line in doc.splitlines():
        if line.startswith("| **") or line.startswith("|  |"):
            assert line.replace("\\|", "").count("|") == 5, line  # four cells, no more
