"""A wrong config stops the agent with one message naming the file, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers.errors import ConfigError
from hall_agent.contract.config import load_catalog, load_config

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[hall]
id = "fz-citizen"
name = "福州市市民服务中心"
catalog = "{catalog}"

[agent]
data_dir = "{data}"

[printer]
port = "/dev/ttyUSB0"
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    p = tmp_path / name
    p.write_text(text.format(catalog=ROOT / "tests/data/services.toml", data=tmp_path),
                 encoding="utf-8")
    return p


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    return str(e.value)


def test_example_config_and_catalogue_are_valid() -> None:
    cfg = load_config(ROOT / "config/agent.toml")
    cat = load_catalog(cfg.catalog_path)
    assert len(cat.services) >= 12
    assert all(s.guide.strip() for s in cat.services), "every service has a guide"
    assert {s for w in cat.windows for s in w.services} == {s.id for s in cat.services}


def test_only_the_required_keys_make_a_working_config(tmp_path: Path) -> None:
    p = write(tmp_path, '[hall]\nid = "h1"\nname = "大厅"\n')
    cfg = load_config(p)
    assert cfg.agent.api == "127.0.0.1:8765"
    assert load_catalog(cfg.catalog_path).services  # the built-in catalogue


def test_unknown_key_is_named_with_its_section(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, GOOD + "baudrat = 9600\n"))
    assert str(tmp_path / "agent.toml") in msg
    assert "[printer] baudrat" in msg and "unknown key" in msg


def test_wrong_type_says_what_it_got(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, GOOD + 'baudrate = "fast"\n'))
    assert "[printer] baudrate" in msg and "'fast'" in msg


def test_out_of_range_value_is_refused(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, GOOD + "baudrate = 12\n"))
    assert "[printer] baudrate" in msg and "1200" in msg


def test_serial_printer_without_port_is_refused(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, GOOD.replace('port = "/dev/ttyUSB0"', "")))
    assert "[printer]" in msg and "needs port" in msg


def test_a_windows_style_port_name_is_refused(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, GOOD.replace("/dev/ttyUSB0", "COM3")))
    assert "'COM3' is not a serial port" in msg


def test_two_devices_on_one_bus_address_are_refused(tmp_path: Path) -> None:
    text = GOOD + """
[[boards]]
port = "/dev/ttyUSB1"
address = 21
role = "hall"

[[evaluators]]
port = "/dev/ttyUSB1"
address = 21
window = "5"
"""
    msg = error_of(write(tmp_path, text))
    assert "[[boards]] #1 and" in msg or "[[evaluators]] #1 and" in msg
    assert "address 21" in msg


def test_window_board_needs_its_window(tmp_path: Path) -> None:
    text = GOOD + '\n[[boards]]\nport = "/dev/ttyUSB1"\naddress = 2\nrole = "window"\n'
    msg = error_of(write(tmp_path, text))
    assert "[[boards]] #1" in msg and 'window = "5"' in msg


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, '[hall]\nid = "x\n'))
    assert "not valid TOML" in msg and "line 2" in msg


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    msg = error_of(tmp_path / "nope.toml")
    assert "--config" in msg and "HALL_EDGE_CONFIG" in msg


def test_catalogue_window_with_unknown_service_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, """
[[services]]
id = "A"
name = "社保"
name_en = "Social"

[[windows]]
id = "5"
services = ["A", "Q"]
""", "services.toml")
    with pytest.raises(ConfigError) as e:
        load_catalog(p)
    assert "[[windows]] #1 (id '5'): services lists 'Q'" in str(e.value)


@pytest.mark.parametrize(("hours", "why"), [
    ("8:30-12:00", "not HH:MM-HH:MM"),
    ("12:00-08:30", "ends before it starts"),
    ("08:00-12:00,11:00-13:00", "overlap"),
    ("25:00-26:00", "not a time of day"),
])
def test_bad_service_hours_are_explained(tmp_path: Path, hours: str, why: str) -> None:
    p = write(tmp_path, f"""
[[services]]
id = "A"
name = "社保"
name_en = "Social"
hours = "{hours}"
""", "services.toml")
    with pytest.raises(ConfigError) as e:
        load_catalog(p)
    assert "[[services]] #1 hours" in str(e.value) and why in str(e.value)


def test_lower_case_ticket_prefix_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, '[[services]]\nid = "a1"\nname = "社保"\nname_en = "S"\n',
              "services.toml")
    with pytest.raises(ConfigError) as e:
        load_catalog(p)
    assert "[[services]] #1 id" in str(e.value)


def test_agent_refuses_to_start_on_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "baudrat = 9600\n")
    r = subprocess.run([sys.executable, "-m", "hall_agent.main", "--config", str(p)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "[printer] baudrat" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    r = subprocess.run([sys.executable, "-m", "hall_agent.main", "--check"],
                       capture_output=True, text=True, timeout=60,
                       env={"HALL_EDGE_CONFIG": str(p), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "3 services" in r.stdout


def test_config_reference_is_generated_from_the_models() -> None:
    from hall_agent.contract.config_doc import reference

    on_disk = (ROOT / "docs/config-reference.md").read_text(encoding="utf-8")
    assert on_disk == reference(), \
        "stale: python -m hall_agent.contract.config_doc > docs/config-reference.md"
    for section in ("[hall]", "[agent]", "[mqtt]", "[printer]", "[[boards]]",
                    "[[evaluators]]", "[id_reader]", "[kiosk]", "[[services]]"):
        assert f"## {section}" in on_disk
    rows = [line for line in on_disk.splitlines() if line.startswith("| `")]
    assert rows
    unexplained = [r.split("|")[1].strip() for r in rows if r.rstrip().endswith("|  |")]
    assert not unexplained, f"keys without a meaning: {unexplained}"
    assert "FieldInfo" not in on_disk and "Annotated" not in on_disk


@pytest.mark.parametrize("api", ["0.0.0.0:8765", "[::]:8765", "192.168.1.20:8765"])
def test_a_non_loopback_api_address_is_refused(tmp_path: Path, api: str) -> None:
    text = GOOD.replace('[agent]\n', f'[agent]\napi = "{api}"\n')
    msg = error_of(write(tmp_path, text))
    assert "loopback" in msg and "api" in msg


@pytest.mark.parametrize("api", ["127.0.0.1:8765", "[::1]:8765", "localhost:8765"])
def test_loopback_api_addresses_are_accepted(tmp_path: Path, api: str) -> None:
    text = GOOD.replace('[agent]\n', f'[agent]\napi = "{api}"\n')
    assert load_config(write(tmp_path, text)).agent.api == api
