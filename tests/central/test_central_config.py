"""hall-central's config is strict like the agent's: an unknown key or a wrong type stops
it with a message naming the key; ``--check`` says what it would run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from central.config import ConfigError, load_central_config
from conftest import ROOT, TEST_CATALOG

GOOD = f"""[hall]
id = "fz-citizen"
name = "福州市市民服务中心"
catalog = "{TEST_CATALOG}"

[central]
listen = "127.0.0.1:8780"
data_dir = "data"
public_url = "https://qms.example.gov.cn"

[central.queue]
priority_run = 3
normal_after = 1

[mqtt]
host = "127.0.0.1"
port = 1883
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "central.toml"
    p.write_text(text, encoding="utf-8")
    return p


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "central.main", "--config", str(path),
                           "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_documented_keys_are_enough(tmp_path: Path) -> None:
    cfg = load_central_config(write(tmp_path, GOOD))
    assert cfg.central.port == 8780 and cfg.central.queue.priority_run == 3
    assert cfg.data_dir == tmp_path / "data"  # relative to the config file
    r = check(write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "3 windows" in r.stdout


@pytest.mark.parametrize(("change", "named"), [
    (("port = 1883", "port = 1883\nprot = 1"), "[mqtt] prot: unknown key"),
    (("priority_run = 3", 'priority_run = "three"'), "[central.queue] priority_run"),
    (('listen = "127.0.0.1:8780"', 'listen = "8780"'), "[central] listen"),
    (("normal_after = 1", "normal_after = 1\nno_show_after_recalls = 9"),
     "no_show_after_recalls (9) is above recall_max"),
    (('id = "fz-citizen"', 'id = "FZ citizen"'), "[hall] id"),
])
def test_a_bad_key_is_named_and_nothing_starts(tmp_path: Path, change: tuple[str, str],
                                               named: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as e:
        load_central_config(path)
    assert named in str(e.value), str(e.value)
    r = check(path)
    assert r.returncode == 2 and named in r.stderr and "Traceback" not in r.stderr


def test_a_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    r = check(tmp_path / "nope.toml")
    assert r.returncode == 2 and "--config PATH" in r.stderr
