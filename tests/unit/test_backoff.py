"""The one back-off (drivers/backoff.py) gives the delays each user had before."""

from __future__ import annotations

from pathlib import Path

from drivers.backoff import Backoff
from drivers.types import PORT_ABSENT_RETRY_S


def test_scanner_and_card_reader_wait_2_4_8_up_to_30_s() -> None:
    b = Backoff(1.0, ceiling=30.0)
    assert b.delay == 1.0
    assert [b.failed() for _ in range(7)] == [min(30, 2 ** min(n, 5)) for n in range(1, 8)]
    b.reset()
    assert b.delay == 1.0


def test_supervisor_retries_three_times_then_doubles_to_its_ceiling() -> None:
    b = Backoff(1.0, ceiling=30.0, free=3)
    old = [1.0 if n - 3 <= 0 else min(30.0, 1.0 * 2 ** (n - 3)) for n in range(1, 12)]
    assert [b.delay_after(n) for n in range(1, 12)] == old


def test_event_stream_waits_half_a_second_then_doubles_to_5_s() -> None:
    b, waits, old, legacy = Backoff(0.5, ceiling=5.0), [], [], 0.5
    for _ in range(6):
        waits.append(b.delay)
        b.failed()
        old.append(legacy)
        legacy = min(legacy * 2, 5.0)
    assert waits == old == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_an_unplugged_port_is_looked_for_again_soon(tmp_path: Path) -> None:
    b = Backoff(1.0, ceiling=30.0, failures=5)
    assert b.for_port(str(tmp_path / "ttyUSB9")) == PORT_ABSENT_RETRY_S
    present = tmp_path / "ttyUSB0"
    present.touch()
    assert b.for_port(str(present)) == 30.0
    assert b.for_port("socket://127.0.0.1:5000") == 30.0
