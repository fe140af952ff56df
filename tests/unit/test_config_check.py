"""``hall-agent --check`` finds what the agent would only fail on at run time, and names
the key or the catalogue entry at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall_agent.main import main

ROOT = Path(__file__).resolve().parents[2]

CATALOG = """
[[services]]
id = "A"
name = "社保医保"
name_en = "Social insurance"

[[services]]
id = "{second}"
name = "公积金"
name_en = "Housing fund"

[[windows]]
id = "5"
services = ["A"]

[[windows]]
id = "6"
services = ["{window6}"]
"""


def config(tmp_path: Path, printer: str = "", catalog: str = "services.toml",
           second: str = "B", window6: str = "B") -> Path:
    (tmp_path / "services.toml").write_text(
        CATALOG.format(second=second, window6=window6), encoding="utf-8")
    p = tmp_path / "agent.toml"
    p.write_text(f'[hall]\nid = "fz"\nname = "测试大厅"\ncatalog = "{catalog}"\n'
                 f'[agent]\ndata_dir = "{tmp_path / "data"}"\n{printer}', encoding="utf-8")
    return p


def check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = main(["--check", "--config", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_good_config_passes_and_an_absent_adapter_is_only_a_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, config(tmp_path, '[printer]\nport = "/dev/ttyUSB9"\n'))
    assert code == 0, out
    assert "ok (2 services, 2 windows)" in out and "[printer] port" in out
    assert "not present now" in out


@pytest.mark.parametrize("port", ["/etc/passwd", "/etc"])
def test_a_port_that_is_no_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             port: str) -> None:
    code, out = check(capsys, config(tmp_path, f'[printer]\nport = "{port}"\n'))
    assert code == 2
    assert f"[printer] port = '{port}' is a" in out and "not a serial device" in out


def test_a_number_in_quotes_is_refused(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, config(tmp_path, '[printer]\nport = "/dev/ttyUSB9"\n'
                                               'baudrate = "115200"\n'))
    assert code == 2
    assert "[printer] baudrate: must be a number, not the text '115200'" in out


def test_a_missing_catalogue_points_at_hall_catalog(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, config(tmp_path, catalog="nope.toml"))
    assert code == 2
    assert "service catalogue not found" in out and "[hall] catalog" in out
    assert "--config" not in out


@pytest.mark.parametrize("prefix", ["O", "I", "AO"])
def test_i_and_o_are_no_ticket_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      prefix: str) -> None:
    code, out = check(capsys, config(tmp_path, second=prefix, window6="A"))
    assert code == 2 and "I and O are not used" in out


def test_a_window_error_names_its_entry(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, config(tmp_path, window6="Z"))
    assert code == 2
    assert "[[windows]] #2 (id '6'): services lists 'Z'" in out
    assert "(top level)" not in out
