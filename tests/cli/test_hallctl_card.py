"""hallctl card read: the reader checked with a card, printing only masked forms."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, HallUnderTest
from sim.idcard import CARDS, SimIdReader

pytestmark = pytest.mark.slow
RAW = CARDS["resident"].number


def hallctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hallctl.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def reader() -> Iterator[SimIdReader]:
    r = SimIdReader()
    yield r
    r.close()


def test_direct_read_prints_masked_forms_only(reader: SimIdReader) -> None:
    reader.put("resident")
    r = hallctl("--api", "127.0.0.1:1", "--json", "card", "read", "--port", reader.port,
                "--timeout", "5")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["masked_id"] == RAW[:4] + "*" * 10 + RAW[-4:]
    assert body["masked_name"] == "测*" and body["card_type"] == "resident"
    assert RAW not in r.stdout + r.stderr and "测试甲" not in r.stdout + r.stderr


@pytest.mark.parametrize(("card", "error"), [("bad_check", "bad_check_digit"),
                                             ("expired", None)])
def test_direct_read_of_an_unusable_card_says_so(reader: SimIdReader, card: str,
                                                 error: str | None) -> None:
    reader.put(card)
    r = hallctl("--api", "127.0.0.1:1", "--json", "card", "read", "--port", reader.port,
                "--timeout", "5")
    assert r.returncode == 4, r.stdout + r.stderr
    body = json.loads(r.stdout)
    if error:
        assert body["error"] == error
    else:
        assert body["expired"] is True
    assert CARDS[card].number not in r.stdout + r.stderr


def test_no_card_on_the_reader_times_out_plainly(reader: SimIdReader) -> None:
    r = hallctl("--api", "127.0.0.1:1", "card", "read", "--port", reader.port,
                "--timeout", "1")
    assert r.returncode == 1 and "no card" in r.stderr


def test_read_through_the_running_agent(tmp_path: Path) -> None:
    h = HallUnderTest(tmp_path / "h", id_devices=True)
    try:
        h.start()
        # The card lies on the reader before hallctl asks: the agent reads it again for
        # hallctl's flow once hallctl's event stream is open, so no wait is needed and
        # no order of the two can lose it.
        assert h.sim.command("card resident").startswith("ok")
        p = subprocess.Popen([sys.executable, "-m", "hallctl.main", "--config",
                              str(h.config_path), "--json", "card", "read", "--timeout", "15"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, out + err
        body = json.loads(out)
        assert body["masked_name"] == "测*" and "token" not in body and "id_hash" not in body
        assert RAW not in out + err
    finally:
        h.close()
