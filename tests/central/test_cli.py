"""hall-central's admin commands as an operator types them: user add/list (dispatched to
central/auth.py), export of a day, an online backup."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from central.config import load_central_config
from central.desk import Desk
from central.schema import migrate
from central.views import Actor
from conftest import ROOT, TEST_CATALOG, TZ, Clock
from hall_agent.contract.config import load_catalog
from hall_agent.core.queue import QueueEngine
from hall_agent.core.store import Store
from sim.central import write_config


def cli(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "central.main", "--config", str(cfg), *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)


def a_day(cfg_path: Path) -> None:
    cfg = load_central_config(cfg_path)
    store = Store(cfg.data_dir)
    migrate(store)
    catalog = load_catalog(TEST_CATALOG)
    engine = QueueEngine(store, catalog, TZ, clock=Clock(datetime(2026, 11, 30, 9, tzinfo=TZ)))
    desk = Desk(store, engine, catalog, cfg.central.queue)
    engine.issue("A", id_hash="ab" * 32, masked_name="张*")
    desk.call_next("5", Actor("clerk-007", "console"))
    desk.pause("5", Actor("clerk-007", "console"), "午休")
    store.close()


def test_user_add_and_list(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, broker_port=1883, catalog=TEST_CATALOG)
    r = cli(cfg, "user", "add", "clerk-007", "--windows", "5,6", "--password-stdin",
            stdin="a-long-password\n")
    assert r.returncode == 0, r.stderr
    r = cli(cfg, "user", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert [u["staff"] for u in json.loads(r.stdout)] == ["clerk-007"]
    assert "a-long-password" not in (tmp_path / "data").joinpath(
        "hall-agent.sqlite3").read_bytes().decode("latin-1")
    r = cli(cfg, "user", "add", "clerk-008", "--windows", "5", "--password-stdin", stdin="x\n")
    assert r.returncode == 1 and "password" in r.stderr


def test_export_a_day_holds_tickets_and_actions_but_no_names(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, broker_port=1883, catalog=TEST_CATALOG)
    a_day(cfg)
    r = cli(cfg, "export", "--day", "2026-11-30")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [t["number"] for t in doc["tickets"]] == ["A001"]
    assert [(a["action"], a["staff"]) for a in doc["actions"]] == [
        ("call_next", "clerk-007"), ("pause", "clerk-007")]
    assert "张" not in r.stdout and "ab" * 32 not in r.stdout
    assert json.loads(cli(cfg, "export", "--day", "2026-11-29").stdout)["tickets"] == []


def test_backup_is_a_consistent_copy(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, broker_port=1883, catalog=TEST_CATALOG)
    a_day(cfg)
    r = cli(cfg, "backup", str(tmp_path / "copy.sqlite3"))
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "copy.sqlite3") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 2
