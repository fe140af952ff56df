"""Appointment lists as Excel saves them on Chinese Windows (GBK), and files that cannot
be read: imported or reported, and never left on disk with ID numbers in clear."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from conftest import TZ
from hall_agent.agent import Agent
from sim.idcard import RESIDENT_NUMBER

DAY = (datetime.now(TZ) + timedelta(days=1)).date().isoformat()
CSV = ("code,service,date,start,end,id_number,name\n"
       f"K7M2Q9XW4P,B,{DAY},10:00,10:30,{RESIDENT_NUMBER},测试甲\n")


def drop(agent: Agent, name: str, data: bytes) -> Path:
    d = Path(agent.cfg.agent.data_dir) / "appointments-import"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)
    return d / name


def test_a_gbk_csv_from_excel_is_imported_and_deleted(agent: Agent) -> None:
    f = drop(agent, "today.csv", CSV.encode("gbk"))
    r = agent.book.import_dir(Path(agent.cfg.agent.data_dir))
    assert r is not None and r.added == 1 and r.errors == []
    a = agent.book.by_code("K7M2Q9XW4P")
    assert a is not None and a.masked_name == "测*"
    assert not f.exists()


def test_a_utf8_csv_with_excels_bom_is_imported(agent: Agent) -> None:
    drop(agent, "today.csv", CSV.encode("utf-8-sig"))
    r = agent.book.import_dir(Path(agent.cfg.agent.data_dir))
    assert r is not None and r.added == 1


def test_an_unreadable_file_is_reported_and_never_left_behind(agent: Agent) -> None:
    f = drop(agent, "today.csv", CSV.encode("utf-16"))  # Excel's "Unicode text"
    r = agent.book.import_dir(Path(agent.cfg.agent.data_dir))
    assert r is not None and r.added == 0
    assert r.errors and "today.csv" in r.errors[0] and "deleted" in r.errors[0]
    assert not f.exists()
