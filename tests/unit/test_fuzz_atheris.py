"""A short coverage-guided fuzzing run of every byte decoder (bench/fuzz_atheris.py runs
the long one): no decoder may crash on any input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("target", ["escpos", "rs485", "onbon", "sam", "mqtt", "config"])
def test_decoder_survives_coverage_guided_fuzzing(target: str) -> None:
    pytest.importorskip("atheris", reason="atheris has no wheel for this platform")
    r = subprocess.run([sys.executable, "bench/fuzz_atheris.py", "--target", target,
                        "--seconds", "6"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done" in r.stderr and "number_of_executed_units" in r.stderr
